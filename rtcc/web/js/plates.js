// Plate search: every search needs a purpose and a case number — refused here
// before any request, and refused again by the center (which audits the terms).
// Results: `#plate-results li[data-read-id]`; "Track" draws the vehicle's reads
// in time order on the map.

import * as api from "./api.js";
import { el, items, message, pick, stamp } from "./dom.js";
import { busy, errorText } from "./forms.js";

export const PURPOSES = [
  ["criminal_investigation", "Criminal investigation"],
  ["stolen_vehicle", "Stolen vehicle"],
  ["missing_person", "Missing person / AMBER"],
  ["wanted_person", "Wanted person"],
  ["hit_verification", "Hotlist hit verification"],
  ["other", "Other"],
];
export const MIN_PURPOSE = 5;

function field(label, input) {
  return el("label", { class: "field" }, el("span", {}, label), input);
}

function isoOrNull(v) {
  if (!v) return null;
  const d = new Date(v);
  return Number.isNaN(d.getTime()) ? null : d.toISOString();
}

export class PlateSearch {
  /** @param {HTMLElement} root  @param {{map: object}} hooks */
  constructor(root, hooks) {
    this.root = root;
    this.hooks = hooks;
    const f = (this.f = {
      plate: el("input", { id: "ps-plate", name: "plate", autocapitalize: "characters", spellcheck: "false", maxlength: "16", placeholder: "e.g. 7ABC123 or 7AB*" }),
      mode: el("select", { id: "ps-mode", name: "mode" }, ...[["exact", "Exact"], ["partial", "Partial / wildcard"], ["lookalike", "Look-alike characters"]].map(([v, t]) => el("option", { value: v }, t))),
      purposeKind: el("select", { id: "ps-purpose-kind", name: "purpose_category" }, ...PURPOSES.map(([v, t]) => el("option", { value: v }, t))),
      purpose: el("input", { id: "ps-purpose", name: "purpose", maxlength: "500", placeholder: "what this search is for" }),
      caseNumber: el("input", { id: "ps-case", name: "case_number", maxlength: "64", placeholder: "e.g. 2026-001234" }),
      start: el("input", { id: "ps-start", name: "start", type: "datetime-local" }),
      end: el("input", { id: "ps-end", name: "end", type: "datetime-local" }),
    });
    this.msg = el("p", { id: "plate-msg", class: "msg", role: "alert", hidden: true });
    this.btn = el("button", { id: "ps-submit", type: "submit", class: "btn-primary" }, "Search");
    this.results = el("ol", { id: "plate-results", class: "rows" });
    this.form = el(
      "form",
      { id: "plate-search", class: "panel-form", novalidate: true },
      el("p", { class: "muted small" }, "Every search is recorded with its purpose and case number, and audited."),
      field("Plate", f.plate),
      field("Match", f.mode),
      el("div", { class: "two" }, field("Kind of purpose", f.purposeKind), field("Case number", f.caseNumber)),
      field("Purpose (why you search)", f.purpose),
      el("div", { class: "two" }, field("From", f.start), field("To", f.end)),
      this.btn,
      this.msg,
    );
    this.form.addEventListener("submit", (e) => {
      e.preventDefault();
      this.search();
    });
    root.replaceChildren(el("div", { class: "panel-head" }, el("h2", {}, "Plate search")), el("div", { class: "panel-scroll" }, this.form, this.results));
  }

  /** The search terms, or an error message when the form is incomplete (nothing is sent then). */
  terms() {
    const f = this.f;
    const plate = f.plate.value.toUpperCase().replace(/[\s-]+/g, "");
    const kind = f.purposeKind.value;
    const text = f.purpose.value.trim();
    const caseNumber = f.caseNumber.value.trim();
    const missing = [];
    if (!plate) missing.push("a plate");
    if (text.length < MIN_PURPOSE) missing.push(`a purpose (at least ${MIN_PURPOSE} characters)`);
    if (!caseNumber) missing.push("a case number");
    if (missing.length) return { error: `A plate search needs ${missing.join(", ")}. Searches are audited.` };
    const q = { plate, mode: f.mode.value, purpose: text, purpose_category: kind, case_number: caseNumber };
    const start = isoOrNull(f.start.value), end = isoOrNull(f.end.value);
    if (start) q.start = start;
    if (end) q.end = end;
    return { q };
  }

  async search() {
    const { q, error } = this.terms();
    if (error) {
      message(this.msg, error);
      this.form.dataset.refused = "client";
      return;
    }
    delete this.form.dataset.refused;
    message(this.msg, "");
    await busy(this.btn, async () => {
      let res;
      try {
        res = await api.get("plates/search", q);
      } catch (err) {
        this.form.dataset.refused = err.status === 422 ? "server" : "error";
        message(this.msg, errorText(err));
        return;
      }
      const reads = items(res);
      message(this.msg, `${reads.length} read${reads.length === 1 ? "" : "s"} found.`, "ok");
      this.results.replaceChildren(...reads.map((r) => this._row(r, q)));
    });
  }

  _row(r, q) {
    const plate = r.plate || "?";
    return el(
      "li",
      { class: "read-row", dataset: { readId: String(pick(r, "id", "read_id")), plate } },
      el("div", { class: "row-main" }, el("span", { class: "plate" }, plate), el("span", { class: "muted" }, `${Math.round((r.confidence || 0) * 100)} %`)),
      el("div", { class: "row-meta" }, el("span", {}, stamp(pick(r, "read_at", "occurred_at"))), el("span", {}, pick(r, "device", "camera") || "")),
      el("div", { class: "row-actions" }, el("button", { type: "button", class: "btn-small btn-ghost", dataset: { action: "track" }, onclick: (e) => this.track(plate, q, e.currentTarget) }, "Track on map")),
    );
  }

  async track(plate, q, btn) {
    await busy(btn, async () => {
      try {
        const res = await api.get("plates/track", { plate, purpose: q.purpose, case_number: q.case_number, purpose_category: q.purpose_category });
        const reads = items(res);
        this.hooks.map.showTrack(plate, reads);
        message(this.msg, `Track of ${plate}: ${reads.length} read${reads.length === 1 ? "" : "s"} on the map.`, "ok");
      } catch (err) {
        message(this.msg, errorText(err));
      }
    });
  }
}
