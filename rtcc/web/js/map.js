// The live map: base layers, devices, incidents and alerts (Leaflet, vendored).
//
// With no tile server configured (`tile_url` null) the map draws the city's
// roads and area from /api/v1/map on a plain dark background, so it works with
// no internet. Every device marker's element carries stable hooks:
// `data-device-id`, `data-device-type` and `data-status` (online|offline|unknown);
// a sensor the center flags as reporting from the wrong place also `data-position-mismatch`
// (its position health and the admin's fix: position.js).
//
// Gunshot incidents carry an uncertainty ellipse: `ellipse_major_m` and
// `ellipse_minor_m` are taken as the semi-axes in metres and
// `ellipse_angle_deg` as the bearing of the major axis, clockwise from north.

import { el, ago, clock, words } from "./dom.js";
import { DEVICE_TYPES, TYPE_ORDER, normStatus, shortLabel } from "./devices.js";
import { FIXED_TYPES, applyReported, isMismatch, positionSection } from "./position.js";

const SENSOR_COVERAGE_M = 400;
/** Above this many devices, fixed devices are canvas dots instead of DOM markers (#map[data-dense]). */
export const DOM_MARKER_LIMIT = 1500;
const MAX_INCIDENTS = 100;
const MAX_ALERTS = 100;
const M_PER_DEG_LAT = 111_320;
/** Alert statuses that are final: the marker stays, greyed, with its status. */
const SETTLED_ALERT = new Set(["closed", "dismissed"]);
/** The popup's headline for a hit's status. */
const HIT_HEADLINE = { verify: "verify before action", confirmed: "confirmed", rejected: "rejected as a misread" };
/** How many alert and hit statuses are kept (for markers drawn later, e.g. a replayed event). */
const MAX_STATES = 1000;

/** `map.set(key, value)`, the oldest entry dropped past MAX_STATES. */
function remember(map, key, value) {
  map.delete(key);
  map.set(key, value);
  if (map.size > MAX_STATES) map.delete(map.keys().next().value);
}

let DeviceIcon = null;

/** A DivIcon whose element carries the device's data attributes (also after re-creation). */
function deviceIconClass() {
  if (DeviceIcon) return DeviceIcon;
  const L = window.L;
  DeviceIcon = L.DivIcon.extend({
    createIcon(old) {
      const div = L.DivIcon.prototype.createIcon.call(this, old);
      const o = this.options;
      div.dataset.deviceId = o.deviceId;
      div.dataset.deviceType = o.deviceType;
      div.dataset.status = o.status;
      if (o.recording) div.dataset.recording = "true";
      else delete div.dataset.recording;
      if (o.mismatch) div.dataset.positionMismatch = "true";
      else delete div.dataset.positionMismatch;
      div.setAttribute("role", "img");
      div.setAttribute("aria-label", `${o.title} — ${o.status}${o.mismatch ? " — position mismatch" : ""}`);
      return div;
    },
  });
  return DeviceIcon;
}

function iconFor(d) {
  const type = d.type;
  const status = normStatus(d.status);
  const mismatch = isMismatch(d);
  const cls = `dev dev-${type}${d.revoked ? " dev-revoked" : ""}${mismatch ? " dev-mismatch" : ""}`;
  const common = {
    mismatch,
    className: cls,
    deviceId: d.id,
    deviceType: type,
    status,
    title: d.name || d.id,
    recording: Boolean(d.recording),
  };
  const Icon = deviceIconClass();
  if (type === "plate_camera") {
    const heading = Number.isFinite(d.heading_deg) ? d.heading_deg : null;
    const html = el(
      "span",
      { class: "dev-body" },
      heading === null ? null : el("span", { class: "dev-heading", style: `transform: rotate(${heading}deg)` }),
      el("span", { class: "glyph" }),
    );
    return new Icon({ ...common, html, iconSize: [30, 30], iconAnchor: [15, 15] });
  }
  if (type === "bodycam") {
    const html = el(
      "span",
      { class: "dev-body" },
      el("span", { class: "glyph" }, shortLabel(d.id)),
      d.recording ? el("span", { class: "rec", title: "recording" }) : null,
    );
    return new Icon({ ...common, html, iconSize: [24, 24], iconAnchor: [12, 12] });
  }
  if (type === "camera") {
    const html = el("span", { class: "dev-body" }, el("span", { class: "glyph" }));
    return new Icon({ ...common, html, iconSize: [16, 16], iconAnchor: [8, 8] });
  }
  // a sensor reporting from the wrong place: an amber ring around the dot (issue 6)
  const ring = mismatch ? "outline: 2px solid #f59e0b; outline-offset: 2px; border-radius: 50%" : undefined;
  const html = el("span", { class: "dev-body", style: ring }, el("span", { class: "glyph" }));
  return new Icon({ ...common, html, iconSize: [12, 12], iconAnchor: [6, 6] });
}

/** Points of an ellipse (semi-axes in metres, major axis at `bearing` degrees from north). */
export function ellipseLatLngs(lat, lon, semiMajor, semiMinor, bearing, n = 48) {
  const th = ((bearing || 0) * Math.PI) / 180;
  const mx = Math.sin(th), my = Math.cos(th); // major axis: east, north
  const nx = Math.cos(th), ny = -Math.sin(th); // minor axis
  const mPerDegLon = M_PER_DEG_LAT * Math.cos((lat * Math.PI) / 180);
  const pts = [];
  for (let i = 0; i < n; i++) {
    const t = (2 * Math.PI * i) / n;
    const a = semiMajor * Math.cos(t), b = semiMinor * Math.sin(t);
    const east = a * mx + b * nx, north = a * my + b * ny;
    pts.push([lat + north / M_PER_DEG_LAT, lon + east / mPerDegLon]);
  }
  return pts;
}

/** Points of a view cone: apex at the camera, `range` metres along `bearing` ± fov/2. */
export function sectorLatLngs(lat, lon, range, bearing, fov, n = 16) {
  const mPerDegLon = M_PER_DEG_LAT * Math.cos((lat * Math.PI) / 180);
  const pts = [[lat, lon]];
  for (let i = 0; i <= n; i++) {
    const b = ((bearing - fov / 2 + (fov * i) / n) * Math.PI) / 180;
    pts.push([lat + (range * Math.cos(b)) / M_PER_DEG_LAT, lon + (range * Math.sin(b)) / mPerDegLon]);
  }
  return pts;
}

const STATUS_COLOUR = { online: "#22c55e", offline: "#ef4444", unknown: "#8592a8" };
const TYPE_RING = { acoustic_sensor: "#0a111e", plate_camera: "#e3e9f3", camera: "#c4b5fd", bodycam: "#60a5fa" };

/** Style of a device drawn on the canvas (dense mode): colour by status, ring by type. */
function denseStyle(d) {
  return {
    radius: d.type === "acoustic_sensor" ? 4 : 5,
    color: isMismatch(d) ? "#f59e0b" : TYPE_RING[d.type] || "#0a111e",
    weight: isMismatch(d) ? 3 : 1.5,
    fillColor: STATUS_COLOUR[normStatus(d.status)],
    fillOpacity: d.revoked ? 0.4 : 0.95,
  };
}

function iconKey(d) {
  return `${normStatus(d.status)}|${d.heading_deg}|${Boolean(d.recording)}|${Boolean(d.revoked)}|${d.name}|${isMismatch(d)}`;
}

/** True while someone works in a popup's form (a live update must not wipe what they typed). */
function editing(node) {
  if (!node) return false;
  if (node.contains(document.activeElement)) return true;
  return [...node.querySelectorAll("form input")].some((i) => i.name === "reason" && i.value !== "");
}

function row(label, value) {
  if (value === undefined || value === null || value === "") return null;
  return el("tr", {}, el("th", {}, label), el("td", {}, value));
}

function fmtPos(lat, lon) {
  return Number.isFinite(lat) && Number.isFinite(lon) ? `${lat.toFixed(5)}, ${lon.toFixed(5)}` : "—";
}

export class OpsMap {
  /**
   * @param {HTMLElement} container
   * @param {{onChange?: () => void, onOpenHit?: (id: string) => void, onLive?: (id: string, name: string) => void,
   *          onOpenIncident?: (id: string) => void, onOpenAlert?: (ev: object) => void}} hooks
   *   onChange: device statuses or counts changed; onOpenHit: a hit marker's "Open hit"; onLive: a camera's live view
   */
  constructor(container, hooks = {}) {
    const L = window.L;
    this.L = L;
    this.onChange = hooks.onChange || (() => {});
    this.role = hooks.role || null;
    this.map = L.map(container, { zoomControl: false, minZoom: 3, maxZoom: 20, worldCopyJump: false });
    this.map.attributionControl.setPrefix('<a href="https://leafletjs.com" rel="noopener">Leaflet</a>');
    L.control.zoom({ position: "topleft" }).addTo(this.map);
    L.control.scale({ position: "bottomleft", metric: true, imperial: true, maxWidth: 160 }).addTo(this.map);
    for (const [name, z] of [["basePane", 300], ["hotspotPane", 320], ["viewPane", 340], ["coveragePane", 350], ["incidentPane", 450]]) {
      this.map.createPane(name).style.zIndex = String(z);
    }
    this.map.getPane("coveragePane").style.pointerEvents = "none";
    this.map.getPane("hotspotPane").style.pointerEvents = "none";
    this.map.getPane("viewPane").style.pointerEvents = "none";
    this.map.setView([0, 0], 2);

    this.groups = {
      roads: L.layerGroup(),
      area: L.layerGroup(),
      coverage: L.layerGroup(),
      incidents: L.layerGroup(),
      hits: L.layerGroup(),
      views: L.layerGroup(),
      hotspots: L.layerGroup(),
      recommend: L.layerGroup(),
      track: L.layerGroup(),
      packet: L.layerGroup(),
    };
    for (const t of TYPE_ORDER) this.groups[t] = L.layerGroup();
    this.visible = {
      area: true,
      roads: true,
      coverage: false,
      incidents: true,
      hits: true,
      views: true,
      hotspots: false,
      recommend: false,
      track: true,
      packet: true,
      acoustic_sensor: true,
      plate_camera: true,
      bodycam: true,
      camera: true,
    };
    for (const [k, on] of Object.entries(this.visible)) if (on) this.groups[k].addTo(this.map);

    /** @type {Map<string, {dev: object, marker: any, coverage: any}>} */
    this.devices = new Map();
    this.incidents = new Map(); // incident_id -> {marker, shape}
    this.alerts = new Map(); // alert_id -> marker
    this.hits = new Map(); // hit/read id -> marker
    this.alertState = new Map(); // alert_id -> {status, reason, unit, by} (alert_updated, the alerts API)
    this.hitState = new Map(); // hit_id -> {status, reason, by} (hit_decision, the hits API)
    this.dense = false;
    this.cameras = new Map(); // registry camera id -> {marker, cone}
    this.hooks = hooks;
    this._changeQueued = false;
    this._buildLayerControl();
  }

  // -- base layers ------------------------------------------------------------

  /** Draw the base map from GET /map. */
  setBase(info) {
    if (this.destroyed) return;
    const L = this.L;
    const layers = (info && info.layers) || {};
    const hasTiles = Boolean(info && info.tile_url);
    this.map.getContainer().classList.toggle("has-tiles", hasTiles);
    if (hasTiles) {
      L.tileLayer(info.tile_url, { attribution: info.tile_attribution || "", maxZoom: 20 }).addTo(this.map);
    }
    if (layers.area && layers.area.type) {
      L.geoJSON(layers.area, {
        pane: "basePane",
        interactive: false,
        style: () => ({
          color: "#3d5f91",
          weight: 1.5,
          dashArray: "6 6",
          fill: !hasTiles,
          fillColor: "#111d33",
          fillOpacity: 0.9,
        }),
      }).addTo(this.groups.area);
    }
    if (layers.roads && layers.roads.type) {
      L.geoJSON(layers.roads, {
        pane: "basePane",
        style: (f) => {
          const major = f && f.properties && f.properties.kind === "arterial";
          return {
            color: major ? "#46618c" : "#34496b",
            weight: major ? 4 : 2.5,
            opacity: hasTiles ? 0.5 : 0.95,
            lineCap: "round",
          };
        },
        onEachFeature: (f, layer) => {
          const name = f && f.properties && f.properties.name;
          // an element, not a string: Leaflet would read a string as HTML
          if (name) layer.bindTooltip(el("span", {}, String(name)), { sticky: true, className: "road-tip", direction: "top" });
        },
      }).addTo(this.groups.roads);
      if (hasTiles) this.setVisible("roads", false);
    }
    let bounds = null;
    for (const g of [this.groups.area, this.groups.roads]) {
      g.eachLayer((l) => {
        const b = l.getBounds && l.getBounds();
        if (b && b.isValid()) bounds = bounds ? bounds.extend(b) : L.latLngBounds(b.getSouthWest(), b.getNorthEast());
      });
    }
    // without tiles the map may rest between zoom levels, so the city fills the view
    this.map.options.zoomSnap = hasTiles ? 1 : 0.25;
    if (bounds) this.map.fitBounds(bounds, { padding: [16, 16] });
    else if (info && info.center) this.map.setView([info.center.lat, info.center.lon], 15);
  }

  // -- devices ----------------------------------------------------------------

  /** Replace what is known about devices with GET /devices' list (keeps live positions' markers). */
  setDevices(items) {
    if (this.destroyed) return;
    // many devices: fixed ones are drawn on one canvas (DOM markers for thousands are slow)
    const dense = items.length > DOM_MARKER_LIMIT;
    if (dense !== this.dense) {
      for (const id of [...this.devices.keys()]) this.removeDevice(id);
      this.dense = dense;
      this.map.getContainer().dataset.dense = String(dense);
    }
    const seen = new Set();
    for (const d of items) {
      seen.add(d.id);
      this.upsertDevice(d);
    }
    for (const id of [...this.devices.keys()]) if (!seen.has(id)) this.removeDevice(id);
    this._changed();
  }

  upsertDevice(d) {
    const L = this.L;
    if (!DEVICE_TYPES[d.type]) return;
    let entry = this.devices.get(d.id);
    if (!entry) {
      entry = { dev: { ...d, status: normStatus(d.status) }, marker: null, coverage: null };
      this.devices.set(d.id, entry);
    } else {
      const prev = entry.dev;
      entry.dev = { ...prev, ...d, status: normStatus(d.status) };
      if (prev.recording !== undefined && d.recording === undefined) entry.dev.recording = prev.recording;
    }
    const dev = entry.dev;
    if (!Number.isFinite(dev.lat) || !Number.isFinite(dev.lon)) return;
    if (!entry.marker) {
      entry.dense = this.dense && dev.type !== "bodycam";
      entry.marker = entry.dense
        ? L.circleMarker([dev.lat, dev.lon], { renderer: this._canvas(), ...denseStyle(dev) })
        : L.marker([dev.lat, dev.lon], {
            icon: iconFor(dev),
            keyboard: true,
            title: dev.name || dev.id,
            riseOnHover: true,
            zIndexOffset: dev.type === "bodycam" ? 500 : 0,
          });
      entry.iconKey = iconKey(dev);
      entry.marker.bindPopup(() => this._devicePopup(entry), { className: "ops-popup", maxWidth: 280 });
      entry.marker.addTo(this.groups[dev.type]);
      if (dev.type === "acoustic_sensor") {
        const r = Number(dev.attributes && dev.attributes.coverage_m) || SENSOR_COVERAGE_M;
        entry.coverage = L.circle([dev.lat, dev.lon], {
          radius: r,
          pane: "coveragePane",
          renderer: this.dense ? this._canvas("coveragePane") : undefined,
          interactive: false,
          color: "#38bdf8",
          weight: 1,
          opacity: 0.35,
          fillColor: "#38bdf8",
          fillOpacity: 0.06,
        }).addTo(this.groups.coverage);
      }
    } else {
      entry.marker.setLatLng([dev.lat, dev.lon]);
      if (entry.coverage) entry.coverage.setLatLng([dev.lat, dev.lon]);
      this._refreshIcon(entry);
    }
  }

  removeDevice(id) {
    const entry = this.devices.get(id);
    if (!entry) return;
    if (entry.marker) entry.marker.remove();
    if (entry.coverage) entry.coverage.remove();
    this.devices.delete(id);
  }

  /** Apply a device_status event. */
  setStatus(id, status) {
    if (this.destroyed) return false;
    const entry = this.devices.get(id);
    if (!entry) return false;
    entry.dev.status = normStatus(status);
    this._refreshIcon(entry);
    this._changed();
    return true;
  }

  /**
   * Apply a device_position event: the registered position and the position-mismatch flag
   * (`attributes.position_mismatch`, `position_mismatch_m`). Returns false for an unknown device.
   */
  setPosition(ev) {
    if (this.destroyed) return false;
    const entry = this.devices.get(ev.device);
    if (!entry) return false;
    const d = entry.dev;
    const attributes = { ...(d.attributes || {}), position_mismatch: ev.mismatch === true };
    if (Number.isFinite(ev.offset_m)) attributes.position_mismatch_m = ev.offset_m;
    const next = { ...d, attributes, position_mismatch: ev.mismatch === true };
    if (ev.pos && Number.isFinite(ev.pos.lat) && Number.isFinite(ev.pos.lon)) {
      next.lat = ev.pos.lat;
      next.lon = ev.pos.lon;
      if (ev.pos.alt_m !== undefined) next.alt_m = ev.pos.alt_m;
    }
    this.upsertDevice(next);
    if (entry.marker && entry.marker.isPopupOpen() && !editing(entry.marker.getPopup().getElement())) {
      entry.marker.setPopupContent(this._devicePopup(entry));
    }
    return true;
  }

  /**
   * Apply a device_heartbeat: position (units move; a fixed sensor stays at its registered
   * position and the fix is kept as reported), heading, recording, battery;
   * a heartbeat also means the device is alive. Returns false for an unknown device.
   */
  heartbeat(ev) {
    if (this.destroyed) return false;
    let entry = this.devices.get(ev.device);
    if (!entry) {
      if (!ev.pos || !DEVICE_TYPES[ev.device_type]) return false;
      this.upsertDevice({
        id: ev.device,
        type: ev.device_type,
        name: ev.device,
        status: "online",
        lat: ev.pos.lat,
        lon: ev.pos.lon,
        heading_deg: ev.heading_deg ?? null,
        last_seen_at: ev.occurred_at,
        attributes: {},
      });
      this._changed();
      return false;
    }
    const d = entry.dev;
    const wasOnline = d.status === "online";
    d.status = "online";
    d.last_seen_at = ev.occurred_at;
    if (ev.battery_pct !== undefined && ev.battery_pct !== null) d.battery_pct = ev.battery_pct;
    if (ev.heading_deg !== undefined && ev.heading_deg !== null) d.heading_deg = ev.heading_deg;
    if (ev.recording !== undefined && ev.recording !== null) d.recording = ev.recording;
    if (ev.pos && FIXED_TYPES.has(d.type) && Number.isFinite(d.lat) && Number.isFinite(d.lon)) {
      // a fixed sensor stays at its registered position; its GPS fix is kept as reported
      if (Number.isFinite(ev.pos.lat) && Number.isFinite(ev.pos.lon)) applyReported(d, ev.pos, ev.occurred_at);
      if (entry.marker && entry.marker.isPopupOpen() && !editing(entry.marker.getPopup().getElement())) {
        entry.marker.setPopupContent(this._devicePopup(entry));
      }
    } else if (ev.pos && Number.isFinite(ev.pos.lat) && Number.isFinite(ev.pos.lon)) {
      const moved = d.lat !== ev.pos.lat || d.lon !== ev.pos.lon;
      d.lat = ev.pos.lat;
      d.lon = ev.pos.lon;
      if (!entry.marker) this.upsertDevice(d);
      else if (moved) {
        entry.marker.setLatLng([d.lat, d.lon]);
        if (entry.coverage) entry.coverage.setLatLng([d.lat, d.lon]);
      }
    }
    this._refreshIcon(entry);
    if (!wasOnline) this._changed();
    return true;
  }

  _refreshIcon(entry) {
    if (!entry.marker) return;
    const d = entry.dev;
    const key = iconKey(d);
    if (entry.iconKey === key) return;
    entry.iconKey = key;
    if (entry.dense) entry.marker.setStyle(denseStyle(d));
    else {
      entry.marker.options.title = d.name || d.id;
      entry.marker.setIcon(iconFor(d));
    }
    if (entry.marker.isPopupOpen()) entry.marker.setPopupContent(this._devicePopup(entry));
  }

  _devicePopup(entry) {
    const d = entry.dev;
    const status = normStatus(d.status);
    const a = d.attributes || {};
    return el(
      "div",
      { class: "popup-device", dataset: { deviceId: d.id } },
      el("div", { class: "popup-title" }, d.name || d.id),
      el(
        "table",
        { class: "kv" },
        row("ID", d.id),
        row("Type", (DEVICE_TYPES[d.type] || {}).label || d.type),
        row("Status", el("span", { class: `status-pill st-${status}` }, status)),
        row("Last seen", d.last_seen_at ? `${clock(d.last_seen_at)} (${ago(d.last_seen_at)})` : "never"),
        row("Battery", Number.isFinite(d.battery_pct) ? `${Math.round(d.battery_pct)} %` : null),
        row("Recording", d.recording === undefined ? null : d.recording ? "yes" : "no"),
        row("Heading", Number.isFinite(d.heading_deg) ? `${Math.round(d.heading_deg)}°` : null),
        row("Mount", a.mount),
        row("Position", FIXED_TYPES.has(d.type) ? null : fmtPos(d.lat, d.lon)),
        row("Key", d.revoked ? "revoked" : null),
      ),
      FIXED_TYPES.has(d.type)
        ? positionSection(d, { role: this.role, onSaved: (out) => this._positionSaved(entry, out) })
        : null,
    );
  }

  /** The center's answer to PUT /devices/{id}/position: move the marker, clear the mark. */
  _positionSaved(entry, out) {
    if (this.destroyed || !out || this.devices.get(out.id) !== entry) return;
    this.upsertDevice(out);
    if (entry.marker && entry.marker.isPopupOpen()) entry.marker.setPopupContent(this._devicePopup(entry));
  }

  /** Online/total per device type (revoked devices are not counted). */
  counts() {
    const out = {};
    for (const t of TYPE_ORDER) out[t] = { online: 0, offline: 0, unknown: 0, total: 0 };
    for (const { dev } of this.devices.values()) {
      const c = out[dev.type];
      if (!c || dev.revoked) continue;
      c.total += 1;
      c[normStatus(dev.status)] += 1;
    }
    return out;
  }

  /** One canvas renderer per pane, for dense device markers and their coverage. */
  _canvas(pane = "markerPane") {
    this._canvases = this._canvases || {};
    if (!this._canvases[pane]) this._canvases[pane] = this.L.canvas({ pane, padding: 0.2 });
    return this._canvases[pane];
  }

  _changed() {
    const drawn = [...this.devices.values()].filter((e) => e.marker).length;
    this.map.getContainer().dataset.deviceCount = String(drawn);
    if (this._changeQueued) return;
    this._changeQueued = true;
    queueMicrotask(() => {
      this._changeQueued = false;
      this.onChange();
    });
  }

  // -- incidents and alerts ---------------------------------------------------

  addIncident(ev) {
    if (this.destroyed) return;
    const L = this.L;
    if (!ev.pos) return;
    const id = String(ev.incident_id || ev.event_id);
    this._dropIncident(id);
    const { lat, lon } = ev.pos;
    // a review decision re-publishes the incident with its status: dismissed ones stay drawn, greyed
    const status = String(ev.status || "alerted");
    const dismissed = status === "dismissed";
    const icon = L.divIcon({
      className: `incident-marker incident-${status}`,
      html: el("span", { class: "incident-dot" }, el("span", { class: "incident-ring" })),
      iconSize: [22, 22],
      iconAnchor: [11, 11],
    });
    const marker = L.marker([lat, lon], { icon, zIndexOffset: 1000, title: `${ev.label || "gunshot incident"} — ${status.replace(/_/g, " ")}` });
    marker.on("add", () => {
      const node = marker.getElement();
      if (node) {
        node.dataset.eventType = "gunshot_incident";
        node.dataset.incidentId = id;
        node.dataset.status = status;
      }
    });
    marker.bindPopup(
      () =>
        el(
          "div",
          { class: "popup-incident" },
          el("div", { class: "popup-title" }, `Gunshots — ${ev.label || "incident"}`),
          el(
            "table",
            { class: "kv" },
            row("Status", status.replace(/_/g, " ")),
            row("Time", clock(ev.occurred_at)),
            row("Rounds", ev.rounds),
            row("Confidence", Number.isFinite(ev.confidence) ? `${Math.round(ev.confidence * 100)} %` : null),
            row("Uncertainty", `${Math.round(ev.ellipse_major_m || 0)} × ${Math.round(ev.ellipse_minor_m || 0)} m`),
            row("Sensors", (ev.sensors || []).length || null),
            row("Position", fmtPos(lat, lon)),
          ),
          this.hooks.onOpenIncident
            ? el("button", { type: "button", class: "btn-small btn-primary", dataset: { action: "packet" }, onclick: () => this.hooks.onOpenIncident(id) }, "Incident packet")
            : null,
        ),
      { className: "ops-popup", maxWidth: 280 },
    );
    let shape = null;
    const major = Number(ev.ellipse_major_m) || 0;
    const minor = Number(ev.ellipse_minor_m) || 0;
    if (major > 0 || minor > 0) {
      shape = L.polygon(ellipseLatLngs(lat, lon, Math.max(major, 1), Math.max(minor, 1), ev.ellipse_angle_deg), {
        pane: "incidentPane",
        interactive: false,
        color: dismissed ? "#9ca3af" : "#f87171",
        weight: 1.5,
        dashArray: "4 4",
        fillColor: dismissed ? "#6b7280" : "#ef4444",
        fillOpacity: dismissed ? 0.05 : 0.15,
        className: "incident-ellipse",
      }).addTo(this.groups.incidents);
    }
    marker.addTo(this.groups.incidents);
    this.incidents.set(id, { marker, shape });
    while (this.incidents.size > MAX_INCIDENTS) this._dropIncident(this.incidents.keys().next().value);
  }

  _dropIncident(id) {
    const old = this.incidents.get(id);
    if (!old) return;
    old.marker.remove();
    if (old.shape) old.shape.remove();
    this.incidents.delete(id);
  }

  /**
   * An alert event: a marker at its place. Its status follows `alert_updated` events and the alerts
   * API (setAlertStatus): a closed or dismissed alert stays drawn, greyed, with its status in the
   * popup (as a dismissed gunshot incident is).
   */
  addAlert(ev) {
    if (this.destroyed) return;
    const L = this.L;
    if (!ev.pos) return;
    const id = String(ev.alert_id || ev.event_id);
    const sev = ["info", "warning", "critical"].includes(ev.severity) ? ev.severity : "warning";
    if (this.alerts.has(id)) this.alerts.get(id).remove();
    const marker = L.marker([ev.pos.lat, ev.pos.lon], { icon: this._alertIcon(id, sev), zIndexOffset: 900, title: ev.title || "alert" });
    marker.on("add", () => this._tagAlert(marker, id, sev, ev));
    marker.bindPopup(() => this._alertPopup(id, sev, ev), { className: "ops-popup", maxWidth: 280 });
    marker.addTo(this.groups.incidents);
    this.alerts.set(id, marker);
    this._tagAlert(marker, id, sev, ev);
    while (this.alerts.size > MAX_ALERTS) {
      const first = this.alerts.keys().next().value;
      this.alerts.get(first).remove();
      this.alerts.delete(first);
    }
  }

  /**
   * An alert moved (an `alert_updated` event, or its row from the alerts API): redraw its marker.
   * `info`: {reason, unit, by} when known. A settled alert (closed, dismissed) never reopens, so an
   * older answer does not undo a newer live event. Returns false when no marker shows the alert.
   */
  setAlertStatus(alertId, status, info = {}) {
    if (this.destroyed || !alertId || !status) return false;
    const id = String(alertId);
    const old = this.alertState.get(id);
    if (old && SETTLED_ALERT.has(old.status) && !SETTLED_ALERT.has(status)) return false;
    remember(this.alertState, id, { status, reason: info.reason || (old && old.reason) || "", unit: info.unit || "", by: info.by || "" });
    const marker = this.alerts.get(id);
    if (!marker) return false;
    const { sev, ev } = marker.rtcc;
    marker.setIcon(this._alertIcon(id, sev));
    marker.setZIndexOffset(SETTLED_ALERT.has(status) ? 100 : 900);
    this._tagAlert(marker, id, sev, ev);
    if (marker.isPopupOpen()) marker.getPopup().update();
    return true;
  }

  _alertStatus(id) {
    return (this.alertState.get(id) || {}).status || "new";
  }

  _alertIcon(id, sev) {
    const status = this._alertStatus(id);
    return this.L.divIcon({
      className: `alert-marker sev-${sev} alert-${status}${SETTLED_ALERT.has(status) ? " alert-settled" : ""}`,
      html: el("span", { class: "alert-glyph" }, "!"),
      iconSize: [22, 22],
      iconAnchor: [11, 18],
    });
  }

  /** The marker element's hooks: data-alert-id, data-severity, data-status (and its title). */
  _tagAlert(marker, id, sev, ev) {
    marker.rtcc = { sev, ev };
    const node = marker.getElement();
    if (!node) return;
    const status = this._alertStatus(id);
    node.dataset.eventType = "alert";
    node.dataset.alertId = id;
    node.dataset.severity = sev;
    node.dataset.status = status;
    node.title = `${ev.title || "alert"} — ${words(status)}`;
  }

  _alertPopup(id, sev, ev) {
    const state = this.alertState.get(id) || {};
    const status = state.status || "new";
    const settled = SETTLED_ALERT.has(status);
    return el(
      "div",
      { class: `popup-alert${settled ? " settled" : ""}`, dataset: { status } },
      el("div", { class: "popup-title" }, ev.title || "Alert"),
      el(
        "table",
        { class: "kv" },
        row("Status", el("span", { class: `status-tag st-${status}` }, words(status))),
        row("Reason", status === "dismissed" ? state.reason : null),
        row("Unit", state.unit || null),
        row("Severity", el("span", { class: `sev-pill sev-${settled ? "settled" : sev}` }, sev)),
        row("Kind", ev.kind),
        row("Time", clock(ev.occurred_at)),
        row("Position", fmtPos(ev.pos.lat, ev.pos.lon)),
      ),
      this.hooks.onOpenAlert
        ? el("button", { type: "button", class: `btn-small ${settled ? "btn-ghost" : "btn-primary"}`, dataset: { action: "open" }, onclick: () => this.hooks.onOpenAlert({ ...ev, status }) }, "Open")
        : null,
    );
  }

  /** The oldest time among the drawn alerts ("alerts") or hits ("hits"), as an ISO string, or null. */
  oldest(kind) {
    const markers = kind === "hits" ? this.hits : this.alerts;
    const times = [...markers.values()].map((m) => Date.parse((m.rtcc && m.rtcc.ev.occurred_at) || "")).filter(Number.isFinite);
    return times.length ? new Date(Math.min(...times)).toISOString() : null;
  }

  // -- plate hits ------------------------------------------------------------

  /**
   * A hotlist_hit event: a marker at the camera; clicking it opens the hit view. Its status follows
   * `hit_decision` events and the hits API (setHitStatus): confirmed, or rejected as a misread (greyed).
   */
  addHit(ev) {
    if (this.destroyed) return;
    const L = this.L;
    if (!ev.pos) return;
    const id = String(ev.hit_id || ev.read_id || ev.event_id);
    if (this.hits.has(id)) this.hits.get(id).remove();
    if (ev.status && ev.status !== "verify" && !this.hitState.has(id)) remember(this.hitState, id, { status: ev.status });
    const marker = L.marker([ev.pos.lat, ev.pos.lon], { icon: this._hitIcon(id), zIndexOffset: 950, title: `hotlist hit ${ev.plate}` });
    marker.on("add", () => this._tagHit(marker, id, ev));
    marker.bindPopup(() => this._hitPopup(id, ev), { className: "ops-popup", maxWidth: 280 });
    marker.addTo(this.groups.hits);
    this.hits.set(id, marker);
    this._tagHit(marker, id, ev);
    while (this.hits.size > MAX_ALERTS) {
      const first = this.hits.keys().next().value;
      this.hits.get(first).remove();
      this.hits.delete(first);
    }
  }

  /**
   * A hit was decided (a `hit_decision` event, or its row from the hits API): redraw its marker.
   * `info`: {reason, by} when known. A decision is final: "verify" does not undo it.
   */
  setHitStatus(hitId, status, info = {}) {
    if (this.destroyed || !hitId || !status) return false;
    const id = String(hitId);
    const old = this.hitState.get(id);
    if (old && old.status !== "verify" && status === "verify") return false;
    remember(this.hitState, id, { status, reason: info.reason || "", by: info.by || "" });
    const marker = this.hits.get(id);
    if (!marker) return false;
    marker.setIcon(this._hitIcon(id));
    marker.setZIndexOffset(status === "rejected" ? 100 : 950);
    this._tagHit(marker, id, marker.rtcc.ev);
    if (marker.isPopupOpen()) marker.getPopup().update();
    return true;
  }

  _hitStatus(id) {
    return (this.hitState.get(id) || {}).status || "verify";
  }

  _hitIcon(id) {
    return this.L.divIcon({
      className: `hit-marker hit-${this._hitStatus(id)}`,
      html: el("span", { class: "hit-glyph" }, "P"),
      iconSize: [20, 20],
      iconAnchor: [10, 10],
    });
  }

  _tagHit(marker, id, ev) {
    marker.rtcc = { ev };
    const node = marker.getElement();
    if (!node) return;
    const status = this._hitStatus(id);
    node.dataset.eventType = "hotlist_hit";
    node.dataset.hitId = id;
    node.dataset.status = status;
    node.title = `hotlist hit ${ev.plate} — ${HIT_HEADLINE[status] || words(status)}`;
  }

  _hitPopup(id, ev) {
    const state = this.hitState.get(id) || {};
    const status = state.status || "verify";
    return el(
      "div",
      { class: `popup-hit hit-${status}`, dataset: { status } },
      el("div", { class: "popup-title" }, `Hotlist hit — ${HIT_HEADLINE[status] || words(status)}`),
      el(
        "table",
        { class: "kv" },
        row("Decision", status === "verify" ? null : [words(status), state.by ? ` by ${state.by}` : "", state.reason ? ` — ${state.reason}` : ""].join("")),
        row("Read", ev.plate),
        row("Hotlist", `${ev.entry_plate} (${ev.match})`),
        row("Category", ev.category),
        row("Camera", ev.device),
        row("Time", clock(ev.occurred_at)),
      ),
      ev.hit_id && this.hooks.onOpenHit
        ? el("button", { type: "button", class: "btn-small btn-primary", onclick: () => this.hooks.onOpenHit(String(ev.hit_id)) }, "Open hit")
        : null,
    );
  }

  // -- registered cameras with their view ----------------------------------------

  /** Cameras from the registry (normCamera shape): a marker and a view cone each. */
  setCameras(list) {
    if (this.destroyed) return;
    const L = this.L;
    for (const { marker, cone } of this.cameras.values()) {
      marker.remove();
      if (cone) cone.remove();
    }
    this.cameras.clear();
    for (const c of list) {
      if (!c.pos || c.status === "withdrawn" || c.status === "rejected") continue;
      const cls = `cam-marker cam-${c.kind} lvl-${c.level} cst-${c.status}`;
      const icon = L.divIcon({ className: cls, html: el("span", { class: "cam-glyph" }), iconSize: [14, 14], iconAnchor: [7, 7] });
      const marker = L.marker([c.pos.lat, c.pos.lon], { icon, title: c.name, zIndexOffset: 200 });
      marker.on("add", () => {
        const node = marker.getElement();
        if (node) {
          node.dataset.cameraId = c.id;
          node.dataset.cameraKind = c.kind;
          node.dataset.level = c.level;
          node.dataset.status = c.status;
        }
      });
      marker.bindPopup(
        () =>
          el(
            "div",
            { class: "popup-camera", dataset: { cameraId: c.id } },
            el("div", { class: "popup-title" }, c.name),
            el(
              "table",
              { class: "kv" },
              row("Kind", c.kind.replace("_", " ")),
              row("Level", c.level),
              row("Status", c.status.replace(/_/g, " ")),
              row("View", Number.isFinite(c.bearing) ? `${Math.round(c.bearing)}°` : null),
              row("Field of view", Number.isFinite(c.fov) ? `${Math.round(c.fov)}°` : null),
              row("Range", Number.isFinite(c.range) ? `${Math.round(c.range)} m` : null),
            ),
            c.live && c.status === "active" && this.hooks.onLive
              ? el("button", { type: "button", class: "btn-small btn-primary", onclick: () => this.hooks.onLive(c.id, c.name) }, "Live view")
              : null,
          ),
        { className: "ops-popup", maxWidth: 280 },
      );
      marker.addTo(this.groups.views);
      let cone = null;
      if (Number.isFinite(c.bearing)) {
        const fov = Number.isFinite(c.fov) && c.fov > 0 ? c.fov : 60;
        const range = Number.isFinite(c.range) && c.range > 0 ? c.range : 50;
        cone = L.polygon(sectorLatLngs(c.pos.lat, c.pos.lon, range, c.bearing, fov), {
          pane: "viewPane",
          interactive: false,
          className: `view-cone cone-${c.kind}`,
          color: c.kind === "community" ? "#a78bfa" : "#c4b5fd",
          weight: 1,
          fillOpacity: 0.12,
        }).addTo(this.groups.views);
      }
      this.cameras.set(c.id, { marker, cone });
    }
  }

  // -- hotspots --------------------------------------------------------------------

  /** Hotspot cells (GeoJSON polygons with a `score`/`value` property), shaded by score. */
  setHotspots(geojson) {
    if (this.destroyed) return 0;
    const L = this.L;
    this.groups.hotspots.clearLayers();
    const feats = (geojson && geojson.features) || [];
    const score = (f) => Number((f.properties || {}).score ?? (f.properties || {}).value ?? (f.properties || {}).count ?? 0);
    const max = Math.max(1e-9, ...feats.map(score));
    L.geoJSON(geojson, {
      pane: "hotspotPane",
      interactive: false,
      style: (f) => ({
        className: "hotspot-cell",
        color: "#f97316",
        weight: 0.8,
        opacity: 0.6,
        fillColor: "#f97316",
        fillOpacity: 0.08 + 0.5 * (score(f) / max),
      }),
    }).addTo(this.groups.hotspots);
    return feats.length;
  }

  /** Cells recommended for the current shift (GeoJSON, best first), outlined and numbered. */
  setRecommendations(geojson) {
    if (this.destroyed) return 0;
    const L = this.L;
    this.groups.recommend.clearLayers();
    const feats = (geojson && geojson.features) || [];
    L.geoJSON(geojson, {
      pane: "hotspotPane",
      interactive: false,
      style: () => ({ className: "recommend-cell", color: "#22d3ee", weight: 2, dashArray: "5 4", fillColor: "#22d3ee", fillOpacity: 0.12 }),
    }).addTo(this.groups.recommend);
    return feats.length;
  }

  // -- a vehicle's track --------------------------------------------------------------

  /** A plate's reads in time order: numbered points joined by a line. */
  showTrack(plate, reads) {
    if (this.destroyed) return;
    const L = this.L;
    this.groups.track.clearLayers();
    const pts = reads
      .map((r) => ({ r, p: r.pos || (Number.isFinite(r.lat) ? { lat: r.lat, lon: r.lon } : null) }))
      .filter((x) => x.p);
    if (!pts.length) return;
    L.polyline(pts.map((x) => [x.p.lat, x.p.lon]), { className: "track-line", color: "#facc15", weight: 3, dashArray: "6 5" }).addTo(this.groups.track);
    pts.forEach((x, i) => {
      const m = L.marker([x.p.lat, x.p.lon], {
        icon: L.divIcon({ className: "track-point", html: el("span", {}, String(i + 1)), iconSize: [18, 18], iconAnchor: [9, 9] }),
        title: `${plate} #${i + 1}`,
      });
      m.on("add", () => {
        const n = m.getElement();
        if (n) {
          n.dataset.trackPlate = plate;
          n.dataset.trackIndex = String(i + 1);
        }
      });
      m.bindTooltip(el("span", {}, `${plate} · ${clock(x.r.read_at || x.r.occurred_at)} · ${x.r.device || ""}`), { direction: "top" });
      m.addTo(this.groups.track);
    });
    this.setVisible("track", true);
    this.map.fitBounds(L.latLngBounds(pts.map((x) => [x.p.lat, x.p.lon])), { padding: [40, 40], maxZoom: 17 });
  }

  // -- the open incident packet ----------------------------------------------------------

  showPacket({ pos, cameras = [], reads = [], units = [], earlier = [] }) {
    if (this.destroyed) return;
    const L = this.L;
    this.groups.packet.clearLayers();
    const dot = (p, cls, title) => {
      if (!p || !Number.isFinite(p.lat) || !Number.isFinite(p.lon)) return;
      L.circleMarker([p.lat, p.lon], { radius: 6, className: `packet-dot ${cls}`, weight: 2 })
        .bindTooltip(el("span", {}, title))
        .addTo(this.groups.packet);
    };
    const posOf = (o) => o.pos || (Number.isFinite(o.lat) ? { lat: o.lat, lon: o.lon } : null);
    for (const c of cameras) dot(posOf(c), "pk-camera", c.name || c.camera_id || "camera");
    for (const r of reads) dot(posOf(r), "pk-read", r.plate || "read");
    for (const u of units) dot(posOf(u), "pk-unit", u.name || u.device_id || "unit");
    for (const i of earlier) dot(posOf(i), "pk-earlier", i.label || "earlier incident");
    if (pos) dot(pos, "pk-center", "the place");
  }

  clearPacket() {
    if (this.destroyed) return;
    this.groups.packet.clearLayers();
  }

  flyTo(p, zoom = 17) {
    if (this.destroyed) return;
    if (!p || !Number.isFinite(p.lat) || !Number.isFinite(p.lon)) return;
    this.map.setView([p.lat, p.lon], Math.max(this.map.getZoom(), zoom));
  }

  // -- navigation -------------------------------------------------------------

  /** Centre on what an event is about (its device, or its position). */
  focus(ev) {
    if (this.destroyed) return;
    const entry = ev.device ? this.devices.get(ev.device) : null;
    if (entry && entry.marker) {
      this.setVisible(entry.dev.type, true);
      this.map.setView(entry.marker.getLatLng(), Math.max(this.map.getZoom(), 16));
      entry.marker.openPopup();
      return;
    }
    const id = ev.incident_id || ev.alert_id;
    const m = id && ((this.incidents.get(String(id)) || {}).marker || this.alerts.get(String(id)));
    if (m) {
      this.setVisible("incidents", true);
      this.map.setView(m.getLatLng(), Math.max(this.map.getZoom(), 16));
      m.openPopup();
      return;
    }
    if (ev.pos) this.map.setView([ev.pos.lat, ev.pos.lon], Math.max(this.map.getZoom(), 16));
  }

  // -- layer toggles ----------------------------------------------------------

  setVisible(name, on) {
    const g = this.groups[name];
    if (!g) return;
    this.visible[name] = on;
    if (on && !this.map.hasLayer(g)) g.addTo(this.map);
    if (!on && this.map.hasLayer(g)) g.remove();
    const box = this._toggles && this._toggles[name];
    if (box) box.checked = on;
  }

  _buildLayerControl() {
    const L = this.L;
    const self = this;
    const items = [
      ["acoustic_sensor", "Acoustic sensors", "sw-sensor"],
      ["coverage", `Sensor coverage (${SENSOR_COVERAGE_M} m)`, "sw-coverage"],
      ["plate_camera", "Plate cameras", "sw-lpr"],
      ["bodycam", "Body-cam units", "sw-unit"],
      ["camera", "City cameras", "sw-camera"],
      ["incidents", "Incidents & alerts", "sw-incident"],
      ["hits", "Plate hits", "sw-hit"],
      ["views", "Registered cameras (views)", "sw-view"],
      ["hotspots", "Hotspot cells", "sw-hotspot"],
      ["recommend", "Recommended cells (this shift)", "sw-recommend"],
      ["roads", "Roads", "sw-road"],
      ["area", "Coverage area", "sw-area"],
    ];
    this._toggles = {};
    const Ctl = L.Control.extend({
      options: { position: "topright" },
      onAdd() {
        const list = el("div", { class: "layer-list", id: "layer-list" });
        for (const [key, label, swatch] of items) {
          const box = el("input", { type: "checkbox", id: `layer-${key}`, dataset: { layer: key } });
          box.checked = Boolean(self.visible[key]);
          box.addEventListener("change", () => self.setVisible(key, box.checked));
          self._toggles[key] = box;
          list.append(el("label", { class: "layer-item" }, box, el("span", { class: `swatch ${swatch}` }), label));
        }
        const legend = el(
          "div",
          { class: "legend" },
          el("span", { class: "legend-item" }, el("span", { class: "dot st-online" }), "online"),
          el("span", { class: "legend-item" }, el("span", { class: "dot st-offline" }), "offline"),
          el("span", { class: "legend-item" }, el("span", { class: "dot st-unknown" }), "unknown"),
        );
        const toggle = el("button", { type: "button", class: "layer-toggle", "aria-expanded": "true", title: "Map layers" }, "Layers");
        const box = el("div", { class: "layer-control leaflet-bar" }, toggle, el("div", { class: "layer-body" }, list, legend));
        toggle.addEventListener("click", () => {
          const open = box.classList.toggle("collapsed") === false;
          toggle.setAttribute("aria-expanded", String(open));
        });
        if (window.matchMedia && window.matchMedia("(max-width: 760px)").matches) {
          box.classList.add("collapsed");
          toggle.setAttribute("aria-expanded", "false");
        }
        L.DomEvent.disableClickPropagation(box);
        L.DomEvent.disableScrollPropagation(box);
        return box;
      },
    });
    new Ctl().addTo(this.map);
  }

  invalidate() {
    if (this.destroyed) return;
    this.map.invalidateSize();
  }

  destroy() {
    this.destroyed = true;
    this.map.remove();
    this.devices.clear();
    this.incidents.clear();
    this.alerts.clear();
    this.hits.clear();
    this.alertState.clear();
    this.hitState.clear();
    this.cameras.clear();
  }
}
