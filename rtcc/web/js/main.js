// The dashboard: sign-in, then the live map, counters and event feed.
//
// Modules: api.js (HTTP + error envelope), login.js (sign-in, MFA),
// map.js (Leaflet map), feed.js (event feed), live.js (WebSocket),
// devices.js (device kinds), dom.js (helpers); the side panel's tabs (tabs.js):
// alerts.js (alert queue), plates.js (plate search), cameras.js (registry;
// footage.js: footage requests to community camera owners, also from the packet),
// units.js (body-cam control), stats.js (outcome ledger), audit.js (audit log:
// admins and auditors), users.js (accounts: admins); packet.js (incident
// packet / hit view over the map); password.js (change your own password from the header,
// set someone's in the Users tab).

import * as api from "./api.js";
import { $, el, items, show } from "./dom.js";
import { DEVICE_TYPES, TYPE_ORDER } from "./devices.js";
import { EventFeed } from "./feed.js";
import { LiveStream } from "./live.js";
import { AuthScreens } from "./login.js";
import { OpsMap } from "./map.js";
import { AlertQueue, normAlert, packetRef } from "./alerts.js";
import { BodycamControl } from "./units.js";
import { CameraRegistry, normCamera } from "./cameras.js";
import { FOOTAGE_ROLES, FootageRequests } from "./footage.js";
import { PacketView } from "./packet.js";
import { PlateSearch } from "./plates.js";
import { StatsView } from "./stats.js";
import { AuditLog } from "./audit.js";
import { UserAdmin } from "./users.js";
import { Tabs } from "./tabs.js";
import { errorText, missingApi } from "./forms.js";
import { passwordForm } from "./password.js";

/** Event types loaded from history when the page opens (not the routine ones). */
const HISTORY_TYPES = ["alert", "hotlist_hit", "shot_located", "device_status"];
const HISTORY_LIMIT = 50;
/** Gunshot incidents get their own, longer history: routine alerts and device changes must not push
 * the last hours' incidents off the map on a reload. */
const INCIDENT_HISTORY_LIMIT = 300;
const SEEN_MAX = 5000;
/** The alerts and hits APIs are asked from a little before the oldest replayed one (clocks differ). */
const SYNC_MARGIN_MS = 10 * 60_000;
/** Roles that run or receive operations: the device list and the event history are theirs (the
 * auditor gets 403 for them, so the page does not ask). */
const OPERATIONS = new Set(["admin", "supervisor", "analyst", "officer"]);

class Dashboard {
  constructor(user) {
    this.user = user;
    this.seen = new Set();
    this.refreshTimer = null;
    this.lastRefresh = 0;
    this.stopped = false;
    this.panels = {};
    this.packet = null;
    this.operations = OPERATIONS.has(user.role);
  }

  async start() {
    show($("#app-view"), true);
    document.body.dataset.view = "dashboard";
    $("#user-name").textContent = this.user.display_name || this.user.username;
    $("#user-role").textContent = this.user.role;
    this.map = new OpsMap($("#map"), {
      role: this.user.role,
      onChange: () => this.renderCounts(),
      onOpenHit: (id) => this.packet && this.packet.open("hit", id),
      onOpenIncident: (id) => this.packet && this.packet.open("gunshot", id),
      onOpenAlert: (ev) => this.openAlert(normAlert(ev)),
      onLive: (id, name) => this.openLive(id, name),
    });
    this.feed = new EventFeed($("#feed"), {
      onSelect: (ev) => this.map.focus(ev),
      onCount: (n) => {
        $("#feed-count").textContent = String(n);
      },
      onPause: (paused) => show($("#feed-paused"), paused),
    });
    this.renderCounts();
    this.live = new LiveStream({
      onEvent: (ev) => this.onEvent(ev, "live"),
      onHello: (hello, reconnected) => {
        if (reconnected) this.refreshDevices();
      },
      onState: (state) => this.setLiveState(state),
      checkSession: async () => {
        try {
          await api.get("auth/me");
          return true;
        } catch (e) {
          return !(e instanceof api.ApiError && e.status === 401);
        }
      },
    });
    this.live.start();

    // the device list and the event history only for the roles that may read them
    const ops = this.operations;
    const [mapInfo, devices, history, incidents, caps] = await Promise.allSettled([
      api.get("map"),
      ops ? api.get("devices") : null,
      ops ? api.get("events", { types: HISTORY_TYPES, limit: HISTORY_LIMIT }) : null,
      ops ? api.get("events", { types: ["gunshot_incident"], limit: INCIDENT_HISTORY_LIMIT }) : null,
      api.capabilities(),
    ]);
    if (this.stopped) return;
    this.caps = caps.status === "fulfilled" ? caps.value : { has: () => true };
    this.buildPanels();
    this.map.invalidate();
    if (mapInfo.status === "fulfilled") this.map.setBase(mapInfo.value);
    else this.notice(`Map layers unavailable: ${mapInfo.reason.message}`);
    if (!ops) this.notice(`Devices unavailable to the ${this.user.role} role: the map shows its base layers only.`);
    else if (devices.status === "fulfilled") this.map.setDevices(devices.value.items || []);
    else this.notice(`Devices unavailable: ${devices.reason.message}`);
    // each list comes newest first, an update after what it updates; reversed and merged by time with
    // a stable sort, a reviewed incident is replayed after its first report and ends in its last state
    const past = [history, incidents]
      .filter((r) => r.status === "fulfilled" && r.value)
      .flatMap((r) => (r.value.items || []).slice().reverse())
      .sort((a, b) => Date.parse(a.occurred_at) - Date.parse(b.occurred_at));
    for (const ev of past) this.onEvent(ev, "history");
    this.syncMarkers();
    this.loadOverlays();
  }

  /**
   * The replayed alerts and hits in their current state: a replayed `alert` or `hotlist_hit` event
   * says how it began, the alerts and hits APIs say where it is now (closed, dismissed, decided).
   */
  async syncMarkers() {
    const back = (iso) => (iso ? new Date(Date.parse(iso) - SYNC_MARGIN_MS).toISOString() : null);
    const alertsSince = back(this.map.oldest("alerts"));
    const hitsSince = back(this.map.oldest("hits"));
    const [alerts, hits] = await Promise.allSettled([
      alertsSince && this.caps.has("GET", "/alerts") ? api.get("alerts", { since: alertsSince, limit: 1000 }) : null,
      hitsSince && this.caps.has("GET", "/hits") ? api.get("hits", { since: hitsSince, limit: 1000 }) : null,
    ]);
    if (this.stopped) return;
    if (alerts.status === "fulfilled") {
      for (const a of items(alerts.value)) this.map.setAlertStatus(a.id, a.status, { reason: a.dismiss_reason, unit: a.assigned_unit });
    }
    if (hits.status === "fulfilled") {
      for (const h of items(hits.value)) this.map.setHitStatus(h.id, h.status, { reason: h.decision_reason, by: h.decided_by });
    }
  }

  /** The side panel's tabs, by role (the center refuses what a role may not do in any case). */
  buildPanels() {
    const role = this.user.role;
    const has = (path) => this.caps.has("GET", path);
    const allow = (...roles) => roles.includes(role);
    this.tabs = new Tabs($("#side-tabs"), {
      onShow: (name) => {
        $(".workspace").dataset.tab = name; // the audit and accounts tables widen the side panel
        const panel = this.panels[name];
        if (panel && panel.load && !panel.loaded) {
          panel.loaded = true;
          panel.load();
        }
        if (panel && panel.shown) panel.shown(); // re-read what others change meanwhile (footage answers)
        if (this.map) setTimeout(() => this.map.invalidate(), 50);
      },
    });
    this.panels = {};
    // footage requests to community camera owners: asked from the packet and the registry, listed in the registry
    this.footage = FOOTAGE_ROLES.has(role) ? new FootageRequests({ role, caps: this.caps }) : null;
    this.packet = new PacketView($("#packet-view"), {
      map: this.map,
      role,
      has,
      footage: this.footage,
      alertActions: (a, opts) => (this.panels.alerts ? this.panels.alerts.actionsFor(a, { ...opts, withOpen: false }) : []),
      onAlert: (a) => (this.panels.alerts ? this.panels.alerts.apply(a) : null),
    });
    if (allow("admin", "supervisor", "analyst", "officer") && has("/alerts")) {
      this.panels.alerts = new AlertQueue($("#tab-alerts"), {
        role,
        onOpen: (a) => this.openAlert(a),
        onFocus: (a) => (a.pos ? this.map.flyTo(a.pos) : null),
        units: () => this.unitIds(),
        onCount: (n) => {
          const b = $("#alerts-badge");
          b.textContent = String(n);
          show(b, n > 0);
        },
        onChanged: (a) => {
          if (this.packet.current && this.packet.current.alert && this.packet.current.alert.id === a.id) this.packet.setAlert(a);
        },
      });
      this.panels.alerts.loaded = true;
      this.panels.alerts.load().then(() => this.tabs.enable("alerts", this.panels.alerts.available));
    }
    if (allow("admin", "supervisor", "analyst") && has("/plates/search")) {
      this.panels.plates = new PlateSearch($("#tab-plates"), { map: this.map });
      this.tabs.enable("plates", true);
    }
    if (allow("admin", "supervisor", "analyst") && has("/cameras")) {
      this.panels.cameras = new CameraRegistry($("#tab-cameras"), { map: this.map, role, footage: this.footage, onLive: (id, name) => this.openLive(id, name) });
      this.tabs.enable("cameras", true);
      if (this.footage && this.footage.canList) this.footage.reveal = () => this.showFootage();
    }
    if (allow("admin", "supervisor") && has("/bodycams")) {
      this.panels.units = new BodycamControl($("#tab-units"), { map: this.map, role });
      this.tabs.enable("units", true);
    }
    if (has("/stats/outcomes")) {
      this.panels.stats = new StatsView($("#tab-stats"));
      this.tabs.enable("stats", true);
    }
    // the oversight board's tab (`Oversight` in the API: admin, auditor); loads when first shown
    if (allow("admin", "auditor") && has("/audit")) {
      this.panels.audit = new AuditLog($("#tab-audit"));
      this.tabs.enable("audit", true);
    }
    if (allow("admin") && has("/users")) {
      this.panels.users = new UserAdmin($("#tab-users"), { me: this.user.username, caps: this.caps });
      this.tabs.enable("users", true);
    }
  }

  /** Registered cameras (view cones) and hotspot cells for the map, where the role may see them. */
  async loadOverlays() {
    const cams = this.panels.cameras;
    if (cams) {
      cams.loaded = true;
      const res = await cams.load();
      if (res === null) this.tabs.enable("cameras", false);
    } else if (this.user.role === "officer" && this.caps.has("GET", "/cameras")) {
      // officers have no registry tab, but see the cameras (and their views) on the map
      try {
        const res = await api.get("cameras");
        if (!this.stopped) this.map.setCameras(items(res).map(normCamera));
      } catch (e) {
        /* the layer stays empty */
      }
    }
    if (["admin", "supervisor", "analyst"].includes(this.user.role) && this.caps.has("GET", "/analytics/hotspots")) {
      try {
        const geo = await api.get("analytics/hotspots");
        if (!this.stopped) this.map.setHotspots(geo);
      } catch (e) {
        if (!missingApi(e)) this.notice(`Hotspots unavailable: ${errorText(e)}`);
      }
      if (this.caps.has("GET", "/analytics/recommendations")) {
        try {
          const geo = await api.get("analytics/recommendations");
          if (!this.stopped) this.map.setRecommendations(geo);
        } catch (e) {
          if (!missingApi(e)) this.notice(`Recommendations unavailable: ${errorText(e)}`);
        }
      }
    }
  }

  openAlert(a) {
    const ref = packetRef(a);
    if (ref) this.packet.open(ref.kind, ref.refId, a);
    else this.packet.openAlert(a);
    if (a.pos) this.map.flyTo(a.pos);
  }

  /** The footage requests (the Cameras tab's second view); on a phone the packet view gives way. */
  showFootage() {
    if (!this.panels.cameras) return;
    if (this.packet.current && window.matchMedia("(max-width: 760px)").matches) this.packet.dismiss();
    this.tabs.select("cameras");
    this.panels.cameras.show("footage");
  }

  openLive(id, name) {
    if (!this.packet.current) this.packet.openCamera(id, name);
    else this.packet.showLive(id, name);
  }

  /** Body-cam units known to the map, with their last position (for "assign to a unit", nearest first). */
  unitIds() {
    return [...this.map.devices.values()]
      .filter((e) => e.dev.type === "bodycam")
      .map((e) => ({ id: e.dev.id, pos: Number.isFinite(e.dev.lat) && Number.isFinite(e.dev.lon) ? { lat: e.dev.lat, lon: e.dev.lon } : null }))
      .sort((a, b) => a.id.localeCompare(b.id));
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.refreshTimer);
    if (this.live) this.live.stop();
    if (this.feed) this.feed.destroy();
    if (this.packet) this.packet.close();
    for (const panel of Object.values(this.panels)) if (panel.stop) panel.stop();
    if (this.tabs) this.tabs.destroy();
    if (this.map) this.map.destroy();
    closePassword();
    show($("#app-view"), false);
    $("#notice").replaceChildren();
    show($("#notice"), false);
    delete document.body.dataset.view;
  }

  notice(text) {
    const n = $("#notice");
    n.textContent = text;
    show(n, true);
  }

  onEvent(ev, origin) {
    if (ev.event_id) {
      if (this.seen.has(ev.event_id)) return;
      this.seen.add(ev.event_id);
      if (this.seen.size > SEEN_MAX) this.seen.delete(this.seen.values().next().value);
    }
    switch (ev.type) {
      case "device_heartbeat":
        if (!this.map.heartbeat(ev)) this.scheduleRefresh();
        break;
      case "device_status":
        // history is older than the device list: only live edges change markers
        if (origin === "live" && !this.map.setStatus(ev.device, ev.status)) this.scheduleRefresh();
        break;
      case "device_position":
        // a sensor flagged (or cleared) for reporting from the wrong place, or re-registered
        if (origin === "live" && !this.map.setPosition(ev)) this.scheduleRefresh();
        break;
      case "gunshot_incident":
        this.map.addIncident(ev);
        break;
      case "alert":
        this.map.addAlert(ev);
        break;
      case "hotlist_hit":
        this.map.addHit(ev);
        break;
      case "alert_updated":
        this.map.setAlertStatus(ev.alert_id, ev.status, { reason: ev.reason, unit: ev.unit, by: ev.by });
        break;
      case "hit_decision":
        this.map.setHitStatus(ev.hit_id, ev.decision, { reason: ev.reason, by: ev.decided_by });
        break;
      default:
        break;
    }
    if (origin === "live") {
      const p = this.panels;
      if (p.alerts && (ev.type === "alert" || ev.type === "alert_updated")) p.alerts.onEvent(ev);
      if (p.units && p.units.loaded) p.units.onEvent(ev);
      if (this.packet) this.packet.onEvent(ev);
      // an owner answered a footage request: re-read the list (and the packet's camera rows)
      if (this.footage && this.footage.canList && ev.type === "footage_request_updated") this.footage.load();
    }
    this.feed.add(ev, origin);
  }

  /** Re-read the device list soon (a device we did not know spoke up). */
  scheduleRefresh() {
    if (this.refreshTimer !== null || !this.operations) return;
    const wait = Math.max(1000, 5000 - (Date.now() - this.lastRefresh));
    this.refreshTimer = setTimeout(() => {
      this.refreshTimer = null;
      this.refreshDevices();
    }, wait);
  }

  async refreshDevices() {
    if (!this.operations) return;
    this.lastRefresh = Date.now();
    try {
      const res = await api.get("devices");
      if (!this.stopped) this.map.setDevices(res.items || []);
    } catch (e) {
      /* a 401 ends the dashboard; anything else: try again on the next unknown device */
    }
  }

  renderCounts() {
    const counts = this.map.counts();
    for (const t of TYPE_ORDER) {
      const node = $(`#count-${t}`);
      if (!node) continue;
      const c = counts[t];
      node.dataset.online = String(c.online);
      node.dataset.total = String(c.total);
      node.dataset.state = c.total === 0 ? "none" : c.online === c.total ? "ok" : c.online === 0 ? "bad" : "warn";
      node.querySelector(".value").textContent = `${c.online}/${c.total}`;
      node.title = `${DEVICE_TYPES[t].plural}: ${c.online} online, ${c.offline} offline, ${c.unknown} unknown`;
    }
  }

  setLiveState(state) {
    const node = $("#ws-status");
    node.dataset.state = state;
    node.querySelector(".label").textContent = state === "idle" ? "offline" : state;
  }
}

let dashboard = null;
let auth = null;

async function enter() {
  let me;
  try {
    me = await api.call("auth/me", { expect401: true });
  } catch (e) {
    auth.showLogin(e instanceof api.ApiError && e.status === 401 ? "" : e.message);
    return;
  }
  if (me.mfa_pending) {
    await auth.showEnrol();
    return;
  }
  auth.hide();
  if (dashboard) dashboard.stop();
  dashboard = new Dashboard(me);
  await dashboard.start();
}

function leave(notice) {
  if (dashboard) {
    dashboard.stop();
    dashboard = null;
  }
  auth.showLogin(notice);
}

/** The header's "Change password": a small form under the header (current, new, repeat). */
function openPassword() {
  const panel = $("#password-panel");
  const me = dashboard ? dashboard.user.username : "";
  const form = passwordForm({
    current: true,
    username: me,
    onCancel: closePassword,
    onSubmit: async (body) => {
      try {
        await api.post("auth/password", body);
      } catch (err) {
        // wrong current passwords locked the account: the center ended its sessions
        if (err instanceof api.ApiError && err.status === 423) {
          leave(`Password not changed: ${err.message}`);
          return;
        }
        throw err;
      }
      panel.replaceChildren(
        el("p", { id: "password-done", class: "msg", role: "status", dataset: { kind: "ok" } }, "Password changed; your other sessions were signed out."),
        el("div", { class: "row-actions" }, el("button", { type: "button", class: "btn-small btn-ghost", dataset: { action: "close-password" }, onclick: closePassword }, "Close")),
      );
      panel.querySelector("button").focus();
    },
  });
  panel.replaceChildren(el("h2", {}, "Change password"), form);
  show(panel, true);
  $("#change-password").setAttribute("aria-expanded", "true");
}

function closePassword() {
  const panel = $("#password-panel");
  const wasOpen = !panel.hidden;
  panel.replaceChildren();
  show(panel, false);
  $("#change-password").setAttribute("aria-expanded", "false");
  if (wasOpen && dashboard) $("#change-password").focus();
}

/** The skip link: past the map's markers to the side panel, on the Alerts tab when the role has it. */
function skipToPanel() {
  const alerts = $('#side-tabs [data-tab="alerts"]');
  const target = alerts && !alerts.hidden ? alerts : $('#side-tabs [aria-selected="true"]') || $("#feed-panel");
  target.focus();
}

function boot() {
  auth = new AuthScreens({ onSignedIn: () => enter() });
  api.onUnauthorized(() => {
    if (dashboard) leave("Your session has ended — please sign in again.");
  });
  $("#logout").addEventListener("click", async () => {
    try {
      await api.post("auth/logout", undefined, { expect401: true });
    } catch (e) {
      /* signed out either way */
    }
    leave("You have signed out.");
  });
  $("#change-password").addEventListener("click", () => ($("#password-panel").hidden ? openPassword() : closePassword()));
  $("#password-panel").addEventListener("keydown", (e) => {
    if (e.key !== "Escape") return;
    e.preventDefault(); // not the packet view's Escape as well
    closePassword();
  });
  $("#skip-link").addEventListener("click", (e) => {
    e.preventDefault();
    skipToPanel();
  });
  $("#feed-filter").addEventListener("change", (e) => {
    $("#feed").dataset.filter = e.target.value;
  });
  $("#feed-toggle").addEventListener("click", () => {
    const panel = $("#feed-panel");
    const collapsed = panel.classList.toggle("collapsed");
    $("#feed-toggle").setAttribute("aria-expanded", String(!collapsed));
    if (dashboard && dashboard.map) setTimeout(() => dashboard.map.invalidate(), 50);
  });
  window.addEventListener("resize", () => {
    if (dashboard && dashboard.map) dashboard.map.invalidate();
  });
  enter();
}

boot();
