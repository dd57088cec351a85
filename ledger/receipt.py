"""Execution receipts: what happened to one committed transaction."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from . import codec

# Status codes; 0 is success, everything else is an error the sender can read.
OK = 0
ERR_UNKNOWN_CONTRACT = 1
ERR_UNKNOWN_METHOD = 2
ERR_BAD_ARGS = 3
ERR_PERMISSION = 4
ERR_NOT_FOUND = 5
ERR_DUPLICATE = 6      # same tx id already committed (only a faulty primary proposes one)
ERR_EXPIRED = 7        # valid_until below the block height (likewise)
ERR_INVALID = 8        # unknown sender, wrong chain or bad signature (likewise)
ERR_CONFLICT = 9       # the state forbids it: receipt number taken, already reimbursed

STATUS_NAMES = {
    OK: "ok", ERR_UNKNOWN_CONTRACT: "unknown_contract", ERR_UNKNOWN_METHOD: "unknown_method",
    ERR_BAD_ARGS: "bad_args", ERR_PERMISSION: "permission_denied", ERR_NOT_FOUND: "not_found",
    ERR_DUPLICATE: "duplicate", ERR_EXPIRED: "expired", ERR_INVALID: "invalid",
    ERR_CONFLICT: "conflict",
}


@dataclass(frozen=True, slots=True)
class Receipt:
    status: int
    message: str = ""
    result: Any = None

    @property
    def ok(self) -> bool:
        return self.status == OK

    @property
    def status_name(self) -> str:
        return STATUS_NAMES.get(self.status, f"error_{self.status}")

    def to_record(self) -> list:
        return [self.status, self.message, self.result]

    @classmethod
    def from_record(cls, rec: Any) -> "Receipt":
        codec.expect_list(rec, 3, "receipt")
        codec.expect_uint(rec[0], "receipt.status", 255)
        codec.expect_str(rec[1], "receipt.message", 1024)
        codec.check_plain(rec[2], "receipt.result")
        return cls(rec[0], rec[1], rec[2])
