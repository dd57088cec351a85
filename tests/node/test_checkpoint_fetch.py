"""Fetching the peers' kept stable checkpoints after block sync
(node.core.checkpoint_fetch): the GET_CHECKPOINTS / CHECKPOINTS messages and
their strict decoders, the serving side of the dispatcher, the checks an
offered checkpoint passes before it is kept, and the fetch itself (one
request at a time, a silent peer passed over, a lying one faulted).

The chain is tests.node.proven_chain.two_changes (checkpoints every 4 blocks,
the validator set changes at 16 and 28); the node that fetches holds the
same blocks, stored as block sync stores them (Chain.apply_synced), and no
checkpoint."""

from __future__ import annotations

import pytest
import trio

from consensus.epochs import from_chain_config
from consensus.messages import CheckpointProof
from ledger import codec
from ledger.certificate import Vote, checkpoint_bytes
from ledger.codec import DecodeError
from node.core import peer_messages
from node.core.chain import Chain
from node.core.checkpoint_fetch import CheckpointFetch, checkpoint_problem, checkpoints_for_peer
from node.core.config_history import ConfigHistory
from node.core.dispatch import PeerDispatcher
from tests.factories import make_store
from tests.node.proven_chain import ProvenChain, two_changes

SERVER, SILENT, LIAR, PARTIAL = b"\x01" * 32, b"\x02" * 32, b"\x03" * 32, b"\x04" * 32
WIDE = b"\x05" * 32


@pytest.fixture(scope="module")
def source() -> ProvenChain:
    return two_changes()


def synced(source: ProvenChain) -> Chain:
    """A node that block-synced the source's chain: same blocks, no checkpoint."""
    chain = Chain(source.genesis, make_store(source.genesis))
    for height in range(1, source.chain.height + 1):
        chain.apply_synced(source.store.get_block(height), source.store.get_certificate(height))
    assert chain.store.checkpoint_at_or_above(1) is None
    return chain


def kept(source: ProvenChain) -> dict[int, tuple[bytes, bytes]]:
    return {seq: (proof, nxt) for seq, proof, nxt in source.store.checkpoints_between(1, 10**6, 1000)}


def resigned(source: ProvenChain, seq: int, block_hash: bytes, epoch_of: int | None = None,
             edit=lambda votes: votes) -> bytes:
    """A checkpoint proof at `seq` over `block_hash`, really signed by the
    signers as members of the set of the epoch of `epoch_of` (default: seq's)."""
    names = source.chain.config.epoch_of(seq if epoch_of is None else epoch_of).names
    votes = source.sign(checkpoint_bytes(source.genesis.chain_id, seq, block_hash), names)
    return codec.pack(CheckpointProof(seq, block_hash, tuple(edit(list(votes)))).to_record())


# -- the messages ----------------------------------------------------------------------

def test_the_decoders_take_good_payloads():
    assert peer_messages.decode_get_checkpoints([1, 10**9]) == (1, 10**9)
    assert peer_messages.decode_checkpoints([]) == []
    assert peer_messages.decode_checkpoints([[4, b"p", b"n"], [8, b"q", b""]]) == [(4, b"p", b"n"),
                                                                                 (8, b"q", b"")]
    assert peer_messages.NAMES[peer_messages.GET_CHECKPOINTS] == "get_checkpoints"
    assert peer_messages.NAMES[peer_messages.CHECKPOINTS] == "checkpoints"


@pytest.mark.parametrize("payload", [None, [], [1], [0, 5], [5, 4], [1, -1], [1, 2, 3], ["1", 2], [1.0, 2]])
def test_a_malformed_get_checkpoints_is_refused(payload):
    with pytest.raises(DecodeError):
        peer_messages.decode_get_checkpoints(payload)


@pytest.mark.parametrize("payload", [
    None, b"", {}, [[4, b"p"]], [[4, b"p", b"n", b"x"]], [[0, b"p", b"n"]], [[-4, b"p", b"n"]],
    [["4", b"p", b"n"]], [[4, "p", b"n"]], [[4, b"p", None]], [[8, b"p", b"n"], [4, b"p", b"n"]],
    [[4, b"p", b"n"], [4, b"p", b"n"]], [4, b"p", b"n"]])
def test_a_malformed_checkpoints_answer_is_refused(payload):
    with pytest.raises(DecodeError):
        peer_messages.decode_checkpoints(payload)


def test_an_oversized_checkpoints_answer_is_refused():
    too_many = [[seq, b"p", b"n"] for seq in range(1, peer_messages.MAX_SYNC_CHECKPOINTS + 2)]
    with pytest.raises(DecodeError, match="at most"):
        peer_messages.decode_checkpoints(too_many)
    assert len(peer_messages.decode_checkpoints(too_many[:-1])) == peer_messages.MAX_SYNC_CHECKPOINTS
    half = bytes(peer_messages.MAX_SYNC_BYTES // 2)
    with pytest.raises(DecodeError, match="bytes"):
        peer_messages.decode_checkpoints([[1, half, b""], [2, half, b"!"]])


# -- serving ---------------------------------------------------------------------------

def test_a_dispatcher_answers_get_checkpoints_with_what_its_store_keeps_in_range(source):
    sent, faults = [], []
    d = PeerDispatcher(trio.open_memory_channel(1)[1], None, None, source.store, None,
                       send=lambda *msg: sent.append(msg) or True,
                       on_fault=lambda peer, reason: faults.append(reason), follower=None)
    d.dispatch(SERVER, [(peer_messages.GET_CHECKPOINTS, [5, 20]), (peer_messages.GET_CHECKPOINTS, [33, 99]),
                        (peer_messages.GET_CHECKPOINTS, [9, 3])])
    every = kept(source)
    assert sent == [(SERVER, peer_messages.CHECKPOINTS, [[seq, *every[seq]] for seq in (8, 12, 16, 20)]),
                    (SERVER, peer_messages.CHECKPOINTS, [])]
    assert faults == ["malformed get_checkpoints"]
    # an answer decodes as the requester's decoder wants it
    assert peer_messages.decode_checkpoints(sent[0][2])[0] == (8, *every[8])


def test_an_answer_stays_within_its_count_and_bytes(source, monkeypatch):
    monkeypatch.setattr(peer_messages, "MAX_SYNC_CHECKPOINTS", 3)
    assert [item[0] for item in checkpoints_for_peer(source.store, 1, 32)] == [4, 8, 12]
    one = sum(len(b) for b in kept(source)[4])
    monkeypatch.setattr(peer_messages, "MAX_SYNC_BYTES", 2 * one + one // 2)
    assert [item[0] for item in checkpoints_for_peer(source.store, 1, 32)] == [4, 8]


# -- checking --------------------------------------------------------------------------

def problem(chain: Chain, seq: int, proof: bytes, nxt: bytes) -> str | None:
    history = ConfigHistory(chain.genesis.config, chain.store.scan_state)
    return checkpoint_problem(chain, history, from_chain_config(chain.config.epochs), seq, proof, nxt)


def test_every_kept_checkpoint_of_a_peer_passes_across_both_changes(source):
    chain = synced(source)
    assert sorted(kept(source)) == [4, 8, 12, 16, 20, 24, 28, 32]
    for seq, (proof, nxt) in kept(source).items():
        assert problem(chain, seq, proof, nxt) is None, seq


def test_forged_or_altered_checkpoints_are_refused(source):
    chain = synced(source)
    every = kept(source)
    proof12, next12 = every[12]
    hash12 = source.store.get_block(12).hash
    rec = codec.unpack(proof12)

    def flipped_signature(votes):
        votes[1] = Vote(votes[1].validator, bytes([votes[1].signature[0] ^ 1]) + votes[1].signature[1:])
        return votes

    cases = {
        "for another block": (12, resigned(source, 12, source.store.get_block(11).hash), next12),
        "bad checkpoint signature": (12, resigned(source, 12, hash12, edit=flipped_signature), next12),
        "a quorum is": (12, resigned(source, 12, hash12, edit=lambda v: v[:-1]), next12),
        "not in validator order": (12, resigned(source, 12, hash12, edit=lambda v: v[::-1]), next12),
        # checkpoint 20 signed by the signers as members of the genesis set, not epoch 1's
        "checkpoint signature": (20, resigned(source, 20, source.store.get_block(20).hash, epoch_of=4),
                                 every[20][1]),
        # the next-epoch proof of another state (checkpoint 4's, before block 5 changed
        # the pending epoch 1), and at the boundary 28 (in epoch 1) one of epoch 1's
        # record where epoch 2's is due
        "disagree on gov/epoch": (8, every[8][0], every[4][1]),
        "gov/epoch/000002": (28, every[28][0], every[12][1]),
        "does not decode": (12, proof12, b"\x93junk"),
        "for height 12": (8, proof12, next12),
        "not a height this node committed": (36, proof12, next12),
        "canonical": (12, _non_canonical(rec), next12),
    }
    for reason, (seq, proof, nxt) in cases.items():
        said = problem(chain, seq, proof, nxt)
        assert said is not None and reason in said, (reason, said)


def _non_canonical(rec: list) -> bytes:
    """The same proof with its seq as a 64-bit integer (msgpack would use one byte)."""
    packed = codec.pack(rec)
    assert packed[1] == rec[0]
    return packed[:1] + b"\xcf" + rec[0].to_bytes(8, "big") + packed[2:]


# -- fetching --------------------------------------------------------------------------

class Peers:
    """The fetching node's send: each peer of `stores` answers from its store
    (through a real dispatcher), any other peer never answers (an older
    node); LIAR's answers carry checkpoint 12 with another next-epoch proof,
    WIDE answers with all it keeps whatever the range asked."""

    def __init__(self, stores: dict, fetch: CheckpointFetch, nursery) -> None:
        self.fetch, self.nursery = fetch, nursery
        self.asked: list[tuple[bytes, list]] = []
        self.servers = {
            peer: PeerDispatcher(trio.open_memory_channel(1)[1], None, None, store, None,
                                 send=lambda to, msg_type, payload, peer=peer: self._answer(peer, payload),
                                 on_fault=lambda *a: None, follower=None)
            for peer, store in stores.items()}
        self.client = PeerDispatcher(trio.open_memory_channel(1)[1], None, None, None, None,
                                     send=lambda *a: True, on_fault=lambda *a: None, follower=None,
                                     checkpoints=fetch)
        self.other_next = stores[SERVER].checkpoints_between(4, 4, 1)[0][2]

    def send(self, peer: bytes, msg_type: int, payload) -> bool:
        assert msg_type == peer_messages.GET_CHECKPOINTS
        self.asked.append((peer, payload))
        if peer in self.servers:
            self.nursery.start_soon(self._deliver, self.servers[peer], b"client", [(msg_type, payload)])
        return True

    def _answer(self, peer: bytes, payload) -> bool:
        if peer == WIDE:            # everything it keeps, whatever was asked
            payload = checkpoints_for_peer(self.servers[peer]._store, 1, 10**6)
        if peer == LIAR:
            payload = [[seq, proof, self.other_next if seq == 12 else nxt] for seq, proof, nxt in payload]
        self.nursery.start_soon(self._deliver, self.client, peer, [(peer_messages.CHECKPOINTS, payload)])
        return True

    async def _deliver(self, to, sender, messages) -> None:
        await trio.sleep(0.01)
        to.dispatch(sender, messages)


async def fetch_with(chain, stores, wanted, nursery, monkeypatch, batch: int = 3, connected=(), first: int = 1):
    """Run a CheckpointFetch on `chain` for its whole height, asking `wanted`
    first, until it is idle; (the fetch, what each peer was asked, the faults)."""
    monkeypatch.setattr(peer_messages, "MAX_SYNC_CHECKPOINTS", batch)
    faults = []
    fetch = CheckpointFetch(chain, ConfigHistory(chain.genesis.config, chain.store.scan_state),
                            send=lambda *a: peers.send(*a), connected=lambda: list(connected),
                            on_fault=lambda peer, reason: faults.append((peer, reason)))
    peers = Peers(stores, fetch, nursery)
    nursery.start_soon(fetch.run)
    fetch.want(wanted, first, chain.height)
    with trio.fail_after(120):
        while not peers.asked or fetch.busy:
            await trio.sleep(0.1)
    return fetch, peers.asked, faults


def kept_by(chain: Chain) -> dict[int, tuple[bytes, bytes]]:
    return {seq: (p, n) for seq, p, n in chain.store.checkpoints_between(1, 99, 99)}


async def test_a_synced_node_keeps_a_peers_checkpoints_passing_over_a_silent_peer(
        source, autojump_clock, nursery, monkeypatch):
    chain = synced(source)
    every = kept(source)
    chain.store.put_checkpoint(32, *every[32])      # its own, newest: fetching older ones keeps it newest
    fetch, asked, faults = await fetch_with(chain, {SERVER: source.store}, [SILENT, SERVER], nursery,
                                            monkeypatch)
    assert faults == [] and kept_by(chain) == every
    assert chain.store.newest_checkpoint() == 32
    assert fetch.kept == 7
    # one request at a time: the silent peer once (timed out), then the server in
    # batches of 3, each from after the last answer's last, up to the tip
    assert asked == [(SILENT, [1, 32]), (SERVER, [1, 32]), (SERVER, [13, 32]), (SERVER, [25, 32])]


async def test_a_lying_peer_is_faulted_and_its_bad_checkpoint_not_kept(source, autojump_clock, nursery,
                                                                      monkeypatch):
    chain = synced(source)
    fetch, asked, faults = await fetch_with(chain, {LIAR: source.store, SERVER: source.store}, [LIAR, SERVER],
                                            nursery, monkeypatch, batch=8)
    assert faults == [(LIAR, "bad checkpoint")]
    # the range is asked of the next peer, which has the good one (the liar's others are kept)
    assert asked == [(LIAR, [1, 32]), (SERVER, [1, 32])]
    assert kept_by(chain) == kept(source) and fetch.kept == 8


async def test_where_a_peer_kept_no_checkpoint_the_next_one_connected_is_asked(
        source, autojump_clock, nursery, monkeypatch):
    """PARTIAL synced across 16 and has nothing above 28: the gaps go to a
    peer that served no blocks but is connected."""
    partial = two_changes(unkept=16, keep_through=28)
    assert partial.store.last_block_hash() == source.store.last_block_hash()
    chain = synced(source)
    fetch, asked, faults = await fetch_with(chain, {PARTIAL: partial.store, SERVER: source.store}, [PARTIAL],
                                            nursery, monkeypatch, connected=[SILENT, SERVER, PARTIAL])
    assert faults == [] and kept_by(chain) == kept(source)
    assert asked == [(PARTIAL, [1, 32]), (PARTIAL, [13, 32]), (PARTIAL, [29, 32]),
                     (SILENT, [13, 19]), (SILENT, [29, 32]), (SERVER, [13, 19]), (SERVER, [29, 32])]


async def test_an_answer_outside_the_range_asked_is_a_fault_and_none_of_it_is_kept(
        source, autojump_clock, nursery, monkeypatch):
    chain = synced(source)
    fetch, asked, faults = await fetch_with(chain, {WIDE: source.store, SERVER: source.store}, [WIDE, SERVER],
                                            nursery, monkeypatch, batch=8, first=13)
    assert faults == [(WIDE, "checkpoints outside the range asked for")]
    assert asked == [(WIDE, [13, 32]), (SERVER, [13, 32])]
    assert kept_by(chain) == {seq: rest for seq, rest in kept(source).items() if seq >= 13}
