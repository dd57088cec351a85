"""Checks of this node's own host: its files, process, ports, disk and store."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Iterator

from node.main import store_remedy
from storage.errors import GenesisMismatchError, NotAStoreError

from .facts import Facts, GiB, connect_host
from .report import Finding, fail, ok, warn
from .store import tip_from_json, tip_problem


def check_config(f: Facts) -> Iterator[Finding]:
    if f.config is None:
        yield fail("config", f.errors["config"],
                   "correct config.toml (format: configs/node.example.toml), or pass the right --home")
        return
    c = f.config
    yield ok("config", f"{c.home / 'config.toml'}: node {c.name}, p2p {c.p2p_listen[0]}:{c.p2p_listen[1]}, "
                       f"api {c.api_listen[0]}:{c.api_listen[1]}")


def check_genesis(f: Facts) -> Iterator[Finding]:
    if f.config is None:
        return
    g = f.genesis
    if g is None:
        yield fail("genesis", f.errors["genesis"],
                   "put the consortium's genesis.json where config.toml's node.genesis points "
                   "(the same file, byte for byte, on every node)")
        return
    yield ok("genesis", f"chain {g.chain_id}, {len(g.validators)} validators (a quorum is {g.quorum}), "
                        f"hash {g.hash.hex()[:16]}")
    me = g.validator_by_name(f.config.name)
    if me is None:
        return              # check_key says what is wrong with this node's identity
    listen, advertised = f.config.p2p_listen, me.p2p
    if listen[1] != advertised[1] or listen[0] not in ("0.0.0.0", "::", advertised[0]):
        yield warn("genesis", f"this node listens for p2p on {listen[0]}:{listen[1]}, but genesis "
                              f"tells its peers to dial {advertised[0]}:{advertised[1]}",
                   f"make [p2p] listen in config.toml match the address genesis lists for "
                   f"{me.name} (or listen on 0.0.0.0:{advertised[1]})")


def check_key(f: Facts) -> Iterator[Finding]:
    if f.config is None:
        return
    path = f.config.key_file
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        yield fail("key", f"{path}: no key file",
                   "restore this node's key file, or point node.key_file in config.toml at it")
        return
    except OSError as exc:
        yield fail("key", f"{path}: cannot read: {exc.strerror}", "fix the file's ownership or permissions")
        return
    if mode & 0o077:
        yield fail("key", f"{path}: readable or writable by others (mode {mode:04o}); the node refuses it",
                   f"chmod 600 {path}  (and chown it to the user the node runs as)")
        return
    if f.key is None:
        yield fail("key", f.errors["key"], "restore this node's key file from its backup")
        return
    public = f.key.public_key.hex()
    if f.genesis is None:
        yield ok("key", f"{path}: public key {public[:16]}, mode {mode:04o}")
        return
    index = f.genesis.validator_index(f.key.public_key)
    if index is None:
        yield fail("key", f"{path}: public key {public[:16]} is no validator's key in genesis",
                   "use the key whose public key genesis lists for this node "
                   "(`ynchain keys show FILE` prints a key file's public key)")
        return
    listed = f.genesis.validators[index].name
    if listed != f.config.name:
        yield fail("key", f"{path}: genesis lists this key for {listed}, but config.toml names the "
                          f"node {f.config.name}",
                   f"set node.name = \"{listed}\" in config.toml, or use {f.config.name}'s key")
        return
    yield ok("key", f"{path}: validator {listed}'s key ({public[:16]}), mode {mode:04o}")


def check_process(f: Facts) -> Iterator[Finding]:
    if f.config is None or f.own is None:
        return
    host, port = f.config.api_listen
    if f.running:
        doc = f.own.doc
        yield ok("process", f"running: its API at {connect_host(host)}:{port} answers, height "
                            f"{doc.get('height')}, view {doc.get('view')}")
        return
    if f.store is not None and f.store.locked:
        yield warn("process", f"a process holds the store, but the API at {host}:{port} does not answer "
                              f"as {f.config.name} ({f.own.error or 'another node answers'})",
                   "if the node is starting, wait and run the doctor again; if it hangs, look at its "
                   f"log, then restart it (under systemd: systemctl restart ynchain@{f.config.name})")
        return
    yield warn("process", f"not running (the API at {connect_host(host)}:{port}: "
                          f"{f.own.error or 'answers as another node'})",
               f"start it: ynchain node start --home {f.config.home} (under systemd: "
               f"systemctl start ynchain@{f.config.name})")


def check_ports(f: Facts) -> Iterator[Finding]:
    if f.config is None:
        return
    for what, address in (("p2p", f.config.p2p_listen), ("api", f.config.api_listen)):
        where = f"{address[0]}:{address[1]}"
        state = f.port_state(address)
        if state is None:
            yield ok("ports", f"{what} {where} is free for the node to listen on")
        elif state != "in use":
            yield fail("ports", f"{what} {where}: {state}",
                       f"set [{what}] listen in config.toml to an address of this host")
        elif f.running:
            yield ok("ports", f"{what} {where} is in use by this node")
        elif f.store is not None and f.store.locked:
            yield warn("ports", f"{what} {where} is in use, and this node's API does not answer",
                       "if the node is starting, wait; else find the holder: "
                       f"ss -ltnp 'sport = :{address[1]}'")
        else:
            holder = ""
            if what == "api" and f.own is not None and isinstance(f.own.doc, dict):
                holder = f" (another node answers there: {f.own.doc.get('node')!r})"
            yield fail("ports", f"{what} {where} is in use by another program{holder}",
                       f"find it with ss -ltnp 'sport = :{address[1]}' and stop it, or change "
                       f"[{what}] listen in config.toml")


def _existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_disk(f: Facts) -> Iterator[Finding]:
    if f.config is None:
        return
    where = _existing(f.config.data_dir)
    try:
        st = os.statvfs(where)
    except OSError as exc:
        yield fail("disk", f"cannot read the free space of {where}: {exc.strerror}", "check the mount")
        return
    free, size = st.f_bavail * st.f_frsize, st.f_blocks * st.f_frsize
    fraction = free / size if size else 0.0
    text = f"{free / GiB:.1f} GiB free of {size / GiB:.1f} GiB ({fraction:.0%}) for {f.config.data_dir}"
    lim = f.limits
    fix = ("free space or grow the file system: a node that cannot write stops (its commits "
           "and votes are synced writes)")
    if free < lim.disk_fail_bytes or fraction < lim.disk_fail_fraction:
        yield fail("disk", text, fix)
    elif free < lim.disk_warn_bytes or fraction < lim.disk_warn_fraction:
        yield warn("disk", text, fix)
    else:
        yield ok("disk", text)


def check_store(f: Facts) -> Iterator[Finding]:
    if f.config is None or f.genesis is None:
        return
    data = f.config.data_dir
    if f.running:
        yield from _check_tip_over_api(f)
        return
    s = f.store
    if s.absent:
        yield ok("store", f"{data}: no store yet; the node creates it when it first starts")
        return
    if s.locked:
        yield warn("store", f"{data}: in use by another process, so it cannot be checked",
                   "run the doctor when the node is up (it then asks the node), or stop the process")
        return
    if s.error is not None:
        yield fail("store", str(s.error), _store_fix(s.error, f))
        return
    if s.tip_problem is not None:
        yield fail("store", f"{data}: the tip block {s.height} does not check out: {s.tip_problem}",
                   f"run `ynchain node resync --home {f.config.home}` (refetches the chain from "
                   "the peers, keeping this node's votes)")
        return
    if s.height == 0:
        yield ok("store", f"{data}: opens (schema, genesis, safety record copy); no block yet")
        return
    yield ok("store", f"{data}: opens (schema, genesis, safety record copy); tip block {s.height} is "
                      "certified by a quorum of the genesis validators")


def _store_fix(error: Exception, f: Facts) -> str:
    remedy = store_remedy(error, f.config.home).removeprefix("; ")
    if remedy:
        return remedy
    if isinstance(error, GenesisMismatchError):
        return ("config.toml's genesis is not the file this store was created with: point "
                "node.genesis at the consortium's genesis.json, or (if that file is right) "
                f"move {f.config.data_dir} aside and let the node refetch the chain")
    if isinstance(error, NotAStoreError):
        return (f"node.data_dir in config.toml points at something else: fix it, or move "
                f"{f.config.data_dir} aside")
    return "see the message; check the file system and permissions of the data directory"


def _check_tip_over_api(f: Facts) -> Iterator[Finding]:
    height = f.own.doc.get("height")
    if not height:
        yield ok("store", "held by the running node; no block yet")
        return
    answer = f.own_get("/blocks/latest")
    try:
        header, block_hash, cert = tip_from_json(answer.doc)
    except (KeyError, TypeError, ValueError, AttributeError):
        yield warn("store", f"held by the running node; its tip block could not be read "
                            f"({answer.error or 'malformed answer'})",
                   "look at the node's log for store errors")
        return
    problem = tip_problem(header, block_hash, cert, f.genesis)
    if problem is not None:
        yield fail("store", f"held by the running node; its tip block {header.height} does not "
                            f"check out: {problem}",
                   f"stop the node and run `ynchain node resync --home {f.config.home}`")
        return
    yield ok("store", f"held by the running node (checked through its API): tip block "
                      f"{header.height} is certified by a quorum of the genesis validators")
