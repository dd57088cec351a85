// Building the DOM without markup: every string from the chain becomes a text
// node or an attribute value, never HTML.  Links only ever point inside this
// explorer (paths built by `to` below), so no chain data becomes a URL scheme.

const SVG_NS = "http://www.w3.org/2000/svg";

function append(parent, child) {
  if (child === null || child === undefined || child === false) return;
  if (Array.isArray(child)) {
    for (const item of child) append(parent, item);
  } else if (child instanceof Node) {
    parent.appendChild(child);
  } else {
    parent.appendChild(document.createTextNode(String(child)));
  }
}

function setProps(el, props) {
  for (const [name, value] of Object.entries(props || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "on") {
      for (const [event, handler] of Object.entries(value)) el.addEventListener(event, handler);
    } else if (name === "dataset") {
      Object.assign(el.dataset, value);
    } else if (name.toLowerCase().startsWith("on")) {
      throw new Error(`event handlers go in props.on, not ${name}`);
    } else if (name === "href" && !String(value).startsWith("/") && !String(value).startsWith("#")) {
      throw new Error(`links stay inside the explorer: ${value}`);
    } else {
      el.setAttribute(name, value === true ? "" : String(value));
    }
  }
}

/** h("a", {href: "/x", class: "c"}, "text", child, [more]) */
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  setProps(el, props);
  append(el, children);
  return el;
}

/** The same for SVG elements (charts). */
export function svg(tag, props, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  setProps(el, props);
  append(el, children);
  return el;
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
}

export function replace(el, ...children) {
  clear(el);
  append(el, children);
  return el;
}

const enc = encodeURIComponent;

/** Paths of the explorer's pages (app.js routes them). */
export const to = {
  overview: () => "/",
  blocks: (before) => (before ? `/explorer/blocks?before=${enc(before)}` : "/explorer/blocks"),
  block: (height) => `/explorer/blocks/${enc(height)}`,
  tx: (id) => `/explorer/txs/${enc(id)}`,
  state: (contract, key) =>
    contract ? `/explorer/state?contract=${enc(contract)}&key=${enc(key)}` : "/explorer/state",
  search: (q) => `/explorer/search?q=${enc(q)}`,
  verify: () => "/fiscal/verify",
  receipt: (code, number) => `/fiscal/receipts/${enc(code)}/${enc(number)}`,
  receiptKey: (key) => {
    const [code, number] = String(key).split("-");
    return to.receipt(code, number);
  },
  lot: (lot) => `/trace/${enc(lot)}`,
  receivable: (id) => `/receivables/${enc(id)}`,
  proposals: (status, after) => {
    const query = new URLSearchParams();
    if (status) query.set("status", status);
    if (after) query.set("after", after);
    return query.size ? `/gov/proposals?${query}` : "/gov/proposals";
  },
  proposal: (id) => `/gov/proposals/${enc(id)}`,
};

export function link(path, ...children) {
  return h("a", { href: path }, ...children);
}

/** A long hex id: shortened on screen, whole for copy, title and screen readers. */
export function hexId(hex, { href, chars = 10 } = {}) {
  const text = String(hex);
  const short = text.length > chars + 6 ? `${text.slice(0, chars)}…${text.slice(-4)}` : text;
  const props = { class: "hex", title: text, "aria-label": text };
  return href ? h("a", { ...props, href }, short) : h("span", props, short);
}

/** A definition list of [label, value] rows (value: node, text or null to skip). */
export function facts(rows, className = "facts") {
  return h("dl", { class: className },
    rows.filter((row) => row && row[1] !== null && row[1] !== undefined).map(([label, value]) =>
      h("div", { class: "fact" }, h("dt", null, label), h("dd", null, value))));
}

/** One table row; the columns listed in `optional` are hidden on phones. */
export function row(cells, optional = [], props = null) {
  return h("tr", props, cells.map((cell, i) => h("td", { class: optional.includes(i) ? "opt" : null }, cell)));
}

/** A table with a caption; rows are arrays of cells (node or text). */
export function table({ caption, head, rows, className = "", empty = "Nothing yet.", optional = [], id }) {
  const body = rows.length
    ? rows.map((cells) => row(cells, optional))
    : [h("tr", null, h("td", { colspan: head.length, class: "muted" }, empty))];
  return h("div", { class: "table-wrap" },
    h("table", { class: className, id },
      caption ? h("caption", null, caption) : null,
      h("thead", null, h("tr", null, head.map((label, i) =>
        h("th", { scope: "col", class: optional.includes(i) ? "opt" : null }, label)))),
      h("tbody", null, body)));
}

export function badge(text, tone = "neutral", title) {
  return h("span", { class: `badge ${tone}`, title }, text);
}

/** Chinese label with its English, e.g. zh("票据代码", "Receipt code"). */
export function zh(chinese, english) {
  return [h("span", { lang: "zh-CN" }, chinese), " ", english];
}

/** Any JSON value, shown as indented JSON text. */
export function json(value) {
  const exact = (key, item) => {
    if (typeof item !== "bigint") return item;
    return JSON.rawJSON ? JSON.rawJSON(item.toString()) : item.toString();
  };
  return h("pre", { class: "json" }, JSON.stringify(value, exact, 2));
}

export function section(title, ...children) {
  return h("section", { class: "panel" }, h("h2", null, title), ...children);
}

export function notice(tone, ...children) {
  return h("div", { class: `notice ${tone}`, role: tone === "bad" ? "alert" : "status" }, ...children);
}
