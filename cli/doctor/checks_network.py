"""Checks of this node against its peers: same genesis, p2p links, clocks,
heights, and whether (and why not) the chain commits."""

from __future__ import annotations

import socket
from typing import Iterator

from ledger.consortium import Node
from ledger.genesis import Genesis
from node.transport.peers import dials

from ..target import sync_text
from .facts import Facts, metric_values
from .p2p import LISTEN_WINDOW_S
from .report import FAIL, WARN, Finding, fail, ok, warn


def _names(items: list[str]) -> str:
    return ", ".join(items)


# -- the peers' APIs: reachable, and on the same chain and genesis ----------------------------

def check_peer_genesis(f: Facts) -> Iterator[Finding]:
    if f.genesis is None:
        return
    ours = f.genesis.hash.hex()
    same, other, by_design, silent = [], [], [], []
    findings = []
    for i, v in f.peers:
        if f.api_unreachable_by_design(v):
            by_design.append(v.name)
            continue
        probe = f.sample[i]
        doc = probe.doc
        if probe.error is not None or not isinstance(doc, dict):
            silent.append(f"{v.name} at {probe.url} ({_short(probe.error, probe.url)})")
        elif f.status_of(i) is None:
            findings.append(warn("peer-api", f"{v.name}: its API address in genesis ({probe.url}) "
                                             f"answers as {doc.get('node')!r}",
                                 f"correct {v.name}'s api address in genesis.json"))
        elif doc.get("chain_id") != f.genesis.chain_id:
            other.append((v.name, f"another chain ({doc.get('chain_id')!r}; this node "
                                  f"{f.genesis.chain_id!r})"))
        elif not isinstance(doc.get("genesis_hash"), str):
            findings.append(warn("peer-genesis", f"{v.name}: its /status has no genesis hash (an older "
                                                 "ynchain); compared over p2p only",
                                 f"upgrade {v.name} to this ynchain release"))
        elif doc["genesis_hash"] != ours:
            other.append((v.name, f"another genesis (hash {doc['genesis_hash'][:16]}; this "
                                  f"node {ours[:16]})"))
        else:
            same.append(v.name)
    if silent:
        yield warn("peer-api", f"no answer from the API of {_names(silent)}",
                   "start the nodes that are down; for one that runs, its API listens elsewhere "
                   "than genesis says")
    yield from findings
    by_what: dict[str, list[str]] = {}
    for name, what in other:
        by_what.setdefault(what, []).append(name)
    for what, names in by_what.items():
        if len(same) >= len(other):
            fix = (f"{_names(names)}: give it the consortium's genesis.json (byte for byte: the "
                   "hash covers the file) and resync it (ynchain node resync)")
        else:
            fix = (f"most peers disagree with this node: compare {f.config.genesis} with theirs; "
                   "every node needs the same file, byte for byte")
        yield fail("peer-genesis", f"{_names(names)} {'runs' if len(names) == 1 else 'run'} {what}", fix)
    if same:
        yield ok("peer-genesis", f"{_names(same)}: same chain and genesis as this node")
    if by_design:
        yield ok("peer-api", f"{_names(by_design)}: genesis lists loopback API addresses for peers on "
                             "other hosts; they are checked over p2p only")


def _short(error: str | None, url: str) -> str:
    """A client error without the node URL it repeats."""
    if not error:
        return "not a status document"
    for prefix in (f"cannot reach node at {url}: ", f"node at {url} "):
        error = error.removeprefix(prefix)
    return error


# -- p2p links --------------------------------------------------------------------------

# reason -> (status, what it means, what to do); {peer}, {addr}, {me}, {my_addr} are filled in.
_ADVICE: dict[str, tuple[str, str, str]] = {
    "unreachable": (WARN, "cannot connect to its p2p address {addr}",
                    "start {peer}, or check that it listens on {addr} and that no firewall blocks it"),
    "silent": (WARN, "answers with this chain and genesis, but did not dial this node within "
                     f"{LISTEN_WINDOW_S:g}s (it dials, this node accepts)",
               "check that {peer} can reach {my_addr}, the p2p address genesis lists for {me}, "
               "and look at {peer}'s log"),
    "wrong_genesis": (FAIL, "its genesis and this node's differ",
                      "every node needs the consortium's genesis.json, byte for byte; compare "
                      "the files and fix the odd one (see peer-genesis)"),
    "wrong_chain": (FAIL, "its chain and this node's differ",
                    "every node needs the consortium's genesis.json; fix the odd one"),
    "version": (FAIL, "speaks another p2p protocol version",
                "run the same ynchain release on every node"),
    "unknown_key": (FAIL, "its node key and this node's genesis disagree (or it does not know this "
                          "node's key)",
                    "compare `ynchain keys show` of {peer}'s node.key with its public_key in "
                    "genesis.json (and this node's likewise)"),
    "bad_signature": (FAIL, "its handshake signature does not verify",
                      "something other than {peer} answers at {addr}, or its key file is not the "
                      "one genesis lists"),
    "malformed": (FAIL, "what answers at {addr} does not speak the ynchain handshake",
                  "check the p2p address genesis lists for {peer}"),
    "timeout": (WARN, "the connection opens but the handshake does not complete",
                "{peer} may be overloaded, or a proxy or firewall interferes; see its log"),
    "busy": (WARN, "{peer} refuses handshakes for now (too many pending)",
             "try again; if it persists, something floods {peer}'s p2p port"),
}
for _same, _as in (("no_hello", "timeout"), ("closed", "timeout"), ("evicted", "busy")):
    _ADVICE[_same] = _ADVICE[_as]


def link_problem(f: Facts, peer: Node, reason: str, detail: str, source: str) -> Finding:
    status, what, fix = _ADVICE.get(reason, (WARN, f"the link fails ({reason})", "see {peer}'s log"))
    me = f.genesis.validators[f.index]
    fill = {"peer": peer.name, "addr": f"{peer.p2p[0]}:{peer.p2p[1]}", "me": me.name,
            "my_addr": f"{me.p2p[0]}:{me.p2p[1]}"}
    text = f"{peer.name}: {what.format(**fill)}" + (f" ({detail})" if detail else "") + f" [{source}]"
    if source.startswith(peer.name):   # its words: "peer" there is this node
        text = f"{peer.name}: {what.format(**fill)} ({peer.name}'s last dial to this node: {reason}" \
               + (f", {detail})" if detail else ")")
    return Finding("peer-link", status, text, fix.format(**fill))


def check_peer_links(f: Facts) -> Iterator[Finding]:
    if f.genesis is None or f.index is None or f.config is None:
        return
    if f.running:
        yield from _links_seen_by_the_node(f)
        return
    links = f.links
    if isinstance(links, str):
        yield warn("peer-link", f"no handshake tried: {links}",
                   "run the doctor again once the node is stopped or fully up")
        return
    good = []
    for i, v in f.peers:
        result = links[i]
        if result.ok:
            how = "this node dials it" if result.how == "dialed" else "it dialed this node"
            good.append(f"{v.name} ({how})")
        else:
            yield link_problem(f, v, result.reason, result.detail, "handshake with this node's key")
    if good:
        yield ok("peer-link", f"handshake with this node's key succeeded: {_names(good)}")


def _split_error(text: str) -> tuple[str, str]:
    reason, _, detail = text.partition(": ")
    return reason, detail


def _links_seen_by_the_node(f: Facts) -> Iterator[Finding]:
    entries = f.own_validators
    if entries is None or len(entries) != len(f.genesis.validators):
        yield warn("peer-link", "this node's API gave no usable /validators answer",
                   "look at the node's log")
        return
    connected = []
    for i, v in f.peers:
        entry = entries[i]
        if entry.get("connected"):
            connected.append(v.name)
            continue
        error, source = entry.get("last_error"), "this node's last dial"
        if not error and dials(v.public_key, f.key.public_key):   # it dials us: its side knows why
            error, source = _their_error_about_us(f, i), f"{v.name}'s last dial"
        if error:
            reason, detail = _split_error(error)
            yield link_problem(f, v, reason, detail, source)
        elif not _tcp_reachable(v.p2p, f.timeout_s):
            yield link_problem(f, v, "unreachable", "", "TCP connect")
        else:
            yield warn("peer-link", f"{v.name}: not connected to this node, though its p2p port "
                                    "accepts connections and no handshake failure is known yet",
                       f"wait a few seconds and run the doctor again; else see {v.name}'s log")
    if connected:
        yield ok("peer-link", f"this node is connected to {_names(connected)}")


def _their_error_about_us(f: Facts, index: int) -> str | None:
    if f.status_of(index) is None:
        return None
    doc = f.peer_get(index, "/validators").doc
    entries = doc.get("validators") if isinstance(doc, dict) else None
    if not isinstance(entries, list) or len(entries) <= f.index:
        return None
    error = entries[f.index].get("last_error") if isinstance(entries[f.index], dict) else None
    return error if isinstance(error, str) else None


def _tcp_reachable(address: tuple[str, int], timeout_s: float) -> bool:
    """Only for peers the running node is not connected to; the peer counts
    one failed handshake ("closed") for it."""
    try:
        socket.create_connection(address, timeout=timeout_s).close()
        return True
    except OSError:
        return False


# -- clocks ------------------------------------------------------------------------------

def check_clock(f: Facts) -> Iterator[Finding]:
    if f.genesis is None:
        return
    lim, fine = f.limits, []
    for i, v in f.peers:
        doc = f.status_of(i)
        their = doc.get("time") if doc is not None else None
        if type(their) not in (int, float):
            continue
        probe = f.sample[i]
        skew = their - (probe.sent + probe.received) / 2
        certain = abs(skew) - (probe.received - probe.sent) / 2     # at least this far apart
        text = f"{v.name}'s clock is {abs(skew):.1f}s {'ahead of' if skew > 0 else 'behind'} this host's"
        fix = ("keep every validator's clock in sync (NTP: timedatectl set-ntp true, or chrony): "
               "block times follow the proposer's clock")
        if certain >= lim.clock_fail_s:
            yield fail("clock", text, fix)
        elif certain >= lim.clock_warn_s:
            yield warn("clock", text, fix)
        else:
            fine.append(f"{v.name} {skew:+.2f}s")
    if fine:
        yield ok("clock", f"in step with this host: {_names(fine)}")


# -- heights and sync ------------------------------------------------------------------------

def _heights(f: Facts, sample) -> dict[str, int]:
    found = {}
    for i, v in f.peers:
        doc = f.chain_status_of(i, sample)
        if doc is not None and type(doc.get("height")) is int:
            found[v.name] = doc["height"]
    return found


def check_height(f: Facts) -> Iterator[Finding]:
    if f.genesis is None or f.index is None:
        return
    others = _heights(f, f.sample)
    best_name, best = max(others.items(), key=lambda kv: kv[1], default=(None, None))
    if not f.running:
        height = f.store.height if f.store is not None else None
        if height is None:
            return
        if best is None or height >= best:
            yield ok("height", f"stopped at height {height}")
        else:
            yield ok("height", f"stopped at height {height}; {best_name} is at {best}: the node "
                               f"fetches {best - height} blocks by block sync when it starts")
        return
    doc = f.status_of(f.index) or f.own.doc
    height, sync = doc.get("height"), doc.get("sync")
    if isinstance(sync, dict):
        yield warn("height", f"height {height}, catching up by block sync: {sync_text(sync)}",
                   "nothing to do while the rate is above 0; if it stays at 0, check peer-link")
    elif best is None:
        yield ok("height", f"height {height}; no peer's height to compare with")
    elif height + f.limits.lag_blocks >= best:
        yield ok("height", f"height {height}, in step with its peers (highest: {best_name} at {best})")
    else:
        later = f.status_of(f.index, f.later_sample)
        later_best = max(_heights(f, f.later_sample).values(), default=best)
        if later is not None and (later.get("sync") or later["height"] + f.limits.lag_blocks >= later_best):
            yield ok("height", f"height {later['height']}, catching up with its peers (highest {later_best})")
        else:
            yield warn("height", f"{best - height} blocks behind {best_name} ({height} against {best}) "
                                 "and not syncing",
                       "look for 'block sync' lines in its log and check its links (peer-link)")


# -- is the chain committing, and if not, why not ------------------------------------------

def check_commits(f: Facts) -> Iterator[Finding]:
    if f.genesis is None:
        return
    before, after = {}, {}
    for i, v in enumerate(f.genesis.validators):
        first, later = f.chain_status_of(i), f.chain_status_of(i, f.later_sample)
        if first is not None and later is not None:
            before[v.name], after[v.name] = first, later
    span = f.sample_s
    if not after:
        yield warn("commits", "no node's API answered: cannot tell whether the chain commits",
                   "start this node, or run the doctor where the validators' APIs can be reached")
        return
    top0 = max(d["height"] for d in before.values())
    top1 = max(d["height"] for d in after.values())
    if top1 > top0:
        yield ok("commits", f"the chain commits: height {top0} -> {top1} in {span:g}s")
        return
    waiting = max(d.get("mempool") or 0 for d in after.values())
    heartbeat_ms = f.genesis.consensus.empty_blocks_interval_ms
    if not waiting and not (heartbeat_ms and heartbeat_ms / 1000 < span):
        why = (f"an empty block is due every {heartbeat_ms / 1000:g}s" if heartbeat_ms
               else "blocks are proposed only for transactions")
        yield ok("commits", f"idle: no block in {span:g}s and no transaction waiting ({why})")
        return
    what = (f"{waiting} transaction{'s' if waiting != 1 else ''} waiting" if waiting
            else "empty blocks due")
    reasons = diagnose_stall(f.genesis, before, after, f.name if f.running else None,
                             _mempool_caps(f, after))
    for reason, fix in reasons:
        yield fail("commits", f"not committing: height {top1} for {span:g}s with {what}; "
                              f"likely: {reason}", fix)


def _mempool_caps(f: Facts, after: dict[str, dict]) -> dict[str, float]:
    """Each answering node's mempool capacity, from its /metrics (only asked when stalled)."""
    caps = {}
    for i, v in enumerate(f.genesis.validators):
        if v.name in after:
            probe = f.own_get("/metrics", raw=True) if v.name == f.name and f.running \
                else f.peer_get(i, "/metrics", raw=True)
            cap = metric_values(probe.text if probe is not None else None).get("ynchain_mempool_max_txs")
            if cap:
                caps[v.name] = cap
    return caps


def diagnose_stall(genesis: Genesis, before: dict[str, dict], after: dict[str, dict],
                   me: str | None, mempool_caps: dict[str, float]) -> list[tuple[str, str]]:
    """Why the chain does not commit, as (likely reason, what to do), from two
    /status samples of the nodes that answered (by name).  Pure."""
    reasons = []
    quorum, total = genesis.quorum, len(genesis.validators)
    with_quorum = [n for n, d in after.items() if len(d.get("peers") or []) + 1 >= quorum]
    rising = [f"{n} {before[n]['view']} -> {d['view']}" for n, d in after.items()
              if type(d.get("view")) is int and d["view"] > before[n].get("view", d["view"])]
    if len(with_quorum) < quorum:
        seen = _names(f"{n} ({len(d.get('peers') or []) + 1})" for n, d in sorted(after.items()))
        reasons.append((f"no quorum connected: {quorum} of {total} validators must be up and "
                        f"connected to each other; answering, with the validators each sees: {seen}"
                        + ("; views keep changing meanwhile" if rising else ""),
                        "start the stopped validators and repair the failing links (peer-link)"))
    elif rising:
        primaries = sorted({d.get("primary") for d in after.values() if d.get("primary")})
        reasons.append((f"view changes in a row ({_names(rising)}): no primary gets a block through",
                        f"check the current primary ({_names(primaries)}): is it up, connected and "
                        "its clock right? Then the links between validators (peer-link)"))
    full = [f"{n} {d['mempool']}/{mempool_caps[n]:.0f}" for n, d in after.items()
            if n in mempool_caps and (d.get("mempool") or 0) >= mempool_caps[n]]
    if full:
        reasons.append((f"mempool full on {_names(full)}: new transactions are refused",
                        "find why blocks do not commit (other lines); raise [mempool] max_txs only "
                        "if they do and the load is real"))
    if me is not None and me in after:
        best = max(d["height"] for d in after.values())
        if after[me]["height"] < best and not after[me].get("sync"):
            reasons.append((f"this node is behind ({after[me]['height']} against {best}) and not syncing",
                            "check its links (peer-link); restart it if it stays stuck"))
    if not reasons:
        primaries = sorted({d.get("primary") for d in after.values() if d.get("primary")})
        reasons.append(("no cause visible from here: a quorum is connected and views are stable",
                        f"read the log of the primary ({_names(primaries)}) and of this node"))
    return reasons
