"""The ``q-learning`` optimizer: its options, the policies (Q-tables by layout, reward and rate),
warm starts, episode starts and the ranking of candidates (docs/q-learning.md)."""

from __future__ import annotations

import random
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

from ipa_ext.config.numeric import MODEL_LIMIT, option
from ipa_ext.errors import ConfigError
from ipa_ext.model import Configuration
from ipa_ext.optimizers import Decision, Optimizer
from ipa_ext.problem import Evaluation, Problem

from .algorithm import EpisodeLog, LearningParams, QTable, State, StopRule, greedy_path, train
from .encoding import build_layout
from .environment import PipelineEnv
from .feasibility import feasibility_anchor
from .tables import Policy, read_tables, write_tables


def _reward_description(problem: Problem, params: LearningParams) -> dict[str, Any]:
    s = problem.settings
    return {
        "weights": {k: float(v) for k, v in sorted(s.weights.items()) if float(v) != 0.0},
        "penalty": params.penalty,
        "gamma_q": params.gamma_q,
        "sla_s": problem.sla_s,
        "accuracy_method": s.accuracy_method,
        "normalize_accuracy": s.normalize_accuracy,
        "scaling_cap": s.scaling_cap,
        "batching_cap": s.batching_cap,
        "power_cap_w": s.power_cap_w,
        "carbon_intensity_g_per_kwh": s.carbon_intensity_g_per_kwh,
    }


def _number(name: str, value: Any, lo: float | None = None, hi: float | None = None,
            integer: bool = False) -> Any:
    """An option's value checked to be a (whole) number within bounds (at most MODEL_LIMIT in
    magnitude, so that rewards and Q-values never overflow); ValueError otherwise."""
    return option(name, value, minimum=-MODEL_LIMIT if lo is None else lo,
                  maximum=MODEL_LIMIT if hi is None else hi, integer=integer)


EPSILON_DEPRECATED = (
    "ipa-ext: warning: q-learning option 'epsilon' is deprecated, use 'exploration' (the "
    "exploration rate; 'epsilon' is energy-ilp's carbon weight)"
)


def _exploration(exploration: Any, epsilon: Any) -> float:
    """The start ε of the ε-greedy schedule: ``exploration`` (default 1.0), or the deprecated
    ``epsilon`` with a warning line on stderr; both at once is an error."""
    if epsilon is not None:
        if exploration is not None:
            raise ValueError("give exploration only ('epsilon' is its deprecated name)")
        print(EPSILON_DEPRECATED, file=sys.stderr)
        return _number("epsilon", epsilon, 0, 1)
    return _number("exploration", 1.0 if exploration is None else exploration, 0, 1)


def _flag(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be true or false, got {value!r}")
    return value


class QLearningOptimizer(Optimizer):
    """Tabular Q-learning (Algorithm 1) as an ipa-ext optimizer; options: docs/q-learning.md."""

    name = "q-learning"

    def __init__(
        self,
        alpha_q: float = 0.1,
        gamma_q: float = 0.9,
        exploration: float | None = None,
        epsilon_min: float = 0.01,
        kappa: float = 0.001,
        episodes: int = 100_000,
        warm_episodes: int = 10_000,
        max_steps: int = 40,
        penalty: float = -1000.0,
        stay_ends_episode: bool = False,
        warm_epsilon: float | None = None,
        q_init: float = 0.0,
        replica_offsets: Sequence[int] = (0, 1),
        current_start_fraction: float = 0.3,
        random_start_fraction: float = 0.5,
        select: str = "policy",
        seed: int = 0,
        load: str | None = None,
        save: str | None = None,
        record_episodes: bool = False,
        converge_tol: float | None = 0.001,
        converge_every: int = 250,
        warm_start: bool = False,
        epsilon: float | None = None,
    ) -> None:
        self.params = LearningParams(
            alpha_q=_number("alpha_q", alpha_q, 0, 1),
            gamma_q=_number("gamma_q", gamma_q, 0, 1),
            epsilon=_exploration(exploration, epsilon),
            epsilon_min=_number("epsilon_min", epsilon_min, 0, 1),
            kappa=_number("kappa", kappa, 0),
            max_steps=_number("max_steps", max_steps, 1, integer=True),
            penalty=_number("penalty", penalty),
            stay_ends_episode=_flag("stay_ends_episode", stay_ends_episode),
        )
        if not self.params.alpha_q > 0:
            raise ValueError(f"alpha_q must be > 0, got {alpha_q!r}")
        if not self.params.gamma_q < 1:
            raise ValueError(f"gamma_q must be < 1, got {gamma_q!r}")
        self.episodes = _number("episodes", episodes, 1, integer=True)
        self.warm_episodes = _number("warm_episodes", warm_episodes, 0, integer=True)
        self.q_init = _number("q_init", q_init)
        self.warm_epsilon = None if warm_epsilon is None else _number("warm_epsilon", warm_epsilon, 0, 1)
        if not isinstance(replica_offsets, (list, tuple)) or len(replica_offsets) != 2:
            raise ValueError(f"replica_offsets must be [low, high], got {replica_offsets!r}")
        self.offsets = (
            _number("replica_offsets[0]", replica_offsets[0], None, 0, integer=True),
            _number("replica_offsets[1]", replica_offsets[1], 0, None, integer=True),
        )
        self.current_start_fraction = _number("current_start_fraction", current_start_fraction, 0, 1)
        self.random_start_fraction = _number("random_start_fraction", random_start_fraction, 0, 1)
        if select not in ("policy", "best-visited"):
            raise ValueError(f"select must be 'policy' or 'best-visited', got {select!r}")
        self.select = select
        self.seed = _number("seed", seed, integer=True)
        self.save_path = Path(save) if save else None
        self.record_episodes = _flag("record_episodes", record_episodes)
        self.converge_tol = None if converge_tol is None else _number("converge_tol", converge_tol, 0)
        self.warm_start = _flag("warm_start", warm_start)
        self.converge_every = _number("converge_every", converge_every, 1, integer=True)
        self._policies: list[Policy] = []
        self._loaded: tuple[Path, list[dict[str, Any]]] | None = None
        if load:
            self.load_tables(load)

    # ------------------------------------------------------------------ policies

    def _policy(self, problem: Problem, current: Configuration | None) -> Policy:
        layout = build_layout(problem, problem.resolve_current(current), self.offsets)
        ld = layout.as_dict()
        reward = _reward_description(problem, self.params)
        for p in self._policies:
            if p.layout_dict == ld and p.reward == reward:
                return p
        policy = Policy(layout, ld, reward)
        if self._loaded is not None:
            path, raw = self._loaded
            self._adopt(policy, path, raw)
        self._policies.append(policy)
        return policy

    def _adopt(self, policy: Policy, path: Path, raw: list[dict[str, Any]]) -> None:
        """Fill ``policy`` from the loaded file; a file with no matching policy is an error."""
        layout_match = [p for p in raw if p["layout"] == policy.layout_dict]
        if not layout_match:
            raise ConfigError(
                "Q-tables were trained for another pipeline layout (stages, variants, cpus, "
                "batches or replica_offsets differ); train afresh or load the matching file",
                path=path, where="policies",
            )
        for p in layout_match:
            if p["reward"] == policy.reward:
                for t in p["tables"]:
                    policy.tables[t.rate_rps] = t.copy()
                return
        got = layout_match[0]["reward"]
        diff = sorted(k for k in set(got) | set(policy.reward) if got.get(k) != policy.reward.get(k))
        raise ConfigError(
            f"Q-tables were trained for another reward ({', '.join(diff)} differ(s): file "
            f"{', '.join(f'{k}={got.get(k)!r}' for k in diff)}; config "
            f"{', '.join(f'{k}={policy.reward.get(k)!r}' for k in diff)})",
            path=path, where="policies",
        )

    # ------------------------------------------------------------------ solve

    def solve(
        self, problem: Problem, rate_rps: float, current: Configuration | None, k: int
    ) -> tuple[list[Evaluation], dict[str, Any]]:
        rate_rps = float(rate_rps)
        cur = problem.resolve_current(current)
        policy = self._policy(problem, current)
        anchor = feasibility_anchor(problem, rate_rps, cur)
        if anchor is None:
            return [], {"states": 0, "episodes": 0}
        env = PipelineEnv(problem, policy.layout, rate_rps, cur, self.params.penalty)
        anchor_state = tuple(env.option_state(si, o) for si, o in enumerate(anchor))
        env.evaluate(anchor_state)
        start_state = env.state_of(cur) if cur is not None else None
        if start_state is None:
            start_state = anchor_state
        table, warm_from = self._table(policy, rate_rps)
        budget = self.episodes if warm_from is None else self.warm_episodes
        rng = random.Random(f"{self.seed}:{float(rate_rps)!r}:{table.episodes}")
        start = self._starts(problem, env, cur, rng, start_state, anchor_state)
        log = EpisodeLog() if self.record_episodes else None
        stop = None
        if self.converge_tol is not None and (warm_from is None or not self.warm_start):
            stop = StopRule(start_state, self.converge_tol, self.converge_every, self.q_init)
        ran = train(table, env, budget, self.params, rng, start, log, stop) if budget else 0
        policy.tables[rate_rps] = table
        out, info = self._ranked(problem, env, table, start_state, k)
        info.update({
            "episodes": ran,
            "episodes_total": table.episodes,
            "warm_start_rate_rps": warm_from,
            "epsilon": table.epsilon,
            "states": len(table.q),
            "visited_states": len(env.visited),
        })
        if log is not None:
            info["episode_returns"] = list(log.returns)
            info["episode_steps"] = list(log.steps)
            info["episode_violations"] = list(log.violations)
        return out, info

    def _table(self, policy: Policy, rate_rps: float) -> tuple[QTable, float | None]:
        """The table to train at ``rate_rps`` and the rate it continues from (None: a new one).

        The same rate continues its own table; with ``warm_start`` another rate starts
        from a copy of the table of the nearest rate decided before.
        """
        prior = policy.tables.get(rate_rps)
        if prior is not None:
            table, warm_from = prior, rate_rps
        else:
            near = policy.nearest(rate_rps) if self.warm_start else None
            if near is None:
                params = self.params
                return QTable(policy.layout.n_actions, rate_rps, 0, params.epsilon, self.q_init), None
            table, warm_from = near.copy(), near.rate_rps
            table.rate_rps = rate_rps
        if self.warm_epsilon is not None:
            table.epsilon = self.warm_epsilon
            table.schedule_episode = 0
        return table, warm_from

    def _starts(self, problem: Problem, env: PipelineEnv, cur: Configuration | None, rng: random.Random,
                start_state: State, anchor_state: State) -> Callable[[int], State]:
        """Where episode ``i`` starts (see the module docstring)."""
        feasible_alone = [
            [env.option_state(si, o) for o in opts] for si, opts in enumerate(problem.options(env.rate_rps, cur))
        ]
        valid_local = [[li for li, o in enumerate(opts) if o is not None] for opts in env.options]
        current_share = self.current_start_fraction
        random_share = current_share + (1 - current_share) * self.random_start_fraction

        def start(i: int) -> State:
            if i == 0:
                return start_state
            if i == 1:
                return anchor_state
            u = rng.random()
            if u < current_share:
                return start_state
            if u < random_share:
                return tuple(rng.choice(v) for v in valid_local)
            return tuple(rng.choice(f) for f in feasible_alone)

        return start

    def _ranked(self, problem: Problem, env: PipelineEnv, table: QTable, start_state: State,
                k: int) -> tuple[list[Evaluation], dict[str, Any]]:
        """The ``k`` candidates, the policy's choice first (or the best visited states)."""
        chosen = self._policy_state(table, env, start_state)
        source = "policy" if chosen is not None else "fallback"
        visited = sorted(
            ((obj, s) for s, (_r, obj, ok) in env.visited.items() if ok),
            key=lambda t: -t[0],
        )
        if self.select == "best-visited":
            ranked = [s for _o, s in visited]
            source = "best-visited"
        else:
            ranked = ([chosen] if chosen is not None else []) + [s for _o, s in visited if s != chosen]
        out = [problem.evaluate_options(env.configuration(s), env.rate_rps) for s in ranked[:k]]
        assert all(e.feasible for e in out)
        return out, {"source": source, "best_visited_objective": visited[0][0] if visited else None}

    def optimize(
        self,
        problem: Problem,
        rate_rps: float,
        current: Configuration | None = None,
        k: int | None = None,
    ) -> Decision:
        """Decide (timed), then write the Q-tables when ``save`` is set (not timed)."""
        decision = super().optimize(problem, rate_rps, current, k)
        if self.save_path is not None:
            self.save_tables(self.save_path)
        return decision

    def _policy_state(self, table: QTable, env: PipelineEnv, start: State) -> State | None:
        """The best feasible state on the greedy path from ``start`` (None when there is none)."""
        best: tuple[float, State] | None = None
        for s in greedy_path(table, env, start, self.params.max_steps):
            _r, obj, ok = env.evaluate(s)
            if ok and (best is None or obj > best[0]):
                best = (obj, s)
        return best[1] if best else None

    # ------------------------------------------------------------------ files

    def save_tables(self, path: str | Path) -> None:
        """Write every policy's Q-tables to ``path`` (JSON, format version 1), atomically."""
        write_tables(Path(path), self._policies)

    def load_tables(self, path: str | Path) -> None:
        """Read Q-tables written by :meth:`save_tables`; they are used from the next decision on.

        Raises :class:`~ipa_ext.errors.InputError` (one line, naming the file) for a missing,
        corrupt or unsupported file.
        """
        path = Path(path)
        self._loaded = (path, read_tables(path))
        self._policies = []
