"""The in-memory twin of LevelDBStore, for tests and the consensus simulator.

Same implementation (storage.kv_store) over a dict, so same behaviour, same
encodings and same errors; only durability is missing.
"""

from __future__ import annotations

from typing import Mapping

from .kv_store import NO_STATE, KVStore
from .segments import MemorySegments, SegmentLog


class _DictBatch:
    __slots__ = ("_data", "_ops")

    def __init__(self, data: dict[bytes, bytes]) -> None:
        self._data = data
        self._ops: list[tuple[bytes, bytes | None]] = []

    def put(self, key: bytes, value: bytes) -> None:
        self._ops.append((key, value))

    def delete(self, key: bytes) -> None:
        self._ops.append((key, None))

    def write(self) -> None:
        data = self._data
        for key, value in self._ops:
            if value is None:
                data.pop(key, None)
            else:
                data[key] = value
        self._ops.clear()


class _DictBackend:
    __slots__ = ("data",)

    def __init__(self) -> None:
        self.data: dict[bytes, bytes] = {}

    def get(self, key: bytes) -> bytes | None:
        return self.data.get(key)

    def batch(self) -> _DictBatch:
        return _DictBatch(self.data)

    def put_sync(self, key: bytes, value: bytes) -> None:
        self.data[key] = value

    def is_empty(self) -> bool:
        return not self.data

    def range(self, start: bytes, stop: bytes, limit: int) -> list[tuple[bytes, bytes]]:
        # A full pass per call: the twin serves tests, where state is small.
        keys = sorted(k for k in self.data if start <= k < stop)[:limit]
        return [(k, self.data[k]) for k in keys]

    def close(self) -> None:
        pass


class MemoryStore(KVStore):
    def __init__(self, genesis_hash: bytes, *,
                 initial_state: Mapping[bytes, bytes] = NO_STATE) -> None:
        super().__init__(_DictBackend(), SegmentLog(MemorySegments(), "<memory>"), "<memory>",
                         genesis_hash, initial_state=initial_state)
