// Governance: the proposals that change the consortium's configuration
// (ledger/contracts/gov.py), and one proposal with its votes, organisation
// by organisation, against the threshold it needs.

import { ApiError, getJSON, organisationNames } from "../api.js";
import { badge, facts, h, json, link, section, table, to } from "../dom.js";
import { count, number } from "../format.js";

const PAGE = 50;
const STATUSES = ["open", "executed", "rejected", "withdrawn", "expired"];
const STATUS_TONE = { open: "info", executed: "good", rejected: "bad", withdrawn: "neutral", expired: "warn" };
const VOTE_TONE = { approve: "good", reject: "bad" };

function statusBadge(status) {
  return badge(status, STATUS_TONE[status] ?? "neutral");
}

function tally(p) {
  return `${p.approvals} of ${p.needed} needed`;
}

function blockLink(height) {
  return link(to.block(height), `block ${number(height)}`);
}

export async function renderList(ctx) {
  const status = ctx.query.get("status");
  const after = ctx.query.get("after");
  const params = new URLSearchParams({ limit: String(PAGE) });
  if (status) params.set("status", status);
  if (after) params.set("after", after);
  const [list, orgs] = await Promise.all([getJSON(`/gov/proposals?${params}`, ctx.signal),
    organisationNames(ctx.signal)]);
  ctx.title("Governance");
  ctx.show(
    h("h1", null, "Governance proposals"),
    h("p", { class: "lead" }, "Changes to the consortium's organisations, accounts, nodes and rules. ",
      "Each organisation's admins cast its one vote; a proposal is carried out in the block that ",
      "reaches the threshold."),
    h("nav", { class: "pager filters", "aria-label": "Proposals by status" },
      [null, ...STATUSES].map((s) => {
        const label = s ?? "all";
        return s === status || (!s && !status) ? h("span", { class: "strong", "aria-current": "true" }, label)
          : link(to.proposals(s), label);
      })),
    table({
      caption: status ? `${status[0].toUpperCase()}${status.slice(1)} proposals, in number order`
        : "In number order",
      head: ["#", "Change", "Proposed by", "Status", "Approvals", "Proposed"],
      rows: list.proposals.map((p) => [
        link(to.proposal(p.id), `#${number(p.id)}`),
        link(to.proposal(p.id), p.summary),
        orgs.get(p.org) ?? p.org,
        statusBadge(p.status),
        tally(p),
        blockLink(p.created_height),
      ]),
      className: "proposals", empty: status ? `No ${status} proposal.` : "No proposal has been made yet.",
      optional: [2, 5],
    }),
    h("nav", { class: "pager", "aria-label": "Pages of proposals" },
      after ? link(to.proposals(status), "← First") : null,
      list.next ? link(to.proposals(status, list.next), "Next →") : null));
}

export async function renderProposal(ctx, idText) {
  if (!/^[1-9][0-9]{0,18}$/.test(idText)) {
    throw new ApiError(404, "not_found", `no proposal ${idText}: a proposal's number is a positive integer`);
  }
  const [p, orgs] = await Promise.all([getJSON(`/gov/proposals/${idText}`, ctx.signal),
    organisationNames(ctx.signal)]);
  const org = (name) => orgs.get(name) ?? name;
  ctx.title(`Proposal ${p.id}`);
  const hasParams = p.params && typeof p.params === "object" && Object.keys(p.params).length > 0;
  ctx.show(
    h("div", { class: "page-head" }, h("h1", null, `Proposal #${number(p.id)}`), statusBadge(p.status),
      h("p", { class: "lead" }, p.summary)),
    section("Proposal", facts([
      ["Action", h("code", null, p.action)],
      ["Target", p.target],
      ["Parameters", hasParams ? json(p.params) : null],
      ["Proposed by", [h("span", { class: "strong" }, p.proposer), ` of ${org(p.org)}`]],
      ["Proposed in", blockLink(p.created_height)],
      ["Open until", p.status === "open" ? blockLink(p.expires_height) : null],
      ["Closed in", p.closed_height ? blockLink(p.closed_height) : null],
      ["Approvals", [h("span", { id: "proposal-tally" }, tally(p)), ` · ${count(p.rejections, "rejection")}`,
        ` · ${count(p.electorate, "voting organisation")}`]],
      ["Note", p.note],
    ])),
    section("Votes", table({
      caption: "One vote per organisation, in the order cast",
      head: ["Organisation", "Cast by", "Vote", "Block"],
      rows: p.votes.map((v) => [org(v.org), v.account, badge(v.vote, VOTE_TONE[v.vote] ?? "neutral"),
        blockLink(v.height)]),
      className: "votes", empty: "No vote yet.",
    })),
    h("p", null, link(to.proposals(), "All proposals →")));
}
