"""Reading the residency record: the single-model invariant check itself."""

from __future__ import annotations

from studio.resources.runtime.residency import active_intervals, overlapping_actives


def _row(t, event, pid, model="m", device="cuda:0", seconds=0.0):
    return {"t": t, "event": event, "model": model, "pid": pid, "device": device, "seconds": seconds}


def test_sequential_processes_do_not_overlap():
    rows = [_row(1, "load", 1), _row(2, "park", 1), _row(3, "load", 2, seconds=0.5), _row(4, "park", 2)]
    assert overlapping_actives(rows) == []
    assert [(iv.start, iv.end) for iv in active_intervals(rows)] == [(1, 2), (2.5, 4)]


def test_two_active_models_are_reported():
    rows = [_row(1, "load", 1, "a"), _row(2, "load", 2, "b"), _row(3, "park", 1, "a"), _row(4, "park", 2, "b")]
    assert len(overlapping_actives(rows)) == 1
    # Other devices are independent.
    rows = [_row(1, "load", 1, "a"), _row(2, "load", 2, "b", device="cuda:1"), _row(3, "park", 1, "a")]
    assert overlapping_actives(rows) == []


def test_a_holder_killed_mid_use_ends_when_the_next_process_gets_the_device():
    # pid 1 was kill -9'd while active (no park). pid 2 could only activate after the kernel freed the lock.
    rows = [_row(1, "load", 1), _row(10, "load", 2, seconds=1.0), _row(11, "park", 2)]
    assert overlapping_actives(rows) == []
    dead = active_intervals(rows)[0]
    assert dead.pid == 1 and dead.end == 9.0 and dead.meta["ended"] == "holder process died"


def test_a_presumed_dead_holder_that_parks_later_is_a_real_overlap():
    rows = [_row(1, "load", 1), _row(2, "load", 2), _row(3, "park", 1), _row(4, "park", 2)]
    assert len(overlapping_actives(rows)) == 1
