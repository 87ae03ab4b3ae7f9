// The incident packet view: what the center gathered about a gunshot incident or
// a hotlist hit — cameras that can see the place, plate reads nearby that hit a
// hotlist (the others only counted: reading them is a search with a purpose and
// a case), body-cam units nearby and whether they record, earlier incidents —
// plus the gunshot's audio and, for a hit, the read's photos beside the hotlist
// entry with "verify before action" and confirm / reject with a reason.
//
// A community camera that sees the place has "Request footage" (the roles the
// center allows, footage.js): the window is prefilled around the incident's time.
//
// It opens over the map (#packet-view[data-kind][data-ref-id]) and reloads when
// a `packet_updated` event for it arrives. The alert it was opened from (status
// and actions at the top) follows the alert: `alert_updated` events and the
// hit's or the incident's decision taken here re-read it.

import * as api from "./api.js";
import { $, clock, el, items, message, pick, position, show, stamp, words } from "./dom.js";
import { errorText, reasonForm } from "./forms.js";
import { normAlert } from "./alerts.js";

const RELOAD_MS = 200;

function section(name, title, body) {
  return el("section", { class: "packet-section", dataset: { section: name } }, el("h3", {}, title), body);
}

function dist(m) {
  const v = Number(m);
  return Number.isFinite(v) ? `${Math.round(v)} m` : "";
}

function list(rows, empty, note) {
  if (!rows.length) return el("p", { class: "muted empty" }, note ? `${empty} (${note})` : empty);
  return el("ul", { class: "packet-list" }, ...rows);
}

/** Metres between two {lat, lon} (haversine), or undefined. */
function metres(a, b) {
  if (!a || !b) return undefined;
  const R = 6371008.8, rad = Math.PI / 180;
  const dlat = (b.lat - a.lat) * rad, dlon = (b.lon - a.lon) * rad;
  const h = Math.sin(dlat / 2) ** 2 + Math.cos(a.lat * rad) * Math.cos(b.lat * rad) * Math.sin(dlon / 2) ** 2;
  return 2 * R * Math.asin(Math.sqrt(h));
}

function noteOf(sec) {
  return sec && !Array.isArray(sec) && sec.note ? String(sec.note) : "";
}

/** The count of the other plate reads nearby, with the hint: they are not listed (reading them is a search). */
function otherReads(sec) {
  const n = sec && !Array.isArray(sec) ? Number(sec.others) : NaN;
  if (!Number.isFinite(n) || sec.others === null) return null;
  const hint = sec.hint || "An analyst can search them in Plate search with a purpose and a case number.";
  const text = n ? `${n} other plate read${n === 1 ? "" : "s"} nearby, not listed. ${hint}` : "No other plate reads nearby in the window.";
  return el("p", { class: "muted other-reads", dataset: { others: String(n) } }, text);
}

export class PacketView {
  /**
   * @param {HTMLElement} root  #packet-view
   * @param {{map: object, alertActions?: (alert: object, opts: object) => HTMLElement[], role: string,
   *          has?: (path: string) => boolean, onAlert?: (alert: object) => void, footage?: object}} hooks
   *   has: whether the center offers GET `path`; onAlert: the open alert was re-read (the queue follows);
   *   footage: the footage requests (footage.js `FootageRequests`), for the roles that may ask
   */
  constructor(root, hooks) {
    this.root = root;
    this.hooks = hooks;
    this.body = $("#packet-body", root);
    this.title = $("#packet-title", root);
    this.current = null;
    this._timer = null;
    this._alertTimer = null;
    this._hitTimer = null;
    this.opener = null;
    /** Footage request forms (or their confirmations) by camera id: they survive a packet rebuild. */
    this.footageForms = new Map();
    // the requests list was re-read (an owner may have answered): the camera rows follow
    if (hooks.footage) hooks.footage.onChange(() => this._footageMarks());
    $("#packet-close", root).addEventListener("click", () => this.dismiss());
    // Escape closes the view (focus goes back to what opened it)
    root.addEventListener("keydown", (e) => {
      if (e.key !== "Escape" || !this.current || e.defaultPrevented) return;
      e.preventDefault();
      this.dismiss();
    });
  }

  /** Focus the view's heading as it opens, remembering what had the focus (to give it back on close). */
  _focusIn() {
    const active = document.activeElement;
    if (active && active !== document.body && !this.root.contains(active)) this.opener = active;
    this.title.focus();
  }

  /** Close at the operator's request (× or Escape): focus returns to what opened the view. */
  dismiss() {
    const back = this.opener;
    const alert = this.current && this.current.alert;
    this.opener = null;
    this.close();
    // the queue row re-rendered meanwhile (its alert moved): its Open button stands for it
    const row = alert ? document.querySelector(`li.alert-row[data-alert-id="${CSS.escape(alert.id)}"] [data-action="open"]`) : null;
    const target = back && back.isConnected ? back : row;
    if (target && !target.closest("[hidden]")) target.focus();
  }

  close() {
    this.current = null;
    this.footageForms = new Map();
    clearTimeout(this._timer);
    clearTimeout(this._alertTimer);
    clearTimeout(this._hitTimer);
    for (const a of this.body.querySelectorAll("audio, img")) a.removeAttribute("src");
    this.body.replaceChildren();
    show(this.root, false);
    delete this.root.dataset.kind;
    delete this.root.dataset.refId;
    this.hooks.map.clearPacket();
  }

  /** Open the packet of `kind` ("gunshot" | "hit") for `refId`; `alert` when opened from the queue. */
  async open(kind, refId, alert = null) {
    this.current = { kind, refId: String(refId), alert };
    this.footageForms = new Map();
    this.root.dataset.kind = kind;
    this.root.dataset.refId = String(refId);
    this.title.textContent = alert ? alert.title : kind === "hit" ? "Hotlist hit" : "Gunshot incident";
    this.msg = el("p", { class: "msg", role: "status", hidden: true });
    this.detail = el("div", { class: "packet-detail" });
    this.sections = el("div", { class: "packet-sections", dataset: { state: "loading" } }, el("p", { class: "muted" }, "Loading the packet…"));
    this.actionsBox = el("div", { class: "packet-actions" });
    this.setAlert(alert);
    this.body.replaceChildren(this.msg, this.actionsBox, this.detail, this.sections);
    show(this.root, true);
    this._focusIn();
    const has = this.hooks.has || (() => true);
    if (!has("/packets/{}/{}")) {
      this.sections.dataset.state = "none";
      this.sections.replaceChildren(el("p", { class: "muted" }, "Incident packets are not available on this center."));
    }
    await Promise.all([kind === "hit" ? this._hit(refId) : this._gunshot(refId), has("/packets/{}/{}") ? this.loadPacket() : null]);
  }

  /** Open a plain alert (no packet): its details and actions. */
  openAlert(alert) {
    this.current = { kind: "alert", refId: alert.id, alert };
    this.root.dataset.kind = "alert";
    this.root.dataset.refId = alert.id;
    this.title.textContent = alert.title;
    this.msg = el("p", { class: "msg", role: "status", hidden: true });
    this.actionsBox = el("div", { class: "packet-actions" });
    this.setAlert(alert);
    this.body.replaceChildren(
      this.msg,
      this.actionsBox,
      el(
        "table",
        { class: "kv" },
        el("tr", {}, el("th", {}, "Kind"), el("td", {}, words(alert.kind))),
        el("tr", {}, el("th", {}, "Status"), el("td", {}, words(alert.status))),
        el("tr", {}, el("th", {}, "Time"), el("td", {}, stamp(alert.at))),
      ),
    );
    show(this.root, true);
    this._focusIn();
  }

  /** Show (or refresh) the alert's status and actions at the top of the view. */
  setAlert(alert) {
    if (!this.current || !this.actionsBox) return;
    this.current.alert = alert;
    if (!alert) {
      this.actionsBox.replaceChildren();
      delete this.actionsBox.dataset.key;
      return;
    }
    // the same state again (our own action, then its live echo): keep the actions as they are, so a
    // form being filled in (assign, dismiss) is not wiped under the operator's hands
    const key = [alert.id, alert.status, alert.unit || "", alert.title, alert.awaits_decision || "", this.current.refStatus || ""].join("|");
    if (this.actionsBox.dataset.key === key && this.actionsBox.childElementCount) return;
    this.actionsBox.dataset.key = key;
    this.actionsBox.dataset.alertId = alert.id;
    this.actionsBox.dataset.status = alert.status;
    if (this.title && alert.title) this.title.textContent = alert.title;
    // errors of the actions taken here are shown here (not in the queue, hidden behind the view)
    const opts = { msg: this.msg, refStatus: this.current.refStatus };
    this.actionsBox.replaceChildren(
      el("span", { class: `status-tag st-${alert.status}` }, words(alert.status)),
      ...(this.hooks.alertActions ? this.hooks.alertActions(alert, opts) : []),
    );
  }

  /** The status of the hit or incident shown (it tells whether the alert still waits for a decision). */
  _setRefStatus(c, status) {
    if (this.current !== c) return;
    c.refStatus = status;
    if (c.alert) this.setAlert(c.alert);
  }

  /** Re-read the open alert (after a decision here, or an `alert_updated` event) and show its state. */
  async refreshAlert() {
    const c = this.current;
    if (!c || !c.alert) return;
    let res;
    try {
      res = await api.get(`alerts/${encodeURIComponent(c.alert.id)}`);
    } catch (err) {
      return;
    }
    if (this.current !== c) return;
    const a = normAlert(res);
    this.setAlert(a);
    if (this.hooks.onAlert) this.hooks.onAlert(a);
  }

  /** A live event: reload the open packet when it changed; follow the open alert. */
  onEvent(ev) {
    const c = this.current;
    // the open hit decided elsewhere (another operator): show the decision, drop Confirm / Reject
    if (c && c.kind === "hit" && ev.type === "hit_decision" && String(ev.hit_id ?? "") === c.refId) {
      this._reloadHit();
      return;
    }
    if (c && c.alert && ev.type === "alert_updated" && String(pick(ev, "alert_id", "id") ?? "") === c.alert.id) {
      clearTimeout(this._alertTimer);
      this._alertTimer = setTimeout(() => this.refreshAlert(), RELOAD_MS);
      // a hit alert that moved may mean the hit was decided: look at the hit too
      if (c.kind === "hit") this._reloadHit();
      return;
    }
    if (!c || ev.type !== "packet_updated") return;
    const kind = pick(ev, "kind", "packet_kind");
    const ref = String(pick(ev, "ref_id", "ref") ?? "");
    if (ref !== c.refId || (kind && !sameKind(kind, c.kind))) return;
    clearTimeout(this._timer);
    this._timer = setTimeout(() => this.loadPacket(), RELOAD_MS);
  }

  async loadPacket() {
    const c = this.current;
    if (!c) return;
    let packet;
    try {
      packet = await api.get(`packets/${encodeURIComponent(c.kind)}/${encodeURIComponent(c.refId)}`);
    } catch (err) {
      if (this.current !== c) return;
      this.sections.dataset.state = "error";
      this.sections.replaceChildren(el("p", { class: "msg", dataset: { kind: "error" } }, `Packet unavailable: ${errorText(err)}`));
      return;
    }
    if (this.current !== c) return;
    this.renderPacket(packet);
  }

  renderPacket(p) {
    const body = p.body || p.packet || p;
    const cameras = items(body.cameras);
    const reads = items(pick(body, "plate_reads", "reads"));
    const units = items(pick(body, "bodycams", "units"));
    const earlier = items(pick(body, "earlier_incidents", "earlier"));
    const pos = position(pick(body, "pos", "center") || body) || position(p);
    const updated = pick(p, "updated_at", "built_at");
    const at = pick(p, "at") || pick(body, "at", "occurred_at");
    this.sections.dataset.state = "ready";
    this.sections.dataset.updatedAt = updated || "";
    this.sections.replaceChildren(
      updated ? el("p", { class: "muted packet-updated" }, `Updated ${clock(updated)}`) : "",
      section(
        "cameras",
        `Cameras that can see the place (${cameras.length})`,
        list(
          cameras.map((cam) => {
            const id = String(pick(cam, "camera_id", "id"));
            const live = Boolean(pick(cam, "live", "integrated")) || cam.level === "integrated";
            return el(
              "li",
              { dataset: { cameraId: id, kind: cam.kind || "", level: cam.level || "" } },
              el("span", { class: "li-main" }, cam.name || id),
              el("span", { class: "muted" }, [words(cam.kind), words(cam.level), dist(cam.distance_m)].filter(Boolean).join(" · ")),
              live ? el("button", { type: "button", class: "btn-small btn-ghost", dataset: { action: "live" }, onclick: () => this.showLive(id, cam.name || id) }, "Live view") : null,
              this._footage(cam, id, at),
            );
          }),
          "No camera sees this place.", noteOf(body.cameras),
        ),
      ),
      section(
        "reads",
        `Hotlist hits among plate reads nearby (${reads.length})`,
        el("div", {}, list(
          reads.map((r) =>
            el(
              "li",
              { dataset: { readId: String(pick(r, "id", "read_id")) }, onclick: () => this._focus(r) },
              el("span", { class: "li-main plate" }, r.plate || "?"),
              el("span", { class: "muted" }, [clock(pick(r, "read_at", "occurred_at", "at")), pick(r, "device", "device_id", "camera"), dist(r.distance_m ?? metres(pos, position(r))), r.direction ? `heading ${r.direction}` : Number.isFinite(r.heading_deg) ? `heading ${Math.round(r.heading_deg)}°` : ""].filter(Boolean).join(" · ")),
            ),
          ),
          "No hotlist hit nearby in the window.", noteOf(pick(body, "plate_reads", "reads")),
        ), otherReads(pick(body, "plate_reads", "reads"))),
      ),
      section(
        "units",
        `Body-cam units nearby (${units.length})`,
        list(
          units.map((u) =>
            el(
              "li",
              { dataset: { unitId: String(pick(u, "device_id", "id")), recording: String(Boolean(u.recording)) } },
              el("span", { class: "li-main" }, u.name || pick(u, "device_id", "id")),
              el("span", { class: "muted" }, dist(u.distance_m)),
              el("span", { class: `rec-tag ${u.recording ? "on" : "off"}` }, u.recording ? "recording" : "not recording"),
            ),
          ),
          "No unit nearby.", noteOf(pick(body, "bodycams", "units")),
        ),
      ),
      section(
        "earlier",
        `Earlier incidents nearby (${earlier.length})`,
        list(
          earlier.map((i) =>
            el(
              "li",
              { dataset: { incidentId: String(pick(i, "id", "incident_id")) }, onclick: () => this._focus(i) },
              el("span", { class: "li-main" }, i.label || words(i.kind) || "incident"),
              el("span", { class: "muted" }, [stamp(pick(i, "occurred_at", "at")), dist(i.distance_m), i.rounds ? `${i.rounds} rounds` : ""].filter(Boolean).join(" · ")),
            ),
          ),
          "None in the period.", noteOf(pick(body, "earlier_incidents", "earlier")),
        ),
      ),
    );
    this.hooks.map.showPacket({ pos, cameras, reads, units, earlier });
    this._footageMarks();
  }

  // -- footage requests to community cameras that see the place ------------------------

  /** The case/incident a request from this packet is prefilled with ("gunshot:<id>"). */
  _incidentRef(c) {
    return `${c.kind}:${c.refId}`;
  }

  /**
   * "Request footage" on a community camera (an owner's camera; the roles the center allows):
   * the form opens under the row, the window prefilled around the incident's time `at`.
   */
  _footage(cam, id, at) {
    const fr = this.hooks.footage;
    const c = this.current;
    if (!fr || !fr.canRequest || cam.kind !== "community" || !c) return null;
    const box = el("div", { class: "row-extra footage-box" });
    const kept = this.footageForms.get(id);
    if (kept) box.append(kept);
    // the row may be rebuilt meanwhile (a packet update): the form moves with it, act on the node
    const close = () => {
      const node = this.footageForms.get(id);
      this.footageForms.delete(id);
      if (node) node.remove();
    };
    const open = () => {
      const shown = this.footageForms.get(id);
      if (shown && shown.matches("form")) {
        shown.querySelector("[name=reason]").focus();
        return;
      }
      const form = fr.form(
        { id, name: cam.name || id },
        {
          at,
          incidentRef: this._incidentRef(c),
          onDone: (req, note) => {
            if (this.current !== c) return;
            this.footageForms.set(id, note);
            form.replaceWith(note);
            this._footageMarks();
          },
          onCancel: close,
        },
      );
      this.footageForms.set(id, form);
      const row = this.sections.querySelector(`[data-section=cameras] li[data-camera-id="${CSS.escape(id)}"] .footage-box`);
      (row || box).replaceChildren(form);
    };
    return [el("span", { class: "footage-status" }), fr.button(id, open), box];
  }

  /** The status of the footage already asked for this incident, on each camera's row. */
  async _footageMarks() {
    const fr = this.hooks.footage;
    const c = this.current;
    // only a packet with a community camera in it asks
    if (!fr || !fr.canList || !c || !this.sections || !this.root.contains(this.sections)) return;
    if (!this.sections.querySelector("[data-section=cameras] .footage-status")) return;
    const reqs = await fr.forIncident(this._incidentRef(c));
    if (this.current !== c) return;
    const latest = new Map();
    for (const r of reqs) if (!latest.has(String(r.camera_id))) latest.set(String(r.camera_id), r); // newest first
    for (const row of this.sections.querySelectorAll("[data-section=cameras] li[data-camera-id]")) {
      const r = latest.get(row.dataset.cameraId);
      const slot = row.querySelector(".footage-status");
      if (slot) slot.replaceChildren(r ? fr.tag(r) : "");
    }
  }

  _focus(obj) {
    const p = position(obj);
    if (p) this.hooks.map.flyTo(p);
  }

  // -- the gunshot: details and audio ------------------------------------------

  async _gunshot(id) {
    const c = this.current;
    let g;
    try {
      g = await api.get(`gunshots/${encodeURIComponent(id)}`);
    } catch (err) {
      this.detail.replaceChildren(el("p", { class: "msg", dataset: { kind: "error" } }, `Incident unavailable: ${errorText(err)}`));
      return;
    }
    const heard = audioOf(g);
    const statusCell = el("td", { class: "gunshot-status" }, reviewed(g));
    this.detail.replaceChildren(
      el(
        "table",
        { class: "kv" },
        el("tr", {}, el("th", {}, "Time"), el("td", {}, stamp(g.occurred_at))),
        el("tr", {}, el("th", {}, "Label"), el("td", {}, `${g.label} (${Math.round((g.confidence || 0) * 100)} %)`)),
        el("tr", {}, el("th", {}, "Rounds"), el("td", {}, `${g.rounds}${g.automatic ? " · automatic" : ""}${g.multiple_shooters ? " · several shooters" : ""}`)),
        el("tr", {}, el("th", {}, "Round intervals"), el("td", { class: "gunshot-intervals" }, intervalsText(g))),
        el("tr", {}, el("th", {}, "Position"), el("td", { class: "gunshot-position" }, latLonText(g))),
        el("tr", {}, el("th", {}, "Uncertainty"), el("td", {}, `${Math.round(g.ellipse_major_m)} × ${Math.round(g.ellipse_minor_m)} m`,
          g.location_quality === "poor" ? el("span", { class: "gunshot-geometry" }, " · poor sensor geometry: location less sure") : "")),
        el("tr", {}, el("th", {}, "Temperature"), el("td", { class: "gunshot-temperature" }, temperatureText(g))),
        el("tr", {}, el("th", {}, "Status"), statusCell),
      ),
      this._review(id, g, statusCell, heard.length > 0),
      section("audio", "Audio from the sensors", heard.length ? audioList(id, heard) : el("p", { class: "muted empty" }, "No audio was sent for this incident.")),
    );
    if (Number.isFinite(g.lat)) this.hooks.map.flyTo({ lat: g.lat, lon: g.lon });
    this._setRefStatus(c, g.status);
  }

  /**
   * The review of a gunshot incident (admin, supervisor, analyst): confirm it as gunfire or
   * dismiss it, with a reason (POST gunshots/{id}/review, audited). An incident in the review
   * band waits here for a person; a confirmed one goes out as an alert. `hasAudio`: whether any
   * sensor sent audio (the banner and the hints say what there is to go on).
   */
  _review(id, g, statusCell, hasAudio) {
    const c = this.current;
    const box = el("div", { class: "gunshot-review hit-decision", dataset: { status: g.status } });
    if (!REVIEWERS.has(this.hooks.role) || !REVIEWABLE.has(g.status)) return box;
    const msg = el("p", { class: "msg", role: "status", hidden: true });
    const banner =
      g.status === "pending_review"
        ? el(
            "p",
            { class: "verify-banner", role: "alert" },
            hasAudio
              ? "Waiting for review: listen to the sensors' audio, then confirm it as gunfire or dismiss it, with a reason."
              : "Waiting for review: no audio was sent for this incident. Judge it from the location, the rounds and other reports, then confirm it as gunfire or dismiss it, with a reason.",
          )
        : null;
    const hint = hasAudio
      ? { confirm: "e.g. several rounds clear on the audio", dismiss: "e.g. fireworks on the audio" }
      : { confirm: "e.g. matches two 911 calls of shots fired", dismiss: "e.g. known construction site" };
    const decide = (d) =>
      buttons.replaceChildren(
        reasonForm({
          label: d === "confirm" ? "Confirmed how?" : "Why dismiss?",
          submit: d === "confirm" ? "Confirm gunfire" : "Dismiss",
          name: `review-${d}`,
          placeholder: hint[d],
          onSubmit: async (reason) => {
            const res = await api.post(`gunshots/${encodeURIComponent(id)}/review`, { decision: d, reason });
            const done = (res && res.status) || (d === "confirm" ? "confirmed" : "dismissed");
            box.dataset.status = done;
            statusCell.textContent = reviewed({ ...g, ...res, status: done, review_reason: reason });
            if (banner) banner.remove();
            buttons.replaceChildren();
            message(msg, `Incident ${words(done)}.`, "ok");
            // the review settled the alerts that announced the incident: show the alert as it is now
            this._setRefStatus(c, done);
            await this.refreshAlert();
          },
          onCancel: () => choose(),
        }),
      );
    const buttons = el("div", { class: "hit-decision" });
    const choose = () =>
      buttons.replaceChildren(
        el("button", { type: "button", class: "btn-small btn-primary", dataset: { action: "review-confirm" }, onclick: () => decide("confirm") }, "Confirm gunfire"),
        el("button", { type: "button", class: "btn-small btn-ghost", dataset: { action: "review-dismiss" }, onclick: () => decide("dismiss") }, "Dismiss"),
      );
    choose();
    box.replaceChildren(...[banner, buttons, msg].filter(Boolean));
    return box;
  }

  // -- the hit: photos beside the entry; verify before action -------------------

  /** Re-read the open hit soon (coalesced): its decision may have been taken elsewhere. */
  _reloadHit() {
    const c = this.current;
    clearTimeout(this._hitTimer);
    this._hitTimer = setTimeout(() => {
      if (this.current === c) this._hit(c.refId, { refresh: true });
    }, RELOAD_MS);
  }

  /**
   * Show the hit: its photos beside the entry; confirm or reject while it says "verify".
   * `refresh`: a re-read (the view is left as it is while the hit's status is the same, so a reason
   * being typed survives); `note`: a message to show with it (e.g. the center's 409: decided already).
   */
  async _hit(id, { refresh = false, note = "" } = {}) {
    const c = this.current;
    let h;
    try {
      h = await api.get(`hits/${encodeURIComponent(id)}`);
    } catch (err) {
      if (this.current !== c) return;
      if (refresh) return; // the view keeps what it shows; the next event or action tries again
      this.detail.replaceChildren(el("p", { class: "msg", dataset: { kind: "error" } }, `Hit unavailable: ${errorText(err)}`));
      return;
    }
    if (this.current !== c) return;
    const shown = this.detail.querySelector(".hit-view");
    if (refresh && !note && shown && shown.dataset.status === (h.status || "verify")) return;
    const read = h.read || {};
    const entry = h.entry || {};
    const readId = pick(h, "read_id") || pick(read, "id", "read_id");
    const status = h.status || "verify";
    const img = (kind) => {
      // a photo only when the read has one stored (edge reads may send the text only)
      const stored = kind === "crop" ? pick(h, "crop_ref") || pick(read, "crop_ref") : pick(h, "image_ref") || pick(read, "image_ref");
      const caption = kind === "crop" ? "Plate" : "Vehicle";
      if (!stored || !readId) return el("figure", { class: "hit-photo none", dataset: { photo: "none" } }, el("figcaption", {}, `${caption}: no photo stored`));
      // served for hit review through the hit (audited with it): a read alone needs a purpose and a case
      const src = `${api.API}hits/${encodeURIComponent(id)}/image?kind=${kind}`;
      return el("figure", { class: "hit-photo", dataset: { photo: kind } }, el("img", { src, alt: `${caption.toLowerCase()} photo of the read` }), el("figcaption", {}, caption));
    };
    const decided = status !== "verify" && status !== "pending";
    // the same number from another state is the classic wrong-car stop: say so plainly
    const entryState = h.entry_state || pick(entry, "state") || "";
    const readRegion = h.read_region || pick(read, "region") || "";
    const stateWarning = h.state_mismatch
      ? el(
          "p",
          { class: "msg state-mismatch", role: "alert", dataset: { kind: "error" } },
          `State differs: the hotlist entry is ${entryState}, the camera read ${readRegion}. Same number, another state — likely a different vehicle; check the state before any stop.`,
        )
      : null;
    const msg = el("p", { class: "msg hit-msg", role: "status", hidden: true });
    const decision = el("div", { class: "hit-decision" });
    const decide = (d) =>
      decision.replaceChildren(
        reasonForm({
          label: d === "confirmed" ? "Confirmed how?" : "Why reject?",
          submit: d === "confirmed" ? "Confirm hit" : "Reject hit",
          name: `decision-${d}`,
          placeholder: d === "confirmed" ? "e.g. plate and vehicle match, NCIC re-checked" : "e.g. misread: 8 read as B",
          onSubmit: async (reason) => {
            let res;
            try {
              res = await api.post(`hits/${encodeURIComponent(id)}/decision`, { decision: d, reason });
            } catch (err) {
              if (!(err instanceof api.ApiError && err.status === 409)) throw err;
              // decided meanwhile (another operator): show the hit as it is now, with the center's word
              await this._hit(id, { refresh: true, note: errorText(err) });
              await this.refreshAlert();
              return;
            }
            const done = (res && res.status) || d;
            // the view may have been re-read meanwhile (the decision's live echo): write in the one shown
            const view = this.root.querySelector(".hit-view");
            if (!view || this.current !== c) return;
            message(view.querySelector(".hit-msg") || msg, `Hit ${words(done)}.`, "ok");
            view.dataset.status = done;
            view.querySelector(".verify-banner").textContent = `Decision: ${words(done)} — ${reason}`;
            for (const box of view.querySelectorAll(":scope > .hit-decision")) box.replaceChildren();
            // the decision settled the hit's alert (acknowledged or dismissed): show it as it is now
            this._setRefStatus(c, done);
            await this.refreshAlert();
          },
          onCancel: () => decisionButtons(),
        }),
      );
    const decisionButtons = () =>
      decision.replaceChildren(
        el("button", { type: "button", class: "btn-small btn-primary", dataset: { action: "confirm" }, onclick: () => decide("confirmed") }, "Confirm"),
        el("button", { type: "button", class: "btn-small btn-ghost", dataset: { action: "reject" }, onclick: () => decide("rejected") }, "Reject (misread)"),
      );
    if (!decided) decisionButtons();
    this.detail.replaceChildren(
      el(
        "div",
        { class: "hit-view", dataset: { status } },
        el("p", { class: "verify-banner", role: "alert" }, decided ? `Decision: ${words(status)}${h.decided_by ? ` by ${h.decided_by}` : ""}${h.decision_reason ? ` — ${h.decision_reason}` : ""}` : "Verify before action: compare the photo with the hotlist entry and confirm by radio/NCIC before stopping anyone."),
        stateWarning,
        el(
          "div",
          { class: "hit-compare" },
          el("div", { class: "hit-photos" }, img("crop"), img("vehicle")),
          el(
            "table",
            { class: "kv hit-entry" },
            el("tr", {}, el("th", {}, "Read"), el("td", { class: "plate" }, pick(h, "plate") || read.plate || "?")),
            el("tr", {}, el("th", {}, "Hotlist"), el("td", { class: "plate" }, pick(entry, "plate", "pattern") || h.entry_plate || "?")),
            el("tr", { dataset: { field: "read-state" } }, el("th", {}, "Read state"), el("td", {}, readRegion || "not read")),
            el("tr", { dataset: { field: "entry-state" } }, el("th", {}, "Hotlist state"), el("td", {}, entryState || "not given")),
            el("tr", {}, el("th", {}, "Match"), el("td", {}, words(h.match))),
            el("tr", {}, el("th", {}, "Category"), el("td", {}, words(pick(entry, "category") || h.category))),
            el("tr", {}, el("th", {}, "Source"), el("td", {}, pick(entry, "source") || h.entry_source || "")),
            el("tr", {}, el("th", {}, "Reason"), el("td", {}, pick(entry, "reason") || h.reason || "")),
            el("tr", {}, el("th", {}, "Camera"), el("td", {}, pick(read, "device") || h.device || "")),
            el("tr", {}, el("th", {}, "Time"), el("td", {}, stamp(h.read_at || pick(read, "read_at", "occurred_at")))),
          ),
        ),
        decision,
        msg,
      ),
    );
    if (note) message(msg, note, "error");
    const p = position(read) || position(h);
    if (p && !refresh) this.hooks.map.flyTo(p);
    this._setRefStatus(c, status);
  }

  // -- camera live view ----------------------------------------------------------

  /** Open the view on a camera's live feed alone. */
  openCamera(id, name) {
    this.current = { kind: "camera", refId: String(id), alert: null };
    this.root.dataset.kind = "camera";
    this.root.dataset.refId = String(id);
    this.title.textContent = name;
    this.actionsBox = null;
    this.body.replaceChildren();
    show(this.root, true);
    this._focusIn();
    this.showLive(id, name);
  }

  showLive(id, name) {
    const box = el(
      "div",
      { class: "live-view", dataset: { cameraId: id } },
      el("div", { class: "live-head" }, el("span", {}, `Live — ${name}`), el("button", { type: "button", class: "btn-icon", "aria-label": "Close live view", onclick: () => { box.querySelector("img").removeAttribute("src"); box.remove(); } }, "×")),
      el("img", { src: `${api.API}cameras/${encodeURIComponent(id)}/live.mjpeg`, alt: `live view of ${name}` }),
    );
    for (const old of this.body.querySelectorAll(".live-view")) {
      old.querySelector("img").removeAttribute("src");
      old.remove();
    }
    this.body.prepend(box);
  }
}

/** Roles that review gunshot incidents, and the statuses a review can still change. */
const REVIEWERS = new Set(["admin", "supervisor", "analyst"]);
const REVIEWABLE = new Set(["alerted", "pending_review", "below_threshold"]);

/** The incident's `audio`: [{sensor, rounds}] with at least one round (nothing else gets a player). */
function audioOf(g) {
  const list = Array.isArray(g.audio) ? g.audio : [];
  return list.filter((a) => a && a.sensor && Array.isArray(a.rounds) && a.rounds.length);
}

/** A row per sensor with a player per round it sent audio for ("round 2"). */
function audioList(id, heard) {
  const url = (sensor, n) =>
    `${api.API}gunshots/${encodeURIComponent(id)}/audio?sensor=${encodeURIComponent(sensor)}&round=${encodeURIComponent(n)}`;
  return el(
    "div",
    { class: "audio-list" },
    ...heard.map((a) =>
      el(
        "div",
        { class: "audio-row", dataset: { sensor: a.sensor } },
        el("span", { class: "muted audio-sensor" }, a.sensor),
        ...a.rounds.map((n) =>
          el(
            "div",
            { class: "audio-round", dataset: { round: String(n) } },
            el("span", { class: "muted" }, `round ${n}`),
            el("audio", { controls: true, preload: "none", src: url(a.sensor, n) }),
          ),
        ),
      ),
    ),
  );
}

/** The intervals between the rounds, seconds ("0.12 s · 0.13 s"). */
function intervalsText(g) {
  const iv = (g.intervals_s || []).map(Number).filter(Number.isFinite);
  return iv.length ? iv.map((v) => `${v.toFixed(2)} s`).join(" · ") : "— (one round)";
}

function latLonText(g) {
  const p = position(g);
  return p ? `${p.lat.toFixed(5)}, ${p.lon.toFixed(5)}` : "unknown";
}

/** The air temperature the location's speed of sound used, and where it came from. */
function temperatureText(g) {
  const t = Number(g.temperature_c);
  if (g.temperature_c === null || g.temperature_c === undefined || !Number.isFinite(t)) return "not recorded";
  const source = { feed: "weather feed", settings: "configured value" }[g.temperature_source] || "source not recorded";
  return `${t.toFixed(1)} °C (${source})`;
}

/** An incident's status, with who reviewed it and why once it was. */
function reviewed(g) {
  const by = g.reviewed_by ? ` by ${g.reviewed_by}` : "";
  return g.review_reason ? `${words(g.status)}${by} — ${g.review_reason}` : words(g.status);
}

function sameKind(a, b) {
  const norm = (k) => (/hit|hotlist/.test(k) ? "hit" : /gun|shot/.test(k) ? "gunshot" : k);
  return norm(a) === norm(b);
}

