"""The MDP of one problem at one predicted rate: transitions, valid actions and cached rewards
(the objective, or the penalty for a state that breaks a constraint)."""

from __future__ import annotations

from typing import Mapping, Sequence

from ipa_ext.model import Configuration, StageConfig
from ipa_ext.problem import Option, Problem, replicas_needed

from .algorithm import STAY, State
from .encoding import Layout, nearest


class PipelineEnv:
    """The MDP of one problem at one predicted rate: transitions, masks and cached rewards."""

    def __init__(self, problem: Problem, layout: Layout, rate_rps: float,
                 current: Configuration | None, penalty: float) -> None:
        self.problem = problem
        self.layout = layout
        self.rate_rps = rate_rps
        self.penalty = penalty
        cur = problem.resolve_current(current)
        self.options: list[list[Option | None]] = []
        for si, ax in enumerate(layout.stages):
            opts: list[Option | None] = []
            stage = problem.pipeline.stages[si]
            for v, c, b, d in layout.local_states[si]:
                variant, cpu, batch = ax.variants[v], ax.cpus[v][c], ax.batches[v][c][b]
                if layout.pinned:
                    assert cur is not None
                    n = cur[si].replicas
                else:
                    n = replicas_needed(rate_rps, stage.profiles[(variant, cpu, batch)].throughput_rps) + d
                opts.append(problem.make_option(si, variant, cpu, batch, n, rate_rps) if n >= 1 else None)
            self.options.append(opts)
        self.local_valid: list[list[list[int]]] = []
        base = 1
        self._base: list[int] = []
        for si in range(len(layout.stages)):
            opts = self.options[si]
            self.local_valid.append([
                [base + j for j, n in enumerate(row) if n >= 0 and opts[n] is not None]
                for row in layout.local_next[si]
            ])
            self._base.append(base)
            base += len(layout.local_actions[si])
        self._actions: dict[State, list[int]] = {}
        self._rewards: dict[State, tuple[float, float, bool]] = {}

    def actions(self, state: State) -> list[int]:
        acts = self._actions.get(state)
        if acts is None:
            acts = [STAY]
            for si, li in enumerate(state):
                acts.extend(self.local_valid[si][li])
            self._actions[state] = acts
        return acts

    def step(self, state: State, action: int) -> State:
        if action == STAY:
            return state
        si, j = self.layout.action_map[action]
        nxt = self.layout.local_next[si][state[si]][j]
        return state[:si] + (nxt,) + state[si + 1:]

    def evaluate(self, state: State) -> tuple[float, float, bool]:
        """(reward, objective, feasible) of a state, cached; every call marks it visited."""
        got = self._rewards.get(state)
        if got is None:
            opts = [self.options[si][li] for si, li in enumerate(state)]
            feasible = not self.problem.violations(opts, self.rate_rps)  # type: ignore[arg-type]
            obj = self.problem.objective_value(opts, self.rate_rps)  # type: ignore[arg-type]
            got = (obj if feasible else self.penalty, obj, feasible)
            self._rewards[state] = got
        return got

    def reward(self, state: State) -> float:
        return self.evaluate(state)[0]

    @property
    def visited(self) -> Mapping[State, tuple[float, float, bool]]:
        return self._rewards

    def valid_state(self, state: State) -> bool:
        return all(self.options[si][li] is not None for si, li in enumerate(state))

    def state_of(self, config: Sequence[StageConfig]) -> State | None:
        """The nearest state of a configuration (None when a variant is not in the layout)."""
        out = []
        lo, hi = self.layout.offsets
        for si, (ax, sc) in enumerate(zip(self.layout.stages, config)):
            if sc.variant not in ax.variants:
                return None
            v = ax.variants.index(sc.variant)
            c = nearest(ax.cpus[v], sc.cpu)
            b = nearest(ax.batches[v][c], sc.batch)
            d = 0
            if not self.layout.pinned:
                prof = self.problem.pipeline.stages[si].profiles[(ax.variants[v], ax.cpus[v][c], ax.batches[v][c][b])]
                d = min(hi, max(lo, sc.replicas - replicas_needed(self.rate_rps, prof.throughput_rps)))
                while d < hi and self.options[si][self.layout.local_index[si][(v, c, b, d)]] is None:
                    d += 1
            out.append(self.layout.local_index[si][(v, c, b, d)])
        state = tuple(out)
        return state if self.valid_state(state) else None

    def option_state(self, si: int, opt: Option) -> int:
        ax = self.layout.stages[si]
        v = ax.variants.index(opt.variant)
        c = ax.cpus[v].index(opt.cpu)
        b = ax.batches[v][c].index(opt.batch)
        return self.layout.local_index[si][(v, c, b, 0)]

    def configuration(self, state: State) -> list[Option]:
        return [self.options[si][li] for si, li in enumerate(state)]  # type: ignore[misc]
