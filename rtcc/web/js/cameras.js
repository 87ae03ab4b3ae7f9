// The camera registry: city, in-car and community cameras, their level
// (registered: footage on request; integrated: live feed) and status. Admins
// approve or reject community registrations waiting for approval. Analysts,
// supervisors and admins ask an active community camera's owner for footage
// (footage.js); the panel's second view lists those requests and their answers.
// Rows: `#camera-list li[data-camera-id][data-status][data-kind]`; views
// `#camera-view-registry`, `#camera-view-footage`.

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
    /** Footage request forms (or their confirmations) by camera id: they survive a re-render. */
    this.forms = new Map();
    this.footage = hooks.footage && hooks.footage.canList ? hooks.footage : null;
    this.view = "registry";
    const registry = el("div", { class: "cam-view", dataset: { view: "registry" } }, this.summary, this.msg, el("div", { class: "panel-scroll" }, this.list));
    if (!this.footage) {
      root.replaceChildren(el("div", { class: "panel-head" }, el("h2", {}, "Camera registry"), this.filter), registry);
      return;
    }
    this.views = { registry, footage: el("div", { class: "cam-view", dataset: { view: "footage" }, hidden: true }, el("div", { class: "panel-scroll" }, this.footage.node)) };
    this.viewBtns = {
      registry: el("button", { type: "button", id: "camera-view-registry", class: "seg-btn", "aria-pressed": "true", onclick: () => this.show("registry") }, "Registry"),
      footage: el("button", { type: "button", id: "camera-view-footage", class: "seg-btn", "aria-pressed": "false", onclick: () => this.show("footage") }, "Footage requests"),
    };
    this.footage.onChange((waiting) => {
      this.viewBtns.footage.textContent = waiting ? `Footage requests (${waiting} waiting)` : "Footage requests";
    });
    root.replaceChildren(
      el("div", { class: "panel-head" }, el("h2", {}, "Cameras"), this.filter),
      el("div", { class: "seg cam-seg", role: "group", "aria-label": "Cameras view" }, this.viewBtns.registry, this.viewBtns.footage),
      this.views.registry,
      this.views.footage,
    );
  }

  /** Show the "registry" or the "footage" (requests) view; the requests are re-read as they show. */
  show(view) {
    if (!this.views || !this.views[view]) return;
    this.view = view;
    for (const [k, node] of Object.entries(this.views)) node.hidden = k !== view;
    for (const [k, b] of Object.entries(this.viewBtns)) b.setAttribute("aria-pressed", String(k === view));
    this.filter.hidden = view !== "registry";
    this.root.dataset.view = view;
    if (view === "footage") this.footage.load();
  }

  /** The tab was shown: what it shows is re-read (footage requests: owners answer by email). */
  shown() {
    if (this.footage && this.view === "footage") this.footage.load();
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
    const fr = this.hooks.footage;
    if (fr && fr.canRequest && c.kind === "community" && c.status === "active") {
      const kept = this.forms.get(c.id);
      if (kept) extra.append(kept);
      actions.append(fr.button(c.id, () => this.requestFootage(c, extra)));
    }
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

  /** Open the footage request form under the camera's row (the last 15 minutes, editable). */
  requestFootage(c, extra) {
    const open = extra.querySelector("form.footage-form");
    if (open) {
      open.querySelector("[name=reason]").focus();
      return;
    }
    // the row may have been re-rendered meanwhile (the form moved with it): act on the node itself
    const close = () => {
      const node = this.forms.get(c.id);
      this.forms.delete(c.id);
      if (node) node.remove();
    };
    const form = this.hooks.footage.form(c, {
      onDone: (req, note) => {
        note.append(" ", el("button", { type: "button", class: "btn-small btn-ghost", onclick: close }, "OK"));
        this.forms.set(c.id, note);
        form.replaceWith(note);
      },
      onCancel: close,
    });
    this.forms.set(c.id, form);
    extra.replaceChildren(form);
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
