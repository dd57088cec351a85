// One transaction: where it is, who sent it (account and organisation), the
// contract call with its arguments, and its receipt.  A pending one is
// watched until it commits or the node drops it.

import { ApiError, getJSON } from "../api.js";
import { badge, facts, h, hexId, json, link, notice, section, to } from "../dom.js";
import { number } from "../format.js";

const PENDING_POLL_MS = 1000;
const MAX_LINKS = 20;

/** Pages of the things a call names: receipts, lots, receivables, kv keys. */
function related(tx) {
  const args = tx.args && typeof tx.args === "object" ? tx.args : {};
  const found = new Map();
  const add = (path, label) => {
    if (found.size < MAX_LINKS && !found.has(path)) found.set(path, label);
  };
  if (tx.contract === "fiscal" && typeof args.code === "string" && typeof args.number === "string") {
    add(to.receipt(args.code, args.number), `receipt ${args.code}-${args.number}`);
  }
  if (tx.contract === "kv" && typeof args.key === "string") {
    add(to.state("kv", args.key), `kv key ${args.key}`);
  }
  (function walk(value, depth) {
    if (depth > 4 || value === null || typeof value !== "object") return;
    for (const [key, item] of Object.entries(value)) {
      if (typeof item === "string" && tx.contract === "trace" && (key === "lot" || key === "package")) {
        add(to.lot(item), `lot ${item}`);
      } else if (typeof item === "string" && tx.contract === "receivable" && key === "id") {
        add(to.receivable(item), `receivable ${item}`);
      } else {
        walk(item, depth + 1);
      }
    }
  })(args, 0);
  return [...found].map(([path, label]) => h("li", null, link(path, label)));
}

function argumentFacts(args) {
  if (args === null || typeof args !== "object" || Array.isArray(args)) return json(args);
  return facts(Object.entries(args).map(([key, value]) =>
    [key, value !== null && typeof value === "object" ? json(value) : String(value)]), "facts args");
}

async function sender(tx, signal) {
  try {
    return await getJSON(`/accounts/${tx.sender}`, signal);
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) return null; // not in the directory
    throw err;
  }
}

export async function render(ctx, id) {
  let record = await getJSON(`/txs/${encodeURIComponent(id)}`, ctx.signal);
  ctx.title(`Transaction ${id.slice(0, 10)}…`);
  if (record.status !== "committed") {
    ctx.show(h("h1", null, "Transaction"), facts([["Id", hexId(record.id, { chars: 64 })]]),
      record.status === "pending"
        ? notice("warn", "Pending: waiting in this node's mempool for a block. This page follows it.")
        : notice("bad", `Dropped by this node without being committed: ${record.status}.`));
    if (record.status !== "pending") return;
    while (ctx.active && record.status === "pending") {
      await new Promise((resolve) => setTimeout(resolve, PENDING_POLL_MS));
      if (!ctx.active) return;
      record = await getJSON(`/txs/${encodeURIComponent(id)}`, ctx.signal);
    }
    return render(ctx, id);
  }

  const tx = record.tx;
  const account = await sender(tx, ctx.signal);
  const receipt = record.receipt;
  const links = related(tx);
  ctx.show(
    h("h1", null, "Transaction"),
    section("Summary", facts([
      ["Id", hexId(record.id, { chars: 64 })],
      ["Status", receipt.status === "ok" ? badge("ok: committed and executed", "good")
        : badge(`${receipt.status}: committed, refused by the contract`, "bad")],
      ["Block", [link(to.block(record.height), `block ${number(record.height)}`), `, position ${number(record.index)}`]],
      ["Sender", account ? [h("span", { class: "strong" }, account.name), " of ", account.org_name,
        h("span", { class: "muted" }, ` (${account.org}; roles: ${account.roles.join(", ") || "none"})`),
        account.public_key !== tx.sender ? [" ", badge("key since rotated", "warn")] : null]
        : h("span", { class: "muted" }, "not an account of this chain's directory")],
      ["Sender key", hexId(tx.sender, { chars: 64 })],
      ["Call", h("code", { class: "call" }, `${tx.contract}.${tx.method}`)],
      ["Nonce", String(tx.nonce)],
      ["Valid until height", number(tx.valid_until)],
    ])),
    section("Arguments", argumentFacts(tx.args)),
    section("Receipt", facts([
      ["Status", `${receipt.status} (code ${receipt.code})`],
      ["Message", receipt.message || h("span", { class: "muted" }, "none")],
      ["Result", json(receipt.result)],
    ])),
    links.length ? section("What it touched", h("ul", { class: "links" }, links)) : null,
    section("Signature", hexId(tx.signature, { chars: 128 })));
}
