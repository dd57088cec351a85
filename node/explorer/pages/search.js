// Search: the node resolves the text (GET /search); one match opens its page.

import { getJSON } from "../api.js";
import { h, link, notice, to } from "../dom.js";

const KINDS = {
  block: ["Block", (id) => to.block(id)],
  tx: ["Transaction", (id) => to.tx(id)],
  account: ["Account", null],
  receipt: ["Fiscal receipt", (id) => to.receiptKey(id)],
  lot: ["Lot", (id) => to.lot(id)],
  receivable: ["Receivable", (id) => to.receivable(id)],
};

function pathOf(result) {
  const make = KINDS[result.kind]?.[1];
  return make ? make(result.id) : null;
}

export async function render(ctx) {
  const q = (ctx.query.get("q") || "").trim();
  const input = document.getElementById("search-q");
  if (input && q) input.value = q;
  ctx.title(q ? `Search: ${q}` : "Search");
  if (!q) {
    ctx.show(h("h1", null, "Search"),
      h("p", null, "Type a block height, a transaction id, a receipt's code and number, a lot id or a ",
        "receivable id in the search box above."));
    return;
  }
  const found = await getJSON(`/search?q=${encodeURIComponent(q)}`, ctx.signal);
  const pages = found.results.filter((r) => pathOf(r));
  if (found.results.length === 1 && pages.length === 1) {
    ctx.navigate(pathOf(pages[0]), { replace: true });
    return;
  }
  ctx.show(h("h1", null, "Search"),
    h("p", { class: "lead" }, "Results for ", h("q", null, found.query), ` at height ${found.height}:`),
    found.results.length
      ? h("ul", { class: "results" }, found.results.map((r) => {
        const path = pathOf(r);
        const label = KINDS[r.kind]?.[0] ?? r.kind;
        return h("li", null, h("span", { class: "kind" }, label), " ",
          path ? link(path, r.summary) : r.summary);
      }))
      : notice("warn", "Nothing on this chain matches. Try a block height (42), a transaction id ",
        "(64 hex digits), a receipt's code and number (53010126 0000000001), a lot id or a receivable id."));
}
