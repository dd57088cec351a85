"""The ynchain daemon (trio): one department's peer.

    node/app.py       Node: builds the parts below in dependency order and runs them
                      in one nursery (node.main runs it until SIGINT/SIGTERM)
    node/service.py   NodeService: what the HTTP API may see and do (node.api.facade)
    node/transport/   sockets, frames, the authenticated handshake, encrypted sessions,
                      the validator mesh; knows nothing of blocks or consensus
    node/core/        the node's core: the consensus driver and the Replica's callbacks,
                      the chain (execute + store), mempool, tx relay, proposer, block
                      sync, commit fan-out, peer message codes and dispatch
    node/api/         the HTTP API (Starlette on hypercorn, in the node's nursery); it
                      talks to the node only through the NodeFacade protocol
    node/explorer/    the chain explorer's static pages, served by api/explorer.py
    node/config.py, logs.py, metrics.py   config.toml, logging, Prometheus metrics

Imports point inward: api/ and transport/ never import core/; core/ may use
transport/ (to send) and api.facade's result types; only app.py knows everything.
"""
