"""ynchain's Python SDK: talk to a node from a department's own system.

    from ynchain import Client
    with Client("http://127.0.0.1:26651", key="accounts/finance.key") as node:
        result = node.call("kv", "put", {"key": "a", "value": 1})   # signed here, waits
        print(result.height, result.receipt.status)

`AsyncClient` is the same, awaited (trio or asyncio).  Errors are typed
(ynchain.errors): `except ynchain.MempoolFull`, `except ynchain.TxFailed`...
Retries are safe: a tx id is derived from its signed bytes, so sending the
same signed tx twice can never commit it twice.
"""

from . import errors
from .aio import AsyncClient
from .client import Client
from .errors import *  # noqa: F401,F403  (the exception classes are part of the API)
from .models import BatchItem, BlockEvent, Receipt, Status, Submission, TxResult
from .signing import build_tx, load_signer

__all__ = ["AsyncClient", "Client", *errors.__all__, "BatchItem", "BlockEvent", "Receipt", "Status",
           "Submission", "TxResult", "build_tx", "load_signer"]
