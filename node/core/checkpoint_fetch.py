"""After block sync: fetch the peers' kept stable checkpoints for the synced heights.

Proof files hang from kept stable checkpoints (node.core.proofs).  A node
keeps one when its own core sees it become stable (ConsensusDriver.
_keep_checkpoint); heights it caught up on by block sync pass no such
checkpoint, so without this it could prove nothing there, nor anything past a
validator-set change it synced across (the link at the boundary is missing).

When a sync session has stored blocks, BlockSync hands the synced heights and
the peers that served them to `want`; `run` (a task of its own: block sync
and consensus never wait for it) asks one peer at a time, those that served
first, then the others connected (GET_CHECKPOINTS [first, last], one request
outstanding, node.core.peer_request's timeout), up to the tip.  Each answer holds the
peer's kept checkpoints from `first` on, within a count and a size: the next
request starts after its last one, while a checkpoint is due in the range
and the answers are not empty.  Where a
checkpoint is due (the grid of each epoch: `first_checkpoint_at_or_above`)
and the peer kept none (it synced those heights itself), the next peer is
asked for that range.  A peer that does not answer (gone, or an older node
that drops the unknown message type) is passed over the same way.

Each checkpoint is checked before `Store.put_checkpoint` keeps it
(`checkpoint_problem`): its block is the one this node committed at its
height, a quorum of the set of its epoch (this node's configuration) signed
it, in one encoding (the one a proof file carries), and its next-epoch proof
holds against the header's state root with the verifier's rule
(node.core.proofs.checked_next_epoch).  A bad one is its peer's fault and is
not kept; the rest of the answer still counts.  Keeping an older checkpoint
never moves the newest kept one back (Store.put_checkpoint), so the state
tree is pruned exactly as before.

A node that runs no consensus core (an observer) follows the chain by pushed
blocks, with no sync session to name the heights: `follow` asks its peers
every FOLLOW_INTERVAL_S for the checkpoints above its newest kept one.
"""

from __future__ import annotations

import logging
from typing import Callable, Iterable

import trio

from consensus.epochs import EpochSchedule, checkpoint_proof_problem, from_chain_config
from consensus.messages import CheckpointProof
from ledger import codec
from ledger.codec import DecodeError
from ledger.consortium import ChainConfig
from node.core import peer_messages
from node.core.chain import Chain
from node.core.config_history import ConfigHistory
from node.core.proofs import NextEpochProofError, checked_next_epoch, stored_header
from node.core.peer_request import PeerRequest
from storage.base import Store

log = logging.getLogger("ynchain.sync")

CHECKS_PER_TURN = 16         # checkpoints checked between two turns of the event loop (~3 ms)
FOLLOW_INTERVAL_S = 5.0      # how often a node without a core asks for newer checkpoints


def checkpoints_for_peer(store: Store, first: int, last: int) -> list[list]:
    """The CHECKPOINTS answer to a GET_CHECKPOINTS: the kept checkpoints in
    first..last as stored (no re-encoding), within MAX_SYNC_BYTES."""
    items, total = [], 0
    for seq, proof, next_epoch in store.checkpoints_between(first, last, peer_messages.MAX_SYNC_CHECKPOINTS):
        total += len(proof) + len(next_epoch)
        if total > peer_messages.MAX_SYNC_BYTES:
            break
        items.append([seq, proof, next_epoch])
    return items


def checkpoint_problem(chain: Chain, history: ConfigHistory, schedule: EpochSchedule, seq: int,
                       raw_proof: bytes, raw_next: bytes) -> str | None:
    """None if the offered checkpoint at `seq` may be kept, else why not.
    `schedule`: the epochs of this node's configuration (from_chain_config)."""
    store = chain.store
    if not 0 < seq <= store.last_height():
        return f"checkpoint {seq} is not a height this node committed (it is at {store.last_height()})"
    try:
        proof = CheckpointProof.from_record(codec.unpack(raw_proof))
    except DecodeError as exc:
        return f"checkpoint {seq} does not decode: {exc}"
    if proof.seq != seq:
        return f"the checkpoint offered at {seq} is for height {proof.seq}"
    if codec.pack(proof.to_record()) != raw_proof:
        return f"checkpoint {seq} is not in canonical encoding"
    order = [v.validator for v in proof.votes]
    if order != sorted(order):
        return f"checkpoint {seq}: the signatures are not in validator order"
    header = stored_header(store, seq)
    if proof.state_digest != header.hash:
        return f"checkpoint {seq} is for another block than the one committed at {seq}"
    problem = checkpoint_proof_problem(schedule, chain.genesis.chain_id, proof)
    if problem is not None:
        return f"checkpoint {seq}: {problem}"
    try:
        checked_next_epoch(history, seq, header.state_root, raw_next)
    except NextEpochProofError as exc:
        return str(exc)
    return None


def first_checkpoint_at_or_above(config: ChainConfig, seq: int) -> int:
    """The lowest height >= seq (>= 1) on the checkpoint grid of its epoch (a
    boundary is on the grid of the epoch it ends)."""
    epoch = config.epoch_of(max(seq, 1))
    step = epoch.params.checkpoint_interval
    return epoch.start + max(1, -(-(seq - epoch.start) // step)) * step


class CheckpointFetch:
    def __init__(self, chain: Chain, history: ConfigHistory, *,
                 send: Callable[[bytes, int, object], bool],
                 connected: Callable[[], list[bytes]],
                 on_fault: Callable[[bytes, str], None]) -> None:
        self.chain = chain
        self.history = history
        self._connected = connected
        self._on_fault = on_fault
        self._pending: tuple[list[bytes], int, int] | None = None
        self._wanted = trio.Event()
        self._request = PeerRequest(send)
        self.busy = False                    # a range is being fetched
        self.kept = 0                        # checkpoints kept so far

    def want(self, peers: Iterable[bytes], first: int, last: int) -> None:
        """Fetch the kept checkpoints in [first, last] (and on to the tip),
        asking `peers` first, in order; merged with a range still waiting."""
        peers = list(peers)
        if first > last:
            return
        if self._pending is not None:
            old_peers, old_first, old_last = self._pending
            peers += old_peers
            first, last = min(first, old_first), max(last, old_last)
        self._pending = (list(dict.fromkeys(peers)), first, last)
        self._wanted.set()

    def on_checkpoints(self, peer: bytes, items: list[tuple[int, bytes, bytes]]) -> None:
        self._request.answered(peer, items)

    async def run(self) -> None:
        while True:
            await self._wanted.wait()
            self._wanted = trio.Event()
            self.busy = True
            try:
                while self._pending is not None:
                    (peers, first, last), self._pending = self._pending, None
                    await self._fetch(peers, first, max(last, self.chain.height))
            finally:
                self.busy = False

    async def follow(self, following: Callable[[], bool]) -> None:
        """While `following()` (the node runs no consensus core: an observer
        following the blocks validators push), ask the peers every FOLLOW_INTERVAL_S
        for the kept checkpoints above the newest kept here.  No core of its
        own keeps them, and pushed blocks make no sync session, so without
        this an observer could prove nothing after its last catch-up."""
        while True:
            await trio.sleep(FOLLOW_INTERVAL_S)
            if following() and not self.busy and self._pending is None:
                self.want(self._connected(), self.chain.store.newest_checkpoint() + 1, self.chain.height)

    async def _fetch(self, peers: list[bytes], first: int, last: int) -> None:
        """Ask the peers in turn (those named, then the others connected) for
        the ranges the ones before them did not fill."""
        gaps = [(first, last)]
        for peer in dict.fromkeys(peers + list(self._connected())):
            left: list[tuple[int, int]] = []
            for low, high in gaps:
                left += await self._fetch_from(peer, low, high)
            gaps = left
            if not gaps:
                return
        # A checkpoint within a window of the tip may not be stable anywhere yet
        # (a follower asks up to its tip every few seconds); one further down
        # is: the chain cannot run a window past its last stable checkpoint.
        settled = self.chain.height - self.chain.config.epoch_of(max(self.chain.height, 1)).params.window
        missing = [(low, min(high, settled)) for low, high in gaps
                   if first_checkpoint_at_or_above(self.chain.config, low) <= min(high, settled)]
        if missing:
            log.info("checkpoint fetch: no peer keeps the stable checkpoints in %s",
                     ", ".join(f"{low}..{high}" for low, high in missing[:8]))

    async def _fetch_from(self, peer: bytes, first: int, last: int) -> list[tuple[int, int]]:
        """Ask `peer` for its checkpoints in first..last, batch after batch;
        the ranges left where a checkpoint is due and it had none (all of
        what was left if it does not answer or lied: what was good is kept,
        and is not checked again when another peer sends it)."""
        config, gaps = self.chain.config, []
        while first_checkpoint_at_or_above(config, first) <= last:      # one is due in first..last
            items = await self._request.ask(peer, peer_messages.GET_CHECKPOINTS, [first, last])
            if items is None:
                log.info("checkpoint fetch: no answer from peer %s for heights %d..%d", peer.hex()[:16],
                         first, last)
                return gaps + [(first, last)]
            if not await self._keep(peer, first, last, items):
                return gaps + [(first, last)]
            if not items:
                gaps.append((first, last))
                break
            for seq, _, _ in items:
                if first_checkpoint_at_or_above(config, first) < seq:
                    gaps.append((first, seq - 1))
                first = seq + 1
        return gaps

    async def _keep(self, peer: bytes, first: int, last: int, items: list[tuple[int, bytes, bytes]]) -> bool:
        """Check and keep an answer's checkpoints; False if any was bad (its
        peer's fault, not kept: the good ones are).  A check costs ~0.2 ms
        (a quorum of signatures): the event loop gets a turn every
        CHECKS_PER_TURN, so a full answer never holds consensus up for long."""
        if items and (items[0][0] < first or items[-1][0] > last):
            self._on_fault(peer, "checkpoints outside the range asked for")
            return False
        store, schedule = self.chain.store, from_chain_config(self.chain.config.epochs)
        good, kept = True, 0
        for i, (seq, raw_proof, raw_next) in enumerate(items):
            if i and i % CHECKS_PER_TURN == 0:
                await trio.sleep(0)
            found = store.checkpoint_at_or_above(seq)
            if found is not None and found[0] == seq:
                continue                     # kept already (checked when it was kept)
            problem = checkpoint_problem(self.chain, self.history, schedule, seq, raw_proof, raw_next)
            if problem is not None:
                good = False
                self._on_fault(peer, "bad checkpoint")
                log.warning("checkpoint fetch: peer %s: %s", peer.hex()[:16], problem)
                continue
            store.put_checkpoint(seq, raw_proof, raw_next)
            kept += 1
        self.kept += kept
        if kept:
            log.info("checkpoint fetch: kept %d stable checkpoints in %d..%d from peer %s", kept,
                     items[0][0], items[-1][0], peer.hex()[:16])
        return good
