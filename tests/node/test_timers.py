"""Timers: SetTimer/CancelTimer carried out on trio's clock (autojump: no real waiting)."""

import trio

from node.core.timers import Timers


async def test_timers_fire_in_order_and_rearming_or_cancelling_replaces(autojump_clock):
    fired = []
    timers = Timers(lambda kind, token: fired.append((kind, token, trio.current_time())))
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(timers.run)
            start = trio.current_time()
            timers.set("view_change", 2000, 1)
            timers.set("retransmit", 500, 2)
            timers.set("doomed", 100, 3)
            timers.cancel("doomed")
            await trio.sleep(1)
            timers.set("view_change", 3000, 4)      # re-armed: the token-1 timer never fires
            await trio.sleep(10)
            nursery.cancel_scope.cancel()
    assert [(k, t) for k, t, _ in fired] == [("retransmit", 2), ("view_change", 4)]
    assert [round(at - start, 3) for _, _, at in fired] == [0.5, 4.0]
