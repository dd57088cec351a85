"""The node's store: one LevelDB database (plyvel) per node.

Key families and records: see storage.layout.  Every commit is one WriteBatch
written with sync=True, so after kill -9 (or power loss) the database holds
all of a block — block, certificate, indexes, state writes, tip — or none of it.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import plyvel

from ledger.crypto import HASH_LEN

from .errors import NotAStoreError, StoreError, StoreLockedError
from .kv_store import KVStore

# Most has_tx lookups are misses (new transactions); a bloom filter answers
# those without reading a table block.
_BLOOM_BITS = 10


def _message(exc: plyvel.Error) -> str:
    arg = exc.args[0] if exc.args else exc
    return arg.decode("utf-8", "replace") if isinstance(arg, bytes) else str(arg)


def _store_error(where: str, doing: str, exc: plyvel.Error) -> StoreError:
    return StoreError(f"{where}: {doing} failed: {_message(exc)}")


class _PlyvelBatch:
    __slots__ = ("_batch", "_where", "put", "delete")

    def __init__(self, db: plyvel.DB, where: str) -> None:
        self._batch = db.write_batch(sync=True)
        self._where = where
        # Bound methods of the real batch: no wrapper call per key.
        self.put = self._batch.put
        self.delete = self._batch.delete

    def write(self) -> None:
        try:
            self._batch.write()
        except plyvel.Error as exc:
            raise _store_error(self._where, "commit", exc) from None


class _PlyvelBackend:
    __slots__ = ("_db", "_where")

    def __init__(self, db: plyvel.DB, where: str) -> None:
        self._db = db
        self._where = where

    def get(self, key: bytes) -> bytes | None:
        try:
            return self._db.get(key)
        except plyvel.Error as exc:
            raise _store_error(self._where, "read", exc) from None

    def batch(self) -> _PlyvelBatch:
        return _PlyvelBatch(self._db, self._where)

    def put_sync(self, key: bytes, value: bytes) -> None:
        try:
            self._db.put(key, value, sync=True)
        except plyvel.Error as exc:
            raise _store_error(self._where, "write", exc) from None

    def is_empty(self) -> bool:
        try:
            with self._db.iterator(include_value=False) as it:
                return next(it, None) is None
        except plyvel.Error as exc:
            raise _store_error(self._where, "read", exc) from None

    def range(self, start: bytes, stop: bytes, limit: int) -> list[tuple[bytes, bytes]]:
        try:
            with self._db.iterator(start=start, stop=stop) as it:
                return list(itertools.islice(it, limit))
        except plyvel.Error as exc:
            raise _store_error(self._where, "read", exc) from None

    def close(self) -> None:
        self._db.close()


class LevelDBStore(KVStore):
    """A Store on LevelDB; create or open one with open_store()."""

    def __init__(self, db: plyvel.DB, path: Path, genesis_hash: bytes, *,
                 initial_state_root: bytes = bytes(HASH_LEN), create: bool = True) -> None:
        self.path = path
        super().__init__(_PlyvelBackend(db, str(path)), str(path), genesis_hash,
                         initial_state_root=initial_state_root, create=create)


def _check_directory(path: Path, create: bool) -> None:
    """Refuse, before LevelDB writes a byte, any path that is not ours to use."""
    if not path.exists():
        if not create:
            raise NotAStoreError(f"{path}: no ynchain store here (it does not exist)")
        return
    if not path.is_dir():
        raise NotAStoreError(f"{path}: not a directory, so not a ynchain store")
    try:
        has_files = next(path.iterdir(), None) is not None
    except OSError as exc:
        raise StoreError(f"{path}: cannot list directory: {exc.strerror}") from None
    if not (path / "CURRENT").is_file():
        if has_files:
            raise NotAStoreError(f"{path}: directory holds files but no LevelDB database; "
                                 "not a ynchain store")
        if not create:
            raise NotAStoreError(f"{path}: no ynchain store here (the directory is empty)")


def open_store(path: str | os.PathLike, genesis_hash: bytes, *, create: bool = True,
               initial_state_root: bytes = bytes(HASH_LEN)) -> LevelDBStore:
    """Open the store at `path`, creating it (and missing parents) if allowed.

    `initial_state_root` is recorded only when the store is created: it is
    last_state_root() until the first block commits.
    """
    path = Path(path)
    _check_directory(path, create)
    if create:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"{path}: cannot create parent directory: {exc.strerror}") from None
    try:
        db = plyvel.DB(str(path), create_if_missing=create, bloom_filter_bits=_BLOOM_BITS)
    except plyvel.Error as exc:
        message = _message(exc)
        # LevelDB's own wording when the LOCK file is held (by another process,
        # or by another handle in this one): "IO error: lock <path>/LOCK: ...".
        if message.startswith("IO error: lock "):
            raise StoreLockedError(f"{path}: store is in use by another process or handle "
                                   f"({message})") from None
        raise StoreError(f"{path}: cannot open LevelDB database: {message}") from None
    try:
        return LevelDBStore(db, path, genesis_hash, initial_state_root=initial_state_root,
                            create=create)
    except BaseException:
        db.close()
        raise
