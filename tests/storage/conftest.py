from __future__ import annotations

from typing import Callable

import plyvel
import pytest

from storage import MemoryStore, open_store
from storage.kv_store import KVStore

from .chain import GENESIS


def raw_records(store: KVStore) -> dict[bytes, bytes]:
    """Every key/value a store holds, read beneath the Store interface."""
    backend = store._kv
    if isinstance(store, MemoryStore):
        return dict(backend.data)
    return dict(backend._db.iterator())


@pytest.fixture(params=["memory", "leveldb"])
def make_store(request, tmp_path) -> Callable[..., KVStore]:
    """Builds a fresh store of the parametrized kind; closes all at teardown."""
    opened: list[KVStore] = []

    def make(**kwargs) -> KVStore:
        if request.param == "memory":
            store = MemoryStore(GENESIS, **kwargs)
        else:
            store = open_store(tmp_path / f"db{len(opened)}", GENESIS, **kwargs)
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()


def put_raw(path, key: bytes, value: bytes) -> None:
    db = plyvel.DB(str(path), create_if_missing=True)
    try:
        db.put(key, value)
    finally:
        db.close()


@pytest.fixture
def repo_root():
    """The directory child processes run in, so they import this checkout."""
    from pathlib import Path
    return Path(__file__).resolve().parents[2]
