"""Where the ``ipa-ext`` process runs next to its replicas: a core of its own when one is spare."""

from __future__ import annotations

import os
import threading

import pytest

from ipa_ext.serving.driver import pin_process, place_driver, restore_process


@pytest.mark.parametrize("usable, need, mode, cores, reason", [
    ([0, 1, 2, 3], 3, "auto", (3,), "a spare core"),
    ([0, 1], 2, "auto", (), "the replicas take 2 cores of the 2 usable, none is spare"),
    ([0, 1], 5, "true", (1,), "pin_driver is true (replicas share its core)"),
    ([0, 1, 2], 1, "false", (), "pin_driver is false"),
    ([4], 0, "true", (), "the machine lets ipa-ext use 1 core"),
])
def test_placement(usable, need, mode, cores, reason):
    got = place_driver(usable, need, mode)
    assert got.cores == cores and got.reason == reason and got.pinned == bool(cores)


def test_pinning_covers_every_thread_and_is_undone():
    before = os.sched_getaffinity(0)
    core = max(before)
    gate, seen = threading.Event(), {}

    def worker():
        gate.wait(10)
        seen["mask"] = os.sched_getaffinity(0)

    old = threading.Thread(target=worker)
    old.start()  # started before the pin: pinned too
    masks = pin_process([core])
    try:
        assert os.sched_getaffinity(0) == {core}
        gate.set()
        old.join(10)
        assert seen["mask"] == {core}
    finally:
        restore_process(masks, before)
    assert os.sched_getaffinity(0) == before
