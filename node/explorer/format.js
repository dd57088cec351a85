// Formatting for people: amounts (integer cents on the chain), times, labels.

const MAX_YUAN_DIGITS = 10; // 10^12 cents is the ledger's largest amount

/** 4265012 -> "¥42,650.12" (cents are integers on the chain; no float arithmetic). */
export function yuan(cents) {
  const value = BigInt(cents);
  const sign = value < 0n ? "-" : "";
  const abs = value < 0n ? -value : value;
  const whole = (abs / 100n).toString().replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  const frac = (abs % 100n).toString().padStart(2, "0");
  return `${sign}¥${whole}.${frac}`;
}

/** "426.5" / "¥426.50" / "1,200" -> cents, or null when it is not an amount. */
export function parseYuan(text) {
  const match = /^\s*[¥￥]?\s*(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d{1,2}))?\s*$/.exec(String(text));
  if (!match) return null;
  const whole = match[1].replaceAll(",", "");
  if (whole.replace(/^0+/, "").length > MAX_YUAN_DIGITS) return null;
  return Number(whole) * 100 + Number((match[2] || "").padEnd(2, "0"));
}

/** cents -> the yuan text a form field shows ("426.50"). */
export function centsToInput(cents) {
  return yuan(cents).replace("¥", "").replaceAll(",", "");
}

const BEIJING_MS = 8 * 3600 * 1000;

/** A block timestamp (ms) as Beijing time (UTC+8), the ledger's calendar. */
export function blockTime(ms) {
  return new Date(Number(ms) + BEIJING_MS).toISOString().slice(0, 19).replace("T", " ");
}

/** A contract view's ISO time ("2026-04-12T09:30:00+08:00") for display. */
export function isoTime(iso) {
  return String(iso).replace("T", " ").replace(/\+08:00$/, "");
}

/** Seconds elapsed as "4 s", "3 min", "2 h", "5 d". */
export function span(seconds) {
  const s = Math.max(0, Math.round(seconds));
  if (s < 90) return `${s} s`;
  if (s < 90 * 60) return `${Math.round(s / 60)} min`;
  if (s < 36 * 3600) return `${Math.round(s / 3600)} h`;
  return `${Math.round(s / 86400)} d`;
}

export function count(n, one, many = `${one}s`) {
  return `${number(n)} ${Number(n) === 1 ? one : many}`;
}

export function number(n, digits = 0) {
  if (typeof n === "bigint") return n.toLocaleString("en-US");
  return Number(n).toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

// 票据状态: fiscal receipt statuses (ledger/contracts/fiscal.py) in Chinese and English.
export const RECEIPT_STATUS = {
  valid: ["未报销", "valid, not reimbursed", "good"],
  locked: ["报销中", "locked for reimbursement", "warn"],
  partially_reimbursed: ["部分报销", "partially reimbursed", "warn"],
  reimbursed: ["已报销", "fully reimbursed", "neutral"],
  voided: ["已冲红", "voided by a red receipt", "bad"],
  red: ["红字票据", "red receipt (voids another)", "bad"],
};

export const CLAIM_STATE = { locked: ["锁定", "locked"], reimbursed: ["已报销", "reimbursed"] };

// Trace events (ledger/contracts/trace.py), as a consumer reads them.
export const LOT_EVENTS = {
  commission: "Harvested / made at origin",
  inspect: "Inspected",
  transform: "Processed",
  aggregate: "Packed",
  disaggregate: "Unpacked",
  ship: "Shipped",
  receive: "Received",
  sell: "Sold",
  retire: "Retired",
};

// Receivable events (ledger/contracts/receivable.py).
export const RECEIVABLE_EVENTS = {
  issue: "Issued",
  split: "Split",
  split_from: "Split from",
  transfer: "Transferred",
  finance: "Financed",
  settle: "Settled",
};
