"""The commit pace the view-change timeout follows (node.core.commit_pace)."""

from __future__ import annotations

from node.core.commit_pace import MAX_PENDING, PACE_WINDOW, CommitPaceMeter


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_pace_is_the_slowest_recent_commit_in_its_view():
    clock = Clock()
    meter = CommitPaceMeter(clock)
    assert meter.committed(1) is None              # nothing accepted here (synced, say)
    meter.accepted(2)
    clock.now += 0.25
    meter.accepted(2)                              # a re-sent proposal: the first acceptance counts
    meter.accepted(3)
    clock.now += 0.5
    assert meter.committed(2) == 750
    assert meter.committed(3) == 750               # 500 ms, but the slowest of the window is 750
    meter.accepted(4)
    meter.view_changed()                           # 4 waits for the view change: not a pace
    clock.now += 30
    assert meter.committed(4) == 750


def test_a_slow_commit_leaves_the_window_after_enough_fast_ones():
    clock = Clock()
    meter = CommitPaceMeter(clock)
    meter.accepted(1)
    clock.now += 2
    assert meter.committed(1) == 2000
    for height in range(2, PACE_WINDOW + 2):
        meter.accepted(height)
        clock.now += 0.1
        pace = meter.committed(height)
    assert pace == 100


def test_accepted_heights_are_bounded_and_dropped_once_passed():
    meter = CommitPaceMeter(Clock())
    for height in range(10, 10 + 2 * MAX_PENDING):
        meter.accepted(height)
    assert len(meter._accepted_at) == MAX_PENDING
    meter.committed(10 + MAX_PENDING // 2)
    assert min(meter._accepted_at) > 10 + MAX_PENDING // 2
