// BOLO entries ("be on the lookout"): the custom hotlist kept from the dashboard.
//
// An analyst, supervisor or admin adds a plate (wildcards `?` one character, `*` any) with its
// category, the reason it is wanted, optionally its state and when it stops matching; every read
// is matched against it as it arrives. The list shows the BOLO source's entries with a Remove
// button. Adding and removing are audited by the center (POST / DELETE hotlists/entries).
// DOM hooks: `#bolo-form`, `#bolo-list li.bolo-row[data-entry-id][data-plate]`, `#bolo-msg`.

import * as api from "./api.js";
import { el, items, message, stamp, words } from "./dom.js";
import { busy, errorText, MIN_REASON } from "./forms.js";

export const CATEGORIES = [
  ["stolen_vehicle", "Stolen vehicle"],
  ["stolen_plate", "Stolen plate"],
  ["wanted_person", "Wanted person"],
  ["missing_person", "Missing person / AMBER"],
  ["custom", "Custom"],
];
const SOURCE = "bolo";

function field(label, input) {
  return el("label", { class: "field" }, el("span", {}, label), input);
}

/** Uppercase, letters, digits and the wildcards `?` / `*` only. */
export function boloPlate(v) {
  return String(v || "").toUpperCase().replace(/[^A-Z0-9?*]+/g, "");
}

export class Bolo {
  constructor() {
    this.f = {
      plate: el("input", { id: "bolo-plate", name: "plate", autocapitalize: "characters", spellcheck: "false", maxlength: "24", placeholder: "e.g. 7ABC123 or 7AB*" }),
      category: el("select", { id: "bolo-category", name: "category" }, ...CATEGORIES.map(([v, t]) => el("option", { value: v }, t))),
      state: el("input", { id: "bolo-state", name: "state", autocapitalize: "characters", maxlength: "4", placeholder: "e.g. AL (optional)" }),
      reason: el("input", { id: "bolo-reason", name: "reason", maxlength: "2000", placeholder: "why the vehicle is wanted" }),
      expires: el("input", { id: "bolo-expires", name: "expires_at", type: "datetime-local" }),
    };
    this.msg = el("p", { id: "bolo-msg", class: "msg", role: "alert", hidden: true });
    this.btn = el("button", { id: "bolo-submit", type: "submit", class: "btn-primary" }, "Add BOLO entry");
    this.list = el("ol", { id: "bolo-list", class: "rows" });
    const f = this.f;
    this.form = el(
      "form",
      { id: "bolo-form", class: "panel-form", novalidate: true },
      el("p", { class: "muted small" }, "Every read is matched against these entries as it arrives. Adding and removing are audited."),
      el("div", { class: "two" }, field("Plate", f.plate), field("Category", f.category)),
      field("Reason", f.reason),
      el("div", { class: "two" }, field("State", f.state), field("Stops matching", f.expires)),
      this.btn,
      this.msg,
    );
    this.form.addEventListener("submit", (e) => {
      e.preventDefault();
      this.add();
    });
    this.node = el("div", { class: "bolo" }, this.form, el("h3", { class: "small" }, "BOLO entries"), this.list);
  }

  /** The entry as the API takes it, or an error message (nothing is sent then). */
  body() {
    const f = this.f;
    const plate = boloPlate(f.plate.value);
    const reason = f.reason.value.trim();
    const state = f.state.value.trim().toUpperCase();
    const problems = [];
    if (!plate.replace(/[?*]/g, "")) problems.push("a plate");
    if (reason.length < MIN_REASON) problems.push(`a reason (at least ${MIN_REASON} characters)`);
    if (state && !/^[A-Z]{2,4}$/.test(state)) problems.push("a state of 2 to 4 letters (or none)");
    let expires = null;
    if (f.expires.value) {
      const d = new Date(f.expires.value);
      if (Number.isNaN(d.getTime())) problems.push("a valid expiry");
      else expires = d.toISOString();
    }
    if (problems.length) return { error: `A BOLO entry needs ${problems.join(", ")}.` };
    const body = { plate, category: f.category.value, reason };
    if (state) body.state = state;
    if (expires) body.expires_at = expires;
    return { body };
  }

  async add() {
    const { body, error } = this.body();
    if (error) {
      message(this.msg, error);
      this.form.dataset.refused = "client";
      return;
    }
    delete this.form.dataset.refused;
    await busy(this.btn, async () => {
      try {
        const row = await api.post("hotlists/entries", body);
        message(this.msg, `BOLO entry ${row.plate} added.`, "ok");
        this.f.plate.value = "";
        this.f.reason.value = "";
        this.f.state.value = "";
        this.f.expires.value = "";
      } catch (err) {
        this.form.dataset.refused = "server";
        message(this.msg, errorText(err));
        return;
      }
      await this.load();
    });
  }

  /** (Re)load the BOLO source's entries, newest first. */
  async load() {
    let res;
    try {
      res = await api.get("hotlists/entries", { source: SOURCE });
    } catch (err) {
      message(this.msg, errorText(err));
      return;
    }
    const rows = items(res);
    this.list.replaceChildren(...(rows.length ? rows.map((e) => this._row(e)) : [el("li", { class: "muted empty" }, "No BOLO entries.")]));
  }

  _row(e) {
    const btn = el("button", { type: "button", class: "btn-small btn-ghost", dataset: { action: "remove" } }, "Remove");
    btn.addEventListener("click", () =>
      busy(btn, async () => {
        try {
          await api.call(`hotlists/entries/${encodeURIComponent(e.id)}`, { method: "DELETE" });
        } catch (err) {
          message(this.msg, errorText(err));
          return;
        }
        message(this.msg, `BOLO entry ${e.plate} removed.`, "ok");
        await this.load();
      }),
    );
    return el(
      "li",
      { class: "bolo-row", dataset: { entryId: String(e.id), plate: e.plate } },
      el("div", { class: "row-main" }, el("span", { class: "plate" }, e.plate), e.state ? el("span", { class: "region-tag" }, e.state) : null, el("span", {}, words(e.category))),
      el("div", { class: "row-meta" }, el("span", {}, e.reason), el("span", { class: "muted" }, e.expires_at ? `until ${stamp(e.expires_at)}` : "no expiry"), el("span", { class: "muted" }, e.created_by || "")),
      el("div", { class: "row-actions" }, btn),
    );
  }
}
