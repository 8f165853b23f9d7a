"""The ``q-learning`` optimizer: the paper's Algorithm 1 (tabular Q-learning with
ε-greedy exploration) deciding IPA's problem at each step of the adapter loop.

Algorithm 1, as listed
----------------------
Q(s,a) starts at 0. Each episode starts in a random state and takes at most ``max_steps``
steps (T). A step takes the greedy action ``argmax_a Q(s,a)`` when a uniform draw exceeds
ε (ties broken at random), else a uniformly random valid action; observes the next state
and its reward, ``penalty`` (-1000) when that state violates a constraint, else the
objective; updates ``Q(s,a) += alpha_q*(r + gamma_q*max_a' Q(s',a') - Q(s,a))``; and then
decays ``ε = max(epsilon_min, ε*exp(-kappa*episode))`` (line 19 sits inside the step loop,
so ε decays every step; episodes count from 1). Defaults are the paper's: alpha_q 0.1,
gamma_q 0.9, epsilon 1.0, epsilon_min 0.01, kappa 0.001. The termination condition
(lines 20-22) is the step limit; ``stay_ends_episode: true`` also ends an episode when
the agent chooses ``stay``. ``stay`` is a self-loop whose update bootstraps like any
other, so a state's value is that of staying there for good, ``r/(1-gamma_q)``.

Line 1's ``Q ← 0`` is optimistic while rewards are negative (IPA's objective usually is:
cores outweigh accuracy), so untried actions look best and greedy steps explore. With a
positive objective it is pessimistic and exploration rests on ε alone; ``q_init`` sets
another start value (above ``best objective/(1-gamma_q)``, best with ``alpha_q: 1``, which
suits these deterministic rewards; with 0.1 an optimistic start takes long to wear off).

Reward
------
``r(s') = Problem.objective_value(s')``, i.e. ``alpha*accuracy - beta*cores - gamma*batch``
plus every other weighted objective: ``- delta*power_w`` when ``weights.delta`` is set (the
energy-weighted reward), ``- epsilon*carbon``. It is ``penalty`` when
``Problem.violations(s')`` is not empty: the latency SLA with the queueing term,
throughput at the predicted rate, ``scaling_cap``, ``batching_cap`` and ``power_cap_w``,
the very checks every exact optimizer uses.

State encoding (kept small by design)
-------------------------------------
A state holds one local state ``(v, c, b, d)`` per stage:

* ``v``: the variant, in accuracy order (ties by name); ``baseline_mode: scale`` leaves
  only the current variant;
* ``c``: the CPU allocation among those the allocation mode gives the variant (one under
  ``fix`` and ``base``, every profiled one under ``variable``);
* ``b``: the batch among the profiled ones of (variant, cpu) up to ``batching_cap``;
* ``d``: the replicas *relative to the fewest that sustain the predicted rate*,
  ``replicas = max(1, ceil(rate/throughput)) + d`` with ``d`` in ``replica_offsets``
  (default 0..1; a negative low end adds under-provisioned states, always penalised).
  Under ``baseline_mode: switch`` replicas are pinned to the current ones and ``d`` is 0.

The encoding does not depend on the rate, so a table learned at one rate is a warm start
at another, and a variant switch keeps the stage's capacity instead of walking through
infeasible replica counts. A state whose replicas would fall below 1 is never entered.

Actions are bounded single steps: per stage ``variant±1``, ``cpu±1`` (only when some
variant has several CPU allocations), ``batch±1`` and ``replicas±1`` (not when pinned),
plus one global ``stay``. A switch keeps the CPU and batch values where the new variant
has them, else takes the nearest profiled ones. Moves off the grid are masked out.
Tables are sparse dicts of visited states: the video example has 40 local states per
stage, 1,600 states by at most 13 actions.

Decisions
---------
Each decision first decides feasibility exactly: a Pareto search over per-stage options
(latency, and power when a power cap is set) yields a feasible *anchor* configuration or
proves that none exists (then no candidate is returned and nothing is trained). It then
trains at the predicted rate, on a new table (at most ``episodes`` episodes) or, when the
same rate was decided before, on that rate's table (at most ``warm_episodes`` more).
With ``warm_start: true`` a new rate starts instead from a copy of the table of the
nearest rate decided before (``warm_episodes``; ``warm_epsilon`` optionally restarts the
ε schedule at that value: with the episode count in line 19's exponent carried on, ε
would stay at ``epsilon_min``). The first episode starts at the current configuration
and the second at the anchor; later ones at the current configuration with probability
``current_start_fraction``, else at a uniformly random state (``random_start_fraction``
of the rest) or at a random combination of per-stage options that meet throughput, the
caps and the SLA on their own.

Stopping. Every ``converge_every`` episodes training checks the greedy path from the
current configuration and stops once it is *certified*: it ends in ``stay``, every
action on it has been tried, and the Bellman residuals along it bound the gap between
``max_a Q(start, a)`` and the path's actual return by ``converge_tol*max(|Q|, 1)``.
Q-learning from ``Q ← q_init`` keeps every Q value at or above its optimum while no
reward exceeds ``(1-gamma_q)*q_init`` (here: every objective ≤ 0 with ``q_init`` 0), so
no other path can then be better by more than that bound. The check is off when a larger
reward has been seen, for a table decided before when ``warm_start`` is on (it may hold
values learned at another rate, which carry no such bound) and with ``converge_tol:
null``; training then runs its whole budget.
Stopping only truncates the run: the episodes that do run are those of a full run.

Then the greedy policy is followed from the current configuration (its nearest state)
until it chooses ``stay``, revisits a state or has taken ``max_steps`` steps; actions
never tried are not taken. The best feasible state on that path is the decision
(``info.source: policy``). When the path holds none, the best feasible state visited
while training is (``fallback``); the anchor was visited, so a feasible configuration is
returned whenever one exists. With ``k > 1`` the other candidates are the best distinct
feasible states visited, by objective. ``select: best-visited`` returns the best visited
states instead of the policy's choice. The decision time covers training and rollout;
writing the ``save`` file comes after it.

Randomness comes from ``random.Random`` seeded with ``seed``, the rate and the episodes
the table has seen: the same seed, config, rate and history give the same decision.

File format (version 1)
-----------------------
``save: PATH`` writes every table after each decision (atomically); ``load: PATH`` reads
them before the first. Both are JSON::

    {"format": "ipa-ext-q-table", "version": 1,
     "policies": [{"layout": {...}, "reward": {...}, "actions": ["stay", "crop:variant-1", ...],
                   "tables": [{"rate_rps": 20.0, "episodes": 300, "epsilon": 0.01,
                               "schedule_episode": 300, "q_init": 0.0,
                               "q": {"3,0,1,0;2,0,2,1": [value or null per action]}}]}]}

``layout`` names every axis (stages; variants in order; CPUs per variant; batches per
variant and CPU; replica offsets; pinned replicas), so a state key, ``v,c,b,d`` per stage
joined by ``;``, reads on its own. ``reward`` holds what rewards depend on (non-zero
weights, penalty, SLA, accuracy method and normalisation, caps, power cap, carbon
intensity, gamma_q). Per table, ``episodes`` counts all episodes trained,
``schedule_episode`` those since the ε schedule started, ``q_init`` is the value of
untried entries and ``null`` marks an action never tried. A missing or corrupt file, a
format version other than 1, or tables trained for another layout or reward are refused
with a one-line error naming the file.
"""

from __future__ import annotations

import json
import math
import os
import random
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Protocol, Sequence

from ipa_ext import hookimpl
from ipa_ext.config.numeric import MODEL_LIMIT, NumberError, as_number, option
from ipa_ext.config.show import shown
from ipa_ext.errors import ConfigError, InputError
from ipa_ext.model import Configuration, StageConfig
from ipa_ext.optimizers import Decision, Optimizer
from ipa_ext.problem.problem import Evaluation, Option, Problem, replicas_needed, within

FILE_FORMAT = "ipa-ext-q-table"
FILE_VERSION = 1
STAY = 0
"""Index of the global ``stay`` action."""

State = tuple[int, ...]


# --------------------------------------------------------------------------- Algorithm 1


def q_update(q_sa: float, reward: float, next_max: float, alpha_q: float, gamma_q: float) -> float:
    """Line 17: ``Q(s,a) + alpha_q*(r + gamma_q*max_a' Q(s',a') - Q(s,a))``."""
    return q_sa + alpha_q * (reward + gamma_q * next_max - q_sa)


def next_epsilon(epsilon: float, episode: int, kappa: float, epsilon_min: float) -> float:
    """Line 19: ``max(epsilon_min, epsilon*exp(-kappa*episode))`` (episode counted from 1)."""
    return max(epsilon_min, epsilon * math.exp(-kappa * episode))


class Environment(Protocol):
    """What the learner needs from the pipeline (or from a toy MDP in tests)."""

    def actions(self, state: State) -> Sequence[int]:
        """Valid actions in ``state``; ``STAY`` (0) means "stop here" when present."""

    def step(self, state: State, action: int) -> State:
        """The state an action leads to."""

    def reward(self, state: State) -> float:
        """The reward of arriving in ``state`` (the penalty when it violates a constraint)."""


@dataclass
class QTable:
    """A sparse Q-table: per visited state a list of Q values (one per action of the layout)
    and a bitmask of the actions tried there. Entries start at ``q_init`` (line 1: 0)."""

    n_actions: int
    rate_rps: float = 0.0
    episodes: int = 0
    epsilon: float = 1.0
    q_init: float = 0.0
    schedule_episode: int = 0
    """Episodes since the ε schedule (re)started: the ``episode`` of line 19."""
    q: dict[State, list[float]] = field(default_factory=dict)
    tried: dict[State, int] = field(default_factory=dict)

    def row(self, state: State) -> list[float]:
        r = self.q.get(state)
        if r is None:
            r = self.q[state] = [self.q_init] * self.n_actions
            self.tried[state] = 0
        return r

    def value(self, state: State, action: int) -> float:
        r = self.q.get(state)
        return r[action] if r is not None else self.q_init

    def greedy(self, state: State, actions: Sequence[int]) -> int | None:
        """``argmax_a Q(state, a)`` over the tried ``actions`` (lowest index on ties; None if none tried)."""
        row = self.q.get(state)
        mask = self.tried.get(state, 0)
        tried = [a for a in actions if mask >> a & 1]
        if row is None or not tried:
            return None
        best = max(row[a] for a in tried)
        return next(a for a in tried if row[a] == best)

    def copy(self) -> QTable:
        return QTable(self.n_actions, self.rate_rps, self.episodes, self.epsilon, self.q_init,
                      self.schedule_episode, {s: list(v) for s, v in self.q.items()}, dict(self.tried))


@dataclass(frozen=True)
class LearningParams:
    """Algorithm 1's parameters (see the module docstring)."""

    alpha_q: float = 0.1
    gamma_q: float = 0.9
    epsilon: float = 1.0
    epsilon_min: float = 0.01
    kappa: float = 0.001
    max_steps: int = 40
    penalty: float = -1000.0
    stay_ends_episode: bool = True


@dataclass
class EpisodeLog:
    """Per-episode facts for learning curves."""

    returns: list[float] = field(default_factory=list)
    steps: list[int] = field(default_factory=list)
    violations: list[int] = field(default_factory=list)


class _Graph:
    """The part of an environment seen so far, interned as integers for a fast inner loop.

    States get ids on first sight. Per id it keeps the valid actions, the next-state id
    of each action (resolved on first use), the reward of arriving there, and a compact
    Q row and tried-mask aligned with the valid actions; :meth:`write_back` copies those
    into the :class:`QTable`'s full rows.
    """

    def __init__(self, env: Environment, table: QTable) -> None:
        self.env = env
        self.table = table
        self.ids: dict[State, int] = {}
        self.states: list[State] = []
        self.acts: list[list[int]] = []
        self.nxt: list[list[int]] = []
        self.rew: list[float] = []
        self.rows: list[list[float]] = []
        self.tried: list[int] = []
        self.top: list[float] = []
        """``max(rows[i])``, kept up to date by the training loop."""

    def intern(self, state: State) -> int:
        i = self.ids.get(state)
        if i is None:
            i = self.ids[state] = len(self.states)
            self.states.append(state)
            acts = list(self.env.actions(state))
            if not acts:
                raise ValueError(f"state {state} has no action")
            self.acts.append(acts)
            self.nxt.append([-1] * len(acts))
            self.rew.append(self.env.reward(state))
            full = self.table.q.get(state)
            mask = self.table.tried.get(state, 0)
            self.rows.append([full[a] for a in acts] if full is not None else [self.table.q_init] * len(acts))
            self.tried.append(sum(1 << k for k, a in enumerate(acts) if mask >> a & 1))
            self.top.append(max(self.rows[-1]))
        return i

    def follow(self, i: int, k: int) -> int:
        """The id of the state action ``acts[i][k]`` leads to."""
        j = self.nxt[i][k]
        if j < 0:
            j = self.nxt[i][k] = self.intern(self.env.step(self.states[i], self.acts[i][k]))
        return j

    def certified(self, stop: StopRule, params: LearningParams) -> bool:
        """Whether the greedy path from ``stop.start`` is certified to within ``stop.tol``.

        The path takes the best action by the current rows (lowest index on ties) and must
        end in ``stay`` within ``max_steps`` steps, every action on it tried. Along it,
        ``Q(s,a)`` differs from the return of actually following the path by at most
        ``err = sum_t gamma^t |delta_t|`` (the last term, of the ``stay`` self-loop, divided
        by ``1-gamma``), ``delta_t`` being the Bellman residual ``r(s') + gamma*max Q(s') - Q(s,a)``.
        While every Q value is at least its optimum (see :class:`StopRule`), the path's
        return is then within ``err`` of the best return from the start. Certified when
        ``err <= tol*max(|Q(start, a_0)|, 1)``.
        """
        g_q = params.gamma_q
        if max(self.rew) > (1 - g_q) * stop.q_init:
            return False
        i = self.ids.get(stop.start)
        err, disc, q0 = 0.0, 1.0, None
        seen = set()
        while i is not None and i not in seen and len(seen) < params.max_steps:
            seen.add(i)
            row = self.rows[i]
            best = self.top[i]
            k = row.index(best)
            j = self.nxt[i][k]
            if not self.tried[i] >> k & 1 or j < 0:
                return False
            if q0 is None:
                q0 = best
            delta = abs(self.rew[j] + g_q * self.top[j] - best)
            if self.acts[i][k] == STAY:
                return err + disc * delta / (1 - g_q) <= stop.tol * max(abs(q0), 1.0)
            err += disc * delta
            disc *= g_q
            i = j
        return False

    def write_back(self) -> None:
        """Copy the compact rows and tried masks into the table."""
        table = self.table
        for i, st in enumerate(self.states):
            full = table.row(st)
            mask = table.tried.get(st, 0)
            row, t = self.rows[i], self.tried[i]
            for k, a in enumerate(self.acts[i]):
                full[a] = row[k]
                if t >> k & 1:
                    mask |= 1 << a
            table.tried[st] = mask


@dataclass(frozen=True)
class StopRule:
    """When :func:`train` may stop before its episode budget: every ``every`` episodes it
    checks whether the greedy path from ``start`` is certified to within ``tol``
    (:meth:`_Graph.certified`). The certificate relies on every Q value being at least
    its optimum, which holds for a table trained from scratch while no reward exceeds
    ``(1-gamma_q)*q_init``; a larger reward seen disables the check."""

    start: State
    tol: float
    every: int = 250
    q_init: float = 0.0


def train(
    table: QTable,
    env: Environment,
    episodes: int,
    params: LearningParams,
    rng: random.Random,
    start: Callable[[int], State],
    log: EpisodeLog | None = None,
    stop: StopRule | None = None,
) -> int:
    """Run Algorithm 1 for at most ``episodes`` episodes on ``table``; returns the episodes run.

    ``start(i)`` gives the i-th episode's initial state. ε starts at ``table.epsilon``
    (a new table holds ``params.epsilon``) and is carried there between calls; the episode
    counter of its decay continues from ``table.schedule_episode``. With ``stop``, training
    ends early once the greedy path from ``stop.start`` is certified; stopping only
    truncates the run, so the episodes that do run are the same as without it.
    """
    g = _Graph(env, table)
    run = 0
    while run < episodes:
        n = episodes - run if stop is None else min(stop.every, episodes - run)
        run += _episodes(g, run, n, params, rng, start, log)
        if stop is not None and g.certified(stop, params):
            break
    g.write_back()
    return run


def _episodes(
    g: _Graph,
    first: int,
    episodes: int,
    params: LearningParams,
    rng: random.Random,
    start: Callable[[int], State],
    log: EpisodeLog | None,
) -> int:
    """Episodes ``first .. first+episodes-1`` of :func:`train` on ``g``'s compact rows.

    Each step is lines 5-19 of the listing: ε-greedy choice (ties at random), the
    transition, the reward of the next state, :func:`q_update` and :func:`next_epsilon`
    (both inlined here for speed; tests hold the loop to them).
    """
    table = g.table
    a_q, g_q, kappa, e_min = params.alpha_q, params.gamma_q, params.kappa, params.epsilon_min
    penalty, max_steps, stay_ends = params.penalty, params.max_steps, params.stay_ends_episode
    acts_of, rows, rew, nxt_of, tried_of, top = g.acts, g.rows, g.rew, g.nxt, g.tried, g.top
    random_, randrange, choice = rng.random, rng.randrange, rng.choice
    eps = table.epsilon
    for i in range(first, first + episodes):
        episode = table.schedule_episode + 1
        s = g.intern(start(i))
        total = 0.0
        bad = 0
        steps = 0
        decay = math.exp(-kappa * episode)
        for _ in range(max_steps):
            row = rows[s]
            if random_() > eps:
                best = top[s]
                if row.count(best) == 1:
                    k = row.index(best)
                else:
                    k = choice([j for j, v in enumerate(row) if v == best])
            else:
                k = randrange(len(row))
            s2 = nxt_of[s][k]
            if s2 < 0:
                s2 = g.follow(s, k)
            r = rew[s2]
            q_sa = row[k]
            q_new = row[k] = q_sa + a_q * (r + g_q * top[s2] - q_sa)  # q_update, inlined
            best = top[s]
            if q_new > best:
                top[s] = q_new
            elif q_sa == best and q_new < best:
                top[s] = max(row)
            t = tried_of[s]
            if not t >> k & 1:
                tried_of[s] = t | 1 << k
            total += r
            if r == penalty:
                bad += 1
            steps += 1
            if eps > e_min:
                eps = max(e_min, eps * decay)  # next_epsilon, inlined
            if stay_ends and acts_of[s][k] == STAY:
                break
            s = s2
        table.schedule_episode = episode
        table.episodes += 1
        table.epsilon = eps
        if log is not None:
            log.returns.append(total)
            log.steps.append(steps)
            log.violations.append(bad)
    return episodes


def greedy_path(table: QTable, env: Environment, start: State, max_steps: int) -> list[State]:
    """Follow ``argmax_a Q`` over tried actions from ``start`` until ``stay``, a cycle or the step limit."""
    path = [start]
    seen = {start}
    s = start
    for _ in range(max_steps):
        a = table.greedy(s, env.actions(s))
        if a is None or a == STAY:
            break
        s = env.step(s, a)
        if s in seen:
            break
        seen.add(s)
        path.append(s)
    return path


# --------------------------------------------------------------------------- encoding


@dataclass(frozen=True)
class StageAxes:
    """One stage's axes: variants in accuracy order, CPUs per variant, batches per (variant, cpu)."""

    name: str
    variants: tuple[str, ...]
    cpus: tuple[tuple[float, ...], ...]
    batches: tuple[tuple[tuple[int, ...], ...], ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "variants": [
                {"name": v, "cpus": [{"cpu": c, "batches": list(self.batches[i][j])}
                                     for j, c in enumerate(self.cpus[i])]}
                for i, v in enumerate(self.variants)
            ],
        }


LOCAL_ACTIONS = (("variant", -1), ("variant", 1), ("cpu", -1), ("cpu", 1),
                 ("batch", -1), ("batch", 1), ("replicas", -1), ("replicas", 1))


def _nearest(values: Sequence[float], target: float) -> int:
    return min(range(len(values)), key=lambda i: (abs(values[i] - target), values[i]))


class Layout:
    """The rate-independent state and action spaces of a problem (see module docstring)."""

    def __init__(self, stages: Sequence[StageAxes], offsets: tuple[int, int], pinned: bool) -> None:
        self.stages = tuple(stages)
        self.offsets = (0, 0) if pinned else offsets
        self.pinned = pinned
        lo, hi = self.offsets
        self.local_states: list[list[tuple[int, int, int, int]]] = []
        self.local_index: list[dict[tuple[int, int, int, int], int]] = []
        self.local_actions: list[list[tuple[str, int]]] = []
        self.local_next: list[list[list[int]]] = []
        self.action_names = ["stay"]
        self.action_map: list[tuple[int, int]] = [(-1, -1)]
        for si, ax in enumerate(self.stages):
            states = [(v, c, b, d)
                      for v in range(len(ax.variants))
                      for c in range(len(ax.cpus[v]))
                      for b in range(len(ax.batches[v][c]))
                      for d in range(lo, hi + 1)]
            index = {t: i for i, t in enumerate(states)}
            dims = {
                "variant": len(ax.variants) > 1,
                "cpu": any(len(c) > 1 for c in ax.cpus),
                "batch": any(len(b) > 1 for bs in ax.batches for b in bs),
                "replicas": hi > lo,
            }
            acts = [a for a in LOCAL_ACTIONS if dims[a[0]]]
            nxt = [[self._move(ax, t, a, index) for a in acts] for t in states]
            self.local_states.append(states)
            self.local_index.append(index)
            self.local_actions.append(acts)
            self.local_next.append(nxt)
            for j, (dim, step) in enumerate(acts):
                self.action_names.append(f"{ax.name}:{dim}{step:+d}")
                self.action_map.append((si, j))

    def _move(self, ax: StageAxes, t: tuple[int, int, int, int], act: tuple[str, int],
              index: Mapping[tuple[int, int, int, int], int]) -> int:
        v, c, b, d = t
        dim, step = act
        if dim == "variant":
            v2 = v + step
            if not 0 <= v2 < len(ax.variants):
                return -1
            c2 = _nearest(ax.cpus[v2], ax.cpus[v][c])
            b2 = _nearest(ax.batches[v2][c2], ax.batches[v][c][b])
            t2 = (v2, c2, b2, d)
        elif dim == "cpu":
            c2 = c + step
            if not 0 <= c2 < len(ax.cpus[v]):
                return -1
            t2 = (v, c2, _nearest(ax.batches[v][c2], ax.batches[v][c][b]), d)
        elif dim == "batch":
            t2 = (v, c, b + step, d)
        else:
            t2 = (v, c, b, d + step)
        return index.get(t2, -1)

    @property
    def n_actions(self) -> int:
        return len(self.action_names)

    def as_dict(self) -> dict[str, Any]:
        return {
            "stages": [ax.as_dict() for ax in self.stages],
            "replica_offsets": list(self.offsets),
            "pinned_replicas": self.pinned,
        }

    def state_key(self, state: State) -> str:
        return ";".join(",".join(str(x) for x in self.local_states[i][li]) for i, li in enumerate(state))

    def parse_key(self, key: str) -> State:
        """The state of a file key; raises ValueError when it is not in this layout."""
        parts = key.split(";")
        if len(parts) != len(self.stages):
            raise ValueError(f"expected {len(self.stages)} stage(s)")
        out = []
        for i, part in enumerate(parts):
            t = tuple(int(x) for x in part.split(","))
            if len(t) != 4 or t not in self.local_index[i]:
                raise ValueError(f"stage {i}: {part!r} is not a state of this layout")
            out.append(self.local_index[i][t])  # type: ignore[index]
        return tuple(out)


def build_layout(problem: Problem, current: Configuration | None, offsets: tuple[int, int]) -> Layout:
    """The layout of ``problem``'s option space (``stage_choices``) with replica offsets."""
    stages = []
    for i, stage in enumerate(problem.pipeline.stages):
        cur = current[i] if current else None
        choices = problem.stage_choices(i, cur)
        acc = {v.name: v.accuracy for v in stage.variants}
        by_variant: dict[str, dict[float, list[int]]] = {}
        for v, c, b in choices:
            by_variant.setdefault(v, {}).setdefault(c, []).append(b)
        names = sorted(by_variant, key=lambda v: (acc[v], v))
        cpus = tuple(tuple(sorted(by_variant[v])) for v in names)
        batches = tuple(tuple(tuple(sorted(by_variant[v][c])) for c in cpus[k]) for k, v in enumerate(names))
        stages.append(StageAxes(stage.name, tuple(names), cpus, batches))
    return Layout(stages, offsets, problem.settings.baseline_mode == "switch")


# --------------------------------------------------------------------------- the environment at a rate


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
            c = _nearest(ax.cpus[v], sc.cpu)
            b = _nearest(ax.batches[v][c], sc.batch)
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


def feasibility_anchor(problem: Problem, rate_rps: float, current: Configuration | None) -> list[Option] | None:
    """A feasible configuration, or None when provably none exists.

    Every constraint but the SLA and the power cap is per stage and met by
    ``Problem.stage_options``; the SLA and the cap are sums over stages. A Pareto search
    over (latency, power) partial sums, pruned by dominance and by the bounds, is exact.
    Without a power cap it keeps the fastest partial configuration only. Among the
    feasible points found, the one with the best objective is returned.
    """
    per_stage = problem.options(rate_rps, current)
    if any(not o for o in per_stage):
        return None
    cap = problem.settings.power_cap_w
    use_power = cap is not None and problem.pipeline.has_power
    sla = problem.sla_s

    def power(o: Option) -> float:
        return o.profile.power_at(rate_rps, o.replicas) if use_power else 0.0

    n = len(per_stage)
    rest_lat = [0.0] * (n + 1)
    rest_pow = [0.0] * (n + 1)
    for i in range(n - 1, -1, -1):
        rest_lat[i] = rest_lat[i + 1] + min(o.latency_s for o in per_stage[i])
        rest_pow[i] = rest_pow[i + 1] + min(power(o) for o in per_stage[i])
    frontier: list[tuple[float, float, tuple[Option, ...]]] = [(0.0, 0.0, ())]
    for i, opts in enumerate(per_stage):
        grown = []
        for lat, pw, path in frontier:
            for o in opts:
                l2, p2 = lat + o.latency_s, pw + power(o)
                if i + 1 < n and (not within(l2 + rest_lat[i + 1], sla)
                                  or (use_power and not within(p2 + rest_pow[i + 1], cap))):  # type: ignore[arg-type]
                    continue
                grown.append((l2, p2, path + (o,)))
        grown.sort(key=lambda t: (t[0], t[1]))
        frontier = []
        best_pow = math.inf
        for t in grown:
            if t[1] < best_pow:
                frontier.append(t)
                best_pow = t[1]
        if not frontier:
            return None
    best: tuple[float, list[Option]] | None = None
    for _lat, _pw, path in frontier:
        opts = list(path)
        if problem.violations(opts, rate_rps):
            continue
        obj = problem.objective_value(opts, rate_rps)
        if best is None or obj > best[0]:
            best = (obj, opts)
    return best[1] if best else None


# --------------------------------------------------------------------------- the optimizer


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


@dataclass
class Policy:
    """The Q-tables of one layout and reward, by rate."""

    layout: Layout
    layout_dict: dict[str, Any]
    reward: dict[str, Any]
    tables: dict[float, QTable] = field(default_factory=dict)

    def nearest(self, rate_rps: float) -> QTable | None:
        if not self.tables:
            return None
        r = min(self.tables, key=lambda x: (abs(x - rate_rps), x))
        return self.tables[r]


def _number(name: str, value: Any, lo: float | None = None, hi: float | None = None,
            integer: bool = False) -> Any:
    """An option's value checked to be a (whole) number within bounds (at most MODEL_LIMIT in
    magnitude, so that rewards and Q-values never overflow); ValueError otherwise."""
    return option(name, value, minimum=-MODEL_LIMIT if lo is None else lo,
                  maximum=MODEL_LIMIT if hi is None else hi, integer=integer)


def _is_number(value: Any) -> bool:
    """A finite number of magnitude at most 1e200 (what a saved table's numbers must be: updates
    on larger ones could overflow)."""
    try:
        as_number(value, minimum=-1e200, maximum=1e200)
    except NumberError:
        return False
    return True


def _flag(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be true or false, got {value!r}")
    return value


class QLearningOptimizer(Optimizer):
    """Tabular Q-learning (Algorithm 1) as an ipa-ext optimizer (see module docstring)."""

    name = "q-learning"

    def __init__(
        self,
        alpha_q: float = 0.1,
        gamma_q: float = 0.9,
        epsilon: float = 1.0,
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
    ) -> None:
        self.params = LearningParams(
            alpha_q=_number("alpha_q", alpha_q, 0, 1),
            gamma_q=_number("gamma_q", gamma_q, 0, 1),
            epsilon=_number("epsilon", epsilon, 0, 1),
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
        path = Path(path)
        doc = {
            "format": FILE_FORMAT,
            "version": FILE_VERSION,
            "policies": [
                {
                    "layout": p.layout_dict,
                    "reward": p.reward,
                    "actions": p.layout.action_names,
                    "tables": [
                        {
                            "rate_rps": t.rate_rps,
                            "episodes": t.episodes,
                            "epsilon": t.epsilon,
                            "schedule_episode": t.schedule_episode,
                            "q_init": t.q_init,
                            "q": {
                                p.layout.state_key(s): [
                                    v if t.tried.get(s, 0) >> a & 1 else None for a, v in enumerate(row)
                                ]
                                for s, row in t.q.items()
                            },
                        }
                        for _r, t in sorted(p.tables.items())
                    ],
                }
                for p in self._policies
            ],
        }
        try:
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent if str(path.parent) else ".")
        except OSError as exc:
            raise InputError(f"cannot write Q-tables: {exc.strerror or exc}", path=path) from None
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(doc, fh, separators=(",", ":"))
            os.replace(tmp, path)
        except OSError as exc:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise InputError(f"cannot write Q-tables: {exc.strerror or exc}", path=path) from None

    def load_tables(self, path: str | Path) -> None:
        """Read Q-tables written by :meth:`save_tables`; they are used from the next decision on.

        Raises :class:`~ipa_ext.errors.InputError` (one line, naming the file) for a missing,
        corrupt or unsupported file.
        """
        path = Path(path)
        self._loaded = (path, read_tables(path))
        self._policies = []


def read_tables(path: Path) -> list[dict[str, Any]]:
    """Parse and validate a Q-table file; each policy's ``tables`` become :class:`QTable` objects."""

    def bad(where: str, msg: str) -> InputError:
        return InputError(msg, path=path, where=where or None)

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise bad("", "Q-table file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise bad("", f"cannot read Q-table file: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise bad("", f"not valid JSON (line {exc.lineno}, column {exc.colno}): {exc.msg}") from None
    if not isinstance(doc, dict) or doc.get("format") != FILE_FORMAT:
        raise bad("format", f"not an ipa-ext Q-table file (expected format {FILE_FORMAT!r})")
    version = doc.get("version")
    if version != FILE_VERSION:
        raise bad("version", f"unsupported Q-table format version {version!r} (this ipa-ext reads version {FILE_VERSION})")
    policies = doc.get("policies")
    if not isinstance(policies, list):
        raise bad("policies", "expected a list")
    out = []
    for pi, p in enumerate(policies):
        where = f"policies[{pi}]"
        if not isinstance(p, dict):
            raise bad(where, "expected a mapping")
        for key, typ in (("layout", dict), ("reward", dict), ("actions", list), ("tables", list)):
            if not isinstance(p.get(key), typ):
                raise bad(f"{where}.{key}", f"missing or not a {typ.__name__}")
        try:
            layout = _layout_from_dict(p["layout"])
        except (KeyError, TypeError, ValueError) as exc:
            raise bad(f"{where}.layout", f"malformed layout: {exc}") from None
        if layout.as_dict() != p["layout"]:
            raise bad(f"{where}.layout", "malformed layout (axes out of order or duplicated)")
        if p["actions"] != layout.action_names:
            raise bad(f"{where}.actions", "does not match the layout's actions")
        tables = []
        for ti, t in enumerate(p["tables"]):
            tw = f"{where}.tables[{ti}]"
            if not isinstance(t, dict):
                raise bad(tw, "expected a mapping")
            rate, eps, eps_n = t.get("rate_rps"), t.get("epsilon"), t.get("episodes")
            if not _is_number(rate) or rate < 0:
                raise bad(f"{tw}.rate_rps", f"expected a rate >= 0, got {shown(rate)}")
            if not _is_number(eps) or not 0 <= eps <= 1:
                raise bad(f"{tw}.epsilon", f"expected a number in 0..1, got {shown(eps)}")
            if isinstance(eps_n, bool) or not isinstance(eps_n, int) or not _is_number(eps_n) or eps_n < 0:
                raise bad(f"{tw}.episodes", f"expected a whole number >= 0, got {shown(eps_n)}")
            sched = t.get("schedule_episode")
            if isinstance(sched, bool) or not isinstance(sched, int) or not 0 <= sched <= eps_n:
                raise bad(f"{tw}.schedule_episode", f"expected a whole number from 0 to episodes, got {shown(sched)}")
            q_init = t.get("q_init")
            if not _is_number(q_init):
                raise bad(f"{tw}.q_init", f"expected a finite number, got {shown(q_init)}")
            q = t.get("q")
            if not isinstance(q, dict):
                raise bad(f"{tw}.q", "missing or not a mapping")
            table = QTable(layout.n_actions, float(rate), eps_n, float(eps), float(q_init), sched)
            for key, row in q.items():
                try:
                    state = layout.parse_key(key)
                except ValueError as exc:
                    raise bad(f"{tw}.q[{shown(key)}]", f"bad state key: {exc}") from None
                if not isinstance(row, list) or len(row) != layout.n_actions:
                    raise bad(f"{tw}.q[{shown(key)}]", f"expected a list of {layout.n_actions} values")
                vals = []
                mask = 0
                for a, v in enumerate(row):
                    if v is None:
                        vals.append(table.q_init)
                    elif not _is_number(v):
                        raise bad(f"{tw}.q[{shown(key)}][{a}]", f"expected a finite number or null, got {shown(v)}")
                    else:
                        vals.append(float(v))
                        mask |= 1 << a
                table.q[state] = vals
                table.tried[state] = mask
            tables.append(table)
        if len({t.rate_rps for t in tables}) != len(tables):
            raise bad(f"{where}.tables", "two tables for the same rate")
        out.append({"layout": p["layout"], "reward": p["reward"], "tables": tables})
    return out


def _layout_from_dict(d: Mapping[str, Any]) -> Layout:
    stages = []
    for s in d["stages"]:
        variants, cpus, batches = [], [], []
        for v in s["variants"]:
            variants.append(str(v["name"]))
            cpus.append(tuple(float(c["cpu"]) for c in v["cpus"]))
            batches.append(tuple(tuple(int(b) for b in c["batches"]) for c in v["cpus"]))
            if not cpus[-1] or any(not b for b in batches[-1]):
                raise ValueError(f"variant {variants[-1]!r} has no cpu or batch")
        if not variants:
            raise ValueError(f"stage {s['name']!r} has no variants")
        stages.append(StageAxes(str(s["name"]), tuple(variants), tuple(cpus), tuple(batches)))
    lo, hi = d["replica_offsets"]
    pinned = d["pinned_replicas"]
    if not isinstance(pinned, bool):
        raise ValueError("pinned_replicas must be true or false")
    return Layout(stages, (int(lo), int(hi)), pinned)


@hookimpl
def register_optimizers(register) -> None:
    register("q-learning", QLearningOptimizer)
