// Body-cam control: the units (last position, battery, recording), start/stop
// recording with a mandatory reason, and the commands' status (sent, acked,
// failed, timeout). Rows: `#unit-list li[data-unit-id][data-recording]`,
// `#command-list li[data-command-id][data-status]`. A unit's last-seen time and
// battery follow its live `device_heartbeat` events (`.unit-seen[data-seen-at]`,
// `.unit-battery`), and "seen N s ago" ticks while the panel is shown.

import * as api from "./api.js";
import { ago, clock, el, items, message, pick, reconcile, words } from "./dom.js";
import { errorText, reasonForm } from "./forms.js";

const RELOAD_MS = 300;
const POLL_MS = 1500;
const MAX_POLLS = 40;
const TICK_MS = 1000;

export class BodycamControl {
  /** @param {HTMLElement} root  @param {{map: object, role: string}} hooks */
  constructor(root, hooks) {
    this.root = root;
    this.hooks = hooks;
    this.msg = el("p", { id: "unit-msg", class: "msg", role: "status", hidden: true });
    this.list = el("ol", { id: "unit-list", class: "rows" });
    this.commands = el("ol", { id: "command-list", class: "rows compact" });
    this._timer = null;
    this._poll = null;
    this._polls = 0;
    this._recording = new Map(); // unit id -> recording, from its last heartbeat
    this._tick = setInterval(() => this._ticked(), TICK_MS);
    root.replaceChildren(
      el("div", { class: "panel-head" }, el("h2", {}, "Body-cam units")),
      this.msg,
      el("div", { class: "panel-scroll" }, this.list, el("h3", { class: "sub-head" }, "Recent commands"), this.commands),
    );
  }

  async load() {
    const [units, cmds] = await Promise.allSettled([api.get("bodycams"), api.get("bodycams/commands", { limit: 20 })]);
    if (units.status === "fulfilled") {
      // an earlier failure is over; a command's confirmation stays until the next command
      if (this.msg.dataset.kind === "error") message(this.msg, "");
      const list = items(units.value);
      // a row with a form open stays while its unit's recording state is unchanged
      const old = new Map([...this.list.querySelectorAll("li.unit-row")].map((li) => [li.dataset.unitId, li]));
      const rows = list.map((u) => {
        const li = old.get(String(pick(u, "device_id", "id")));
        const open = li && li.querySelector(".row-extra form");
        return open && li.dataset.recording === String(Boolean(u.recording)) ? li : this._row(u);
      });
      reconcile(this.list, rows.length ? rows : [el("li", { class: "muted empty" }, "No body-cam unit registered.")]);
    } else {
      message(this.msg, `Units unavailable: ${errorText(units.reason)}`);
    }
    if (cmds.status === "fulfilled") {
      const list = items(cmds.value).slice(0, 20);
      this.commands.replaceChildren(...list.map((c) => this._cmd(c)));
      // a command waiting for its ack: look again soon (the ack event may come before the row changes)
      const waiting = list.some((c) => (c.status || "sent") === "sent");
      clearTimeout(this._poll);
      if (waiting && this._polls < MAX_POLLS && this.root.isConnected) {
        this._polls += 1;
        this._poll = setTimeout(() => this.load(), POLL_MS);
      } else if (!waiting) this._polls = 0;
    }
  }

  stop() {
    clearTimeout(this._timer);
    clearTimeout(this._poll);
    clearInterval(this._tick);
    this._polls = MAX_POLLS;
  }

  /** A live event about a unit or a command: a heartbeat updates its row; a command refreshes (coalesced). */
  onEvent(ev) {
    if (ev.type === "device_heartbeat") {
      if (this._heartbeat(ev)) this._reload();
      return;
    }
    if (!["device_command", "device_command_ack", "bodycam_command_updated", "command_status"].includes(ev.type)) return;
    this._reload();
  }

  _reload() {
    clearTimeout(this._timer);
    this._timer = setTimeout(() => this.load(), RELOAD_MS);
  }

  /** A unit's heartbeat: its last-seen time and battery. True when it started or stopped recording (reload). */
  _heartbeat(ev) {
    const li = this.list.querySelector(`li.unit-row[data-unit-id="${CSS.escape(String(ev.device || ""))}"]`);
    if (!li) return false;
    const seen = li.querySelector(".unit-seen");
    if (seen && ev.occurred_at) {
      seen.dataset.seenAt = ev.occurred_at;
      seen.textContent = `seen ${ago(ev.occurred_at)}`;
    }
    if (Number.isFinite(ev.battery_pct)) {
      let battery = li.querySelector(".unit-battery");
      if (!battery) {
        battery = el("span", { class: "unit-battery" });
        if (seen) seen.before(battery);
      }
      battery.textContent = `battery ${Math.round(ev.battery_pct)} %`;
    }
    // the unit started or stopped recording (an edge of its heartbeats, not each one): re-read the list
    if (typeof ev.recording !== "boolean") return false;
    const before = this._recording.get(li.dataset.unitId);
    this._recording.set(li.dataset.unitId, ev.recording);
    return before !== undefined && before !== ev.recording && li.dataset.recording !== String(ev.recording);
  }

  /** "seen N s ago" follows the clock while the panel is shown. */
  _ticked() {
    if (!this.root.isConnected) {
      clearInterval(this._tick);
      return;
    }
    if (this.root.hidden || document.hidden) return;
    for (const node of this.list.querySelectorAll(".unit-seen[data-seen-at]")) node.textContent = `seen ${ago(node.dataset.seenAt)}`;
  }

  _row(u) {
    const id = String(pick(u, "device_id", "id"));
    const recording = Boolean(u.recording);
    const extra = el("div", { class: "row-extra" });
    const command = recording ? "stop_recording" : "start_recording";
    const can = this.hooks.role === "admin" || this.hooks.role === "supervisor";
    const seen = pick(u, "last_seen_at", "last_seen");
    return el(
      "li",
      { class: "unit-row", dataset: { unitId: id, recording: String(recording) } },
      el("div", { class: "row-main" }, el("span", { class: "row-title" }, u.name || id), el("span", { class: `rec-tag ${recording ? "on" : "off"}` }, recording ? "recording" : "not recording")),
      el(
        "div",
        { class: "row-meta" },
        el("span", {}, id),
        Number.isFinite(u.battery_pct) ? el("span", { class: "unit-battery" }, `battery ${Math.round(u.battery_pct)} %`) : null,
        el("span", { class: "unit-seen", dataset: seen ? { seenAt: seen } : {} }, `seen ${ago(seen)}`),
      ),
      can
        ? el(
            "div",
            { class: "row-actions" },
            el(
              "button",
              {
                type: "button",
                class: `btn-small ${recording ? "btn-ghost" : "btn-primary"}`,
                dataset: { action: command },
                onclick: () =>
                  extra.replaceChildren(
                    reasonForm({
                      label: recording ? "Why stop recording?" : "Why start recording?",
                      submit: recording ? "Stop recording" : "Start recording",
                      placeholder: recording ? "e.g. scene cleared" : "e.g. shots fired near the unit",
                      onSubmit: async (reason) => {
                        const res = await api.post(`bodycams/${encodeURIComponent(id)}/commands`, { command, reason });
                        message(this.msg, `${words(command)} sent to ${u.name || id} — ${words((res && res.status) || "sent")}.`, "ok");
                        extra.replaceChildren();
                        this._polls = 0;
                        await this.load();
                      },
                      onCancel: () => extra.replaceChildren(),
                    }),
                  ),
              },
              recording ? "Stop recording" : "Start recording",
            ),
            pick(u, "lat") !== undefined ? el("button", { type: "button", class: "btn-small btn-ghost", onclick: () => this.hooks.map.flyTo({ lat: u.lat, lon: u.lon }) }, "Map") : null,
          )
        : null,
      extra,
    );
  }

  _cmd(c) {
    const status = c.status || "sent";
    return el(
      "li",
      { class: "command-row", dataset: { commandId: String(pick(c, "id", "command_id")), status } },
      el("span", {}, clock(pick(c, "issued_at", "created_at", "occurred_at"))),
      el("span", {}, pick(c, "device_id", "device") || ""),
      el("span", {}, words(c.command)),
      el("span", { class: `status-tag st-${status}` }, words(status)),
      c.automatic ? el("span", { class: "muted" }, "automatic") : el("span", { class: "muted" }, pick(c, "issued_by") || ""),
      c.reason ? el("span", { class: "muted reason" }, `“${c.reason}”`) : null,
    );
  }
}
