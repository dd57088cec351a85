"""The OpenAPI part of the consortium configuration and governance routes
(node/api/gov.py).  The arguments of the gov contract's methods are the
components gov.<method>, made from their descriptions like every contract's."""

from __future__ import annotations

from typing import Any

from ledger.consortium import ConsensusParams
from ledger.contracts.gov import MAX_ID, STATUSES
from ledger.contracts.paging import DEFAULT_PAGE, MAX_PAGE

from .http import MAX_INT_PARAM
from .openapi import HASH, UINT, _json, _obj, _ref, _responses

STR = {"type": "string"}
HEIGHT = {**UINT, "description": "the committed height the answer was read at"}
PARAMS = _obj({name: UINT for name in ConsensusParams.__dataclass_fields__})


def gov_schemas() -> dict[str, Any]:
    vote = _obj({"org": STR, "account": STR, "vote": {"enum": ["approve", "reject"]}, "height": UINT})
    proposal = _obj({
        "id": UINT, "action": STR, "target": STR, "params": {"type": "object"},
        "summary": STR, "proposer": STR, "org": {**STR, "description": "the proposing organisation"},
        "status": {"enum": list(STATUSES)}, "created_height": UINT,
        "expires_height": {**UINT, "description": "the last height a vote counts at"},
        "votes": {"type": "array", "items": _ref("GovVote")},
        "approvals": UINT, "rejections": UINT,
        "needed": {**UINT, "description": "approvals that pass it (as decided, or as it stands)"},
        "electorate": {**UINT, "description": "voting organisations (active, with an admin)"},
        "closed_height": {"type": ["integer", "null"]}, "note": {"type": ["string", "null"]},
        "height": HEIGHT,
    }, required=["id", "action", "target", "status", "votes", "approvals", "needed", "electorate"])
    config = _obj({
        "chain_id": STR, "height": HEIGHT,
        "organisations": {"type": "array", "items": _obj({
            "name": STR, "display_name": STR, "status": {"enum": ["active", "removed"]},
            "voting": {"type": "boolean"}})},
        "accounts": {"type": "array", "items": _obj({
            "name": STR, "org": STR, "public_key": HASH, "roles": {"type": "array", "items": STR},
            "valid_until": {"type": ["string", "null"], "description": "ISO-8601 UTC; null: no end"},
            "status": {"enum": ["active", "revoked"]}})},
        "nodes": {"type": "array", "items": _obj({
            "name": STR, "org": STR, "public_key": HASH, "p2p": STR, "api": STR,
            "role": {"enum": ["validator", "observer"]}})},
        "retired_keys": {"type": "array", "items": _obj({
            "public_key": HASH, "kind": {"enum": ["account", "node"]}, "name": STR, "height": UINT})},
        "consensus": {**PARAMS, "description": "the parameters of the next block's epoch"},
        "governance": _obj({
            "threshold": _obj({"num": UINT, "den": UINT, "strict": {"type": "boolean"}}),
            "proposal_lifetime_blocks": UINT, "voting_orgs": {"type": "array", "items": STR},
            "needed": UINT}),
        "epochs": {"type": "array", "description": "the validator-set history; epoch e covers seqs "
                                                   "start+1 .. the next epoch's start",
                   "items": _obj({"number": UINT, "start": UINT,
                                  "validators": {"type": "array", "items": _obj({"name": STR,
                                                                                 "public_key": HASH})},
                                  "params": PARAMS})},
        "pending_boundary": {"type": ["integer", "null"],
                             "description": "start of a scheduled epoch not begun at this height"},
    })
    return {"GovVote": vote, "GovProposal": proposal, "ChainConfig": config,
            "GovProposalPage": _obj({"proposals": {"type": "array", "items": _ref("GovProposal")},
                                     "next": {"type": ["integer", "null"],
                                              "description": "pass as `after` for the next page"},
                                     "height": HEIGHT})}


def gov_paths() -> dict[str, Any]:
    return {
        "/config": {"get": {
            "summary": "The consortium configuration: organisations, accounts, nodes, governance "
                       "policy, consensus parameters and the validator-set history (epochs)",
            "parameters": [{"name": "height", "in": "query",
                            "schema": {"type": "integer", "minimum": 0, "maximum": MAX_INT_PARAM},
                            "description": "as in force after this block (default: the last committed)"}],
            "responses": _responses(_json(_ref("ChainConfig"), "The configuration"),
                                    e400="height is not an integer from 0 to 2^63-1",
                                    e404="height is not committed yet"),
        }},
        "/gov/proposals": {"get": {
            "summary": "Governance proposals in number order (at most 1000 looked at per request)",
            "parameters": [
                {"name": "status", "in": "query", "schema": {"enum": list(STATUSES)}},
                {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1,
                                                             "maximum": MAX_PAGE, "default": DEFAULT_PAGE}},
                {"name": "after", "in": "query", "schema": {"type": "integer", "minimum": 0, "maximum": MAX_ID},
                 "description": "the `next` of the previous page"}],
            "responses": _responses(_json(_ref("GovProposalPage"), "One page"),
                                    e400="Unknown status, or a bad limit/after"),
        }},
        "/gov/proposals/{id}": {"get": {
            "summary": "One proposal with its votes and outcome",
            "parameters": [{"name": "id", "in": "path", "required": True,
                            "schema": {"type": "integer", "minimum": 1, "maximum": MAX_ID}}],
            "responses": _responses(_json(_ref("GovProposal"), "The proposal"),
                                    e400="id is not an integer from 1 to 10^12", e404="No such proposal"),
        }},
    }
