"""Every error type of the storage layer, in one place.

Each carries a one-line message naming the store's path and what is wrong,
so the CLI and daemon can print it as is.
"""


class StoreError(Exception):
    """Base class of the errors this package raises on purpose."""


class NotAStoreError(StoreError):
    """The path is not a ynchain store (missing, a file, or someone else's data)."""


class SchemaVersionError(StoreError):
    """The store was written with another schema version than this code reads."""


class StoreLockedError(StoreError):
    """Another process (or another handle in this one) holds the store open."""


class GenesisMismatchError(StoreError):
    """The store belongs to a chain with another genesis."""


class CommitOrderError(StoreError):
    """A commit that does not extend the last committed block."""


class CorruptStoreError(StoreError):
    """The database is damaged: LevelDB found a bad checksum, a stored record
    does not decode, or the safety record is older than its kept copy
    (storage.safety_copy).  Recover by resyncing (`ynchain node resync`) or
    restoring a backup."""


class LostStoreError(StoreError):
    """The database is missing or empty although the safety record copy shows
    the node has voted before: starting afresh would forget its votes."""


class SafetyCopyError(StoreError):
    """The safety record copy kept outside the database is missing while the
    database holds a record, unreadable, or cannot be written.  Only a backup
    of it can replace it."""
