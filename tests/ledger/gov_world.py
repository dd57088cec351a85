"""A consortium that governs itself: four departments, each with an admin
(finance has two) and a clerk, validators node0..node3 (one per department),
and helpers to propose and vote through the gov contract on a World chain."""

from __future__ import annotations

from typing import Any

from ledger.consortium import ChainConfig
from ledger.receipt import Receipt
from tests.factories import key_for, make_genesis
from tests.ledger.world import World

DEPARTMENTS = ("finance", "tax", "agriculture", "tourism")
ADMINS = {f"{d}-admin": d for d in DEPARTMENTS} | {"finance-admin2": "finance"}
CLERKS = {f"{d}-clerk": d for d in DEPARTMENTS}
ROLES = {**{a: ("admin",) for a in ADMINS}, **{c: ("writer",) for c in CLERKS}}
ORGS = {**ADMINS, **CLERKS}


def gov_genesis(**kw: Any):
    """(genesis, validator keys, account keys); kw as tests.factories.make_genesis."""
    return make_genesis(accounts=tuple(ROLES), roles={**ROLES, **kw.pop("roles", {})},
                        orgs={**ORGS, **kw.pop("orgs", {})}, **kw)


def new_key(name: str) -> str:
    return key_for("fresh", name).public_key.hex()


class GovWorld(World):
    def __init__(self, **kw: Any) -> None:
        genesis, self.validator_keys, accounts = gov_genesis(**kw)
        super().__init__(genesis, accounts)

    @property
    def config(self) -> ChainConfig:
        return self.chain.config

    def propose(self, admin: str, action: str, target: str, params: dict | None = None) -> Receipt:
        args: dict[str, Any] = {"action": action, "target": target}
        if params is not None:
            args["params"] = params
        return self.call(admin, "gov", "propose", args)

    def vote(self, admin: str, pid: int, decision: str = "approve") -> Receipt:
        return self.call(admin, "gov", decision, {"id": pid})

    def passed(self, action: str, target: str, params: dict | None = None,
               voters: tuple[str, ...] = ("finance-admin", "tax-admin", "agriculture-admin")) -> dict:
        """Propose with the first voter and approve with the others; the final receipt's result."""
        first = self.propose(voters[0], action, target, params)
        assert first.ok, first
        result = first.result
        for admin in voters[1:]:
            receipt = self.vote(admin, result["id"])
            assert receipt.ok, receipt
            result = receipt.result
        assert result["status"] == "executed", result
        return result
