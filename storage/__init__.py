"""Persistent storage: blocks, certificates, tx index, state, safety record.

`open_store(path, genesis_hash)` gives the node's LevelDB store;
`MemoryStore(genesis_hash)` is its in-memory twin.  Both implement
storage.base.Store.  Key layout: storage.layout.  A node's safety record is
also kept outside the database (storage.safety_copy); `resync_store`
rebuilds a damaged store from it.
"""

from .base import Store
from .errors import (
    CommitOrderError, CorruptStoreError, GenesisMismatchError, LostStoreError, NotAStoreError,
    SafetyCopyError, SchemaVersionError, StoreError, StoreLockedError,
)
from .leveldb_store import LevelDBStore, open_store, resync_store
from .memory_store import MemoryStore

__all__ = [
    "Store", "LevelDBStore", "MemoryStore", "open_store", "resync_store",
    "StoreError", "NotAStoreError", "SchemaVersionError", "StoreLockedError",
    "GenesisMismatchError", "CommitOrderError", "CorruptStoreError", "LostStoreError",
    "SafetyCopyError",
]
