"""Finding free TCP ports on 127.0.0.1 for a testnet (tests, `ynchain bench`)."""

from __future__ import annotations

import random
import socket

from .errors import CliError

# Below Linux's ephemeral range (32768-60999), so outgoing connections of the nodes
# themselves never grab a port a moment after we checked it.
_LOW, _HIGH = 20000, 32000


def free_port_base(count: int, host: str = "127.0.0.1", attempts: int = 200) -> int:
    """A port P such that P .. P+count-1 can all be bound right now on `host`."""
    rng = random.SystemRandom()
    for _ in range(attempts):
        base = rng.randrange(_LOW, _HIGH - count)
        socks: list[socket.socket] = []
        try:
            for port in range(base, base + count):
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                socks.append(sock)
                sock.bind((host, port))
            return base
        except OSError:
            continue
        finally:
            for sock in socks:
                sock.close()
    raise CliError(f"found no {count} consecutive free ports on {host}")
