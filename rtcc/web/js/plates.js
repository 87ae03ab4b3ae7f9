// Plate search: every search needs a purpose and a case number.
//
// The panel has one "why" block (kind of purpose, case number, purpose, period)
// shared by its two views:
//  * Reads — search by plate (exact, partial, wildcard, look-alike), period,
//    cameras and area (a radius around a point, or a polygon, picked on the
//    map). Refused here before any request when the purpose or case number is
//    missing, and refused again by the center (which audits the terms).
//    Results: `#plate-results li[data-read-id][data-plate]`; "Details" (or a
//    click on the row) opens the stored read (`#plate-read`: text, confidence,
//    camera, time, place, the plate crop and the vehicle photo), looked at
//    with the search's purpose and case number (audited again by the center);
//    "Track on map" draws the vehicle's reads in time order; "Co-travellers"
//    opens the co-travel view for that plate.
//  * Co-travel — see cotravel.js.
//  * BOLO — the custom hotlist entries kept here (see bolo.js); the "why" block is hidden there.

import * as api from "./api.js";
import { Bolo } from "./bolo.js";
import { CoTravel } from "./cotravel.js";
import { el, items, message, pick, position, stamp } from "./dom.js";
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
/** Match modes of the page → the API's `mode` (partial and wildcard are one API mode). */
export const MODES = [
  ["exact", "Exact", "exact"],
  ["partial", "Partial (part of the plate)", "partial"],
  ["wildcard", "Wildcard (? one, * any)", "partial"],
  ["lookalike", "Look-alike characters (0/O, 8/B …)", "lookalike"],
];
const AREA_COLOR = "#22d3ee";

function field(label, input) {
  return el("label", { class: "field" }, el("span", {}, label), input);
}

export function isoOrNull(v) {
  if (!v) return null;
  const d = new Date(v);
  return Number.isNaN(d.getTime()) ? null : d.toISOString();
}

/** Uppercase, without spaces or dashes; `?` and `*` kept (they are refused outside wildcard mode). */
export function normPlate(v) {
  return String(v || "").toUpperCase().replace(/[\s-]+/g, "");
}

const fix = (x) => Number(x).toFixed(5);

/** "lat,lon;lat,lon;…" → [[lat, lon], …], or null when a corner is not two numbers in range. */
export function parsePolygon(text) {
  const pts = String(text || "")
    .split(";")
    .map((p) => p.trim())
    .filter(Boolean)
    .map((p) => p.split(",").map((x) => Number(x.trim())));
  const ok = pts.every((p) => p.length === 2 && p.every(Number.isFinite) && Math.abs(p[0]) <= 90 && Math.abs(p[1]) <= 180);
  return ok ? pts : null;
}

/**
 * The search area drawn on the map: a circle (radius) or a polygon. The form's fields hold the
 * area; a click on the map while picking writes into them, and the drawing follows the fields.
 */
class AreaPicker {
  /** @param {object} opsMap  @param {{lat, lon, radius, polygon}} inputs  @param {() => void} onPicked */
  constructor(opsMap, inputs, onPicked) {
    this.ops = opsMap;
    this.inputs = inputs;
    this.onPicked = onPicked;
    this.kind = "none";
    this.picking = null;
    this.layer = opsMap && opsMap.L ? opsMap.L.layerGroup().addTo(opsMap.map) : null;
    this._click = (e) => this._clicked(e.latlng);
  }

  get container() {
    return this.ops && this.ops.map ? this.ops.map.getContainer() : null;
  }

  /** Start taking map clicks: "radius" (one click: the centre) or "polygon" (each click: a corner). */
  start(kind) {
    if (!this.layer || this.ops.destroyed) return false;
    this.stop();
    this.picking = kind;
    this.ops.map.on("click", this._click);
    if (kind === "polygon") this.ops.map.doubleClickZoom.disable();
    const c = this.container;
    c.classList.add("picking-area");
    c.dataset.picking = kind;
    return true;
  }

  stop() {
    if (!this.picking) return;
    this.picking = null;
    if (!this.ops.destroyed) {
      this.ops.map.off("click", this._click);
      this.ops.map.doubleClickZoom.enable();
    }
    const c = this.container;
    if (c) {
      c.classList.remove("picking-area");
      delete c.dataset.picking;
    }
  }

  _clicked(ll) {
    const f = this.inputs;
    if (this.picking === "radius") {
      f.lat.value = fix(ll.lat);
      f.lon.value = fix(ll.lng);
      this.stop();
    } else if (this.picking === "polygon") {
      const now = f.polygon.value.trim();
      f.polygon.value = `${now ? now + ";" : ""}${fix(ll.lat)},${fix(ll.lng)}`;
    }
    this.draw();
    this.onPicked();
  }

  /** Redraw the area from the fields (nothing when the kind is "none" or the fields are incomplete). */
  draw() {
    if (!this.layer || this.ops.destroyed) return;
    const L = this.ops.L;
    this.layer.clearLayers();
    const f = this.inputs;
    const style = { className: "search-area", color: AREA_COLOR, weight: 2, dashArray: "4 4", fillColor: AREA_COLOR, fillOpacity: 0.08, interactive: false };
    if (this.kind === "radius") {
      const lat = Number(f.lat.value), lon = Number(f.lon.value), r = Number(f.radius.value);
      if (f.lat.value && f.lon.value && Number.isFinite(lat) && Number.isFinite(lon)) {
        if (r > 0) L.circle([lat, lon], { radius: r, ...style }).addTo(this.layer);
        L.circleMarker([lat, lon], { radius: 4, className: "search-area-center", color: AREA_COLOR, weight: 2, interactive: false }).addTo(this.layer);
      }
    } else if (this.kind === "polygon") {
      const pts = parsePolygon(f.polygon.value);
      if (pts && pts.length >= 3) L.polygon(pts, style).addTo(this.layer);
      else if (pts && pts.length) L.polyline(pts, style).addTo(this.layer);
      for (const p of pts || []) L.circleMarker(p, { radius: 3, className: "search-area-corner", color: AREA_COLOR, weight: 2, interactive: false }).addTo(this.layer);
    }
  }

  destroy() {
    this.stop();
    if (this.layer && !this.ops.destroyed) this.layer.remove();
  }
}

export class PlateSearch {
  /** @param {HTMLElement} root  @param {{map: object}} hooks */
  constructor(root, hooks) {
    this.root = root;
    this.hooks = hooks;
    const f = (this.f = {
      plate: el("input", { id: "ps-plate", name: "plate", autocapitalize: "characters", spellcheck: "false", maxlength: "24", placeholder: "e.g. 7ABC123, B12 or 7AB*" }),
      mode: el("select", { id: "ps-mode", name: "mode" }, ...MODES.map(([v, t]) => el("option", { value: v }, t))),
      purposeKind: el("select", { id: "ps-purpose-kind", name: "purpose_category" }, ...PURPOSES.map(([v, t]) => el("option", { value: v }, t))),
      purpose: el("input", { id: "ps-purpose", name: "purpose", maxlength: "500", placeholder: "what this search is for" }),
      caseNumber: el("input", { id: "ps-case", name: "case_number", maxlength: "64", placeholder: "e.g. 2026-001234" }),
      start: el("input", { id: "ps-start", name: "start", type: "datetime-local" }),
      end: el("input", { id: "ps-end", name: "end", type: "datetime-local" }),
      camera: el("input", { id: "ps-camera", name: "camera", list: "ps-camera-list", autocapitalize: "none", spellcheck: "false", placeholder: "camera ids, comma-separated" }),
      area: el("select", { id: "ps-area", name: "area" }, el("option", { value: "none" }, "Anywhere"), el("option", { value: "radius" }, "Within a radius of a point"), el("option", { value: "polygon" }, "Inside a polygon")),
      lat: el("input", { id: "ps-lat", name: "lat", inputmode: "decimal", placeholder: "latitude" }),
      lon: el("input", { id: "ps-lon", name: "lon", inputmode: "decimal", placeholder: "longitude" }),
      radius: el("input", { id: "ps-radius", name: "radius_m", type: "number", min: "1", max: "1000000", step: "any", value: "500" }),
      polygon: el("input", { id: "ps-polygon", name: "polygon", spellcheck: "false", placeholder: "lat,lon; lat,lon; lat,lon" }),
    });
    this.cameraList = el("datalist", { id: "ps-camera-list" });
    f.camera.addEventListener("focus", () => this._fillCameras());
    this.area = new AreaPicker(hooks.map, f, () => this._pickState());
    for (const k of ["lat", "lon", "radius", "polygon"]) f[k].addEventListener("input", () => this.area.draw());

    this.msg = el("p", { id: "plate-msg", class: "msg", role: "alert", hidden: true });
    this.btn = el("button", { id: "ps-submit", type: "submit", class: "btn-primary" }, "Search");
    this.results = el("ol", { id: "plate-results", class: "rows" });
    this.readView = el("section", { id: "plate-read", class: "read-detail", hidden: true, "aria-live": "polite" });

    this.pickBtn = el("button", { id: "ps-pick", type: "button", class: "btn-small btn-ghost", onclick: () => this._togglePick() }, "Pick on map");
    this.clearBtn = el("button", { id: "ps-area-clear", type: "button", class: "btn-small btn-ghost", onclick: () => this._clearArea() }, "Clear");
    this.radiusBox = el("div", { class: "area-box", dataset: { area: "radius" }, hidden: true }, el("div", { class: "two" }, field("Latitude", f.lat), field("Longitude", f.lon)), field("Radius (m)", f.radius));
    this.polygonBox = el("div", { class: "area-box", dataset: { area: "polygon" }, hidden: true }, field("Corners", f.polygon));
    this.pickRow = el("div", { class: "row-actions area-actions", hidden: true }, this.pickBtn, this.clearBtn, el("span", { id: "ps-pick-hint", class: "muted small" }));
    f.area.addEventListener("change", () => this._areaKind(f.area.value));

    this.why = el(
      "fieldset",
      { id: "plate-why", class: "panel-form why" },
      el("legend", {}, "Why you search"),
      el("p", { class: "muted small" }, "Every search is recorded with its purpose and case number, and audited."),
      el("div", { class: "two" }, field("Kind of purpose", f.purposeKind), field("Case number", f.caseNumber)),
      field("Purpose (why you search)", f.purpose),
      el("div", { class: "two" }, field("From", f.start), field("To", f.end)),
    );
    this.form = el(
      "form",
      { id: "plate-search", class: "panel-form", novalidate: true, dataset: { area: "none" } },
      el("div", { class: "two" }, field("Plate", f.plate), field("Match", f.mode)),
      field("Cameras", f.camera),
      this.cameraList,
      field("Area", f.area),
      this.radiusBox,
      this.polygonBox,
      this.pickRow,
      this.btn,
      this.msg,
    );
    this.form.addEventListener("submit", (e) => {
      e.preventDefault();
      this.search();
    });
    this.cotravel = new CoTravel({ map: hooks.map, why: () => this.accountability(), period: () => this.period() });
    this.bolo = new Bolo();

    this.views = {
      reads: el("div", { class: "ps-view", dataset: { view: "reads" } }, this.form, this.readView, this.results),
      cotravel: el("div", { class: "ps-view", dataset: { view: "cotravel" }, hidden: true }, this.cotravel.node),
      bolo: el("div", { class: "ps-view", dataset: { view: "bolo" }, hidden: true }, this.bolo.node),
    };
    this.viewBtns = Object.fromEntries(
      [["reads", "Reads"], ["cotravel", "Co-travel"], ["bolo", "BOLO"]].map(([v, t]) => [
        v,
        el("button", { type: "button", id: `ps-view-${v}`, class: "seg-btn", "aria-pressed": String(v === "reads"), onclick: () => this.show(v) }, t),
      ]),
    );
    root.replaceChildren(
      el("div", { class: "panel-head" }, el("h2", {}, "Plate search")),
      el("div", { class: "panel-scroll" }, this.why, el("div", { class: "seg", role: "group", "aria-label": "Search kind" }, ...Object.values(this.viewBtns)), this.views.reads, this.views.cotravel, this.views.bolo),
    );
  }

  /** Show the "reads", "cotravel" or "bolo" view. */
  show(view) {
    this.area.stop();
    this._pickState();
    this.why.hidden = view === "bolo"; // keeping a BOLO entry is not a search
    if (view === "bolo") this.bolo.load();
    for (const [k, node] of Object.entries(this.views)) node.hidden = k !== view;
    for (const [k, b] of Object.entries(this.viewBtns)) b.setAttribute("aria-pressed", String(k === view));
    this.root.dataset.view = view;
  }

  /** The accountability terms as the API takes them (the center checks them). */
  accountability() {
    const f = this.f;
    return { purpose: f.purpose.value.trim(), purpose_category: f.purposeKind.value, case_number: f.caseNumber.value.trim() };
  }

  /** `{start?, end?}` from the period fields (ISO, UTC). */
  period() {
    const out = {};
    const start = isoOrNull(this.f.start.value), end = isoOrNull(this.f.end.value);
    if (start) out.start = start;
    if (end) out.end = end;
    return out;
  }

  /** The search terms, or an error message when the form is incomplete (nothing is sent then). */
  terms() {
    const f = this.f;
    const plate = normPlate(f.plate.value);
    const mode = f.mode.value;
    const why = this.accountability();
    const cameras = f.camera.value.split(/[\s,;]+/).map((s) => s.trim()).filter(Boolean);
    const missing = [];
    const area = {};
    const problems = [];
    if (f.area.value === "radius") {
      const lat = Number(f.lat.value), lon = Number(f.lon.value), r = Number(f.radius.value);
      if (!f.lat.value || !f.lon.value || !Number.isFinite(lat) || !Number.isFinite(lon) || Math.abs(lat) > 90 || Math.abs(lon) > 180) {
        problems.push("the area's centre (pick it on the map or type latitude and longitude)");
      } else if (!(r > 0)) problems.push("a radius above 0 m");
      else Object.assign(area, { lat, lon, radius_m: r });
    } else if (f.area.value === "polygon") {
      const pts = parsePolygon(f.polygon.value);
      if (!pts || pts.length < 3) problems.push("a polygon of at least 3 corners (click them on the map)");
      else area.polygon = pts.map((p) => `${p[0]},${p[1]}`).join(";");
    }
    const period = this.period();
    if (!plate && !cameras.length && !Object.keys(area).length && !period.start && !problems.length) {
      missing.push("a plate, cameras, an area or a start time");
    }
    if (plate && /[?*]/.test(plate) && mode !== "wildcard") problems.push("the Wildcard match for ? and *");
    if (why.purpose.length < MIN_PURPOSE) missing.push(`a purpose (at least ${MIN_PURPOSE} characters)`);
    if (!why.case_number) missing.push("a case number");
    const all = [...missing, ...problems];
    if (all.length) return { error: `A plate search needs ${all.join(", ")}. Searches are audited.` };
    const q = { ...why, ...period, ...area };
    if (plate) {
      q.plate = plate;
      q.mode = MODES.find((m) => m[0] === mode)[2];
    }
    if (cameras.length) q.camera = cameras;
    return { q };
  }

  async search() {
    this.area.stop();
    this._pickState();
    const { q, error } = this.terms();
    if (error) {
      message(this.msg, error);
      this.form.dataset.refused = "client";
      this._clearResults();
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
        this._clearResults();
        return;
      }
      const reads = items(res);
      this.closeRead();
      message(this.msg, `${reads.length} read${reads.length === 1 ? "" : "s"} found.`, "ok");
      this.results.replaceChildren(...reads.map((r) => this._row(r, q)));
    });
  }

  /** A refused search shows no results: the earlier search's would pass for this one's. */
  _clearResults() {
    this.closeRead();
    this.results.replaceChildren();
  }

  _row(r, q) {
    const plate = r.plate || "?";
    const region = r.region ? el("span", { class: "region-tag", title: "State or region" }, r.region) : null;
    return el(
      "li",
      { class: "read-row", dataset: { readId: String(pick(r, "id", "read_id")), plate, region: r.region || undefined } },
      el("div", { class: "row-main", title: "Open the read", onclick: () => this.openRead(r, q) }, el("span", { class: "plate" }, plate), region, el("span", { class: "muted" }, `${Math.round((r.confidence || 0) * 100)} %`)),
      el(
        "div",
        { class: "row-meta" },
        el("span", {}, stamp(pick(r, "read_at", "occurred_at"))),
        el("span", {}, pick(r, "device", "camera") || ""),
        r.direction ? el("span", { title: "Direction of travel" }, `→ ${r.direction}`) : null,
      ),
      el(
        "div",
        { class: "row-actions" },
        el("button", { type: "button", class: "btn-small btn-ghost", dataset: { action: "read" }, onclick: (e) => this.openRead(r, q, e.currentTarget) }, "Details"),
        el("button", { type: "button", class: "btn-small btn-ghost", dataset: { action: "track" }, onclick: (e) => this.track(plate, q, e.currentTarget) }, "Track on map"),
        el("button", { type: "button", class: "btn-small btn-ghost", dataset: { action: "cotravel" }, onclick: () => this.coTravellers(plate) }, "Co-travellers"),
      ),
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

  /**
   * Open one stored read: GET plates/reads/{id} and its photos, with the purpose and case number
   * of the search that found it (`q`; the center audits each look with them). The photos are plain
   * images of the same origin: the session cookie goes with them, as with the hit view's.
   */
  async openRead(r, q, btn = null) {
    const id = String(pick(r, "id", "read_id"));
    const why = { purpose: q.purpose, case_number: q.case_number, purpose_category: q.purpose_category };
    const run = async () => {
      let read;
      try {
        read = await api.get(`plates/reads/${encodeURIComponent(id)}`, why);
      } catch (err) {
        this._readBox(id, [el("p", { class: "msg", role: "alert", dataset: { kind: "error" } }, `Read unavailable: ${errorText(err)}`)]);
        return;
      }
      this._readBox(id, this._readDetail(id, read, why), read.plate);
      const p = position(read);
      if (p && this.hooks.map && this.hooks.map.flyTo) this.hooks.map.flyTo(p);
    };
    for (const li of this.results.querySelectorAll("li.read-row")) li.classList.toggle("selected", li.dataset.readId === id);
    if (btn) await busy(btn, run);
    else await run();
  }

  closeRead() {
    for (const img of this.readView.querySelectorAll("img")) img.removeAttribute("src");
    this.readView.replaceChildren();
    this.readView.hidden = true;
    delete this.readView.dataset.readId;
    for (const li of this.results.querySelectorAll("li.read-row.selected")) li.classList.remove("selected");
  }

  _readBox(id, body, plate = "") {
    for (const img of this.readView.querySelectorAll("img")) img.removeAttribute("src");
    this.readView.dataset.readId = id;
    this.readView.replaceChildren(
      el(
        "div",
        { class: "read-head" },
        el("h3", {}, plate ? `Read ${plate}` : "Plate read"),
        el("button", { type: "button", class: "btn-icon", "aria-label": "Close the read", dataset: { action: "close-read" }, onclick: () => this.closeRead() }, "×"),
      ),
      ...body,
    );
    this.readView.hidden = false;
    this.readView.scrollIntoView({ block: "nearest" });
  }

  _readDetail(id, read, why) {
    const query = new URLSearchParams(why);
    const photo = (kind, has, caption) => {
      if (!has) return el("figure", { class: "hit-photo none", dataset: { photo: "none" } }, el("figcaption", {}, `${caption}: no photo stored`));
      query.set("kind", kind);
      const src = `${api.API}plates/reads/${encodeURIComponent(id)}/image?${query}`;
      return el("figure", { class: "hit-photo", dataset: { photo: kind } }, el("img", { src, alt: `${caption.toLowerCase()} photo of the read` }), el("figcaption", {}, caption));
    };
    const p = position(read);
    const heading = Number.isFinite(read.heading_deg) ? `${Math.round(read.heading_deg)}°` : "";
    const row = (field, label, value) => el("tr", { dataset: { field } }, el("th", {}, label), el("td", {}, value));
    return [
      el(
        "div",
        { class: "hit-compare" },
        el("div", { class: "hit-photos" }, photo("crop", read.has_crop, "Plate"), photo("vehicle", read.has_image, "Vehicle")),
        el(
          "table",
          { class: "kv read-kv" },
          row("plate", "Text", el("span", { class: "plate" }, read.plate || "?")),
          row("region", "State", read.region || "not read"),
          row("confidence", "Confidence", `${Math.round((Number(read.confidence) || 0) * 100)} %`),
          row("camera", "Camera", pick(read, "device_id", "device") || ""),
          row("time", "Time", stamp(read.read_at)),
          row("place", "Place", p ? `${p.lat.toFixed(5)}, ${p.lon.toFixed(5)}` : "unknown"),
          row("direction", "Direction", [read.direction, heading].filter(Boolean).join(" · ") || "unknown"),
          row("hit", "Hotlist hit", read.hit ? "yes" : "no"),
        ),
      ),
      el("p", { class: "muted small" }, `Looked at for case ${why.case_number}: recorded in the audit log.`),
    ];
  }

  /** Open the co-travel view for `plate` and search at once. */
  async coTravellers(plate) {
    this.show("cotravel");
    await this.cotravel.run(plate);
  }

  stop() {
    this.closeRead();
    this.area.destroy();
  }

  // -- area ------------------------------------------------------------------------

  _areaKind(kind) {
    this.area.stop();
    this.area.kind = kind;
    this.radiusBox.hidden = kind !== "radius";
    this.polygonBox.hidden = kind !== "polygon";
    this.pickRow.hidden = kind === "none";
    this.form.dataset.area = kind;
    this.area.draw();
    this._pickState();
  }

  _togglePick() {
    if (this.area.picking) this.area.stop();
    else this.area.start(this.area.kind);
    this._pickState();
  }

  _clearArea() {
    this.area.stop();
    for (const k of ["lat", "lon", "polygon"]) this.f[k].value = "";
    this.area.draw();
    this._pickState();
  }

  /** Button text and hint that follow the picking state. */
  _pickState() {
    const picking = this.area.picking;
    const hint = this.pickRow.querySelector("#ps-pick-hint");
    this.pickBtn.setAttribute("aria-pressed", String(Boolean(picking)));
    if (picking === "polygon") {
      this.pickBtn.textContent = "Done";
      const n = (parsePolygon(this.f.polygon.value) || []).length;
      hint.textContent = `Click the corners on the map (${n} so far).`;
    } else if (picking === "radius") {
      this.pickBtn.textContent = "Cancel";
      hint.textContent = "Click the centre on the map.";
    } else {
      this.pickBtn.textContent = this.area.kind === "polygon" ? "Draw on map" : "Pick on map";
      hint.textContent = "";
    }
  }

  /** Plate cameras the map knows, as suggestions for the camera field. */
  _fillCameras() {
    const devices = (this.hooks.map && this.hooks.map.devices) || new Map();
    const cams = [...devices.values()].map((e) => e.dev).filter((d) => d.type === "plate_camera");
    cams.sort((a, b) => String(a.id).localeCompare(String(b.id)));
    this.cameraList.replaceChildren(...cams.map((d) => el("option", { value: d.id }, d.name || d.id)));
  }
}
