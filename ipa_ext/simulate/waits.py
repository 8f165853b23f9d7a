"""Waits of random arrivals at a stage's replicas within a second: an M/G/c approximation (docs/adaptation.md).

Erlang C gives the probability that a request finds every replica busy; the Allen-Cunneen correction
scales the M/M/c mean wait by the arrivals' and service times' variability; a waiting request's wait
is drawn around the mean that leaves (exponential for exponential service times, less spread otherwise).
"""

from __future__ import annotations

import math
from typing import Callable

ARRIVALS = ("poisson", "uniform")
"""``poisson``: requests arrive as a Poisson process within each second (the local load generator's
default); ``uniform``: evenly spaced (its ``uniform`` spread)."""
RHO_MAX = 0.95
"""Utilisation is capped here: at 1 the steady-state wait is unbounded, and the fluid queue models overload."""

Wait = tuple[float, float, float]
"""(probability that a request waits, mean wait of the requests that wait in seconds, the share of
those waits drawn from an Erlang-2 rather than an exponential)."""
NO_WAIT: Wait = (0.0, 0.0, 0.0)


def erlang_c(servers: int, offered: float) -> float:
    """Erlang C: the probability that an arrival waits in an M/M/c queue with ``servers`` servers and
    offered load ``offered`` = arrival rate x mean service time (< ``servers``)."""
    if offered <= 0.0:
        return 0.0
    if offered >= servers:
        return 1.0
    b = 1.0  # Erlang B by its recursion B(k) = A B(k-1) / (k + A B(k-1))
    for k in range(1, servers + 1):
        b = offered * b / (k + offered * b)
    rho = offered / servers
    return b / (1.0 - rho * (1.0 - b))


def mgc_wait(servers: int, rho: float, mean_service_s: float, ca2: float, cs2: float) -> Wait:
    """The wait at an M/G/c-like queue with utilisation ``rho`` (capped at :data:`RHO_MAX`), mean service
    time ``mean_service_s`` and squared coefficients of variation ``ca2`` (times between arrivals) and
    ``cs2`` (service times).

    Allen-Cunneen: ``Wq = C(c, c rho) / (c (1 - rho)) x E[S] x (ca2 + cs2) / 2``; a request waits with
    probability ``C(c, c rho)``, so the waiting ones wait ``Wq / C`` on average. Their waits are as
    variable as ``(1 + cs2) / 2`` (squared coefficient of variation): exponential for exponential
    service times, an even mixture nearer an Erlang-2 for steadier ones.
    """
    if servers < 1 or rho <= 0.0 or mean_service_s <= 0.0:
        return NO_WAIT
    rho = rho if rho < RHO_MAX else RHO_MAX
    pw = erlang_c(servers, servers * rho)
    wq = pw / (servers * (1.0 - rho)) * mean_service_s * (ca2 + cs2) * 0.5
    if pw <= 0.0 or wq <= 0.0:
        return NO_WAIT
    erlang2 = 1.0 - cs2
    return pw, wq / pw, (erlang2 if erlang2 > 0.0 else 0.0)


def draw_wait(wait: Wait, uniform: Callable[[], float]) -> float:
    """A wait drawn from ``wait`` with numbers uniform in [0, 1) from ``uniform``: zero with probability
    ``1 - pw``, else :func:`waiting_time` of ``u / pw`` (uniform again given ``u < pw``)."""
    pw, mean, erlang2 = wait
    u = uniform() if pw > 0.0 else 1.0
    return waiting_time(u / pw, mean, erlang2, uniform) if u < pw else 0.0


def waiting_time(v: float, mean: float, erlang2: float, uniform: Callable[[], float]) -> float:
    """The wait of a request that waits, from ``v`` uniform in [0, 1): with probability ``erlang2`` the sum
    of two exponentials of mean ``mean / 2`` (squared coefficient of variation 1/2; ``v / erlang2`` gives
    one, ``uniform`` the other), else an exponential of mean ``mean``."""
    if v < erlang2:
        return -0.5 * mean * (math.log1p(-v / erlang2) + math.log1p(-uniform()))
    return -mean * math.log1p(-(v - erlang2) / (1.0 - erlang2))


def others_share(count: float) -> float:
    """A second holds ``count`` arrivals (fixed by the workload) spread at random; one of them finds the
    other ``count - 1``, so it sees the load times ``(count - 1) / count`` (0 for a lone arrival)."""
    return (count - 1.0) / count if count > 1.0 else 0.0


def arrival_scv(arrivals: str, batch: int) -> float:
    """Squared coefficient of variation of the times between batches of ``batch`` requests: a batch of a
    Poisson process's requests is Erlang-``batch`` (1 / batch); evenly spaced requests have none."""
    if arrivals not in ARRIVALS:
        raise ValueError(f"arrivals must be one of {', '.join(ARRIVALS)}, got {arrivals!r}")
    return 1.0 / batch if arrivals == "poisson" else 0.0


def member_wait(servers: int, n: float, capacity_rps: float, batch: int, cs2: float, arrivals: str) -> Wait:
    """The wait at ``servers`` replicas (together ``capacity_rps``, batches of ``batch``) that serve ``n``
    requests in a second whose count the workload fixes.

    A replica takes ``servers x batch / capacity`` seconds per batch. A batch finds the other
    ``m - 1`` of the second's ``m = n / batch`` (:func:`others_share`). And a fixed count makes the
    arrivals less variable over longer spans: within a second of ``n`` random arrivals a span of
    ``tau`` seconds holds a binomial count, of variance ``1 - tau`` times its mean; the span that
    matters is the queue's, ``tau = E[S] / (c (1 - rho))`` (an M/M/c waiting request's mean wait),
    so the arrivals' squared coefficient of variation is scaled by ``1 - min(tau, 1)``.
    """
    if n <= 0.0 or capacity_rps <= 0.0 or servers < 1:
        return NO_WAIT
    rho = n / capacity_rps * others_share(n / batch)
    if rho <= 0.0:
        return NO_WAIT
    rho = rho if rho < RHO_MAX else RHO_MAX
    mean_s = servers * batch / capacity_rps
    tau = mean_s / (servers * (1.0 - rho))
    ca2 = arrival_scv(arrivals, batch) * (1.0 - (tau if tau < 1.0 else 1.0))
    return mgc_wait(servers, rho, mean_s, ca2, cs2)
