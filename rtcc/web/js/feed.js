// The live event feed: newest first, at most MAX_ROWS rows.
//
// Each row is an <li data-event-type="…" data-origin="live|history">. When the
// feed is full the oldest *routine* row (heartbeats, pulses) beyond the newest
// 50 goes first, so a stream of heartbeats cannot push an incident out of
// view; when there is none, the oldest row goes. Rows are added in batches, once
// per frame, and wait while the mouse is over the list (so rows hold still to be clicked).

import { el, clock } from "./dom.js";

export const MAX_ROWS = 200;
const KEEP_RECENT = 50;

const ROUTINE = new Set(["device_heartbeat", "pulse", "device_command_ack"]);
const CATEGORY = {
  gunshot_incident: "incident",
  shot_located: "incident",
  alert: "incident",
  alert_updated: "incident",
  packet_updated: "incident",
  hotlist_hit: "incident",
  plate_read: "plates",
  device_status: "device",
  device_position: "device",
  device_heartbeat: "device",
  device_command: "device",
  device_command_ack: "device",
  pulse: "device",
  audit: "audit",
};
const LABEL = {
  device_heartbeat: "heartbeat",
  device_status: "status",
  device_position: "position",
  device_command: "command",
  device_command_ack: "cmd ack",
  pulse: "pulse",
  shot_located: "shot",
  gunshot_incident: "gunfire",
  plate_read: "plate",
  hotlist_hit: "hotlist",
  alert: "alert",
  alert_updated: "alert upd",
  packet_updated: "packet",
  audit: "audit",
};

function pct(x) {
  return Number.isFinite(x) ? `${Math.round(x * 100)} %` : "";
}

/** One line describing an event. */
export function describe(ev) {
  switch (ev.type) {
    case "device_heartbeat": {
      const bits = [ev.device];
      if (Number.isFinite(ev.battery_pct)) bits.push(`battery ${Math.round(ev.battery_pct)} %`);
      if (ev.recording) bits.push("recording");
      if (ev.gps_lock === false) bits.push("no GPS lock");
      return bits.join(" · ");
    }
    case "device_status":
      return `${ev.device} is ${ev.status}${ev.reason ? ` — ${ev.reason}` : ""}`;
    case "device_position":
      return ev.mismatch
        ? `${ev.device} reports a position ${Number.isFinite(ev.offset_m) ? `${Math.round(ev.offset_m)} m ` : ""}from its registered one`
        : `${ev.device}: position OK${ev.reason ? ` — ${ev.reason}` : ""}`;
    case "device_command":
      return `${ev.device}: ${String(ev.command).replace("_", " ")}${ev.automatic ? " (automatic)" : ` by ${ev.issued_by}`}`;
    case "device_command_ack":
      return `${ev.device} ${ev.ok ? "acknowledged" : "failed"}${ev.detail ? ` — ${ev.detail}` : ""}`;
    case "pulse":
      return `${ev.device} heard an impulse (${Math.round(ev.peak_db)} dB)`;
    case "shot_located":
      return `shot located ±${Math.round(ev.ellipse_major_m)} m (${(ev.sensors || []).length} sensors, ${ev.quality})`;
    case "gunshot_incident":
      return `${ev.label || "gunfire"} — ${ev.rounds} round${ev.rounds === 1 ? "" : "s"}, ${pct(ev.confidence)} confidence`;
    case "plate_read":
      return `${ev.plate} at ${ev.device} (${pct(ev.confidence)})`;
    case "hotlist_hit":
      return `${ev.plate} matches ${ev.category} ${ev.entry_plate} (${ev.match}) at ${ev.device} — verify`;
    case "alert":
      return ev.title || ev.kind || "alert";
    case "alert_updated":
      return `${ev.title || ev.kind || "alert"} → ${String(ev.status || "updated").replace(/_/g, " ")}${ev.unit || ev.assigned_unit ? ` (${ev.unit || ev.assigned_unit})` : ""}`;
    case "packet_updated":
      return `incident packet updated (${ev.kind || "incident"})`;
    case "footage_request_updated":
      return `footage request ${ev.status === "uploaded" ? "answered: clip delivered" : "declined by the owner"}${ev.incident_ref ? ` (${ev.incident_ref})` : ""}`;
    case "audit":
      return `${ev.actor} ${ev.action} ${ev.resource}${ev.record_id ? ` ${ev.record_id}` : ""} (${ev.outcome})`;
    default:
      return ev.source || "";
  }
}

export class EventFeed {
  /**
   * @param {HTMLOListElement} list  the <ol id="feed">
   * @param {{onSelect?: (ev: object) => void, onCount?: (n: number) => void}} hooks
   */
  constructor(list, hooks = {}) {
    this.list = list;
    this.hooks = hooks;
    this.pending = [];
    this.routineRows = 0;
    this._frame = null;
    this.events = new WeakMap();
    this._onClick = (e) => this._click(e);
    this._onKey = (e) => {
      if (e.key === "Enter" || e.key === " ") this._click(e);
    };
    // while the pointer is over the list, new rows wait, so rows do not move under it
    this.paused = false;
    this._onEnter = (e) => {
      if (e.pointerType === "mouse") this.pause(true);
    };
    this._onLeave = () => this.pause(false);
    list.addEventListener("click", this._onClick);
    list.addEventListener("keydown", this._onKey);
    list.addEventListener("pointerenter", this._onEnter);
    list.addEventListener("pointerleave", this._onLeave);
  }

  pause(on) {
    if (this.paused === on) return;
    this.paused = on;
    if (this.hooks.onPause) this.hooks.onPause(on);
    if (!on && this.pending.length) this._schedule();
  }

  /** Empty the list and let go of it (the page may build a new feed on it). */
  destroy() {
    this.clear();
    this.list.removeEventListener("click", this._onClick);
    this.list.removeEventListener("keydown", this._onKey);
    this.list.removeEventListener("pointerenter", this._onEnter);
    this.list.removeEventListener("pointerleave", this._onLeave);
    this.hooks = {};
  }

  /** Queue an event for display (origin "live" or "history"). */
  add(ev, origin = "live") {
    this.pending.push([ev, origin]);
    if (this.pending.length > MAX_ROWS) this.pending.splice(0, this.pending.length - MAX_ROWS);
    if (!this.paused) this._schedule();
  }

  _schedule() {
    if (this._frame !== null) return;
    const flush = () => {
      this._frame = null;
      if (!this.paused) this.flush();
    };
    this._frameIsTimer = document.hidden; // hidden tabs get no animation frames
    this._frame = this._frameIsTimer ? setTimeout(flush, 250) : requestAnimationFrame(flush);
  }

  flush() {
    if (!this.pending.length) return;
    const frag = document.createDocumentFragment();
    for (let i = this.pending.length - 1; i >= 0; i--) frag.append(this._row(...this.pending[i]));
    this.pending = [];
    this.list.prepend(frag);
    this._trim();
    if (this.hooks.onCount) this.hooks.onCount(this.list.childElementCount);
  }

  _row(ev, origin) {
    const type = ev.type || "unknown";
    const routine = ROUTINE.has(type);
    if (routine) this.routineRows += 1;
    const sev = type === "alert" ? ev.severity || "warning" : type === "gunshot_incident" || type === "hotlist_hit" ? "critical" : "";
    const li = el(
      "li",
      {
        class: `ev cat-${CATEGORY[type] || "other"}${sev ? ` sev-${sev}` : ""}`,
        tabindex: ev.pos || ev.device ? "0" : undefined,
        dataset: {
          eventType: type,
          origin,
          eventId: ev.event_id || "",
          category: CATEGORY[type] || "other",
          ...(routine ? { routine: "1" } : {}),
        },
      },
      el("time", { datetime: ev.occurred_at || "" }, clock(ev.occurred_at)),
      el("span", { class: "ev-type" }, LABEL[type] || type),
      el("span", { class: "ev-text" }, describe(ev)),
    );
    this.events.set(li, ev);
    return li;
  }

  _trim() {
    let excess = this.list.childElementCount - MAX_ROWS;
    // drop the oldest routine rows first, but never one of the newest KEEP_RECENT rows
    let index = this.list.childElementCount - 1;
    let node = this.list.lastElementChild;
    while (excess > 0 && this.routineRows > 0 && node && index >= KEEP_RECENT) {
      const prev = node.previousElementSibling;
      if (node.dataset.routine) {
        node.remove();
        this.routineRows -= 1;
        excess -= 1;
      }
      node = prev;
      index -= 1;
    }
    while (excess > 0 && this.list.lastElementChild) {
      const last = this.list.lastElementChild;
      if (last.dataset.routine) this.routineRows -= 1;
      last.remove();
      excess -= 1;
    }
  }

  _click(e) {
    const li = e.target.closest("li.ev");
    if (!li) return;
    const ev = this.events.get(li);
    if (ev && this.hooks.onSelect) this.hooks.onSelect(ev);
  }

  clear() {
    if (this._frame !== null) {
      if (this._frameIsTimer) clearTimeout(this._frame);
      else cancelAnimationFrame(this._frame);
      this._frame = null;
    }
    this.pending = [];
    this.routineRows = 0;
    this.list.replaceChildren();
    if (this.hooks.onCount) this.hooks.onCount(0);
  }
}
