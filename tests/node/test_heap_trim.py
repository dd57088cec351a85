"""node.heap_trim: freed heap goes back to the system after a burst."""

from __future__ import annotations

import trio

from node.heap_trim import HeapTrimmer


async def test_the_trimmer_trims_once_per_interval_off_the_event_loop():
    calls: list[tuple[int, bool]] = []
    with trio.CancelScope() as scope:
        def fake_trim(pad: int) -> int:
            calls.append((pad, trio.lowlevel.in_trio_run()))
            if len(calls) == 3:
                trio.from_thread.run_sync(scope.cancel)
            return len(calls) % 2
        trimmer = HeapTrimmer(fake_trim, interval_s=0.02)
        began = trio.current_time()
        with trio.fail_after(10):
            await trimmer.run()
    assert trio.current_time() - began >= 3 * trimmer.interval_s     # a whole interval before each
    assert calls == [(0, False)] * 3          # pad 0: everything free; on a worker thread
    assert (trimmer.trims, trimmer.released) == (3, 2)


def test_a_trim_gives_back_memory_freed_in_the_middle_of_the_heap():
    trimmer = HeapTrimmer.for_this_system()
    assert trimmer.available                  # the node runs on glibc (Debian)
    trimmer.trim_now()                        # start from a trimmed heap
    burst = [bytes(4096) for _ in range(20_000)]         # 80 MB from malloc, not pymalloc
    keep = [bytes(4096) for _ in range(16)]              # allocated above the burst
    del burst                                 # free, but not at the top of the heap
    assert trimmer.trim_now()                 # malloc_trim says it gave memory back
    assert len(keep) == 16


async def test_without_malloc_trim_the_trimmer_returns_at_once():
    trimmer = HeapTrimmer(None)
    with trio.fail_after(1):
        await trimmer.run()
    assert not trimmer.trim_now() and trimmer.trims == 0
