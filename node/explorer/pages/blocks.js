// Blocks: the list (newest first, paged) and one block with its header,
// commit certificate (signers by name and organisation) and transactions.

import { ApiError, getJSON, organisationNames } from "../api.js";
import { badge, facts, h, hexId, link, row, section, table, to } from "../dom.js";
import { blockTime, count, number } from "../format.js";

const PAGE = 50;
const TX_PAGE = 100;
const TX_OPTIONAL = [0, 3]; // # and call: hidden on phones

export async function renderList(ctx) {
  const before = ctx.query.get("before");
  const query = before ? `?limit=${PAGE}&before=${encodeURIComponent(before)}` : `?limit=${PAGE}`;
  const list = await getJSON(`/blocks${query}`, ctx.signal);
  ctx.title("Blocks");
  const first = list.blocks[0]?.height;
  ctx.show(
    h("h1", null, "Blocks"),
    h("p", { class: "lead" }, `The chain is ${count(list.height, "block")} long.`,
      first ? ` Showing ${number(list.blocks[list.blocks.length - 1].height)}–${number(first)}.` : ""),
    table({
      caption: "Newest first",
      head: ["Height", "Time (UTC+8)", "Txs", "Proposer", "Hash"],
      rows: list.blocks.map((b) => [
        link(to.block(b.height), number(b.height)), blockTime(b.timestamp_ms), number(b.txs),
        b.proposer || h("span", { class: "muted" }, "null block"), hexId(b.hash, { chars: 16 })]),
      empty: "No block has been committed yet.", optional: [3, 4],
    }),
    h("nav", { class: "pager", "aria-label": "Pages of blocks" },
      before ? link(to.blocks(), "← Newest") : null,
      list.next ? link(to.blocks(list.next), "Older →") : null));
}

function txRows(txs) {
  return txs.map((t) => [
    number(t.index),
    hexId(t.id, { href: to.tx(t.id), chars: 12 }),
    t.account ? [h("span", { class: "strong" }, t.account), h("br"), h("span", { class: "muted small" }, t.org_name)]
      : hexId(t.sender),
    h("code", null, `${t.contract}.${t.method}`),
    t.status === "ok" ? badge("ok", "good") : badge(t.status, "bad"),
  ]);
}

export async function renderBlock(ctx, heightText) {
  if (!/^[1-9][0-9]{0,18}$/.test(heightText)) {
    throw new ApiError(404, "not_found", `no block has height ${heightText}: a height is a positive integer`);
  }
  const height = Number(heightText);
  const [block, validators, orgs, first] = await Promise.all([
    getJSON(`/blocks/${heightText}`, ctx.signal), getJSON("/validators", ctx.signal),
    organisationNames(ctx.signal), getJSON(`/blocks/${heightText}/txs?limit=${TX_PAGE}`, ctx.signal),
  ]);
  const tip = (await getJSON("/blocks?limit=1", ctx.signal)).height;
  ctx.title(`Block ${number(height)}`);
  const header = block.header;
  const orgOf = new Map(validators.validators.map((v) => [v.name, orgs.get(v.org) ?? v.org]));
  const named = (name) => (name ? [h("span", { class: "strong" }, name), orgOf.has(name) ? ` (${orgOf.get(name)})` : ""]
    : h("span", { class: "muted" }, "none: a null block, left by a view change"));

  const txBody = h("div", null, table({
    caption: `${count(first.count, "transaction")}${first.count > TX_PAGE ? `, the first ${TX_PAGE}` : ""}`,
    head: ["#", "Transaction", "Sender", "Call", "Status"], rows: txRows(first.txs),
    empty: "This block carries no transactions.", className: "txs", optional: TX_OPTIONAL,
  }));
  const more = h("p", null);
  let next = first.next;
  let shown = first.txs.length;
  function moreButton() {
    if (next === null) return null;
    return h("button", {
      type: "button", class: "secondary", on: {
        click: async (event) => {
          event.target.disabled = true;
          const page = await getJSON(`/blocks/${heightText}/txs?limit=${TX_PAGE}&after=${next}`, ctx.signal);
          next = page.next;
          shown += page.txs.length;
          txBody.querySelector("tbody").append(...txRows(page.txs).map((cells) => row(cells, TX_OPTIONAL)));
          txBody.querySelector("caption").textContent = `${count(page.count, "transaction")}, ${number(shown)} shown`;
          more.replaceChildren(...[moreButton()].filter(Boolean));
        },
      },
    }, `Show ${TX_PAGE} more`);
  }
  more.replaceChildren(...[moreButton()].filter(Boolean));

  ctx.show(
    h("div", { class: "page-head" },
      h("h1", null, `Block ${number(height)}`),
      h("nav", { class: "pager", "aria-label": "Neighbouring blocks" },
        height > 1 ? link(to.block(height - 1), "← Previous") : null,
        height < tip ? link(to.block(height + 1), "Next →") : null)),
    section("Header", facts([
      ["Hash", hexId(block.hash, { chars: 64 })],
      ["Time (UTC+8)", blockTime(header.timestamp_ms)],
      ["Proposer", named(header.proposer)],
      ["View", number(header.view)],
      ["Transactions", number(block.txs.length)],
      ["Previous block", height > 1 ? hexId(header.prev_hash, { href: to.block(height - 1), chars: 64 })
        : h("span", { class: "muted" }, "none: the first block")],
      ["Transaction root", hexId(header.tx_root, { chars: 64 })],
      ["State root", hexId(header.state_root, { chars: 64 })],
      ["Chain", header.chain_id],
    ])),
    section("Commit certificate",
      h("p", null, `Signed by ${count(block.certificate.votes.length, "validator")} in view `,
        number(block.certificate.view), "; proposal digest ", hexId(block.certificate.digest), "."),
      table({
        head: ["Validator", "Organisation", "Signature"],
        rows: block.certificate.votes.map((v) => [
          h("span", { class: "strong" }, v.name ?? `validator #${v.validator}`),
          v.name ? orgOf.get(v.name) ?? "" : "", hexId(v.signature, { chars: 16 })]),
        className: "signers", optional: [2],
      })),
    section("Transactions", txBody, more));
}
