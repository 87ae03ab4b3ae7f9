// The audit log (admins and the oversight board's auditors: `Oversight` in the API): who did what,
// when, as which role, on which record, with what outcome and purpose — newest first, filtered by
// actor, action and period, paged older / newer. "Verify chain" has the center recompute the hash
// chain (a broken chain is a red banner naming the first bad entry); "Export CSV" downloads the
// whole log with the session cookie. Reading, verifying and exporting are audited by the center too.
// The center checks the filters: its message (e.g. a period that ends before it starts) shows here.
// DOM hooks: `#audit-form[data-refused=client|server]`, `#audit-rows tr[data-seq][data-action][data-outcome]`,
// `#audit-verify[data-ok=true|false][data-bad-seq]`, `#audit-page[data-offset][data-count]`,
// buttons `[data-action=newer|older|verify|clear]`, `#audit-export`, `#audit-msg`.

import * as api from "./api.js";
import { el, items, message, show, words } from "./dom.js";
import { busy, errorText } from "./forms.js";

const PAGE_SIZES = [25, 50, 100, 200];
const DEFAULT_PAGE = 50;
const COMPACT_CHARS = 60;

function field(label, input) {
  return el("label", { class: "field" }, el("span", {}, label), input);
}

/** "2026-11-21 18:39:30" in local time (the title of the cell keeps the center's UTC time). */
export function fullStamp(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  const p = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

/** An entry's details: "—" when empty, else a one-line summary that opens to the whole JSON. */
export function detailsCell(details) {
  if (details === null || details === undefined) return "—";
  if (typeof details === "object" && Object.keys(details).length === 0) return "—";
  const compact = JSON.stringify(details);
  if (compact.length <= COMPACT_CHARS) return el("code", { class: "audit-json" }, compact);
  return el(
    "details",
    { class: "audit-details" },
    el("summary", {}, el("code", { class: "audit-json" }, compact.slice(0, COMPACT_CHARS - 1) + "…")),
    el("pre", { class: "audit-json-full" }, JSON.stringify(details, null, 2)),
  );
}

export class AuditLog {
  /** @param {HTMLElement} root */
  constructor(root) {
    this.root = root;
    this.offset = 0;
    this.limit = DEFAULT_PAGE;
    this.pin = null; // one past the newest entry's seq on the first page (before_seq): later pages stay put while the log grows
    this.badSeq = null;
    this.ticket = 0;
    this.seen = { actors: new Set(), actions: new Set() };
    this._buildForm();
    this._buildTools();
    this.msg = el("p", { id: "audit-msg", class: "msg", role: "alert", hidden: true });
    this.rows = el("tbody", { id: "audit-rows" });
    this.table = el(
      "table",
      { id: "audit-table", class: "data-table audit-table" },
      el(
        "thead",
        {},
        el(
          "tr",
          {},
          ...["#", "Time", "Actor", "Role", "Action", "Resource", "Record", "Outcome", "Purpose", "Details"].map((h) =>
            el("th", { scope: "col", class: h === "#" ? "num" : null }, h),
          ),
        ),
      ),
      this.rows,
    );
    this.newer = el("button", { type: "button", class: "btn-small btn-ghost", dataset: { action: "newer" }, disabled: true, onclick: () => this.page(-1) }, "← Newer");
    this.older = el("button", { type: "button", class: "btn-small btn-ghost", dataset: { action: "older" }, disabled: true, onclick: () => this.page(1) }, "Older →");
    this.pageInfo = el("span", { id: "audit-page", class: "muted small", dataset: { offset: "0", count: "0" } });
    root.replaceChildren(
      el("div", { class: "panel-head" }, el("h2", {}, "Audit log"), this.exportLink),
      el(
        "div",
        { class: "panel-scroll" },
        this.form,
        this.tools,
        this.msg,
        el("div", { class: "table-scroll" }, this.table),
        el("div", { class: "pager" }, this.newer, this.pageInfo, this.older),
      ),
    );
  }

  _buildForm() {
    this.f = {
      actor: el("input", { id: "audit-actor", name: "actor", maxlength: "128", list: "audit-actors", autocomplete: "off", autocapitalize: "none", spellcheck: "false", placeholder: "any" }),
      action: el("input", { id: "audit-action", name: "action", maxlength: "64", list: "audit-actions", autocomplete: "off", autocapitalize: "none", spellcheck: "false", placeholder: "any, e.g. plate_search" }),
      since: el("input", { id: "audit-since", name: "since", type: "datetime-local", step: "1" }),
      until: el("input", { id: "audit-until", name: "until", type: "datetime-local", step: "1" }),
      limit: el("select", { id: "audit-limit", name: "limit" }, ...PAGE_SIZES.map((n) => el("option", { value: String(n), selected: n === DEFAULT_PAGE }, `${n} per page`))),
    };
    this.actorList = el("datalist", { id: "audit-actors" });
    this.actionList = el("datalist", { id: "audit-actions" });
    this.searchBtn = el("button", { id: "audit-submit", type: "submit", class: "btn-small btn-primary" }, "Search");
    const clear = el("button", { type: "button", class: "btn-small btn-ghost", dataset: { action: "clear" }, onclick: () => this.clear() }, "Clear");
    const f = this.f;
    this.form = el(
      "form",
      { id: "audit-form", class: "panel-form audit-form", novalidate: true },
      el("div", { class: "two" }, field("Actor", f.actor), field("Action", f.action)),
      el("div", { class: "two" }, field("From (local time)", f.since), field("Before (local time)", f.until)),
      el("div", { class: "row-actions" }, this.searchBtn, clear, f.limit),
      this.actorList,
      this.actionList,
    );
    this.form.addEventListener("submit", (e) => {
      e.preventDefault();
      this.search();
    });
    f.limit.addEventListener("change", () => this.search());
  }

  _buildTools() {
    this.verifyBtn = el("button", { id: "audit-verify-btn", type: "button", class: "btn-small btn-ghost", dataset: { action: "verify" }, onclick: () => this.verify() }, "Verify chain");
    this.verifyOut = el("div", { id: "audit-verify", class: "verify-result", role: "status", hidden: true });
    // a plain link: the browser downloads it with the session cookie
    this.exportLink = el("a", { id: "audit-export", class: "btn-small btn-ghost btn-link", href: `${api.API}audit/export.csv`, download: "rtcc-audit.csv", title: "The whole log as CSV (re-verifiable offline with the center's key)" }, "Export CSV");
    this.tools = el("div", { class: "audit-tools" }, this.verifyBtn, this.verifyOut);
  }

  /** The filters as the API takes them, or an error message (nothing is sent then). */
  query() {
    const f = this.f;
    const q = {};
    const actor = f.actor.value.trim();
    const action = f.action.value.trim();
    if (actor) q.actor = actor;
    if (action) q.action = action;
    for (const [name, label] of [["since", "From"], ["until", "Before"]]) {
      const input = f[name];
      if (input.validity && input.validity.badInput) return { error: `${label} is not a complete date and time.` };
      if (!input.value) continue;
      const d = new Date(input.value);
      if (Number.isNaN(d.getTime())) return { error: `${label} is not a valid date and time.` };
      q[name] = d.toISOString();
    }
    return { q };
  }

  load() {
    return this.search();
  }

  /** A new search from the first page (the form's filters). */
  search() {
    this.offset = 0;
    this.pin = null;
    return this.fetch();
  }

  clear() {
    for (const k of ["actor", "action", "since", "until"]) this.f[k].value = "";
    return this.search();
  }

  page(dir) {
    const next = Math.max(0, this.offset + dir * this.limit);
    if (next === this.offset && dir < 0) return null;
    this.offset = next;
    return this.fetch();
  }

  async fetch() {
    const { q, error } = this.query();
    if (error) {
      this.form.dataset.refused = "client";
      message(this.msg, error);
      return;
    }
    this.limit = Number(this.f.limit.value) || DEFAULT_PAGE;
    // one more than shown: whether there is an older page
    const params = { ...q, limit: this.limit + 1, offset: this.offset };
    // pages count back from the newest entry of the first page: entries added since (reading the
    // log adds one) do not shift them
    if (this.pin) params.before_seq = this.pin;
    const ticket = ++this.ticket; // only the last request's answer is shown
    this.newer.disabled = this.older.disabled = true; // until the page is in
    await busy(this.searchBtn, async () => {
      let res;
      try {
        res = await api.get("audit", params);
        if (ticket !== this.ticket) return;
      } catch (err) {
        if (ticket !== this.ticket) return;
        this.form.dataset.refused = "server";
        message(this.msg, errorText(err));
        this.rows.replaceChildren();
        this._pager(0, false);
        return;
      }
      delete this.form.dataset.refused;
      message(this.msg, "");
      const all = items(res);
      const rows = all.slice(0, this.limit);
      if (this.offset === 0 && !this.pin && rows.length) this.pin = rows[0].seq + 1;
      this.render(rows);
      this._pager(rows.length, all.length > this.limit);
    });
  }

  render(rows) {
    if (!rows.length) {
      this.rows.replaceChildren(el("tr", { class: "empty" }, el("td", { colspan: "10", class: "muted" }, this.offset ? "No older entries." : "No entries match.")));
      return;
    }
    this.rows.replaceChildren(...rows.map((r) => this._row(r)));
    this._remember(rows);
  }

  _row(r) {
    const outcome = String(r.outcome || "");
    return el(
      "tr",
      {
        class: ["audit-row", r.seq === this.badSeq ? "audit-bad" : ""].join(" ").trim(),
        dataset: { seq: String(r.seq), action: r.action, outcome, actor: r.actor },
      },
      el("td", { class: "num" }, String(r.seq)),
      el("td", { class: "nowrap mono", title: r.at }, fullStamp(r.at)),
      el("td", {}, r.actor),
      el("td", {}, r.role),
      el("td", { class: "mono" }, r.action),
      el("td", {}, words(r.resource)),
      el("td", { class: "mono wrap" }, r.record_id || "—"),
      el("td", {}, el("span", { class: `status-tag out-${outcome === "ok" ? "ok" : "other"}` }, outcome)),
      el("td", { class: "wrap" }, r.purpose || "—"),
      el("td", { class: "wrap" }, detailsCell(r.details)),
    );
  }

  /** Actors and actions seen so far, offered as suggestions in the filters. */
  _remember(rows) {
    const add = (set, list, v) => {
      if (!v || set.has(v)) return;
      set.add(v);
      list.append(el("option", { value: v }));
    };
    for (const r of rows) {
      add(this.seen.actors, this.actorList, r.actor);
      add(this.seen.actions, this.actionList, r.action);
    }
  }

  _pager(count, hasOlder) {
    this.newer.disabled = this.offset === 0;
    this.older.disabled = !hasOlder;
    this.pageInfo.dataset.offset = String(this.offset);
    this.pageInfo.dataset.count = String(count);
    this.pageInfo.textContent = count ? `Entries ${this.offset + 1}–${this.offset + count}, newest first` : "";
  }

  /** Ask the center to check the whole hash chain. */
  async verify() {
    const out = this.verifyOut;
    await busy(this.verifyBtn, async () => {
      delete out.dataset.ok;
      delete out.dataset.badSeq;
      out.className = "verify-result";
      out.replaceChildren("Verifying the chain…");
      show(out, true);
      let res;
      try {
        res = await api.get("audit/verify");
      } catch (err) {
        out.dataset.ok = "error";
        out.classList.add("verify-error");
        out.replaceChildren(`Verification failed: ${errorText(err)}`);
        return;
      }
      out.dataset.ok = String(Boolean(res.ok));
      out.dataset.entries = String(res.entries);
      if (res.ok) {
        this.badSeq = null;
        out.classList.add("verify-ok");
        out.replaceChildren(el("strong", {}, "Chain intact"), ` — ${res.entries} entries checked. `, el("span", { class: "muted" }, res.message || ""));
      } else {
        this.badSeq = res.first_bad_seq;
        out.dataset.badSeq = String(res.first_bad_seq);
        out.classList.add("verify-broken");
        out.replaceChildren(
          el("strong", {}, `Chain BROKEN at entry ${res.first_bad_seq}`),
          res.problem ? ` (${words(res.problem)})` : "",
          `: ${res.message || "the log does not match its hashes"}. `,
          el("span", {}, `${res.entries} entries checked.`),
        );
      }
      for (const tr of this.rows.querySelectorAll("tr[data-seq]")) tr.classList.toggle("audit-bad", Number(tr.dataset.seq) === this.badSeq);
    });
  }
}
