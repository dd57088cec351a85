"""`ynchain keys`: create and inspect ed25519 key files."""

from __future__ import annotations

import click

from ledger.crypto import KeyPair, save_key
from ledger.errors import KeyFileError

from .errors import CliError
from .submit import load_key_file
from .target import json_option, print_json


@click.group()
def keys():
    """Create and inspect ed25519 key files (JSON, mode 0600)."""


@keys.command("gen")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="File to write.")
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
@json_option
def keys_gen(out, force, as_json):
    """Generate a new key pair into --out and print its public key."""
    key = KeyPair.generate()
    try:
        save_key(out, key, overwrite=force)
    except KeyFileError as exc:
        message = str(exc)
        raise CliError(message + ("; pass --force to replace it" if "already exists" in message
                                  else "")) from None
    if as_json:
        print_json({"file": out, "public_key": key.public_key.hex()})
    else:
        click.echo(key.public_key.hex())


@keys.command("show")
@click.argument("file", type=click.Path(dir_okay=False))
@json_option
def keys_show(file, as_json):
    """Print the public key of key FILE (never the secret seed)."""
    key = load_key_file(file)
    if as_json:
        print_json({"file": file, "public_key": key.public_key.hex()})
    else:
        click.echo(key.public_key.hex())
