// Overview: the chain as this node sees it, live.  Committed blocks arrive on
// the block event stream (/events/blocks, from the height after the listed
// ones, so nothing is missed or shown twice); view, primary and connections
// are polled from /status and /validators.  Observer nodes come from the
// configuration in force (/config): they follow the chain and vote in nothing.

import { getJSON, organisationNames } from "../api.js";
import { badge, h, hexId, link, replace, row, section, svg, table, to } from "../dom.js";
import { blockTime, count, number, span } from "../format.js";

const SHOWN_BLOCKS = 20;
const CHART_BLOCKS = 40;
const FETCHED_BLOCKS = 100;
const RATE_WINDOW_S = 60;
const KEPT_BLOCKS = 5000;
const POLL_MS = 5000;
const RECONNECT_MS = 2000;

class Live {
  constructor(status, list) {
    this.tip = status.height;
    this.offsetMs = status.time * 1000 - Date.now(); // node clock - browser clock
    this.blocks = list.blocks; // newest first
    this.complete = list.next === null; // every block since height 1 is known
  }

  add(block) {
    if (block.height <= this.tip) return false;
    this.tip = block.height;
    this.blocks.unshift(block);
    if (this.blocks.length > KEPT_BLOCKS) {
      this.blocks.length = KEPT_BLOCKS;
      this.complete = false;
    }
    return true;
  }

  nodeNow() {
    return Date.now() + this.offsetMs;
  }

  /** Committed txs per second over the last minute (or what is known of it). */
  rate() {
    const now = this.nodeNow();
    const cutoff = now - RATE_WINDOW_S * 1000;
    let txs = 0;
    for (const b of this.blocks) {
      if (b.timestamp_ms <= cutoff) break;
      txs += b.txs;
    }
    const oldest = this.blocks[this.blocks.length - 1];
    const covered = this.complete || !oldest || oldest.timestamp_ms <= cutoff
      ? RATE_WINDOW_S : (now - oldest.timestamp_ms) / 1000;
    return txs / Math.max(covered, 1);
  }

  /** Mean time between the last SHOWN_BLOCKS blocks, in seconds (null below two blocks). */
  blockTime() {
    const recent = this.blocks.slice(0, SHOWN_BLOCKS);
    if (recent.length < 2) return null;
    return (recent[0].timestamp_ms - recent[recent.length - 1].timestamp_ms) / 1000 / (recent.length - 1);
  }
}

function stat(id, label, value, note) {
  return h("div", { class: "stat" },
    h("div", { class: "stat-label", id: `${id}-label` }, label),
    h("div", { class: "stat-value", id, "aria-labelledby": `${id}-label ${id}` }, value),
    note ? h("div", { class: "stat-note", id: `${id}-note` }, note) : null);
}

function nodeRows(validators, observers, orgs) {
  return [
    ...validators.map((v) => [
      h("span", { class: "strong" }, v.name),
      orgs.get(v.org) ?? v.org,
      v.connected ? badge("● connected", "good")
        : badge("○ not connected", "bad", v.last_error ? `last error: ${v.last_error}` : undefined),
      v.primary ? badge("primary", "info") : "validator (backup)",
    ]),
    ...observers.map((n) => [
      h("span", { class: "strong" }, n.name),
      orgs.get(n.org) ?? n.org,
      h("span", { class: "muted" }, "not in the validator mesh"),
      "observer",
    ]),
  ];
}

const BLOCK_HEAD = ["Height", "Time (UTC+8)", "Txs", "Proposer", "Hash"];
const BLOCK_OPTIONAL = [3, 4];

function blockRow(b) {
  return row([
    link(to.block(b.height), number(b.height)), h("time", null, blockTime(b.timestamp_ms)), number(b.txs),
    b.proposer || h("span", { class: "muted" }, "null block"), hexId(b.hash, { chars: 12 }),
  ], BLOCK_OPTIONAL, { dataset: { height: String(b.height) } });
}

function chart(blocks) {
  const shown = blocks.slice(0, CHART_BLOCKS).reverse();
  const width = 400;
  const height = 90;
  const max = Math.max(1, ...shown.map((b) => b.txs));
  const slot = width / CHART_BLOCKS;
  const first = CHART_BLOCKS - shown.length; // the newest block always at the right edge
  const bars = shown.map((b, i) => {
    const barHeight = b.txs ? Math.max(2, (b.txs / max) * (height - 4)) : 1;
    return svg("rect", {
      x: ((first + i) * slot + 1).toFixed(1), y: (height - barHeight).toFixed(1),
      width: Math.max(1, slot - 2).toFixed(1), height: barHeight.toFixed(1), class: b.txs ? "bar" : "bar empty",
    }, svg("title", null, `block ${b.height}: ${b.txs} txs`));
  });
  return svg("svg", {
    viewBox: `0 0 ${width} ${height}`, class: "chart", role: "img", preserveAspectRatio: "none",
    "aria-label": `Transactions per block, last ${shown.length} blocks; at most ${max}`,
  }, bars);
}

export async function render(ctx) {
  ctx.title("Overview");
  const [status, validators, orgs, list, config] = await Promise.all([
    getJSON("/status", ctx.signal), getJSON("/validators", ctx.signal),
    organisationNames(ctx.signal), getJSON(`/blocks?limit=${FETCHED_BLOCKS}`, ctx.signal),
    getJSON("/config", ctx.signal),
  ]);
  const observers = config.nodes.filter((n) => n.role === "observer");
  const live = new Live(status, list);

  const liveBadge = h("span", { class: "live", id: "live-state", role: "status" }, "connecting…");
  const heightValue = h("span", null, number(live.tip));
  const rateValue = h("span", null, "–");
  const blockTimeValue = h("span", null, "–");
  const lastBlockValue = h("span", null, "–");
  const viewValue = h("span", null, `${status.view} · ${status.primary}`);
  const mempoolValue = h("span", null, number(status.mempool));
  const validatorBody = h("div", null);
  const chartBox = h("div", { class: "chart-box" });
  const blockBody = h("tbody", null);

  function refreshStats() {
    replace(heightValue, number(live.tip));
    replace(rateValue, number(live.rate(), 1));
    const bt = live.blockTime();
    replace(blockTimeValue, bt === null ? "–" : `${number(bt, bt < 10 ? 2 : 0)} s`);
    const last = live.blocks[0];
    replace(lastBlockValue, last ? `${span((live.nodeNow() - last.timestamp_ms) / 1000)} ago` : "none yet");
  }

  function refreshBlocks() {
    replace(blockBody, live.blocks.length
      ? live.blocks.slice(0, SHOWN_BLOCKS).map(blockRow)
      : h("tr", null, h("td", { colspan: 5, class: "muted" }, "No block has been committed yet.")));
    replace(chartBox, chart(live.blocks));
  }

  function showValidators(list) {
    replace(validatorBody, table({
      caption: "Connection state as this node sees it",
      head: ["Node", "Organisation", "Connection", "Role"],
      rows: nodeRows(list, observers, orgs), className: "validators",
    }));
  }

  ctx.show(
    h("div", { class: "page-head" },
      h("h1", null, "Chain overview"),
      h("p", { class: "lead" }, "Chain ", h("strong", { id: "chain-id" }, status.chain_id),
        " as node ", h("strong", null, status.node), " holds it. ", liveBadge)),
    h("div", { class: "stats" },
      stat("stat-height", "Height", heightValue),
      stat("stat-rate", "Committed tx/s", rateValue, `last ${RATE_WINDOW_S} s`),
      stat("stat-block-time", "Block time", blockTimeValue, `mean of the last ${SHOWN_BLOCKS} blocks`),
      stat("stat-last-block", "Last block", lastBlockValue),
      stat("stat-view", "View · primary", viewValue),
      stat("stat-mempool", "Pending txs", mempoolValue, "in this node's mempool")),
    section("Nodes", validatorBody,
      h("p", { class: "muted small" }, `${count(validators.validators.length, "validator")} `,
        validators.validators.length === 1 ? "orders" : "order", " the chain; ",
        observers.length ? [count(observers.length, "observer"),
          observers.length === 1 ? " follows it and votes in nothing." : " follow it and vote in nothing."]
          : "the configuration in force has no observer node.")),
    section("Transactions per block", chartBox),
    section("Recent blocks",
      h("div", { class: "table-wrap" },
        h("table", { id: "recent-blocks" },
          h("caption", { class: "visually-hidden" }, "The most recent blocks, newest first"),
          h("thead", null, h("tr", null, BLOCK_HEAD.map((label, i) =>
            h("th", { scope: "col", class: BLOCK_OPTIONAL.includes(i) ? "opt" : null }, label)))),
          blockBody)),
      h("p", null, link(to.blocks(), "All blocks →"))));
  showValidators(validators.validators);
  refreshBlocks();
  refreshStats();

  // Live blocks.  The browser's own reconnection would resend `from`, so a
  // dropped stream is reopened here from the height after the last one shown.
  let source = null;
  let retry = null;
  function connect() {
    source = new EventSource(`/events/blocks?from=${live.tip + 1}`);
    source.addEventListener("open", () => replace(liveBadge, badge("● live", "good")));
    source.addEventListener("block", (event) => {
      if (live.add(JSON.parse(event.data))) {
        refreshBlocks();
        refreshStats();
      }
    });
    source.addEventListener("error", () => {
      source.close();
      replace(liveBadge, badge("reconnecting…", "warn"));
      retry = setTimeout(connect, RECONNECT_MS);
    });
  }
  connect();

  let polling = false;
  async function poll() {
    if (polling) return;
    polling = true;
    try {
      const [now, vals] = await Promise.all([getJSON("/status", ctx.signal), getJSON("/validators", ctx.signal)]);
      live.offsetMs = now.time * 1000 - Date.now();
      replace(viewValue, `${now.view} · ${now.primary}`);
      replace(mempoolValue, number(now.mempool));
      showValidators(vals.validators);
    } catch (err) {
      if (err.name !== "AbortError") replace(liveBadge, badge("node not answering", "bad"));
    } finally {
      polling = false;
    }
  }
  const ticker = setInterval(refreshStats, 1000);
  const poller = setInterval(poll, POLL_MS);
  ctx.onLeave(() => {
    source?.close();
    clearTimeout(retry);
    clearInterval(ticker);
    clearInterval(poller);
  });
}
