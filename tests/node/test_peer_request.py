"""One request to a peer at a time (node.core.peer_request): the asked peer's
answer is returned; another peer's answer, or one after the wait, is dropped."""

from __future__ import annotations

import trio

from node.core.peer_request import REQUEST_TIMEOUT_S, PeerRequest

A, B = b"\x01" * 32, b"\x02" * 32


async def test_only_the_asked_peer_answers_within_the_wait(autojump_clock, nursery):
    sent = []
    request = PeerRequest(lambda peer, msg_type, payload: sent.append((peer, msg_type, payload)) or True)

    async def answer(delay, peer, value):
        await trio.sleep(delay)
        request.answered(peer, value)

    with trio.fail_after(60):
        nursery.start_soon(answer, 1, B, "from B")        # not asked: dropped
        nursery.start_soon(answer, 2, A, "from A")
        assert await request.ask(A, 4, [1, 2]) == "from A"
        assert sent == [(A, 4, [1, 2])]
        # no answer within the wait: None, and a late answer is dropped
        nursery.start_soon(answer, REQUEST_TIMEOUT_S + 1, A, "late")
        assert await request.ask(A, 4, [3, 4]) is None
        await trio.sleep(2)
        assert await request.ask(A, 4, [5, 6], timeout=1) is None


async def test_a_request_that_cannot_be_sent_is_none_at_once(autojump_clock):
    request = PeerRequest(lambda *a: False)
    with trio.fail_after(1):
        start = trio.current_time()
        assert await request.ask(A, 4, [1, 1]) is None
        assert trio.current_time() == start
