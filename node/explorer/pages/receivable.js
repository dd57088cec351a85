// A receivable and its history: who owes whom, split, transferred,
// financed (once) and settled.

import { getJSON, organisationNames } from "../api.js";
import { badge, facts, h, link, section, to } from "../dom.js";
import { RECEIVABLE_EVENTS, isoTime, number, yuan } from "../format.js";

const STATUS_TONE = { open: "good", split: "neutral", settled: "neutral" };

function describe(event, org) {
  const amount = event.amount_cents !== undefined ? yuan(event.amount_cents) : null;
  switch (event.event) {
    case "issue":
      return `${amount} owed to ${org(event.to)}, due ${event.maturity_date}`;
    case "split":
      return ["into ", (event.parts ?? []).map(([id, cents, holder], i) =>
        [i ? "; " : "", link(to.receivable(id), id), ` ${yuan(cents)} held by ${org(holder)}`])];
    case "split_from":
      return ["part of ", link(to.receivable(event.parent), event.parent), `: ${amount}, held by ${org(event.to)}`];
    case "transfer":
      return `from ${org(event.from)} to ${org(event.to)}`;
    case "finance":
      return `by ${org(event.to)}, advancing ${yuan(event.advance_cents)} to ${org(event.from)}`;
    case "settle":
      return `${amount} paid to ${org(event.paid_to)}`;
    default:
      return "";
  }
}

export async function render(ctx, id) {
  const [r, orgs] = await Promise.all([getJSON(`/receivables/${encodeURIComponent(id)}`, ctx.signal),
    organisationNames(ctx.signal)]);
  const org = (name) => orgs.get(name) ?? name;
  ctx.title(`Receivable ${r.id}`);
  ctx.show(
    h("div", { class: "page-head" },
      h("h1", null, `Receivable ${r.id}`), badge(r.status, STATUS_TONE[r.status] ?? "neutral")),
    section("Receivable", facts([
      ["Amount", yuan(r.amount_cents)],
      ["Owed by", org(r.debtor)],
      ["Held by", org(r.holder)],
      ["Matures", r.maturity_date],
      ["Issued", [isoTime(r.issued_time), " · ", link(to.tx(r.issued_tx_id), `block ${number(r.issued_height)}`)]],
      ["Split from", r.parent ? link(to.receivable(r.parent), r.parent) : null],
      ["Split into", r.parts.length ? r.parts.map((p, i) => [i ? ", " : "", link(to.receivable(p), p)]) : null],
      ["Financed", r.financed ? [`by ${org(r.financed.bank)}, advance ${yuan(r.financed.advance_cents)}, `,
        isoTime(r.financed.time), " · ", link(to.tx(r.financed.tx_id), `block ${number(r.financed.height)}`)]
        : "not financed"],
      ["Settled", r.settled ? [`paid to ${org(r.settled.paid_to)}, ${isoTime(r.settled.time)} · `,
        link(to.tx(r.settled.tx_id), `block ${number(r.settled.height)}`)] : "not yet"],
    ])),
    section("History", h("ol", { class: "timeline" }, r.events.map((event) =>
      h("li", { class: `ev ev-${event.event}` },
        h("div", { class: "ev-when" }, h("time", null, isoTime(event.time))),
        h("div", { class: "ev-what" }, h("span", { class: "ev-kind" }, RECEIVABLE_EVENTS[event.event] ?? event.event),
          " · ", h("span", { class: "strong" }, org(event.org))),
        h("div", { class: "ev-detail" }, describe(event, org), " ",
          link(to.tx(event.tx_id), `block ${number(event.height)}`))))),
    r.event_count > r.events.length
      ? h("p", { class: "muted" }, `Showing the first ${r.events.length} of ${r.event_count} events.`) : null));
}
