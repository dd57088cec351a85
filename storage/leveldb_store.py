"""The node's store: one LevelDB database (plyvel) per node.

Key families and records: see storage.layout.  Every commit is one WriteBatch
written with sync=True, so after kill -9 (or power loss) the database holds
all of a block — block, certificate, indexes, state writes, tip — or none of it.

Damage is an error, never silently repaired: the database is opened with
`paranoid_checks`, without which LevelDB drops the records of a damaged .log
at open and carries on (16 flipped bytes rolled a safety record back two
votes).  A node's store also keeps its safety record in a copy outside the
database (storage.safety_copy) and is refused if the two disagree.
`resync_store` is the way back: the damaged database is moved aside and a
fresh one holding only the kept safety record is created; the node refetches
the chain from its peers.
"""

from __future__ import annotations

import fcntl
import itertools
import os
import time
from pathlib import Path
from typing import Mapping

import plyvel


from .errors import CorruptStoreError, NotAStoreError, SafetyCopyError, StoreError, StoreLockedError
from .kv_store import NO_STATE, KVStore, refuse_if_voted
from .safety_copy import SafetyCopy
from .segments import FileSegments, SegmentLog

# Most has_tx lookups are misses (new transactions); a bloom filter answers
# those without reading a table block.
_BLOOM_BITS = 10
# The state tree writes ~3 nodes (~600 bytes, mostly hashes) per written key,
# in every block's batch.  Hashes and signatures do not compress, so Snappy
# only costs CPU; and a 32 MiB memtable (default 4) flushes and compacts ~8x
# less often.  Together they cut the commit path's CPU (LevelDB's background
# threads included) from ~120 to ~60-75 us per kv tx in the same run (the
# hash-chain root it replaced measured ~20-30 us).
_WRITE_BUFFER = 32 << 20
SEGMENTS_DIR = "blocks"      # inside the database directory (LevelDB ignores it)


def _message(exc: plyvel.Error) -> str:
    arg = exc.args[0] if exc.args else exc
    return arg.decode("utf-8", "replace") if isinstance(arg, bytes) else str(arg)


def _store_error(where: str, doing: str, exc: plyvel.Error) -> StoreError:
    if isinstance(exc, plyvel.CorruptionError):
        return CorruptStoreError(f"{where}: the database is damaged ({doing}: {_message(exc)})")
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
        # Checked blocks: a damaged table block is an error, not garbage returned
        # (LevelDB checks a block when it reads it from disk, not from its cache).
        try:
            return self._db.get(key, verify_checksums=True)
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
            with self._db.iterator(include_value=False, verify_checksums=True) as it:
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
                 initial_state: Mapping[bytes, bytes] = NO_STATE, create: bool = True,
                 safety_copy: SafetyCopy | None = None) -> None:
        self.path = path
        segments = SegmentLog(FileSegments(path / SEGMENTS_DIR), str(path / SEGMENTS_DIR))
        try:
            super().__init__(_PlyvelBackend(db, str(path)), segments, str(path), genesis_hash,
                             initial_state=initial_state, create=create, safety_copy=safety_copy)
        except BaseException:
            segments.close()
            raise


def _check_directory(path: Path, create: bool) -> bool:
    """Refuse, before LevelDB writes a byte, any path that is not ours to use;
    whether a database is there."""
    if not path.exists():
        if not create:
            raise NotAStoreError(f"{path}: no ynchain store here (it does not exist)")
        return False
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
        return False
    return True


def open_store(path: str | os.PathLike, genesis_hash: bytes, *, create: bool = True,
               initial_state: Mapping[bytes, bytes] = NO_STATE,
               safety_dir: str | os.PathLike | None = None) -> LevelDBStore:
    """Open the store at `path`, creating it (and missing parents) if allowed.

    `initial_state` (the genesis state) is written only when the store is
    created, as the state tree's version 0: its root is last_state_root()
    until the first block commits.  `safety_dir` keeps the
    copy of the safety record (storage.safety_copy; a node passes one, and
    should keep it off the data directory): opening refuses a store whose
    record is behind it (CorruptStoreError), a copy that is unreadable or
    missing beside a record (SafetyCopyError), and creating a store for a node
    whose copy shows it has voted (LostStoreError).
    """
    path = Path(path)
    exists = _check_directory(path, create)
    copy = SafetyCopy(safety_dir) if safety_dir is not None else None
    if copy is not None and not exists:
        refuse_if_voted(str(path), copy, copy.load())
    if create:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"{path}: cannot create parent directory: {exc.strerror}") from None
    db = _open_leveldb(path, create)
    try:
        return LevelDBStore(db, path, genesis_hash, initial_state=initial_state, create=create, safety_copy=copy)
    except BaseException:
        db.close()
        if copy is not None:
            copy.close()
        raise


def _open_leveldb(path: Path, create: bool) -> plyvel.DB:
    try:
        return plyvel.DB(str(path), create_if_missing=create, bloom_filter_bits=_BLOOM_BITS,
                         paranoid_checks=True, compression=None, write_buffer_size=_WRITE_BUFFER)
    except plyvel.CorruptionError as exc:
        raise CorruptStoreError(f"{path}: the database is damaged ({_message(exc)})") from None
    except plyvel.Error as exc:
        message = _message(exc)
        # LevelDB's own wording when the LOCK file is held (by another process,
        # or by another handle in this one): "IO error: lock <path>/LOCK: ...".
        if message.startswith("IO error: lock "):
            raise StoreLockedError(f"{path}: store is in use by another process or handle "
                                   f"({message})") from None
        raise StoreError(f"{path}: cannot open LevelDB database: {message}") from None


def resync_store(path: str | os.PathLike, genesis_hash: bytes, safety_dir: str | os.PathLike, *,
                 initial_state: Mapping[bytes, bytes] = NO_STATE) -> Path | None:
    """Rebuild a node's damaged or lost store from its kept safety record.

    Moves the database at `path` (if any) aside, to `<path>.damaged-<time>`,
    which it returns, and creates a fresh store holding only the kept record:
    the node then refetches every block from its peers (each checked against
    its certificate) and cannot sign a vote that conflicts with one it signed
    before.  Refused while a process holds the store, or without a readable
    copy (SafetyCopyError: only a backup can help then).
    """
    path = Path(path)
    copy = SafetyCopy(safety_dir)
    kept = copy.load()
    if kept is None:
        raise SafetyCopyError(f"{copy.directory}: no safety record copy here to resync from; "
                              "restore it from a backup (a node that never started needs no resync)")
    moved = None
    if path.exists():
        _refuse_if_locked(path)
        moved = path.with_name(f"{path.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
        suffix = 1
        while moved.exists():
            moved = moved.with_name(f"{path.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}-{suffix}")
            suffix += 1
        try:
            path.rename(moved)
        except OSError as exc:
            raise StoreError(f"{path}: cannot move the damaged store aside: {exc.strerror}") from None
    with LevelDBStore(_open_leveldb(path, True), path, genesis_hash,
                      initial_state=initial_state) as store:
        store.restore_safety_record(kept.number, kept.record)
    return moved


def _refuse_if_locked(path: Path) -> None:
    """LevelDB holds an fcntl lock on LOCK while a process has the store open."""
    try:
        fd = os.open(path / "LOCK", os.O_RDWR)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise StoreError(f"{path}: cannot check whether the store is in use: {exc.strerror}") from None
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.lockf(fd, fcntl.LOCK_UN)
    except OSError:
        raise StoreLockedError(f"{path}: store is in use (is the node still running?)") from None
    finally:
        os.close(fd)
