"""How an observer keeps up with the chain without voting.

Validators push every block they commit, with its certificate, to the
observers connected to them (peer_messages.NEW_BLOCK); the observer checks the
certificate against the validator set in force at the block's height,
re-executes the block and stores it (node.core.chain.Chain.apply_synced, the
very checks block sync makes).  A pushed block that does not follow the tip
(the observer was away, or a push was lost) starts block sync up to it;
blocks from sync arrive through `synced`.  Pushed blocks are a convenience,
never trusted: a bad one is dropped and counted against its sender.
"""

from __future__ import annotations

import logging
from typing import Callable

from ledger.block import Block
from ledger.certificate import CommitCertificate
from node.core.chain import Chain, CommitResult, SyncedBlockError

log = logging.getLogger("ynchain.observer")


class BlockFollower:
    def __init__(self, chain: Chain, *, want_sync: Callable[[int], None],
                 on_commit: Callable[[CommitResult], None],
                 on_fault: Callable[[bytes, str], None]) -> None:
        self._chain = chain
        self._want_sync = want_sync
        self._on_commit = on_commit
        self._on_fault = on_fault

    def pushed(self, peer: bytes, block: Block, certificate: CommitCertificate) -> None:
        """A block a validator committed and pushed to us."""
        height = self._chain.height
        if block.height <= height:
            return                          # another validator's push came first
        if block.height > height + 1:
            self._want_sync(block.height)   # a gap: sync fetches (and checks) the blocks between
            return
        try:
            result = self._chain.apply_synced(block, certificate)
        except SyncedBlockError as exc:
            log.warning("pushed block refused: %s", exc)
            self._on_fault(peer, "bad pushed block")
            return
        self._on_commit(result)

    def synced(self, results: list[CommitResult]) -> None:
        """Blocks stored by block sync."""
        for result in results:
            self._on_commit(result)
