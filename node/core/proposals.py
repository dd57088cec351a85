"""Judging proposals for the consensus core, and keeping the ones it may commit.

`ProposalChecker` is what the core calls back into (ReplicaConfig.check_payload
and .payload_digest): it decodes a payload once, validates it against the chain
(node.core.chain.Chain.check_proposal) and keeps the decoded Proposal by digest,
so the commit that follows does not decode it again.  It is built before the
Replica (whose config needs its two callbacks) and handed to the driver, which
takes the decoded proposals back at commit time.
"""

from __future__ import annotations

import logging

from ledger.block import Proposal
from ledger.codec import DecodeError
from node.core.chain import Chain
from node.core.commit_pace import CommitPaceMeter
from node.core.mempool import Mempool
from storage.base import Store

log = logging.getLogger("ynchain.consensus")

# Decoded proposals kept between validation and commit: the pipeline's few
# (max_in_flight) plus re-proposals after a view change.  A decoded 2,000-tx
# proposal is ~2 MB of Python objects, so the bound is tight (it was 256: up to
# ~0.5 GB during a storm of view changes); one evicted is decoded again at commit.
MAX_CACHED_PROPOSALS = 16
MAX_DECODED_AHEAD = 8         # payloads decoded before their step (node.core.dispatch)


class ProposalChecker:
    def __init__(self, chain: Chain, store: Store, mempool: Mempool) -> None:
        self.chain = chain
        self.store = store
        self.mempool = mempool
        self._proposals: dict[bytes, Proposal] = {}   # digest -> decoded, validated proposal
        # id(payload) -> (payload, its decoding): the step that checks it next takes it
        self._ahead: dict[int, tuple[bytes, Proposal]] = {}
        self.pace = CommitPaceMeter()          # the driver reads it at commit
        # The newest block time this node has seen proposed or committed: its own
        # proposals never go below it, so block times do not run backwards when
        # the primary changes to a node whose clock is a little behind.
        head = store.get_block(store.last_height()) if store.last_height() else None
        self.latest_timestamp_ms = head.header.timestamp_ms if head else 0

    def check_payload(self, seq: int, payload: bytes) -> bytes | None:
        """ReplicaConfig.check_payload: validate a fresh proposal we were sent."""
        if seq <= self.chain.height:
            # Committed here already (a retransmission, or this node restarted):
            # acceptable iff it is what we committed.
            digest = self.payload_digest(seq, payload)
            certificate = self.store.get_certificate(seq)
            return digest if certificate is not None and certificate.digest == digest else None
        ahead = self._ahead.pop(id(payload), None)
        decoded = ahead[1] if ahead is not None and ahead[0] is payload else None
        result = self.chain.check_proposal(seq, payload, self.mempool, decoded)
        if isinstance(result, str):
            log.warning("refusing proposal for height %d: %s", seq, result)
            return None
        digest = result.digest()
        self.remember(digest, result)
        return digest

    def decoded_ahead(self, payload: bytes, proposal: Proposal) -> None:
        """`proposal` is `payload` decoded (by the dispatcher, before the step
        that checks it): check_payload takes it instead of decoding again."""
        self._ahead[id(payload)] = (payload, proposal)
        if len(self._ahead) > MAX_DECODED_AHEAD:
            del self._ahead[next(iter(self._ahead))]

    def payload_digest(self, seq: int, payload: bytes) -> bytes | None:
        """ReplicaConfig.payload_digest: the digest of a payload carried by a
        prepared certificate (a quorum accepted it already; only bind it)."""
        try:
            proposal = Proposal.decode(payload, self.mempool.tx_by_record)
        except DecodeError:
            return None
        if proposal.chain_id != self.chain.genesis.chain_id or proposal.height != seq:
            return None
        digest = proposal.digest()
        if digest not in self._proposals:
            self.remember(digest, proposal)
        return digest

    def remember(self, digest: bytes, proposal: Proposal) -> None:
        """Keep a proposal the core may commit; its txs are in flight at its height."""
        self._proposals[digest] = proposal
        self.pace.accepted(proposal.height)
        self.latest_timestamp_ms = max(self.latest_timestamp_ms, proposal.timestamp_ms)
        self.mempool.mark_in_flight(proposal.height, (tx.id for tx in proposal.txs))
        if len(self._proposals) > MAX_CACHED_PROPOSALS:   # bounded: drop the oldest
            del self._proposals[next(iter(self._proposals))]

    def take(self, digest: bytes, payload: bytes) -> Proposal:
        """The decoded proposal of a committed payload (decoded now if it was
        not kept), forgetting it."""
        proposal = self._proposals.pop(digest, None)
        return proposal if proposal is not None else Proposal.decode(payload)

    def forget_up_to(self, height: int) -> None:
        """Drop kept proposals for heights that are committed now."""
        for digest in [d for d, p in self._proposals.items() if p.height <= height]:
            del self._proposals[digest]
