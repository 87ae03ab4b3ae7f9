// The camera registry: city, in-car and community cameras, their level
// (registered: footage on request; integrated: live feed) and status. Admins
// approve or reject community registrations waiting for approval.
// Rows: `#camera-list li[data-camera-id][data-status][data-kind]`.

import * as api from "./api.js";
import { el, items, message, pick, position, words } from "./dom.js";
import { busy, errorText, missingApi, reasonForm } from "./forms.js";

/** A camera as the map and the panel use it. */
export function normCamera(c) {
  return {
    ...c,
    id: String(pick(c, "id", "camera_id")),
    name: c.name || String(pick(c, "id", "camera_id")),
    kind: c.kind || "city",
    level: c.level || "registered",
    status: c.status || "active",
    pos: position(c),
    bearing: Number(pick(c, "bearing_deg", "view_bearing_deg", "direction_deg", "heading_deg")),
    fov: Number(pick(c, "fov_deg", "field_of_view_deg")),
    range: Number(pick(c, "range_m", "view_range_m")),
  };
}

export class CameraRegistry {
  /** @param {HTMLElement} root  @param {{map: object, role: string, onLive: (id: string, name: string) => void}} hooks */
  constructor(root, hooks) {
    this.root = root;
    this.hooks = hooks;
    this.filter = el(
      "select",
      { id: "camera-filter", "aria-label": "Show cameras" },
      el("option", { value: "" }, "All cameras"),
      el("option", { value: "pending_approval" }, "Waiting for approval"),
      el("option", { value: "active" }, "Active"),
      el("option", { value: "withdrawn" }, "Withdrawn"),
    );
    this.filter.addEventListener("change", () => this.render());
    this.msg = el("p", { id: "camera-msg", class: "msg", role: "status", hidden: true });
    this.summary = el("p", { id: "camera-summary", class: "muted small" });
    this.list = el("ol", { id: "camera-list", class: "rows" });
    this.cameras = [];
    root.replaceChildren(el("div", { class: "panel-head" }, el("h2", {}, "Camera registry"), this.filter), this.summary, this.msg, el("div", { class: "panel-scroll" }, this.list));
  }

  async load() {
    try {
      const res = await api.get("cameras");
      this.cameras = items(res).map(normCamera);
    } catch (err) {
      message(this.msg, `Cameras unavailable: ${errorText(err)}`);
      return missingApi(err) ? null : [];
    }
    message(this.msg, "");
    this.render();
    this.hooks.map.setCameras(this.cameras);
    return this.cameras;
  }

  render() {
    const f = this.filter.value;
    const shown = this.cameras.filter((c) => !f || c.status === f);
    const count = (pred) => this.cameras.filter(pred).length;
    this.summary.textContent = `${count((c) => c.status === "active")} active · ${count((c) => c.level === "integrated")} integrated · ${count((c) => c.kind === "community")} community · ${count((c) => c.status === "pending_approval")} waiting for approval`;
    this.list.replaceChildren(...shown.map((c) => this._row(c)));
    if (!shown.length) this.list.append(el("li", { class: "muted empty" }, "No camera here."));
  }

  _row(c) {
    const extra = el("div", { class: "row-extra" });
    const actions = el("div", { class: "row-actions" });
    if (c.status === "pending_approval" && this.hooks.role === "admin") {
      actions.append(
        el("button", { type: "button", class: "btn-small btn-primary", dataset: { action: "approve" }, onclick: (e) => this.decide(c, "approve", {}, e.currentTarget) }, "Approve"),
        el("button", { type: "button", class: "btn-small btn-ghost", dataset: { action: "reject" }, onclick: () => extra.replaceChildren(reasonForm({ label: "Why reject?", submit: "Reject", onSubmit: (reason) => this.decide(c, "reject", { reason }), onCancel: () => extra.replaceChildren() })) }, "Reject"),
      );
    }
    if (c.live && c.status === "active") {
      actions.append(el("button", { type: "button", class: "btn-small btn-ghost", dataset: { action: "live" }, onclick: () => this.hooks.onLive(c.id, c.name) }, "Live view"));
    }
    if (c.pos) actions.append(el("button", { type: "button", class: "btn-small btn-ghost", dataset: { action: "locate" }, onclick: () => this.hooks.map.flyTo(c.pos) }, "Map"));
    const view = Number.isFinite(c.bearing) ? `${Math.round(c.bearing)}°${Number.isFinite(c.fov) ? ` / ${Math.round(c.fov)}° FOV` : ""}` : "";
    return el(
      "li",
      { class: "camera-row", dataset: { cameraId: c.id, status: c.status, kind: c.kind, level: c.level } },
      el("div", { class: "row-main" }, el("span", { class: "row-title" }, c.name), el("span", { class: `status-tag st-${c.status}` }, words(c.status))),
      el("div", { class: "row-meta" }, el("span", {}, words(c.kind)), el("span", {}, words(c.level)), view ? el("span", {}, view) : null, c.address ? el("span", {}, c.address) : null),
      actions,
      extra,
    );
  }

  async decide(c, action, body, btn) {
    const run = async () => {
      await api.post(`cameras/${encodeURIComponent(c.id)}/${action}`, body);
      message(this.msg, `${c.name}: ${action === "approve" ? "approved" : "rejected"}.`, "ok");
      await this.load();
    };
    if (!btn) return run();
    return busy(btn, async () => {
      try {
        await run();
      } catch (err) {
        message(this.msg, errorText(err));
      }
    });
  }
}
