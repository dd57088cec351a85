"""Every error type of the ledger layer, in one place."""


class LedgerError(Exception):
    """Base class of the errors this package raises on purpose."""


class DecodeError(LedgerError):
    """Bytes that are not a valid encoding of the expected object."""


class ValidationError(LedgerError):
    """A well-formed object that breaks a rule (wrong chain, bad signature, ...)."""


class KeyFileError(LedgerError):
    """A key file that is missing, malformed or readable by others."""


class GenesisError(LedgerError):
    """A genesis file that is malformed; the message says exactly what is wrong."""


class ContractError(LedgerError):
    """A contract call refused by its contract; becomes the tx's receipt.
    `code` is a ledger.receipt status (never OK)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class StateTreeError(LedgerError):
    """The state tree cannot answer: a node is missing from its store (a version
    never written or already pruned), a stored node is corrupt, or an update
    does not move the tree forward."""
