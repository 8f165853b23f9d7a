"""Unwrapping raw energy counters: wraps are counted, backwards jumps and unknowable stretches become gaps."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from ipa_ext.energy.counters import Counter

RANGE_J = 100.0
MAX_W = 50.0  # wrap time 2 s


@given(st.floats(0, RANGE_J), st.lists(st.tuples(st.floats(0.01, 1.9), st.floats(0, 1)), max_size=40))
def test_wrapping_counter_adds_up_to_the_energy_drawn(start_raw, steps):
    """Reads closer together than the wrap time recover every joule, however often it wraps."""
    t, raw, drawn = 0.0, start_raw, 0.0
    c = Counter(t, RANGE_J, MAX_W)
    assert c.update(raw, t) is None
    for dt, load in steps:
        e = MAX_W * load * dt  # never more than the ceiling allows
        t += dt
        drawn += e
        raw = (raw + e) % RANGE_J
        assert c.update(raw, t) is None
    assert abs(c.total_j - drawn) <= 1e-6 * max(1.0, drawn)
    assert c.gap_s == 0.0


def test_counts_wraps():
    c = Counter(0.0, RANGE_J, MAX_W)
    c.update(90.0, 0.0)
    c.update(10.0, 1.0)  # 20 J in 1 s: a wrap
    assert c.total_j == 20.0 and c.wraps == 1


def test_backwards_without_wrapping_is_a_gap_not_a_huge_wrap():
    c = Counter(0.0, RANGE_J, MAX_W)
    c.update(50.0, 0.0)
    c.update(60.0, 1.0)
    problem = c.update(40.0, 1.5)  # a wrap would mean 80 J in 0.5 s = 160 W > 50 W
    assert problem is not None and "backwards without wrapping" in problem
    assert c.total_j == 10.0 and c.gap_s == 0.5
    c.update(45.0, 2.0)  # counting resumes from the new value
    assert c.total_j == 15.0 and c.gap_s == 0.5


def test_a_read_interval_longer_than_the_wrap_time_is_a_gap():
    c = Counter(0.0, RANGE_J, MAX_W)
    c.update(10.0, 0.0)
    problem = c.update(20.0, 2.5)  # could be 10 J, or 110 J, or 210 J
    assert problem is not None and "wrap time" in problem
    assert c.total_j == 0.0 and c.gap_s == 2.5


def test_never_wrapping_counter_going_backwards_is_a_gap():
    c = Counter(0.0, None)
    c.update(5.0, 0.0)
    assert "backwards" in c.update(4.0, 1.0)
    assert c.total_j == 0.0 and c.gap_s == 1.0


def test_unreadable_stretch_is_a_gap_until_a_read_succeeds():
    c = Counter(0.0, RANGE_J, MAX_W)
    c.update(10.0, 0.0)
    c.update(12.0, 1.0)
    c.missing(1.5, "vanished")
    assert c.gap_until(3.0) == 2.0  # still going on: counted up to now
    c.update(30.0, 4.0)  # back: the 18 J across the outage are not vouched for
    assert c.total_j == 2.0 and c.gap_s == 3.0
    c.update(31.0, 4.5)
    assert c.total_j == 3.0 and c.gap_s == 3.0


def test_out_of_range_value_is_rejected():
    c = Counter(0.0, RANGE_J, MAX_W)
    c.update(10.0, 0.0)
    assert "outside" in c.update(150.0, 0.5)
    assert c.total_j == 0.0
