"""`ynchain node start`: load everything, run the daemon until SIGINT/SIGTERM;
`ynchain node resync`: rebuild a damaged store from the kept safety record."""

from __future__ import annotations

import logging
import signal
from pathlib import Path

import trio

from ledger.crypto import load_key
from ledger.errors import LedgerError
from ledger.execution import genesis_state
from ledger.genesis import load_genesis
from node.config import ConfigError, load_config
from node.logs import setup_logging
from storage.errors import CorruptStoreError, LostStoreError, SafetyCopyError, SchemaVersionError, StoreError
from storage.leveldb_store import open_store, resync_store

log = logging.getLogger("ynchain.node")


async def _serve(node) -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            await nursery.start(node.run)

            async def stop_on_signal() -> None:
                async for signum in signals:
                    log.info("received %s, shutting down", signal.Signals(signum).name)
                    nursery.cancel_scope.cancel()
                    return
            nursery.start_soon(stop_on_signal)


def _first_cause(exc: BaseException) -> BaseException:
    """The first leaf of a (nested) exception group, for a one-line summary."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def store_remedy(exc: StoreError, home: Path) -> str:
    """What an operator can do about a store error, to append to its message."""
    if isinstance(exc, (CorruptStoreError, LostStoreError)):
        return (f"; the node cannot run on it: run `ynchain node resync --home {home}` (moves the "
                "data directory aside and refetches the chain from the peers, keeping this "
                "node's votes) or restore the data directory from a backup")
    if isinstance(exc, SchemaVersionError):
        return (f"; run the ynchain version that wrote it, or `ynchain node resync --home {home}` "
                "(moves the data directory aside and refetches the chain from the peers in this "
                "version's format, keeping this node's votes)")
    if isinstance(exc, SafetyCopyError):
        return ("; the node cannot run without it: restore the safety directory from a backup "
                "(never start this node afresh: it could sign votes that conflict with "
                "ones it signed before)")
    return ""


def run_node(home: Path, log_format: str | None = None) -> int:
    """Run the node whose home directory is `home`; the process exit code."""
    from node.app import Node, NodeError   # heavy imports only once the config is good

    try:
        config = load_config(home)
    except ConfigError as exc:
        setup_logging("info", log_format or "text")
        log.error("%s", exc)
        return 1
    setup_logging(config.log_level, log_format or config.log_format, config.name)
    try:
        genesis = load_genesis(config.genesis)
        key = load_key(config.key_file)
        store = open_store(config.data_dir, genesis.hash,
                           initial_state=genesis_state(genesis.config)[0],
                           safety_dir=config.safety_dir)
    except LedgerError as exc:
        log.error("%s", exc)
        return 1
    except StoreError as exc:
        log.error("%s%s", exc, store_remedy(exc, config.home))
        return 1
    try:
        node = Node(config, genesis, key, store)
        trio.run(_serve, node)
        log.info("stopped cleanly at height %d", store.last_height())
        return 0
    except Exception as exc:  # noqa: BLE001 - report it in one line, then exit non-zero
        cause = _first_cause(exc)
        if isinstance(cause, NodeError):
            log.error("%s", cause)
            return 1
        if isinstance(cause, (CorruptStoreError, SafetyCopyError)):   # damage found while running
            log.error("%s%s", cause, store_remedy(cause, config.home))
            return 1
        if isinstance(cause, OSError):   # e.g. a listen address already in use
            log.error("cannot run: %s", cause)
            return 1
        # A bug or a failing disk: the one-line summary first, the traceback for the report.
        log.critical("node stopped by an unexpected error: %s: %s", type(cause).__name__, cause,
                     exc_info=exc)
        return 2
    finally:
        store.close()


def resync_node(home: Path) -> Path | None:
    """`ynchain node resync`: move the node's store aside and create a fresh one
    seeded with its kept safety record (storage.resync_store); where the old
    store went.  Raises ConfigError, LedgerError or StoreError."""
    config = load_config(home)
    genesis = load_genesis(config.genesis)
    return resync_store(config.data_dir, genesis.hash, config.safety_dir,
                        initial_state=genesis_state(genesis.config)[0])
