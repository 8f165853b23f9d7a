"""Seeded standard normal numbers for the simulator's service-time draws, generated in blocks."""

from __future__ import annotations

import numpy as np

BLOCK = 4096


class NormalDraws:
    """A callable returning the next standard normal number of a seeded generator."""

    def __init__(self, seed: int = 0) -> None:
        self._rng = np.random.default_rng(seed)
        self._block: list[float] = []
        self._i = 0

    def __call__(self) -> float:
        if self._i >= len(self._block):
            self._block = self._rng.standard_normal(BLOCK).tolist()
            self._i = 0
        v = self._block[self._i]
        self._i += 1
        return v
