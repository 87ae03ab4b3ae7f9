// The dashboard: sign-in, then the live map, counters and event feed.
//
// Modules: api.js (HTTP + error envelope), login.js (sign-in, MFA),
// map.js (Leaflet map), feed.js (event feed), live.js (WebSocket),
// devices.js (device kinds), dom.js (helpers).

import * as api from "./api.js";
import { $, show } from "./dom.js";
import { DEVICE_TYPES, TYPE_ORDER } from "./devices.js";
import { EventFeed } from "./feed.js";
import { LiveStream } from "./live.js";
import { AuthScreens } from "./login.js";
import { OpsMap } from "./map.js";

/** Event types loaded from history when the page opens (not the routine ones). */
const HISTORY_TYPES = ["gunshot_incident", "alert", "hotlist_hit", "shot_located", "device_status"];
const HISTORY_LIMIT = 50;
const SEEN_MAX = 5000;

class Dashboard {
  constructor(user) {
    this.user = user;
    this.seen = new Set();
    this.refreshTimer = null;
    this.lastRefresh = 0;
    this.stopped = false;
  }

  async start() {
    show($("#app-view"), true);
    document.body.dataset.view = "dashboard";
    $("#user-name").textContent = this.user.display_name || this.user.username;
    $("#user-role").textContent = this.user.role;
    this.map = new OpsMap($("#map"), { onChange: () => this.renderCounts() });
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

    const [mapInfo, devices, history] = await Promise.allSettled([
      api.get("map"),
      api.get("devices"),
      api.get("events", { types: HISTORY_TYPES, limit: HISTORY_LIMIT }),
    ]);
    if (this.stopped) return;
    this.map.invalidate();
    if (mapInfo.status === "fulfilled") this.map.setBase(mapInfo.value);
    else this.notice(`Map layers unavailable: ${mapInfo.reason.message}`);
    if (devices.status === "fulfilled") this.map.setDevices(devices.value.items || []);
    else this.notice(`Devices unavailable: ${devices.reason.message}`);
    if (history.status === "fulfilled") {
      const items = (history.value.items || []).slice().reverse(); // oldest first
      for (const ev of items) this.onEvent(ev, "history");
    }
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.refreshTimer);
    if (this.live) this.live.stop();
    if (this.feed) this.feed.destroy();
    if (this.map) this.map.destroy();
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
      case "gunshot_incident":
        this.map.addIncident(ev);
        break;
      case "alert":
        this.map.addAlert(ev);
        break;
      default:
        break;
    }
    this.feed.add(ev, origin);
  }

  /** Re-read the device list soon (a device we did not know spoke up). */
  scheduleRefresh() {
    if (this.refreshTimer !== null) return;
    const wait = Math.max(1000, 5000 - (Date.now() - this.lastRefresh));
    this.refreshTimer = setTimeout(() => {
      this.refreshTimer = null;
      this.refreshDevices();
    }, wait);
  }

  async refreshDevices() {
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
