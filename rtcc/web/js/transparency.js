// The public transparency page (no sign-in): renders GET /api/v1/transparency.
//
// Known sections get a heading and order of their own; anything else the
// center reports is rendered generically (numbers, key/value tables, lists of
// rows), so new figures appear without a change here. Everything is inserted as
// text. Sections: `#tr-sections section[data-section=<key>]`.

import { get, ApiError } from "./api.js";
import { $, el, stamp, words } from "./dom.js";
import { CATEGORY_LABELS, pct } from "./stats.js";

const TITLES = {
  operations: "Alerts, cases and outcomes",
  plates: "Plate reading: searches by purpose, hotlist hits, purges",
  retention_settings: "Retention settings",
  cameras: "Cameras registered and integrated",
  bodycams: "Body-worn cameras: remote and automatic activations",
  audit: "Audit chain",
  audit_chain: "Audit chain",
};
const ORDER = Object.keys(TITLES);
const MAX_DEPTH = 4;

function label(key) {
  return CATEGORY_LABELS[key] || words(key).replace(/^./, (c) => c.toUpperCase());
}

function scalar(key, v) {
  if (v === null || v === undefined) return "—";
  if (typeof v === "boolean") return v ? "yes" : "no";
  if (typeof v === "number") {
    if (/(^|_)(share|ratio|rate|fraction|pct|percent)(_|$)/.test(key)) return pct(v);
    return Number.isInteger(v) ? v.toLocaleString("en-US") : v.toFixed(2);
  }
  const s = String(v);
  if (/(_at|_on|^since|^date|time)$/.test(key) && !Number.isNaN(Date.parse(s))) return stamp(s);
  return s;
}

/** Any JSON value as DOM: scalars as text, objects as key/value tables, lists of objects as tables. */
export function render(key, v, depth = 0) {
  if (v === null || typeof v !== "object") return el("span", { class: "tr-value" }, scalar(key, v));
  if (depth >= MAX_DEPTH) return el("span", { class: "muted" }, "…");
  if (Array.isArray(v)) {
    if (!v.length) return el("span", { class: "muted" }, "none");
    if (v.every((x) => x && typeof x === "object" && !Array.isArray(x))) {
      const cols = [...new Set(v.flatMap((x) => Object.keys(x)))];
      return el(
        "table",
        { class: "data-table" },
        el("thead", {}, el("tr", {}, ...cols.map((c) => el("th", {}, label(c))))),
        el("tbody", {}, ...v.map((x) => el("tr", {}, ...cols.map((c) => el("td", {}, render(c, x[c], depth + 1)))))),
      );
    }
    return el("span", { class: "tr-value" }, v.map((x) => scalar(key, x)).join(", "));
  }
  if (v.available === false) return el("p", { class: "muted" }, "Not available on this center yet.");
  return el(
    "table",
    { class: "kv tr-kv" },
    ...Object.entries(v).filter(([k]) => k !== "available").map(([k, x]) => el("tr", { dataset: { key: k } }, el("th", {}, label(k)), el("td", {}, render(k, x, depth + 1)))),
  );
}

async function main() {
  const box = $("#tr-sections");
  let data;
  try {
    data = await get("transparency");
  } catch (err) {
    const msg = $("#tr-error");
    msg.textContent = `The transparency report is not available right now: ${err instanceof ApiError ? err.message : "network error"}`;
    msg.hidden = false;
    box.dataset.state = "error";
    box.replaceChildren();
    return;
  }
  const generated = data.generated_at || data.at;
  $("#tr-generated").textContent = generated ? `Generated ${stamp(generated)}` : "";
  const keys = Object.keys(data).filter((k) => !["generated_at", "at"].includes(k));
  keys.sort((a, b) => (ORDER.includes(a) ? ORDER.indexOf(a) : 99) - (ORDER.includes(b) ? ORDER.indexOf(b) : 99));
  box.replaceChildren(
    ...keys.map((k) =>
      el("section", { class: "tr-section", dataset: { section: k } }, el("h2", {}, TITLES[k] || label(k)), render(k, data[k])),
    ),
  );
  box.dataset.state = "ready";
}

main();
