// Statistics: the outcome ledger as the seed's table — "success in N cases since
// opening" and the count per category — plus the share of alerts with no outcome.
// `#stats-summary[data-cases]`, `#outcome-table tr[data-category][data-count]`.

import * as api from "./api.js";
import { el, message, pick, stamp, words } from "./dom.js";
import { errorText } from "./forms.js";

export const CATEGORY_LABELS = {
  assisted_on_scene: "Assisted officers on a scene",
  vehicle_info: "Provided vehicle information",
  suspect_info: "Provided suspect information",
  recovered_vehicle: "Recovered vehicle",
  recovered_property: "Recovered property",
  recovered_gun: "Recovered gun",
  recovered_drugs: "Recovered drugs",
  case_info: "Provided case information",
  located_missing_person: "Located missing person",
  arrest: "Led to arrest",
  assisted_other_agency: "Assisted another agency",
  no_evidence_found: "No evidence found",
};

export function pct(x) {
  const v = Number(x);
  if (!Number.isFinite(v)) return "—";
  return `${(v <= 1 ? v * 100 : v).toFixed(1)} %`;
}

/** [[category, count], …] from either a {category: count} map or a list of {category, count}. */
export function categoryCounts(res) {
  const raw = pick(res, "per_category", "by_category", "categories", "counts") || {};
  const pairs = Array.isArray(raw) ? raw.map((r) => [r.category, r.count]) : Object.entries(raw);
  const known = Object.keys(CATEGORY_LABELS);
  return pairs.sort((a, b) => {
    const ia = known.indexOf(a[0]), ib = known.indexOf(b[0]);
    return (ia < 0 ? 99 : ia) - (ib < 0 ? 99 : ib);
  });
}

/** The ledger table (used by the dashboard and the public transparency page). */
export function outcomeTable(res, id = "outcome-table") {
  return el(
    "table",
    { id, class: "data-table" },
    el("thead", {}, el("tr", {}, el("th", {}, "Outcome"), el("th", { class: "num" }, "Cases"))),
    el(
      "tbody",
      {},
      ...categoryCounts(res).map(([cat, n]) =>
        el("tr", { dataset: { category: cat, count: String(n) } }, el("td", {}, CATEGORY_LABELS[cat] || words(cat)), el("td", { class: "num" }, String(n))),
      ),
    ),
  );
}

export class StatsView {
  /** @param {HTMLElement} root */
  constructor(root) {
    this.root = root;
    this.msg = el("p", { id: "stats-msg", class: "msg", role: "status", hidden: true });
    this.body = el("div", { class: "panel-scroll", id: "stats-body" });
    root.replaceChildren(el("div", { class: "panel-head" }, el("h2", {}, "Statistics")), this.msg, this.body);
  }

  async load() {
    let res;
    try {
      res = await api.get("stats/outcomes");
    } catch (err) {
      message(this.msg, `Statistics unavailable: ${errorText(err)}`);
      return;
    }
    message(this.msg, "");
    const cases = pick(res, "success_cases", "cases_with_success", "cases", "n_cases") ?? 0;
    const since = pick(res, "since", "opened_at", "opening");
    const noOutcome = pick(res, "share_no_outcome", "no_outcome_share", "alerts_without_outcome_share");
    const noEvidence = pick(res, "share_no_evidence", "no_evidence_share", "no_evidence_found_share");
    const alerts = pick(res, "alerts", "alerts_total", "total_alerts");
    this.body.replaceChildren(
      el(
        "p",
        { id: "stats-summary", class: "big-figure", dataset: { cases: String(cases) } },
        el("strong", {}, `Success in ${cases} case${cases === 1 ? "" : "s"}`),
        since ? ` since opening (${stamp(since).slice(0, 10)})` : " since opening",
      ),
      outcomeTable(res),
      el(
        "table",
        { class: "kv stats-shares" },
        alerts !== undefined ? el("tr", {}, el("th", {}, "Alerts"), el("td", {}, String(alerts))) : null,
        el("tr", { dataset: { share: "no_outcome" } }, el("th", {}, "Alerts with no outcome"), el("td", {}, pct(noOutcome))),
        el("tr", { dataset: { share: "no_evidence" } }, el("th", {}, "Alerts with no evidence found"), el("td", {}, pct(noEvidence))),
      ),
    );
  }
}
