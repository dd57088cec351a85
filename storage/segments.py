"""Append-only segment files for the bulky, write-once data: proposal payloads
(the bytes of every block's transactions) kept apart from LevelDB.

Why apart: in one LSM with the tx index and the state, every ~300 KB block
body was rewritten by each compaction of the random tx-id keys around it
(~11x write amplification; compaction grew from 13 % of a node's CPU on a fresh
chain to 35-50 % at 300-400k txs), and every block was written twice, as a
prepared payload and again as the committed block.  Here a payload is written
once, when it is prepared (or, for a block fetched by sync, when it is
committed); the committed block refers to it from its index entry in LevelDB,
and nothing is ever rewritten.

Format: files `NNNNNNNN.seg` in one directory, each a sequence of records

    magic "ynS1" | body length (4 bytes BE) | blake2b-128 of the body | body

A `Ref` (segment, offset of the body, length) names a body.  Appends are
fdatasync'd before they return, and a Ref is only ever stored (in LevelDB's
synced batches) after that, so a crash leaves at most an unreferenced tail:
the next append goes after it, and nothing points into it.  Reading a whole
body checks its magic, length and checksum (damage is CorruptStoreError,
never data); a slice of a body (one tx) is read as is, and its reader checks
it (node.service: the tx must hash to the id it was looked up by).

`FileSegments` keeps them on disk; `MemorySegments` is the twin for
MemoryStore.  Both go through the one `SegmentLog`, so framing, rotation and
checks are the same.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, Sequence

from .errors import CorruptStoreError, StoreError
from .safety_copy import fsync_directory

MAGIC = b"ynS1"
_CHECKSUM = 16
HEADER = len(MAGIC) + 4 + _CHECKSUM
SEGMENT_BYTES = 256 * 1024 * 1024      # a new file after this many bytes
MAX_BODY = (1 << 32) - 1


@dataclass(frozen=True, slots=True)
class Ref:
    segment: int
    offset: int       # of the body, past its record header
    length: int

    def to_record(self) -> list[int]:
        return [self.segment, self.offset, self.length]


def _checksum(body: bytes | memoryview) -> bytes:
    return hashlib.blake2b(body, digest_size=_CHECKSUM).digest()


class Segments(Protocol):
    """Raw numbered append-only files."""

    def numbers(self) -> list[int]: ...

    def size(self, number: int) -> int: ...

    def create(self, number: int) -> None: ...

    def append(self, number: int, data: bytes) -> None:
        """Durable (fdatasync'd) before it returns."""

    def read(self, number: int, offset: int, length: int) -> bytes: ...

    def close(self) -> None: ...


class SegmentLog:
    """Bodies appended to numbered segments, read back by Ref."""

    def __init__(self, segments: Segments, where: str, segment_bytes: int = SEGMENT_BYTES) -> None:
        self._files = segments
        self.where = where
        self._segment_bytes = segment_bytes
        numbers = segments.numbers()
        # Nothing is created before the first append: opening a store that is
        # then refused (another schema, another genesis) leaves it as it was.
        self._created = bool(numbers)
        self._current = numbers[-1] if numbers else 1
        self._size = segments.size(self._current) if numbers else 0

    def append(self, bodies: Sequence[bytes]) -> list[Ref]:
        """Write `bodies` (one record each, one write and one flush in all);
        their Refs, durable when this returns."""
        if not bodies:
            return []
        if not self._created:
            self._files.create(self._current)
            self._created = True
        elif self._size >= self._segment_bytes:
            self._current += 1
            self._files.create(self._current)
            self._size = 0
        refs, parts = [], []
        offset = self._size
        for body in bodies:
            if type(body) is not bytes:
                raise StoreError(f"{self.where}: a segment body must be bytes, "
                                 f"not {type(body).__name__}")
            if len(body) > MAX_BODY:
                raise StoreError(f"{self.where}: a body of {len(body)} bytes is too large")
            parts += (MAGIC, len(body).to_bytes(4, "big"), _checksum(body), body)
            refs.append(Ref(self._current, offset + HEADER, len(body)))
            offset += HEADER + len(body)
        self._files.append(self._current, b"".join(parts))
        self._size = offset
        return refs

    def read(self, ref: Ref) -> bytes:
        """A whole body, checked against its record header."""
        start = ref.offset - HEADER
        if start < 0:
            raise CorruptStoreError(f"{self.where}: segment reference {ref} points before a record")
        data = self._read(ref.segment, start, HEADER + ref.length)
        body = data[HEADER:]
        if (data[:len(MAGIC)] != MAGIC
                or int.from_bytes(data[len(MAGIC):len(MAGIC) + 4], "big") != ref.length
                or data[len(MAGIC) + 4:HEADER] != _checksum(body)):
            raise CorruptStoreError(f"{self.where}: segment {ref.segment} is damaged at offset "
                                    f"{start} (record header or checksum does not match)")
        return body

    def read_slice(self, segment: int, offset: int, length: int) -> bytes:
        """Bytes inside a body, unchecked (the caller checks what they hold)."""
        return self._read(segment, offset, length)

    def _read(self, segment: int, offset: int, length: int) -> bytes:
        try:
            data = self._files.read(segment, offset, length)
        except FileNotFoundError:
            raise CorruptStoreError(f"{self.where}: segment {segment} is missing") from None
        except OSError as exc:
            raise StoreError(f"{self.where}: cannot read segment {segment}: {exc.strerror}") from None
        if len(data) != length:
            raise CorruptStoreError(f"{self.where}: segment {segment} is shorter than the "
                                    f"index says (wanted {length} bytes at {offset})")
        return data

    def close(self) -> None:
        self._files.close()


def segment_name(number: int) -> str:
    return f"{number:08d}.seg"


class FileSegments:
    """Segments as files in `directory` (created with its parents if missing)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._append_fd: tuple[int, int] | None = None     # (number, fd)
        self._read_fds: dict[int, int] = {}

    def numbers(self) -> list[int]:
        try:
            names = [p.name for p in self.directory.iterdir()]
        except FileNotFoundError:
            return []                            # created with the first segment
        except OSError as exc:
            raise StoreError(f"{self.directory}: cannot list segments: {exc.strerror}") from None
        return sorted(int(n[:-4]) for n in names if n.endswith(".seg") and n[:-4].isdigit())

    def _path(self, number: int) -> Path:
        return self.directory / segment_name(number)

    def size(self, number: int) -> int:
        try:
            return self._path(number).stat().st_size
        except FileNotFoundError:
            return 0

    def create(self, number: int) -> None:
        directory = self.directory
        try:
            if not directory.exists():
                directory.mkdir(parents=True)
                fsync_directory(directory.parent)
        except OSError as exc:
            raise StoreError(f"{directory}: cannot create the segment directory: {exc.strerror}") from None
        fd = self._writer(number)
        os.fsync(fd)
        fsync_directory(self.directory)      # the new file survives a power loss

    def _writer(self, number: int) -> int:
        if self._append_fd is not None and self._append_fd[0] == number:
            return self._append_fd[1]
        if self._append_fd is not None:
            os.close(self._append_fd[1])
        try:
            fd = os.open(self._path(number), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        except OSError as exc:
            raise StoreError(f"{self._path(number)}: cannot open for appending: {exc.strerror}") from None
        self._append_fd = (number, fd)
        return fd

    def append(self, number: int, data: bytes) -> None:
        fd = self._writer(number)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fdatasync(fd)
        except OSError as exc:
            raise StoreError(f"{self._path(number)}: cannot append: {exc.strerror}") from None

    def read(self, number: int, offset: int, length: int) -> bytes:
        fd = self._read_fds.get(number)
        if fd is None:
            fd = self._read_fds[number] = os.open(self._path(number), os.O_RDONLY)
        return os.pread(fd, length, offset)

    def close(self) -> None:
        if self._append_fd is not None:
            os.close(self._append_fd[1])
            self._append_fd = None
        for fd in self._read_fds.values():
            os.close(fd)
        self._read_fds.clear()


class MemorySegments:
    """The in-memory twin (no durability), for MemoryStore."""

    def __init__(self) -> None:
        self.files: dict[int, bytearray] = {}

    def numbers(self) -> list[int]:
        return sorted(self.files)

    def size(self, number: int) -> int:
        return len(self.files.get(number, b""))

    def create(self, number: int) -> None:
        self.files.setdefault(number, bytearray())

    def append(self, number: int, data: bytes) -> None:
        self.files[number] += data

    def read(self, number: int, offset: int, length: int) -> bytes:
        if number not in self.files:
            raise FileNotFoundError(number)
        return bytes(self.files[number][offset:offset + length])

    def close(self) -> None:
        pass

