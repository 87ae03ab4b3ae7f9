// Footage requests: an analyst, supervisor or admin asks a community camera's owner for a clip and
// follows the answer.
//
//  * The request (POST footage-requests, audited; the owner is emailed a link): the camera, the
//    case or incident it is for, the time window (around the incident when asked from its packet)
//    and the purpose, which the owner reads. Refused here only when the purpose or the case is
//    missing; the center judges the window (order, length, in the future, before the camera was
//    registered) and its message is shown in the form.
//  * The list (GET footage-requests, newest first): waiting (`requested`: the owner could not be
//    emailed yet, `notified`), delivered (`uploaded`), declined, expired. A delivered clip plays
//    and downloads through GET footage-requests/{id}/clip, which the center audits on every read.
//    The center publishes no event when an owner answers: the list is re-read when it is shown,
//    after each request, and with its Refresh button.
//
// Hooks: `[data-action=request-footage][data-camera-id]`, `form.footage-form[data-refused=client|server]`,
// `#footage-requests li[data-request-id][data-status]`, `.footage-clip` (video, or img for a still),
// `a.footage-download`, `#footage-refresh`.

import * as api from "./api.js";
import { el, items, message, reconcile, stamp } from "./dom.js";
import { busy, errorText, MIN_REASON } from "./forms.js";

/** The roles the center lets ask for footage and read the clips (the others see no action). */
export const FOOTAGE_ROLES = new Set(["admin", "supervisor", "analyst"]);
/** The window asked around an incident: from 5 min before to 5 min after (editable). */
const BEFORE_MS = 5 * 60_000;
const AFTER_MS = 5 * 60_000;
/** Without an incident (the camera registry): the last 15 minutes. */
const RECENT_MS = 15 * 60_000;
const LIMIT = 200;

/** The API's statuses as the analyst reads them. */
const STATE = { requested: "waiting", notified: "waiting", uploaded: "delivered", declined: "declined", expired: "expired", purged: "deleted" };
const HINT = {
  requested: "the owner could not be emailed yet",
  notified: "the owner was emailed; answering is voluntary",
  uploaded: "the owner sent a clip",
  declined: "the owner declined",
  expired: "no answer before the deadline",
  purged: "the clip was delivered and later deleted by retention",
};
const FILTERS = [
  ["", "All requests"],
  ["waiting", "Waiting"],
  ["delivered", "Delivered"],
  ["declined", "Declined"],
  ["expired", "Expired"],
];

const pad = (n) => String(n).padStart(2, "0");

/** `ms` as a `datetime-local` value in local time, to the second ("2026-11-21T18:39:30"). */
export function localInput(ms) {
  const d = new Date(ms);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** A `datetime-local` value (local time) as ISO UTC, or null. */
function isoOf(value) {
  if (!value) return null;
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? null : d.toISOString();
}

/** "2026-11-21 18:39:30" in local time. */
function when(iso) {
  const s = stamp(iso);
  if (!s) return "";
  return `${s}:${pad(new Date(iso).getSeconds())}`;
}

/** The local zone's offset, e.g. "UTC−06:00". */
function zone() {
  const off = -new Date().getTimezoneOffset();
  const a = Math.abs(off);
  return `UTC${off < 0 ? "−" : "+"}${pad(Math.floor(a / 60))}:${pad(a % 60)}`;
}

function bytes(n) {
  const v = Number(n);
  if (!Number.isFinite(v)) return "";
  if (v < 1024) return `${v} B`;
  if (v < 1024 * 1024) return `${(v / 1024).toFixed(1)} kB`;
  return `${(v / 1024 / 1024).toFixed(1)} MB`;
}

function field(label, input, hint) {
  return el("label", { class: "field" }, el("span", {}, label), input, hint ? el("span", { class: "muted small" }, hint) : null);
}

export class FootageRequests {
  /**
   * @param {{role: string, caps?: {has: (method: string, path: string) => boolean}}} opts
   *   caps: what this center's API offers (`api.capabilities()`)
   */
  constructor({ role, caps }) {
    const has = caps && caps.has ? (m, p) => caps.has(m, p) : () => true;
    const allowed = FOOTAGE_ROLES.has(role);
    this.canRequest = allowed && has("POST", "/footage-requests");
    this.canList = allowed && has("GET", "/footage-requests");
    this.canClip = allowed && has("GET", "/footage-requests/{}/clip");
    /** Set by the dashboard: show the list (the Cameras tab's footage view). */
    this.reveal = null;
    this.requests = [];
    this.rows = new Map();
    this.listeners = new Set();
    this._seq = 0;

    this.filter = el("select", { id: "footage-filter", "aria-label": "Show footage requests" }, ...FILTERS.map(([v, t]) => el("option", { value: v }, t)));
    this.filter.addEventListener("change", () => this.render());
    this.refreshBtn = el("button", { id: "footage-refresh", type: "button", class: "btn-small btn-ghost", onclick: () => this.load() }, "Refresh");
    this.summary = el("p", { id: "footage-summary", class: "muted small" });
    this.msg = el("p", { id: "footage-msg", class: "msg", role: "status", hidden: true });
    this.list = el("ol", { id: "footage-requests", class: "rows", dataset: { state: "idle" } });
    this.node = el(
      "div",
      { class: "footage-view" },
      el("div", { class: "footage-head" }, this.filter, this.refreshBtn),
      el("p", { class: "muted small footage-intro" }, "Clips asked of community camera owners, newest first. Owners answer from an emailed link; their answers arrive live."),
      this.summary,
      this.msg,
      this.list,
    );
  }

  /** Call `fn(waiting)` whenever the list was re-read (the number of requests still waiting). */
  onChange(fn) {
    this.listeners.add(fn);
  }

  // -- the request ------------------------------------------------------------------------

  /** The "Request footage" button of camera `id` (`onOpen` shows the form). */
  button(id, onOpen) {
    return el(
      "button",
      { type: "button", class: "btn-small btn-ghost", dataset: { action: "request-footage", cameraId: String(id) }, onclick: onOpen },
      "Request footage",
    );
  }

  /**
   * The request form for `cam` ({id, name}). `at`: the incident's time (the window is prefilled
   * around it), else the last minutes; `incidentRef`: the case/incident prefilled; `onDone(request,
   * note)` after the center accepted it (`note`: a confirmation to show in the form's place).
   */
  form(cam, { at = null, incidentRef = "", onDone, onCancel } = {}) {
    const t = at ? Date.parse(at) : NaN;
    const around = Number.isFinite(t);
    const now = Date.now();
    const start = around ? t - BEFORE_MS : now - RECENT_MS;
    const end = around ? t + AFTER_MS : now;
    const f = {
      start: el("input", { type: "datetime-local", step: "1", name: "window_start", value: localInput(start), "aria-label": "Window from" }),
      end: el("input", { type: "datetime-local", step: "1", name: "window_end", value: localInput(end), "aria-label": "Window to" }),
      ref: el("input", { name: "incident_ref", maxlength: "128", value: incidentRef, placeholder: "e.g. 2026-001234", autocomplete: "off", spellcheck: "false" }),
      reason: el("input", { name: "reason", maxlength: "1000", placeholder: "e.g. shots fired on this block: the street at the time", autocomplete: "off" }),
    };
    const msg = el("p", { class: "msg", role: "alert", hidden: true });
    const btn = el("button", { type: "submit", class: "btn-small btn-primary" }, "Send request");
    const cancel = onCancel ? el("button", { type: "button", class: "btn-small btn-ghost", onclick: onCancel }, "Cancel") : null;
    const form = el(
      "form",
      { class: "panel-form footage-form", novalidate: true, dataset: { cameraId: String(cam.id) } },
      el("p", { class: "muted small" }, `Ask the owner of ${cam.name || cam.id} for a clip. The owner is emailed and reads the purpose; answering is voluntary. The request is audited.`),
      el("div", { class: "two" }, field("From", f.start), field("To", f.end)),
      el("p", { class: "muted small footage-zone" }, around ? `5 min before to 5 min after the incident, local time (${zone()}).` : `Local time (${zone()}).`),
      field("Case or incident", f.ref, incidentRef ? "This incident, or its case number." : null),
      field("Purpose (the owner reads it)", f.reason),
      el("div", { class: "row-actions" }, btn, cancel),
      msg,
    );
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      const body = {
        camera_id: String(cam.id),
        incident_ref: f.ref.value.trim(),
        window_start: isoOf(f.start.value),
        window_end: isoOf(f.end.value),
        reason: f.reason.value.trim(),
      };
      const missing = [];
      if (body.reason.length < MIN_REASON) missing.push(`a purpose (at least ${MIN_REASON} characters)`);
      if (!body.incident_ref) missing.push("a case or incident number");
      if (!body.window_start || !body.window_end) missing.push("the window's start and end");
      if (missing.length) {
        form.dataset.refused = "client";
        message(msg, `A footage request needs ${missing.join(", ")}.`);
        (body.reason.length < MIN_REASON ? f.reason : !body.incident_ref ? f.ref : f.start).focus();
        return;
      }
      delete form.dataset.refused;
      message(msg, "");
      await busy(btn, async () => {
        let res;
        try {
          res = await api.post("footage-requests", body);
        } catch (err) {
          form.dataset.refused = err instanceof api.ApiError && err.status === 422 ? "server" : "error";
          message(msg, errorText(err));
          return;
        }
        if (onDone) onDone(res, this.sentNote(res));
        this.load();
      });
    });
    setTimeout(() => f.reason.focus(), 0);
    return form;
  }

  /** What to show once a request went out. */
  sentNote(r) {
    const state = STATE[r.status] || r.status;
    const text =
      r.status === "requested"
        ? `Footage requested from ${r.camera_name} (${when(r.window_start)} – ${when(r.window_end)}), but the owner could not be emailed yet.`
        : `Footage requested from ${r.camera_name} (${when(r.window_start)} – ${when(r.window_end)}): ${state} for the owner's answer, until ${stamp(r.expires_at)}.`;
    const note = el("p", { class: "msg footage-sent", role: "status", dataset: { kind: "ok", requestId: String(r.id), status: r.status } }, text);
    if (this.reveal) {
      note.append(" ", el("button", { type: "button", class: "btn-small btn-ghost", dataset: { action: "show-footage-requests" }, onclick: () => this.reveal() }, "See the requests"));
    }
    return note;
  }

  /** The requests made for `incidentRef` (for the packet's camera rows); [] when unavailable. */
  async forIncident(incidentRef) {
    if (!this.canList) return [];
    try {
      return items(await api.get("footage-requests", { incident_ref: incidentRef, limit: LIMIT }));
    } catch (err) {
      return [];
    }
  }

  /** A status tag for a request ("waiting", "delivered", ...). */
  tag(r) {
    const state = STATE[r.status] || r.status;
    return el("span", { class: `status-tag fr-${state}`, title: HINT[r.status] || r.status, dataset: { status: r.status } }, state);
  }

  // -- the list -------------------------------------------------------------------------

  /** Re-read the requests (newest first). */
  async load() {
    if (!this.canList) return;
    const seq = ++this._seq;
    this.list.dataset.state = "loading";
    let res;
    try {
      res = await api.get("footage-requests", { limit: LIMIT });
    } catch (err) {
      if (seq !== this._seq) return;
      this.list.dataset.state = "error";
      message(this.msg, `Footage requests unavailable: ${errorText(err)}`);
      return;
    }
    if (seq !== this._seq) return;
    message(this.msg, "");
    this.requests = items(res);
    this.list.dataset.state = "ready";
    this.list.dataset.loadedAt = new Date().toISOString();
    this.render();
    const waiting = this.requests.filter((r) => STATE[r.status] === "waiting").length;
    for (const fn of this.listeners) fn(waiting);
  }

  render() {
    const f = this.filter.value;
    const count = (s) => this.requests.filter((r) => STATE[r.status] === s).length;
    this.summary.textContent = `${count("waiting")} waiting · ${count("delivered")} delivered · ${count("declined")} declined · ${count("expired")} expired`;
    const shown = this.requests.filter((r) => !f || STATE[r.status] === f);
    const seen = new Set();
    const nodes = shown.map((r) => {
      const id = String(r.id);
      seen.add(id);
      // a row that did not change stays as it is (a clip being watched keeps playing)
      const key = [r.status, r.responded_at || "", r.owner_note || "", r.expires_at || "", r.clip_sha256 || ""].join("|");
      const had = this.rows.get(id);
      if (had && had.key === key) return had.node;
      const node = this._row(r);
      this.rows.set(id, { key, node });
      return node;
    });
    for (const id of [...this.rows.keys()]) if (!seen.has(id)) this.rows.delete(id);
    if (!nodes.length) {
      nodes.push(el("li", { class: "muted empty" }, this.requests.length ? "No request in this state." : "No footage requested yet. Ask from an incident packet's cameras, or from a community camera in the registry."));
    }
    reconcile(this.list, nodes);
  }

  _row(r) {
    const waiting = STATE[r.status] === "waiting";
    return el(
      "li",
      { class: "footage-row", dataset: { requestId: String(r.id), status: r.status, state: STATE[r.status] || r.status, cameraId: String(r.camera_id) } },
      el("div", { class: "row-main" }, el("span", { class: "row-title" }, r.camera_name || r.camera_id), this.tag(r)),
      el(
        "div",
        { class: "row-meta" },
        el("span", { class: "fr-window" }, `${when(r.window_start)} – ${when(r.window_end)}`),
        el("span", { class: "fr-case" }, `case ${r.incident_ref}`),
        el("span", {}, `by ${r.requested_by}`),
        el("span", {}, `asked ${stamp(r.created_at)}`),
        waiting ? el("span", {}, `answer due ${stamp(r.expires_at)}`) : null,
        r.responded_at ? el("span", {}, `answered ${stamp(r.responded_at)}`) : null,
      ),
      el("p", { class: "fr-reason" }, r.reason),
      el("p", { class: "muted small fr-hint" }, HINT[r.status] || ""),
      r.owner_note ? el("p", { class: "fr-note" }, `Owner's note: ${r.owner_note}`) : null,
      r.status === "uploaded" && this.canClip ? this._clip(r) : null,
    );
  }

  /** A delivered clip: play it (or see the still) and download it, through the audited clip endpoint. */
  _clip(r) {
    const url = `${api.API}footage-requests/${encodeURIComponent(r.id)}/clip`;
    const type = String(r.clip_content_type || "");
    const still = type.startsWith("image/");
    const box = el("div", { class: "fr-player" });
    const note = el("p", { class: "msg", role: "status", hidden: true });
    const play = el(
      "button",
      {
        type: "button",
        class: "btn-small btn-primary",
        dataset: { action: "view-clip" },
        onclick: () => {
          const media = still
            ? el("img", { class: "footage-clip", src: url, alt: `footage from ${r.camera_name}` })
            : el("video", { class: "footage-clip", src: url, controls: true, preload: "metadata", playsinline: true });
          // a format the browser cannot play (e.g. .avi) is still evidence: it downloads
          media.addEventListener("error", () => message(note, `This ${type || "clip"} cannot be shown here: download it.`, "info"));
          box.replaceChildren(media);
          play.hidden = true;
        },
      },
      still ? "View still" : "Play clip",
    );
    const download = el("a", { class: "btn-small btn-ghost footage-download", href: url, download: "", dataset: { action: "download-clip" } }, "Download");
    const facts = [bytes(r.clip_bytes), type, r.clip_sha256 ? `SHA-256 ${String(r.clip_sha256).slice(0, 12)}…` : ""].filter(Boolean).join(" · ");
    return el(
      "div",
      { class: "fr-clip" },
      el("div", { class: "row-actions" }, play, download),
      el("p", { class: "muted small", title: r.clip_sha256 || "" }, facts),
      el("p", { class: "muted small" }, "Viewing or downloading the clip is recorded in the audit log."),
      box,
      note,
    );
  }
}
