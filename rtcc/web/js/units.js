// Body-cam control: the units (last position, battery, recording), start/stop
// recording with a mandatory reason, and the commands' status (sent, acked,
// failed, timeout). Rows: `#unit-list li[data-unit-id][data-recording]`,
// `#command-list li[data-command-id][data-status]`.

import * as api from "./api.js";
import { ago, clock, el, items, message, pick, reconcile, words } from "./dom.js";
import { errorText, reasonForm } from "./forms.js";

const RELOAD_MS = 300;
const POLL_MS = 1500;
const MAX_POLLS = 40;

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
    root.replaceChildren(
      el("div", { class: "panel-head" }, el("h2", {}, "Body-cam units")),
      this.msg,
      el("div", { class: "panel-scroll" }, this.list, el("h3", { class: "sub-head" }, "Recent commands"), this.commands),
    );
  }

  async load() {
    const [units, cmds] = await Promise.allSettled([api.get("bodycams"), api.get("bodycams/commands", { limit: 20 })]);
    if (units.status === "fulfilled") {
      message(this.msg, "");
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
    this._polls = MAX_POLLS;
  }

  /** A live event about a unit or a command: refresh (coalesced). */
  onEvent(ev) {
    if (!["device_command", "device_command_ack", "bodycam_command_updated", "command_status"].includes(ev.type)) return;
    clearTimeout(this._timer);
    this._timer = setTimeout(() => this.load(), RELOAD_MS);
  }

  _row(u) {
    const id = String(pick(u, "device_id", "id"));
    const recording = Boolean(u.recording);
    const extra = el("div", { class: "row-extra" });
    const command = recording ? "stop_recording" : "start_recording";
    const can = this.hooks.role === "admin" || this.hooks.role === "supervisor";
    return el(
      "li",
      { class: "unit-row", dataset: { unitId: id, recording: String(recording) } },
      el("div", { class: "row-main" }, el("span", { class: "row-title" }, u.name || id), el("span", { class: `rec-tag ${recording ? "on" : "off"}` }, recording ? "recording" : "not recording")),
      el(
        "div",
        { class: "row-meta" },
        el("span", {}, id),
        Number.isFinite(u.battery_pct) ? el("span", {}, `battery ${Math.round(u.battery_pct)} %`) : null,
        el("span", {}, `seen ${ago(pick(u, "last_seen_at", "last_seen"))}`),
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
