// The explorer's shell: routes the path to a page module, keeps navigation in
// the page (History API), and gives each page a context whose signal and
// cleanups end its requests, streams and timers when the reader moves on.
//
// A page module exports functions (ctx, ...path parts) -> Promise.  A new
// contract brings its page: a module under pages/ and a line in ROUTES (the
// server answers /explorer/... with this shell; a domain route that people
// open from a link also goes in PAGE_ROUTES of node/api/explorer.py).

import { ApiError, getJSON } from "./api.js";
import { h, notice, replace } from "./dom.js";
import * as blocks from "./pages/blocks.js";
import * as gov from "./pages/gov.js";
import * as lot from "./pages/lot.js";
import * as overview from "./pages/overview.js";
import * as receipt from "./pages/receipt.js";
import * as receivable from "./pages/receivable.js";
import * as search from "./pages/search.js";
import * as state from "./pages/state.js";
import * as tx from "./pages/tx.js";

const ROUTES = [
  [/^\/(?:explorer\/?)?$/, overview.render],
  [/^\/explorer\/blocks\/?$/, blocks.renderList],
  [/^\/explorer\/blocks\/([^/]+)$/, blocks.renderBlock],
  [/^\/explorer\/txs\/([^/]+)$/, tx.render],
  [/^\/explorer\/state\/?$/, state.render],
  [/^\/explorer\/search\/?$/, search.render],
  [/^\/fiscal\/verify$/, receipt.renderVerify],
  [/^\/fiscal\/receipts\/([^/]+)\/([^/]+)$/, receipt.renderReceipt],
  [/^\/trace\/([^/]+)$/, lot.render],
  [/^\/01\/([^/]+)\/10\/([^/]+)$/, lot.renderDigitalLink],
  [/^\/receivables\/([^/]+)$/, receivable.render],
  [/^\/gov\/proposals\/?$/, gov.renderList],
  [/^\/gov\/proposals\/([^/]+)$/, gov.renderProposal],
];

function decode(part) {
  try {
    return decodeURIComponent(part);
  } catch {
    return part;
  }
}

function match(pathname) {
  for (const [pattern, page] of ROUTES) {
    const found = pattern.exec(pathname);
    if (found) return { page, parts: found.slice(1).map(decode) };
  }
  return null;
}

class PageContext {
  constructor(main, url) {
    this.main = main;
    this.url = url;
    this.query = url.searchParams;
    this.controller = new AbortController();
    this.cleanups = [];
  }

  get signal() {
    return this.controller.signal;
  }

  get active() {
    return !this.controller.signal.aborted;
  }

  /** Run `fn` when the reader leaves this page (close streams, stop timers). */
  onLeave(fn) {
    this.cleanups.push(fn);
  }

  title(text) {
    document.title = `${text} · ynchain explorer`;
  }

  /** Put the page's content in place (only while it is still the current page). */
  show(...children) {
    if (this.active) replace(this.main, ...children);
  }

  navigate(path, options) {
    navigate(path, options);
  }

  leave() {
    this.controller.abort();
    for (const fn of this.cleanups.splice(0)) {
      try {
        fn();
      } catch (err) {
        console.warn("cleanup failed", err);
      }
    }
  }
}

const main = document.getElementById("main");
let current = null;

function markNav(pathname) {
  for (const a of document.querySelectorAll("nav a")) {
    const target = a.getAttribute("href");
    const here = target === "/" ? pathname === "/" || /^\/explorer\/?$/.test(pathname)
      : pathname.startsWith(target);
    if (here) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
}

function showError(ctx, err) {
  const missing = err instanceof ApiError && err.status === 404;
  ctx.title(missing ? "Not found" : "Error");
  ctx.show(h("h1", { tabindex: "-1" }, missing ? "Not found" : "Something went wrong"),
    notice("bad", err instanceof ApiError ? err.message : `error: ${err.message}`),
    h("p", null, h("a", { href: "/" }, "Back to the overview")));
}

async function show(url, { focus = false } = {}) {
  current?.leave();
  const ctx = new PageContext(main, url);
  current = ctx;
  main.setAttribute("aria-busy", "true");
  markNav(url.pathname);
  const route = match(url.pathname);
  try {
    if (route) {
      await route.page(ctx, ...route.parts);
    } else {
      throw new ApiError(404, "not_found", `the explorer has no page at ${url.pathname}`);
    }
  } catch (err) {
    if (!ctx.active || err.name === "AbortError") return;
    if (!(err instanceof ApiError)) console.error(err);
    showError(ctx, err);
  } finally {
    if (ctx.active) main.removeAttribute("aria-busy");
  }
  if (focus && ctx.active) {
    const heading = main.querySelector("h1");
    if (heading) {
      heading.setAttribute("tabindex", "-1");
      heading.focus({ preventScroll: true });
    }
    window.scrollTo(0, 0);
  }
}

export function navigate(path, { replace: replaceEntry = false } = {}) {
  const url = new URL(path, location.href);
  if (replaceEntry) history.replaceState(null, "", url);
  else history.pushState(null, "", url);
  show(url, { focus: true });
}

document.addEventListener("click", (event) => {
  const a = event.target.closest("a[href]");
  if (!a || event.defaultPrevented || event.button !== 0 || a.target || a.hasAttribute("download")
      || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
  const url = new URL(a.href);
  if (url.origin !== location.origin || !match(url.pathname)) return;
  event.preventDefault();
  if (url.href !== location.href) navigate(url.href);
});

window.addEventListener("popstate", () => show(new URL(location.href), { focus: true }));

document.querySelector("form.search").addEventListener("submit", (event) => {
  event.preventDefault();
  const input = event.target.elements.q;
  const q = input.value.trim();
  if (q) navigate(`/explorer/search?q=${encodeURIComponent(q)}`);
});

getJSON("/status").then((status) => {
  document.getElementById("footer-node").textContent = status.node;
  document.getElementById("footer-chain").textContent = status.chain_id;
}).catch((err) => console.warn("status:", err.message));

show(new URL(location.href));
