"""Running a simulator chunk by chunk while checking that no request is lost."""

from __future__ import annotations

from typing import Any, Iterable, Iterator

import pytest


def run_conserving(sim: Any, chunks: Iterable[tuple[list[int], Any]]) -> Iterator[float]:
    """Run each (arrivals, next configuration) chunk, then schedule that configuration; after each,
    assert arrivals = served + dropped + still queued, and yield the requests served so far."""
    arrived = served = dropped = 0.0
    for arrivals, cfg in chunks:
        tot = sim.run(arrivals)
        arrived += tot.arrivals
        served += tot.served
        dropped += tot.dropped
        sim.schedule(cfg)
        assert arrived == pytest.approx(served + dropped + sim.queued, rel=1e-9, abs=1e-6)
        yield served
