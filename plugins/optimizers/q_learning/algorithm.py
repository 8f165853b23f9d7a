"""Algorithm 1 of the paper: tabular Q-learning with ε-greedy exploration over any
:class:`Environment` (the update rule, the ε schedule, training with a certified early stop)."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Callable, Protocol, Sequence

STAY = 0
"""Index of the global ``stay`` action."""

State = tuple[int, ...]


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
    """Algorithm 1's parameters, the paper's values by default (docs/q-learning.md).

    ``epsilon`` is the start of the ε-greedy schedule (the optimizer's ``exploration``
    option). ``stay_ends_episode`` defaults to False, as the optimizer's option does: an
    episode ends at ``max_steps`` (the listing's termination condition), and ``stay`` is a
    self-loop updated like any other action; True also ends it when ``stay`` is chosen.
    """

    alpha_q: float = 0.1
    gamma_q: float = 0.9
    epsilon: float = 1.0
    epsilon_min: float = 0.01
    kappa: float = 0.001
    max_steps: int = 40
    penalty: float = -1000.0
    stay_ends_episode: bool = False


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
