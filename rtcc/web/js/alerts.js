// The alert queue: new → acknowledged → assigned → closed, or dismissed with a reason.
//
// GET /alerts?status= lists them; POST /alerts/{id}/acknowledge|assign|dismiss|close
// changes one (the center audits it and publishes an `alert_updated` event, which
// every open dashboard applies). Rows: `li.alert-row[data-alert-id][data-status]
// [data-severity][data-kind]`; actions are buttons `[data-action=…]`.

import * as api from "./api.js";
import { $, clock, el, items, message, metres, pick, position, reconcile, stamp, words } from "./dom.js";
import { busy, errorText, missingApi, reasonForm } from "./forms.js";

export const STATUSES = ["new", "acknowledged", "assigned", "closed", "dismissed"];
const OPEN = new Set(["new", "acknowledged", "assigned"]);
const RELOAD_MS = 250;

/** An alert as the panel uses it, from the API's row or a live `alert` event. */
export function normAlert(a) {
  const id = String(pick(a, "alert_id", "id"));
  return {
    ...a,
    id,
    status: pick(a, "status") || "new",
    severity: ["info", "warning", "critical"].includes(a.severity) ? a.severity : "warning",
    kind: a.kind || "alert",
    title: a.title || words(a.kind) || "alert",
    at: pick(a, "created_at", "occurred_at", "received_at"),
    pos: position(a),
    unit: pick(a, "assigned_unit", "unit", "assigned_to"),
    ref: pick(a, "ref_id", "ref_event_id"),
  };
}

/** Which incident packet an alert opens: {kind, refId} or null. */
export function packetRef(a) {
  const ref = a.ref;
  if (!ref) return null;
  if (a.packet_kind) return { kind: a.packet_kind, refId: String(pick(a, "packet_ref_id", "ref") || ref) };
  if (/hit|hotlist/.test(a.kind)) return { kind: "hit", refId: String(ref) };
  if (/gun|shot/.test(a.kind)) return { kind: "gunshot", refId: String(ref) };
  return null;
}

/** Roles that review a gunshot incident (the others wait for them). */
const REVIEWERS = new Set(["admin", "supervisor", "analyst"]);

/**
 * What an open alert still waits for before it can be dismissed or closed: "hit" (a hotlist hit
 * not yet confirmed or rejected: verify before action), "review" (a gunshot incident waiting for
 * review) or null. The center refuses to dismiss or close those (409): a decision on the hit or the
 * incident settles the alert. `refStatus`: the hit's or the incident's status when known (the
 * packet view loads it); otherwise it is told from the alert (a confirmed hit's alert is retitled
 * "CONFIRMED …"; a decided hit's or review's alert leaves the open states).
 */
export function awaitsDecision(a, refStatus) {
  if (!a || !OPEN.has(a.status) || !a.ref) return null;
  // the center says so (awaits_decision) when the alert came from the API rather than a live event
  if (refStatus === undefined && a.awaits_decision !== undefined) return a.awaits_decision || null;
  if (a.kind === "hotlist_hit") {
    const confirmed =
      /^CONFIRMED\b/.test(a.title || "") ||
      (Array.isArray(a.history) && a.history.some((h) => h && /^hit confirmed/.test(String(h.reason || ""))));
    if (confirmed) return null;
    return refStatus === undefined || refStatus === "verify" ? "hit" : null;
  }
  if (a.kind === "gunshot_review") return refStatus === undefined || refStatus === "pending_review" ? "review" : null;
  return null;
}

export class AlertQueue {
  /**
   * @param {HTMLElement} root  the tab's section
   * @param {{onOpen: (alert: object) => void, onFocus: (alert: object) => void,
   *          units: () => Array<string | {id: string, pos: object}>, onCount: (n: number) => void, role: string}} hooks
   */
  constructor(root, hooks) {
    this.root = root;
    this.hooks = hooks;
    this.alerts = new Map();
    this.filter = "open";
    this._timer = null;
    this.available = true;
    this.status = el(
      "select",
      { id: "alerts-status", "aria-label": "Show alerts" },
      el("option", { value: "open" }, "Open (new, acknowledged, assigned)"),
      ...STATUSES.map((s) => el("option", { value: s }, words(s))),
      el("option", { value: "all" }, "All"),
    );
    this.status.addEventListener("change", () => {
      this.filter = this.status.value;
      this.load();
    });
    this.msg = el("p", { id: "alerts-msg", class: "msg", role: "status", hidden: true });
    this.list = el("ol", { id: "alert-list", class: "rows" });
    root.replaceChildren(
      el("div", { class: "panel-head" }, el("h2", {}, "Alert queue"), this.status),
      this.msg,
      this.list,
    );
  }

  async load() {
    const query = this.filter === "open" ? { status: [...OPEN] } : this.filter === "all" ? {} : { status: this.filter };
    try {
      const res = await api.get("alerts", query);
      this.alerts.clear();
      for (const a of items(res)) {
        const n = normAlert(a);
        this.alerts.set(n.id, n);
      }
      message(this.msg, this.alerts.size ? "" : "No alerts here.", "info");
      this.render();
    } catch (err) {
      if (missingApi(err)) this.available = false;
      message(this.msg, `Alerts unavailable: ${errorText(err)}`);
    }
  }

  /** A live event: a new alert or a change to one. */
  onEvent(ev) {
    if (!this.available) return;
    if (ev.type === "alert" && ev.alert_id && !this.alerts.has(String(ev.alert_id)) && this._shows("new")) {
      const a = normAlert({ ...ev, status: "new" });
      this.alerts.set(a.id, a);
      this.list.prepend(this._row(a));
      message(this.msg, "");
      this._count();
    }
    // the stored row (status, unit, who) comes from the API: reload, coalesced
    clearTimeout(this._timer);
    this._timer = setTimeout(() => this.load(), RELOAD_MS);
  }

  stop() {
    clearTimeout(this._timer);
    this.available = false;
  }

  _shows(status) {
    return this.filter === "all" || this.filter === status || (this.filter === "open" && OPEN.has(status));
  }

  render() {
    const rows = [...this.alerts.values()].sort((a, b) => String(b.at || "").localeCompare(String(a.at || "")));
    // a row that did not change stays as it is (a form open in it survives live reloads)
    const old = new Map([...this.list.querySelectorAll("li.alert-row")].map((li) => [li.dataset.alertId, li]));
    reconcile(
      this.list,
      rows.map((a) => {
        const li = old.get(a.id);
        return li && li.dataset.key === rowKey(a) ? li : this._row(a);
      }),
    );
    this._count();
  }

  _count() {
    const n = [...this.alerts.values()].filter((a) => a.status === "new").length;
    this.hooks.onCount(n);
  }

  /**
   * The action buttons for an alert (and the box their forms open in), for a row or the packet view.
   * `msg`: where an action's error is shown (the queue's message by default); `refStatus`: the
   * status of the hit or incident the alert announces, when known (see awaitsDecision).
   */
  actionsFor(a, { withOpen = true, msg = null, refStatus } = {}) {
    const actions = el("div", { class: "row-actions" });
    const extra = el("div", { class: "row-extra" });
    const out = msg || this.msg;
    const act = (action, label, fn, cls = "btn-small btn-ghost") =>
      el("button", { type: "button", class: cls, dataset: { action }, onclick: (e) => fn(e.currentTarget) }, label);
    const waits = awaitsDecision(a, refStatus);
    if (withOpen) actions.append(act("open", "Open", () => this.hooks.onOpen(a), "btn-small btn-primary"));
    if (a.status === "new") actions.append(act("acknowledge", "Acknowledge", (b) => this.change(a, "acknowledge", {}, b, out)));
    if (OPEN.has(a.status)) {
      actions.append(act("assign", a.status === "assigned" ? "Reassign" : "Assign", () => this._assignForm(a, extra)));
      // an undecided hit or a pending review is settled by the decision, not dismissed or closed
      if (!waits) actions.append(act("dismiss", "Dismiss", () => this._dismissForm(a, extra)));
    }
    if (!waits && (a.status === "acknowledged" || a.status === "assigned")) actions.append(act("close", "Close", (b) => this.change(a, "close", {}, b, out)));
    if (waits) {
      const review = waits === "review";
      const may = !review || REVIEWERS.has(this.hooks.role);
      if (withOpen && may) actions.append(act("decide", review ? "Review…" : "Confirm or reject…", () => this.hooks.onOpen(a)));
      const text = review
        ? may
          ? `Waiting for review: ${withOpen ? "open it" : "below"}, listen to the audio and confirm it as gunfire or dismiss it, with a reason. That settles this alert.`
          : "Waiting for review by a supervisor or an analyst: their decision settles this alert."
        : `Verify before action: ${withOpen ? "open the hit" : "below"}, compare the photo with the hotlist entry, then confirm the hit or reject it as a misread, with a reason. That settles this alert.`;
      extra.dataset.awaits = waits;
      extra.append(el("p", { class: "muted small decide-hint", dataset: { awaits: waits } }, text));
    }
    return [actions, extra];
  }

  _row(a) {
    const [actions, extra] = this.actionsFor(a);
    const who = [];
    if (a.unit) who.push(`unit ${a.unit}`);
    const reason = pick(a, "dismiss_reason", "reason");
    if (a.status === "dismissed" && reason) who.push(`“${reason}”`);
    return el(
      "li",
      {
        class: `alert-row sev-${a.severity}`,
        dataset: { alertId: a.id, status: a.status, severity: a.severity, kind: a.kind, key: rowKey(a) },
      },
      el(
        "div",
        { class: "row-main", onclick: () => this.hooks.onFocus(a) },
        el("span", { class: `sev-pill sev-${a.severity}` }, a.severity),
        el("span", { class: "row-title" }, a.title),
      ),
      el(
        "div",
        { class: "row-meta" },
        el("time", { datetime: a.at || "", title: stamp(a.at) }, clock(a.at)),
        el("span", {}, words(a.kind)),
        el("span", { class: `status-tag st-${a.status}`, dataset: { statusTag: a.status } }, words(a.status)),
        who.length ? el("span", { class: "row-who" }, who.join(" · ")) : null,
      ),
      actions,
      extra,
    );
  }

  /**
   * Assign to a unit: none is chosen until the operator picks one (Enter alone refuses, with a
   * message); the list offers the nearest units first when the alert's place and theirs are known.
   */
  _assignForm(a, extra) {
    const units = nearestFirst(a.pos, this.hooks.units());
    const input = el("input", {
      name: "unit",
      list: "unit-options",
      required: true,
      autocomplete: "off",
      placeholder: units.some((u) => Number.isFinite(u.m)) ? "unit id (nearest first)" : "unit id",
      "aria-label": "Unit",
    });
    const options = el(
      "datalist",
      { id: "unit-options" },
      ...units.map((u) => el("option", { value: u.id, label: Number.isFinite(u.m) ? `${u.id} — ${fmtDistance(u.m)}` : u.id })),
    );
    const near = units.filter((u) => Number.isFinite(u.m)).slice(0, 3);
    const hint = near.length ? el("p", { class: "muted small assign-near" }, `Nearest: ${near.map((u) => `${u.id} (${fmtDistance(u.m)})`).join(", ")}`) : null;
    const msg = el("p", { class: "msg", role: "alert", hidden: true });
    const btn = el("button", { type: "submit", class: "btn-small btn-primary" }, "Assign");
    const form = el(
      "form",
      { class: "reason-form", novalidate: true, dataset: { form: "assign" } },
      el("label", {}, "Assign to unit", input, options),
      hint,
      el("div", { class: "row-actions" }, btn, el("button", { type: "button", class: "btn-small btn-ghost", onclick: () => extra.replaceChildren() }, "Cancel")),
      msg,
    );
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      const unit = input.value.trim();
      if (!unit) {
        message(msg, "Choose a unit first: none is selected.");
        input.focus();
        return;
      }
      message(msg, "");
      await busy(btn, async () => {
        try {
          await this._post(a, "assign", { unit });
        } catch (err) {
          message(msg, errorText(err));
        }
      });
    });
    extra.replaceChildren(form);
    setTimeout(() => input.focus(), 0);
  }

  _dismissForm(a, extra) {
    extra.replaceChildren(
      reasonForm({
        label: "Why dismiss?",
        submit: "Dismiss",
        placeholder: "e.g. fireworks confirmed by caller",
        onSubmit: (reason) => this._post(a, "dismiss", { reason }),
        onCancel: () => extra.replaceChildren(),
      }),
    );
  }

  async change(a, action, body, btn, msg = null) {
    await busy(btn, async () => {
      try {
        await this._post(a, action, body);
      } catch (err) {
        message(msg || this.msg, errorText(err));
        // the alert moved meanwhile (another operator, a decision): show where it is now
        if (err instanceof api.ApiError && err.status === 409) await this.refresh(a.id);
      }
    });
  }

  /** Re-read one alert from the center and show it (in the queue, and in the packet view via onChanged). */
  async refresh(id) {
    let res;
    try {
      res = await api.get(`alerts/${encodeURIComponent(id)}`);
    } catch (err) {
      return null;
    }
    return this.apply(normAlert(res));
  }

  /** Show an alert's new state (from an action here or elsewhere). */
  apply(updated) {
    if (this._shows(updated.status)) this.alerts.set(updated.id, updated);
    else this.alerts.delete(updated.id);
    this.render();
    if (this.hooks.onChanged) this.hooks.onChanged(updated);
    return updated;
  }

  async _post(a, action, body) {
    const res = await api.post(`alerts/${encodeURIComponent(a.id)}/${action}`, body);
    const updated = res && (res.id || res.alert_id) ? normAlert(res) : { ...a, status: nextStatus(action, a.status) };
    if (this._shows(updated.status)) this.alerts.set(a.id, updated);
    else this.alerts.delete(a.id);
    this.render();
    const row = $(`li.alert-row[data-alert-id="${CSS.escape(a.id)}"]`, this.list);
    if (row) row.classList.add("changed");
    if (this.hooks.onChanged) this.hooks.onChanged(updated);
    return updated;
  }
}

/**
 * Units as {id, m}: metres from `pos` when both places are known, nearest first (then by id).
 * `units`: ids, or {id, pos} objects.
 */
export function nearestFirst(pos, units) {
  return (units || [])
    .map((u) => (typeof u === "string" ? { id: u, pos: null } : u))
    .map((u) => ({ id: String(u.id), m: metres(pos, u.pos) }))
    .sort((x, y) => (Number.isFinite(x.m) ? x.m : Infinity) - (Number.isFinite(y.m) ? y.m : Infinity) || x.id.localeCompare(y.id));
}

function fmtDistance(m) {
  return m < 1000 ? `${Math.round(m)} m` : `${(m / 1000).toFixed(1)} km`;
}

function rowKey(a) {
  return [a.status, a.unit || "", a.title, a.severity, pick(a, "dismiss_reason") || "", a.awaits_decision || ""].join("|");
}

function nextStatus(action, current) {
  return { acknowledge: "acknowledged", assign: "assigned", dismiss: "dismissed", close: "closed" }[action] || current;
}
