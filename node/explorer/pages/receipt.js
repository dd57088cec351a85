// Fiscal receipts: the check anyone holding a receipt can run (查验: code,
// number, check code and amount must all match) and a receipt's full record.
// The check page's URL is the API's own (/fiscal/verify?code=&number=&
// check_code=&amount_cents=), so a link or QR code printed on a receipt opens it.

import { getJSON, organisationNames } from "../api.js";
import { badge, facts, h, hexId, link, notice, section, table, to, zh } from "../dom.js";
import { CLAIM_STATE, RECEIPT_STATUS, centsToInput, isoTime, number, parseYuan, yuan } from "../format.js";

const CODE = /^[0-9]{8}$/;
const NUMBER = /^[0-9]{10}$/;
const CHECK_CODE = /^[0-9]{10}$/;
const CENTS = /^[0-9]{1,13}$/;

function statusBadge(status) {
  const [chinese, english, tone] = RECEIPT_STATUS[status] ?? [status, status, "neutral"];
  return badge([h("span", { lang: "zh-CN" }, chinese), ` ${english}`], tone);
}

function field(id, chinese, english, props, hint) {
  const input = h("input", { id, ...props, "aria-describedby": hint ? `${id}-hint` : null });
  return h("div", { class: "field" },
    h("label", { for: id }, zh(chinese, english)), input,
    hint ? h("p", { class: "hint", id: `${id}-hint` }, hint) : null);
}

function amounts(r) {
  return [
    [zh("票面金额", "Total"), yuan(r.total_cents)],
    [zh("已报销", "Reimbursed"), yuan(r.reimbursed_cents)],
    [zh("报销锁定", "Locked (claim in progress)"), yuan(r.locked_cents)],
    [zh("可报销", "Still claimable"), yuan(r.available_cents)],
  ];
}

function redLinks(r) {
  return [
    r.red_of ? [zh("冲红原票", "Voids receipt"), link(to.receiptKey(r.red_of), r.red_of)] : null,
    r.voided_by ? [zh("红字票据", "Voided by"), link(to.receiptKey(r.voided_by), r.voided_by)] : null,
  ];
}

function verifyResult(answer, orgs) {
  if (!answer.found) {
    return h("div", { id: "verify-result", class: "result bad", dataset: { found: "false" } },
      h("h2", null, "✘ ", h("span", { lang: "zh-CN" }, "查无此票"), " No such receipt"),
      h("p", null, `No receipt ${answer.receipt} on this chain has this check code and amount. `,
        "All four facts must match the receipt exactly; a receipt with other facts answers the same ",
        "way as one that does not exist."));
  }
  return h("div", { id: "verify-result", class: "result good", dataset: { found: "true", status: answer.status } },
    h("h2", null, "✔ ", h("span", { lang: "zh-CN" }, "查验通过"), " The receipt is on the chain"),
    facts([
      [zh("票据", "Receipt"), link(to.receiptKey(answer.receipt), answer.receipt)],
      [zh("状态", "Status"), statusBadge(answer.status)],
      [zh("开票单位", "Issued by"), orgs.get(answer.issuer_org) ?? answer.issuer_org],
      [zh("开票时间", "Issued at (UTC+8)"), isoTime(answer.issued_time)],
      ...amounts(answer),
      ...redLinks(answer),
    ]));
}

export async function renderVerify(ctx) {
  ctx.title("查验 Verify a fiscal receipt");
  const q = (name) => (ctx.query.get(name) || "").trim();
  const given = { code: q("code"), number: q("number"), check: q("check_code"), cents: q("amount_cents") };
  const amountInput = field("verify-amount", "金额", "Amount (yuan)", {
    name: "amount", type: "text", inputmode: "decimal", required: true, autocomplete: "off",
    placeholder: "426.50", value: CENTS.test(given.cents) ? centsToInput(given.cents) : "",
  }, "The total printed on the receipt, e.g. 426.50.");
  const form = h("form", { class: "form verify", action: "/fiscal/verify", method: "get", novalidate: true },
    field("verify-code", "票据代码", "Receipt code", {
      name: "code", type: "text", inputmode: "numeric", required: true, pattern: "[0-9]{8}", maxlength: "8",
      autocomplete: "off", placeholder: "53010126", value: given.code,
    }, "8 digits"),
    field("verify-number", "票据号码", "Receipt number", {
      name: "number", type: "text", inputmode: "numeric", required: true, pattern: "[0-9]{10}",
      maxlength: "10", autocomplete: "off", placeholder: "0000000001", value: given.number,
    }, "10 digits"),
    field("verify-check-code", "校验码", "Check code", {
      name: "check_code", type: "text", inputmode: "numeric", required: true, pattern: "[0-9]{10}",
      maxlength: "10", autocomplete: "off", placeholder: "0123456789", value: given.check,
    }, "10 digits"),
    amountInput,
    h("div", { class: "field actions" }, h("button", { type: "submit" }, h("span", { lang: "zh-CN" }, "查验"), " Verify")));
  const problems = h("div", { id: "verify-problems", role: "alert" });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const value = (name) => form.elements[name].value.trim();
    const cents = parseYuan(value("amount"));
    const wrong = [];
    for (const [name, pattern, label] of [["code", CODE, "票据代码 Receipt code: 8 digits"],
      ["number", NUMBER, "票据号码 Receipt number: 10 digits"], ["check_code", CHECK_CODE, "校验码 Check code: 10 digits"]]) {
      const ok = pattern.test(value(name));
      form.elements[name].setAttribute("aria-invalid", String(!ok));
      if (!ok) wrong.push(label);
    }
    form.elements.amount.setAttribute("aria-invalid", String(cents === null));
    if (cents === null) wrong.push("金额 Amount: yuan with at most two decimals, e.g. 426.50");
    if (wrong.length) {
      problems.replaceChildren(notice("bad", "Please correct: ", wrong.join("; "), "."));
      form.querySelector("[aria-invalid=true]").focus();
      return;
    }
    const params = new URLSearchParams({
      code: value("code"), number: value("number"), check_code: value("check_code"), amount_cents: String(cents),
    });
    ctx.navigate(`/fiscal/verify?${params}`);
  });

  let result = null;
  const complete = CODE.test(given.code) && NUMBER.test(given.number) && CHECK_CODE.test(given.check)
    && CENTS.test(given.cents);
  if (complete) {
    const params = new URLSearchParams({
      code: given.code, number: given.number, check_code: given.check, amount_cents: given.cents,
    });
    const [answer, orgs] = await Promise.all([getJSON(`/fiscal/verify?${params}`, ctx.signal),
      organisationNames(ctx.signal)]);
    result = verifyResult(answer, orgs);
  } else if (given.check || given.cents) {
    result = notice("bad", "This link does not carry a complete check: it needs code (8 digits), number ",
      "(10 digits), check_code (10 digits) and amount_cents. Fill in the form.");
  }
  ctx.show(h("h1", null, h("span", { lang: "zh-CN" }, "财政电子票据查验"), " Verify a fiscal receipt"),
    h("p", { class: "lead" }, "Enter the four facts printed on the receipt. The ledger answers whether that ",
      "receipt exists and how much of it has been reimbursed."),
    form, problems, h("div", { "aria-live": "polite" }, result));
}

export async function renderReceipt(ctx, code, number_) {
  const [r, orgs] = await Promise.all([
    getJSON(`/fiscal/receipts/${encodeURIComponent(code)}/${encodeURIComponent(number_)}`, ctx.signal),
    organisationNames(ctx.signal)]);
  ctx.title(`Receipt ${r.receipt}`);
  const org = (name) => orgs.get(name) ?? name;
  const claims = r.claims.map((c) => [
    org(c.org),
    yuan(c.amount_cents),
    [h("span", { lang: "zh-CN" }, CLAIM_STATE[c.state]?.[0] ?? c.state), ` ${CLAIM_STATE[c.state]?.[1] ?? ""}`],
    isoTime(c.time),
    [link(to.tx(c.tx_id), `claim #${number(c.height)}`),
      c.done_tx_id ? [" · ", link(to.tx(c.done_tx_id), `done #${number(c.done_height)}`)] : null],
  ]);
  ctx.show(
    h("div", { class: "page-head" },
      h("h1", null, h("span", { lang: "zh-CN" }, r.kind === "red" ? "红字票据" : "财政电子票据"), ` ${r.receipt}`),
      statusBadge(r.status)),
    section("Receipt", facts([
      [zh("票据代码", "Code"), r.code],
      [zh("票据号码", "Number"), r.number],
      [zh("校验码", "Check code"), r.check_code],
      [zh("开票单位", "Issued by"), [org(r.issuer_org), h("span", { class: "muted" }, ` (account ${r.issuer_account})`)]],
      [zh("开票时间", "Issued at (UTC+8)"), [isoTime(r.issued_time), " · ",
        link(to.tx(r.issued_tx_id), `block ${number(r.issued_height)}`)]],
      [zh("交款人", "Payer"), r.payer_name],
      [zh("交款人标识", "Payer id (salted hash)"), hexId(r.payer_id_hash, { chars: 16 })],
      ...redLinks(r),
      r.void ? [zh("冲红", "Voided"), `${r.void.reason} (${r.void.account}, ${isoTime(r.void.time)})`] : null,
    ])),
    section(zh("项目", "Items"), table({
      head: ["Item", "Quantity", "Unit", "Unit price", "Amount"],
      rows: [...r.items.map((i) => [i.name, number(i.quantity), i.unit, yuan(i.unit_price_cents), yuan(i.amount_cents)]),
        [h("strong", null, "Total"), "", "", "", h("strong", null, yuan(r.total_cents))]],
      className: "items",
    })),
    section(zh("报销", "Reimbursement"), facts(amounts(r)), table({
      head: ["Organisation", "Amount", "State", "Time (UTC+8)", "Transactions"], rows: claims,
      empty: "No organisation has claimed this receipt.",
    })),
    h("p", null, link(`/fiscal/verify?code=${encodeURIComponent(r.code)}&number=${encodeURIComponent(r.number)}`,
      "Check another receipt (查验)")));
}
