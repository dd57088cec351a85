// A lot's provenance, the page a consumer's QR code opens (the GS1 Digital
// Link /01/{gtin}/10/{lot}, or /trace/{lot}): whether anything it is made
// from failed an inspection, where it comes from, and every event of it and
// of its upstream lots, as a tree of inputs and as one timeline.

import { getJSON } from "../api.js";
import { badge, facts, h, link, notice, section, to } from "../dom.js";
import { LOT_EVENTS, isoTime, number } from "../format.js";

const MAX_TREE_DEPTH = 64;

function lotLink(id, current) {
  return id === current ? h("strong", null, id) : link(to.lot(id), id);
}

function describe(event, lot, org, current) {
  const q = (n) => `${number(n)} ${event.unit ?? lot.unit}`;
  const listOf = (pairs) => pairs.map(([id, n], i) => [i ? ", " : "", lotLink(id, current), ` (${number(n)})`]);
  switch (event.event) {
    case "commission":
      return `${q(event.quantity)} at ${event.base}, ${event.plot}; harvested ${event.harvest_date}`;
    case "inspect":
      return [event.result === "pass" ? badge("pass", "good") : badge("fail", "bad"),
        event.report_id ? ` report ${event.report_id}` : "", " (report hash on the chain)"];
    case "transform":
      return event.into ? [`${q(event.quantity)} used to make `, lotLink(event.into, current)]
        : [`${q(event.quantity)} made from `, listOf(event.inputs ?? [])];
    case "aggregate":
      return event.package ? [`${q(event.quantity)} packed into `, lotLink(event.package, current)]
        : ["packed: ", listOf(event.contents ?? [])];
    case "disaggregate":
      return event.package ? [`${q(event.quantity)} unpacked from `, lotLink(event.package, current)]
        : ["unpacked: ", listOf(event.contents ?? [])];
    case "ship":
      return `${q(event.quantity)} to ${org(event.to)} (shipment ${event.shipment})`;
    case "receive":
      return `${q(event.quantity)} from ${org(event.from)} (shipment ${event.shipment})`;
    case "sell":
      return `${q(event.quantity)} sold to consumers`;
    case "retire":
      return `${q(event.quantity)} taken out of the supply chain: ${event.reason}`;
    default:
      return "";
  }
}

function treeNode(entry, byLot, org, current, depth, used) {
  const item = h("li", { dataset: { lot: entry.lot } },
    h("div", { class: "tree-lot" },
      lotLink(entry.lot, current), " ",
      h("span", { class: "muted" }, `${entry.product} · ${number(entry.quantity)} ${entry.unit}`),
      used !== undefined ? h("span", { class: "muted" }, ` · ${number(used)} used`) : null,
      entry.status === "ok" ? null : [" ", badge("failed inspection", "bad")],
      h("div", { class: "small" },
        entry.origin ? `Origin: ${entry.origin.base}, ${entry.origin.plot}, harvested ${entry.origin.harvest_date}. `
          : "", `Made by ${org(entry.creator)}, ${isoTime(entry.created_time)}.`)));
  if (entry.inputs.length && depth < MAX_TREE_DEPTH) {
    item.append(h("ul", null, entry.inputs.map((input) => {
      const parent = byLot.get(input.lot);
      return parent ? treeNode(parent, byLot, org, current, depth + 1, input.quantity)
        : h("li", null, lotLink(input.lot, current), h("span", { class: "muted" }, " (not shown: the view was cut short)"));
    })));
  }
  return item;
}

function timeline(entries, org, current) {
  const events = entries.flatMap((entry, order) =>
    entry.events.map((event) => ({ event, entry, order })));
  events.sort((a, b) => a.event.height - b.event.height || a.event.time_ms - b.event.time_ms || b.order - a.order);
  return h("ol", { class: "timeline" }, events.map(({ event, entry }) =>
    h("li", { class: `ev ev-${event.event}` },
      h("div", { class: "ev-when" }, h("time", null, isoTime(event.time))),
      h("div", { class: "ev-what" },
        h("span", { class: "ev-kind" }, LOT_EVENTS[event.event] ?? event.event), " · ",
        h("span", { class: "strong" }, org(event.org)), " · lot ", lotLink(entry.lot, current)),
      h("div", { class: "ev-detail" }, describe(event, entry, org, current), " ",
        link(to.tx(event.tx_id), `block ${number(event.height)}`)))));
}

function verdict(lot) {
  if (lot.status === "ok") {
    return notice("good", "✔ No failed inspection: neither this lot nor anything it is made from ",
      "failed a laboratory inspection recorded on the chain.");
  }
  const failed = lot.failed_inspection;
  return notice("bad", "✘ Failed inspection: ", failed.lot === lot.lot ? "this lot" : ["lot ", link(to.lot(failed.lot), failed.lot)],
    ` failed an inspection by ${failed.lab} on ${isoTime(failed.time)}. Do not sell or consume it.`);
}

function show(ctx, view, gtin) {
  const lot = view.lot;
  const orgs = view.organisations;
  const org = (name) => orgs[name] ?? name;
  const entries = [lot, ...view.upstream];
  const byLot = new Map(entries.map((e) => [e.lot, e]));
  const origins = lot.origin ? `${lot.origin.base}, ${lot.origin.plot}` : lot.origins.join(", ");
  ctx.title(`${lot.product} · lot ${lot.lot}`);
  ctx.show(
    h("div", { class: "page-head" },
      h("h1", null, lot.product, " ", h("span", { class: "muted" }, `lot ${lot.lot}`)),
      gtin ? h("p", { class: "muted" }, `GS1 Digital Link: GTIN ${lot.gtin}, lot ${lot.lot}`) : null),
    verdict(lot),
    section("This lot", facts([
      ["Product", lot.product],
      ["GTIN", lot.gtin],
      ["Quantity", `${number(lot.quantity)} ${lot.unit}`],
      ["Origin", origins || null],
      ["Harvested", lot.origin?.harvest_date ?? null],
      ["Made by", `${org(lot.creator)}, ${isoTime(lot.created_time)}`],
      ["Held by", lot.holdings.length ? lot.holdings.map((x) => `${org(x.org)}: ${number(x.quantity)}`).join("; ") : "nobody"],
      ["Sold", `${number(lot.sold)} ${lot.unit}`],
      ["Upstream lots", number(view.upstream.length)],
    ])),
    section("Made from", h("ul", { class: "tree", id: "provenance-tree" }, treeNode(lot, byLot, org, lot.lot, 0))),
    section("Timeline", timeline(entries, org, lot.lot),
      view.truncated ? h("p", { class: "muted" }, "The view was cut short: very long histories show their first events.") : null));
}

export async function render(ctx, lotId) {
  show(ctx, await getJSON(`/trace/${encodeURIComponent(lotId)}`, ctx.signal));
}

export async function renderDigitalLink(ctx, gtin, lotId) {
  show(ctx, await getJSON(`/01/${encodeURIComponent(gtin)}/10/${encodeURIComponent(lotId)}`, ctx.signal), gtin);
}
