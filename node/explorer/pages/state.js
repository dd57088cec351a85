// State lookup: one key of a contract's committed state (GET /state/{contract}/{key}).

import { ApiError, getJSON } from "../api.js";
import { facts, h, json, notice, section, to } from "../dom.js";
import { number } from "../format.js";

/** Contract names, from the argument components `<contract>.<method>` of /openapi.json. */
async function contractNames(signal) {
  const doc = await getJSON("/openapi.json", signal);
  const names = Object.keys(doc.components?.schemas ?? {})
    .filter((name) => name.includes(".")).map((name) => name.split(".")[0]);
  return [...new Set(names)].sort();
}

export async function render(ctx) {
  const contract = (ctx.query.get("contract") || "").trim();
  const key = ctx.query.get("key") || "";
  ctx.title(contract ? `State ${contract}/${key}` : "State lookup");
  const names = await contractNames(ctx.signal);
  const contractInput = h("select", { id: "state-contract", name: "contract", required: true },
    names.map((name) => h("option", { value: name, selected: name === (contract || "kv") }, name)));
  const keyInput = h("input", {
    id: "state-key", name: "key", type: "text", required: true, maxlength: "1024", value: key,
    autocomplete: "off", spellcheck: "false",
  });
  const form = h("form", {
    class: "form", action: "/explorer/state", method: "get", on: {
      submit: (event) => {
        event.preventDefault();
        ctx.navigate(to.state(contractInput.value, keyInput.value));
      },
    },
  },
  h("div", { class: "field" }, h("label", { for: "state-contract" }, "Contract"), contractInput),
  h("div", { class: "field grow" }, h("label", { for: "state-key" }, "Key"), keyInput,
    h("p", { class: "hint", id: "state-key-hint" },
      "kv: the key as written; fiscal: code-number (53010126-0000000001); trace: a lot id; receivable: its id.")),
  h("div", { class: "field actions" }, h("button", { type: "submit" }, "Look up")));
  keyInput.setAttribute("aria-describedby", "state-key-hint");

  let result = null;
  if (contract && key) {
    try {
      const entry = await getJSON(`/state/${encodeURIComponent(contract)}/${encodeURIComponent(key)}`, ctx.signal);
      result = section("Value", facts([
        ["Contract", entry.contract], ["Key", entry.key], ["Read at height", number(entry.height)],
      ]), json(entry.value));
    } catch (err) {
      if (!(err instanceof ApiError) || err.status >= 500 || err.status === 0) throw err;
      result = notice("bad", err.message);
    }
  }
  ctx.show(h("h1", null, "State lookup"),
    h("p", { class: "lead" }, "Read one key of a contract's state, as committed on this node."),
    form, h("div", { id: "state-result", "aria-live": "polite" }, result));
}
