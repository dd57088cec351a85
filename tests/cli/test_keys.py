import json
import os
import stat

from ledger.crypto import load_key

from .conftest import one_error_line


def test_gen_writes_0600_key_and_prints_public_key(run, tmp_path):
    out = tmp_path / "k.key"
    result = run("keys", "gen", "--out", out)
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert result.stdout.strip() == load_key(out).public_key.hex()


def test_show_prints_public_key_never_seed(run, tmp_path):
    out = tmp_path / "k.key"
    run("keys", "gen", "--out", out)
    key = load_key(out)
    text = run("keys", "show", out)
    assert text.exit_code == 0 and text.stdout.strip() == key.public_key.hex()
    doc = json.loads(run("keys", "show", out, "--json").stdout)
    assert doc == {"file": str(out), "public_key": key.public_key.hex()}
    assert key.seed.hex() not in text.output


def test_gen_refuses_existing_file_unless_forced(run, tmp_path):
    out = tmp_path / "k.key"
    run("keys", "gen", "--out", out)
    before = out.read_text()
    line = one_error_line(run("keys", "gen", "--out", out))
    assert "already exists" in line and "--force" in line
    assert out.read_text() == before
    forced = run("keys", "gen", "--out", out, "--force")
    assert forced.exit_code == 0 and out.read_text() != before


def test_show_malformed_key(run, tmp_path):
    bad = tmp_path / "bad.key"
    bad.write_text("{not json")
    os.chmod(bad, 0o600)
    assert "not a valid key file" in one_error_line(run("keys", "show", bad))


def test_show_key_readable_by_others(run, tmp_path):
    out = tmp_path / "k.key"
    run("keys", "gen", "--out", out)
    os.chmod(out, 0o644)
    line = one_error_line(run("keys", "show", out))
    assert "accessible by others" in line and "chmod 600" in line


def test_show_missing_file(run, tmp_path):
    assert "no such key file" in one_error_line(run("keys", "show", tmp_path / "nope.key"))


def test_gen_into_missing_directory(run, tmp_path):
    assert "cannot write key file" in one_error_line(run("keys", "gen", "--out", tmp_path / "no" / "k"))
