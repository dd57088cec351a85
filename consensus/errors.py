"""Every error type of the consensus core, in one place (h11 style).

LocalProtocolError: the local driver broke the interface (a bug on our side).
RemoteProtocolError: a peer sent bytes that are not a valid consensus message.
SafetyRecordError: the stored safety record cannot be read; never guess, stop.
"""


class ConsensusError(Exception):
    """Base class of the errors this package raises on purpose."""


class LocalProtocolError(ConsensusError):
    """The driver called the core in a way the interface forbids."""


class RemoteProtocolError(ConsensusError):
    """A peer's message is malformed (wrong types, sizes, ranges or counts)."""


class SafetyRecordError(ConsensusError):
    """A persisted safety record is corrupt or of an unknown version."""
