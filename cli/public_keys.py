"""Public keys given on the command line: hex, or a file of public material.

Organisations exchange only public keys: the hex that `ynchain keys gen` and
`ynchain keys show` print, or the JSON `ynchain keys show --json` writes.  A
private key file is refused where a public key is asked for, so one cannot be
passed around by mistake.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from .errors import CliError

_HEX = re.compile(r"[0-9a-fA-F]{64}")
MAX_PUBLIC_FILE = 64 * 1024


def public_key_hex(text: str, what: str = "--public-key") -> str:
    """64 lowercase hex digits from HEX or from a public key FILE."""
    if _HEX.fullmatch(text):
        return text.lower()
    path = Path(text)
    if not path.is_file():
        raise CliError(f"{what}: expected 64 hex digits or a public key file, got {text[:70]!r}")
    try:
        raw = path.read_bytes()[:MAX_PUBLIC_FILE]
        doc = json.loads(raw)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CliError(f"{what}: {path}: not a public key file ({exc})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("public_key"), str) \
            or not _HEX.fullmatch(doc["public_key"]):
        raise CliError(f"{what}: {path}: no \"public_key\" of 64 hex digits in it")
    if "seed" in doc:
        raise CliError(f"{what}: {path} is a private key file; give its public key instead "
                       f"(`ynchain keys show {path}`); a private key never leaves its host")
    return doc["public_key"].lower()
