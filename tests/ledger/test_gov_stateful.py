"""Random proposals, votes, withdrawals and key rotations by random accounts
(admins and not, of every organisation, also ones added on the way) never
break an invariant of the configuration; a second vote of one organisation
counts once; a non-admin's vote and a vote on an expired proposal are
refused; every refusal leaves the state as it was; and replaying the same
blocks from genesis gives the same roots, configurations and epoch schedule.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from ledger import admission, config_state
from ledger.consortium import ACTIVE, ADMIN, ChainConfig
from ledger.receipt import ERR_BAD_ARGS, ERR_CONFLICT, ERR_INVALID, ERR_NOT_FOUND, ERR_PERMISSION, Receipt
from ledger.contracts.gov import Proposal
from tests.factories import key_for
from tests.ledger.chain import Chain
from tests.ledger.gov_world import GovWorld
from tests.ledger.world import scan_dict

SETTINGS = settings(max_examples=50, stateful_step_count=40, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])
LIFETIME = 12
GOV_STATUSES = {ERR_BAD_ARGS, ERR_CONFLICT, ERR_NOT_FOUND, ERR_PERMISSION}
NODES = ["node0", "node1", "node2", "node3", "node5", "node6"]
ORGS = ["finance", "tax", "agriculture", "tourism", "bank"]
ROLE_SETS = [["admin"], ["writer"], ["admin", "writer"], []]


def likely(data, good: list, anything: st.SearchStrategy):
    if good and data.draw(st.integers(0, 3)) > 0:
        return data.draw(st.sampled_from(sorted(good)))
    return data.draw(anything)


class GovMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.w = GovWorld(governance={"proposal_lifetime_blocks": LIFETIME})
        self.blocks: list[tuple[list, int]] = []       # (txs, timestamp) of every block, for the replay
        self.roots: list[bytes] = []
        self.configs: list[ChainConfig] = []
        self.proposals: dict[int, dict[str, Any]] = {}  # id -> the last view a receipt showed
        self.fresh = 0

    # -- running blocks ----------------------------------------------------------------------
    def run(self, txs: list) -> list[Receipt]:
        chain = self.w.chain
        before_state, before_root, before_config = dict(chain.state), chain.root, chain.config
        timestamp = chain.time_of(chain.height + 1)
        result = chain.run(txs, timestamp)
        self.blocks.append((txs, timestamp))
        self.roots.append(chain.root)
        self.configs.append(chain.config)
        if all(not r.ok for r in result.receipts):
            assert result.writes == {} and chain.root == before_root and chain.state == before_state
            assert result.config is None and chain.config is before_config
        return list(result.receipts)

    def do(self, account: str, method: str, args: Any) -> Receipt:
        before = self.w.chain.config
        tx = self.w.tx(account, "gov", method, args)
        sender = admission.sender_problem(tx, before, self.w.chain.time_of(self.w.chain.height + 1))
        (receipt,) = self.run([tx])
        if sender is not None:                  # unknown, revoked or rotated out: admission refuses it
            assert (receipt.status, receipt.message) == (ERR_INVALID, sender)
        elif not receipt.ok:
            assert receipt.status in GOV_STATUSES, receipt
            assert receipt.message
        else:
            result = receipt.result
            if isinstance(result, dict) and "votes" in result:
                self.proposals[result["id"]] = result
        self.check_change(before, self.w.chain.config)
        return receipt

    def check_change(self, before: ChainConfig, after: ChainConfig) -> None:
        """What no sequence of governance may break."""
        assert after.validators, "no validator left"
        for org in before.voting_orgs:
            if after.organisation(org) is not None:
                assert after.admins(org), f"{org} lost its last admin"
        assert after.voting_orgs
        keys = [a.public_key for a in after.accounts.values()] + [n.public_key for n in after.nodes.values()] \
            + list(after.retired_keys)
        assert len(keys) == len(set(keys)), "a key is used twice"
        p2p = [n.p2p for n in after.nodes.values()]
        assert len(p2p) == len(set(p2p))
        for retired in before.retired_keys:
            assert retired in after.retired_keys, "a retired key came back"
        assert after.epochs[:len(before.epochs) - 1] == before.epochs[:-1] or \
            after.epochs[:len(before.epochs)] == before.epochs[:len(after.epochs)], "history rewritten"

    # -- who ---------------------------------------------------------------------------------
    def active(self, admins: bool) -> list[str]:
        config = self.w.config
        return [a.name for a in config.accounts.values()
                if a.status == ACTIVE and (ADMIN in a.roles) == admins and a.name in self.w.accounts]

    # -- rules --------------------------------------------------------------------------------
    @rule(data=st.data())
    def propose(self, data) -> None:
        admin = likely(data, self.active(True), st.sampled_from(sorted(self.w.accounts)))
        action = data.draw(st.sampled_from(["add_org", "add_account", "update_account", "revoke_account",
                                            "add_node", "promote_node", "demote_node", "remove_node"]))
        accounts = sorted(self.w.config.accounts)
        if action == "add_org":
            target, params = data.draw(st.sampled_from(["bank", "bank2"])), {}
        elif action == "add_account":
            self.fresh += 1
            target = f"acct{self.fresh}"
            params = {"org": data.draw(st.sampled_from(ORGS)), "public_key": key_for("fresh", target).public_key.hex(),
                      "roles": data.draw(st.sampled_from(ROLE_SETS))}
        elif action == "update_account":
            target, params = data.draw(st.sampled_from(accounts)), {"roles": data.draw(st.sampled_from(ROLE_SETS))}
        elif action == "revoke_account":
            target, params = data.draw(st.sampled_from(accounts)), None
        elif action == "add_node":
            target = data.draw(st.sampled_from(["node5", "node6"]))
            params = {"org": data.draw(st.sampled_from(ORGS)),
                      "public_key": key_for("fresh-node", f"{target}-{self.fresh}").public_key.hex(),
                      "p2p": f"10.0.0.{self.fresh % 250}:1", "api": "10.0.0.1:2"}
            self.fresh += 1
        else:
            target, params = data.draw(st.sampled_from(NODES)), None
        args = {"action": action, "target": target, **({"params": params} if params is not None else {})}
        proposer = self.w.config.account_by_key(self.w.accounts[admin].public_key)     # who really signs
        receipt = self.do(admin, "propose", args)
        if receipt.ok and action == "add_account":
            self.w.accounts[target] = key_for("fresh", target)
        if proposer is not None and proposer.status == ACTIVE and ADMIN not in proposer.roles:
            assert (receipt.status, receipt.message) == (ERR_PERMISSION, f"account {proposer.name} lacks role 'admin'")

    @rule(data=st.data())
    def approvals(self, data) -> None:
        """Several admins approve one live proposal in a row (so proposals pass)."""
        live = self.live()
        if not live:
            return
        pid = data.draw(st.sampled_from(live))
        for account in data.draw(st.lists(st.sampled_from(sorted(self.active(True)) or ["tax-admin"]),
                                          min_size=1, max_size=4)):
            self.do(account, "approve", {"id": pid})

    def live(self) -> list[int]:
        """Proposals open and not expired, as far as their last receipts tell."""
        height = self.w.chain.height + 1
        return [i for i, p in self.proposals.items() if p["status"] == "open" and height <= p["expires_height"]]

    @rule(data=st.data(), decision=st.sampled_from(["approve", "approve", "approve", "reject"]))
    def vote(self, data, decision) -> None:
        pid = likely(data, self.live(), st.integers(1, max(len(self.proposals), 1) + 1))
        account = likely(data, self.active(True), st.sampled_from(sorted(self.w.accounts)))
        config = self.w.config
        voter = config.account_by_key(self.w.accounts[account].public_key)     # who really signs
        stored = self.w.raw("gov", "proposal", f"{pid:012d}")
        before = None if stored is None else Proposal.from_record(stored)
        height = self.w.chain.height + 1
        receipt = self.do(account, decision, {"id": pid})
        if voter is None or voter.status != ACTIVE:
            assert not receipt.ok                         # refused at admission (revoked, rotated)
            return
        if ADMIN not in voter.roles:
            assert (receipt.status, receipt.message) == (ERR_PERMISSION, f"account {voter.name} lacks role 'admin'")
            return
        if before is None:
            assert receipt.status == ERR_NOT_FOUND
            return
        if before.status != "open":
            assert receipt.status == ERR_CONFLICT and "it takes no more votes" in receipt.message
            return
        if height > before.expires_height:
            assert receipt.status == ERR_CONFLICT and f"expired at height {before.expires_height}" in receipt.message
            return
        same = [v for v in before.votes if v.org == voter.org]
        if same and same[0].decision == decision:
            assert receipt.status == ERR_CONFLICT and "one vote per organisation" in receipt.message
            return
        if receipt.ok:
            after = receipt.result
            orgs = [v["org"] for v in after["votes"]]
            assert len(orgs) == len(set(orgs)), "an organisation voted twice"
            assert after["approvals"] == sum(1 for v in after["votes"] if v["vote"] == "approve"
                                             and v["org"] in config.voting_orgs)
        else:                                             # it passed but cannot be carried out now
            assert receipt.status != ERR_PERMISSION and "cannot be carried out now" in receipt.message

    @rule(data=st.data())
    def withdraw(self, data) -> None:
        if data.draw(st.integers(0, 3)):          # rarely: most proposals should get their votes
            return
        pid = likely(data, self.live(), st.integers(1, 5))
        account = likely(data, self.active(True), st.sampled_from(sorted(self.w.accounts)))
        self.do(account, "withdraw", {"id": pid})

    @rule(data=st.data())
    def rotate_key(self, data) -> None:
        account = data.draw(st.sampled_from(sorted(self.w.accounts)))
        self.fresh += 1
        new = key_for("rotated", f"{account}-{self.fresh}")
        if data.draw(st.booleans()):       # often a key in use (refused), or one only proposed (taken)
            new = self.w.accounts[data.draw(st.sampled_from(sorted(self.w.accounts)))]
        receipt = self.do(account, "rotate_key", {"new_public_key": new.public_key.hex()})
        if receipt.ok:
            self.w.accounts[account] = new

    @rule(blocks=st.integers(1, 3))
    def time_passes(self, blocks) -> None:
        for _ in range(blocks):
            self.run([])

    @precondition(lambda self: self.blocks)
    @invariant()
    def the_state_holds_the_configuration_in_memory(self) -> None:
        w = self.w
        assert config_state.load(w.genesis.chain_id, w.genesis.contract_schedule, scan_dict(w.chain.state)) == w.config

    def teardown(self) -> None:
        """Replaying the blocks from genesis gives the same roots, configurations
        (and so the same epoch schedule) at every height."""
        replay = Chain(self.w.genesis)
        for (txs, timestamp), root, config in zip(self.blocks, self.roots, self.configs):
            replay.run(txs, timestamp)
            assert replay.root == root and replay.config == config
            assert replay.config.epochs == config.epochs
        scan = scan_dict(replay.state)
        for height in range(0, len(self.configs) + 1, 5):
            expected = self.w.genesis.config if height == 0 else self.configs[height - 1]
            assert config_state.config_at(self.w.genesis.config, scan, height) == expected


TestGov = GovMachine.TestCase
TestGov.settings = SETTINGS
