"""A consortium with the organisations the business contracts need, and a
chain to run their calls on one tx per block (or several) with helpers that
check what a refusal must leave behind: no writes, no change of state.
"""

from __future__ import annotations

from typing import Any

from ledger import codec
from ledger.contracts import CommittedState, QueryReader
from ledger.receipt import Receipt
from ledger.tx import Transaction
from tests.factories import make_genesis, make_tx
from tests.ledger.chain import Chain

ROLES = {
    "hospital": ("issuer",), "hospital-b": ("issuer",), "clinic": ("issuer",),
    "employer": ("reimburser",), "insurance": ("reimburser",), "insurer": ("reimburser",),
    "coop": ("producer",), "coop-b": ("producer",), "workshop": (), "lab": ("lab",),
    "distributor": (), "shop": (),
    "core": (), "steel": (), "bearings": (), "bank": ("bank",), "bank2": ("bank",),
    "auditor": ("auditor",), "finance": ("writer",),
}
# hospital-b is a second account of the hospital; coop-b a second producer organisation
ORGS = {"hospital-b": "hospital"}
GENESIS, _, ACCOUNTS = make_genesis(accounts=tuple(ROLES), roles=ROLES, orgs=ORGS)


def scan_dict(state: dict[bytes, bytes]):
    def scan(prefix: bytes, start_after: bytes | None, limit: int) -> list[tuple[bytes, bytes]]:
        keys = sorted(k for k in state if k.startswith(prefix)
                      and (start_after is None or k > start_after))
        return [(k, state[k]) for k in keys[:limit]]
    return scan


class World:
    """A chain on GENESIS (or another genesis) with call helpers."""

    def __init__(self, genesis=GENESIS, accounts=ACCOUNTS, start_ms: int | None = None) -> None:
        self.genesis = genesis
        self.accounts = accounts
        self.chain = Chain(genesis) if start_ms is None else Chain(genesis, start_ms)
        self._nonce = 0

    def tx(self, account: str, contract: str, method: str, args: Any) -> Transaction:
        self._nonce += 1
        return make_tx(self.accounts[account], self.genesis, contract, method, args,
                       nonce=self._nonce, valid_until=self.chain.height + 500)

    def call(self, account: str, contract: str, method: str, args: Any,
             timestamp_ms: int | None = None) -> Receipt:
        """Run one call as the next block; its receipt."""
        (receipt,) = self.chain.run([self.tx(account, contract, method, args)], timestamp_ms).receipts
        return receipt

    def ok(self, account: str, contract: str, method: str, args: Any, **kw) -> Any:
        receipt = self.call(account, contract, method, args, **kw)
        assert receipt.ok, (method, receipt)
        return receipt.result

    def refused(self, account: str, contract: str, method: str, args: Any, code: int,
                message: str | None = None, **kw) -> str:
        """Assert the call fails with `code` (and exactly `message`, if given),
        writes nothing and leaves the state as it was; returns the message."""
        before = dict(self.chain.state)
        root = self.chain.root
        result = self.chain.run([self.tx(account, contract, method, args)], kw.get("timestamp_ms"))
        (receipt,) = result.receipts
        assert receipt.status == code, (receipt.status, receipt.message)
        if message is not None:
            assert receipt.message == message, receipt.message
        assert result.writes == {} and result.state_root == root
        assert self.chain.state == before
        return receipt.message

    def committed(self) -> CommittedState:
        return CommittedState(self.chain.state.get, scan_dict(self.chain.state), self.chain.height,
                              self.genesis)

    def reader(self, contract: str) -> QueryReader:
        return QueryReader(contract, self.committed())

    def raw(self, contract: str, table: str, key: str) -> Any:
        value = self.chain.state.get(f"{contract}/{table}/{key}".encode())
        return None if value is None else codec.unpack(value)
