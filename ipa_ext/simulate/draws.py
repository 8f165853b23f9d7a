"""Seeded random numbers for the simulator's draws (service times, waits), generated in blocks."""

from __future__ import annotations

import numpy as np

BLOCK = 4096


class NormalDraws:
    """A callable returning the next standard normal number of a seeded generator."""

    def __init__(self, seed: int | tuple[int, ...] = 0) -> None:
        self._rng = np.random.default_rng(seed)
        self._block: list[float] = []
        self._i = 0

    def _next_block(self) -> list[float]:
        return self._rng.standard_normal(BLOCK).tolist()

    def __call__(self) -> float:
        if self._i >= len(self._block):
            self._block = self._next_block()
            self._i = 0
        v = self._block[self._i]
        self._i += 1
        return v


class UniformDraws(NormalDraws):
    """A callable returning the next number uniform in [0, 1) of a seeded generator."""

    def _next_block(self) -> list[float]:
        return self._rng.random(BLOCK).tolist()
