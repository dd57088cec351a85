"""Key files: round trip, permissions, refusal to overwrite, malformed files."""

from __future__ import annotations

import json
import os
import stat

import pytest

from ledger.crypto import KeyPair, load_key, save_key
from ledger.errors import KeyFileError


@pytest.fixture
def key() -> KeyPair:
    return KeyPair.from_seed(bytes(range(32)))


def test_save_load_round_trip_with_mode_0600(tmp_path, key) -> None:
    path = tmp_path / "node.key"
    save_key(path, key)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    loaded = load_key(path)
    assert loaded.seed == key.seed and loaded.public_key == key.public_key
    assert loaded.sign(b"m") == key.sign(b"m")


def test_mode_is_0600_even_with_a_permissive_umask(tmp_path, key) -> None:
    old = os.umask(0)
    try:
        save_key(tmp_path / "k", key)
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "k").stat().st_mode) == 0o600


def test_refuses_to_overwrite(tmp_path, key) -> None:
    path = tmp_path / "node.key"
    save_key(path, key)
    other = KeyPair.from_seed(b"\x01" * 32)
    with pytest.raises(KeyFileError, match="already exists"):
        save_key(path, other)
    assert load_key(path).public_key == key.public_key
    save_key(path, other, overwrite=True)
    assert load_key(path).public_key == other.public_key


def test_world_readable_key_is_refused(tmp_path, key) -> None:
    path = tmp_path / "node.key"
    save_key(path, key)
    path.chmod(0o644)
    with pytest.raises(KeyFileError, match=r"accessible by others \(mode 0644\).*chmod 600"):
        load_key(path)


def test_missing_file(tmp_path) -> None:
    with pytest.raises(KeyFileError, match="no such key file"):
        load_key(tmp_path / "absent.key")


def test_directory_is_not_a_key_file(tmp_path) -> None:
    d = tmp_path / "dir"
    d.mkdir(mode=0o700)
    with pytest.raises(KeyFileError, match="not a regular file"):
        load_key(d)


def _write(path, text: str) -> None:
    path.write_text(text)
    path.chmod(0o600)


@pytest.mark.parametrize("body, message", [
    ("not json", "not a valid key file"),
    ("\xff\xfe", "not a valid key file"),
    ("[]", "not an ed25519 key file"),
    ('{"type": "rsa", "seed": "00", "public_key": "00"}', "not an ed25519 key file"),
    ('{"type": "ed25519", "public_key": "00"}', "must be hex strings"),
    ('{"type": "ed25519", "seed": "zz", "public_key": "00"}', "must be hex strings"),
    ('{"type": "ed25519", "seed": 5, "public_key": "00"}', "must be hex strings"),
    ('{"type": "ed25519", "seed": "0011", "public_key": "00"}', "seed must be 32 bytes, got 2"),
])
def test_malformed_files(tmp_path, body: str, message: str) -> None:
    path = tmp_path / "bad.key"
    _write(path, body)
    with pytest.raises(KeyFileError, match=message):
        load_key(path)


def test_seed_and_public_key_mismatch(tmp_path, key) -> None:
    path = tmp_path / "node.key"
    other = KeyPair.from_seed(b"\x02" * 32)
    _write(path, json.dumps({"type": "ed25519", "seed": key.seed.hex(),
                             "public_key": other.public_key.hex()}))
    with pytest.raises(KeyFileError, match="does not match the seed"):
        load_key(path)


def test_repr_never_shows_the_seed(key) -> None:
    assert key.seed.hex() not in repr(key)
    assert key.public_key.hex() in repr(key)
