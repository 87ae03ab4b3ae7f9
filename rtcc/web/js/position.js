// A fixed sensor's position health (issue 6), shown in its map popup.
//
// The center keeps a fixed device's registered (surveyed) position as the reference:
// heartbeats store the GPS fix as the last *reported* position (`attributes.reported_lat/lon`,
// `position_error_m`), and a pulse from further than `acoustic.position_tolerance_m` flags the
// device (`position_mismatch`, `attributes.position_mismatch_m`). This module shows the
// registered and reported positions and the distance; an admin sets the registered position
// (typed, or the reported one) with a reason through `PUT /devices/{id}/position`.

import * as api from "./api.js";
import { el, ago, message } from "./dom.js";
import { busy, errorText, MIN_REASON } from "./forms.js";

/** Device types whose registered position a heartbeat never moves (as `rtcc.ingest.health`). */
export const FIXED_TYPES = new Set(["acoustic_sensor"]);

const M_PER_DEG_LAT = 111_320;

const num = (v) => (typeof v === "number" && Number.isFinite(v) ? v : null);

/** True when the center flags the device: its pulses report a position too far from the registered one. */
export function isMismatch(d) {
  return Boolean(d) && (d.position_mismatch === true || (d.attributes || {}).position_mismatch === true);
}

/** The last position the device reported (heartbeat GPS), or null. */
export function reportedPos(d) {
  const a = (d && d.attributes) || {};
  const lat = num(a.reported_lat), lon = num(a.reported_lon);
  return lat === null || lon === null ? null : { lat, lon };
}

/** Metres between two positions (equirectangular; fine at a city's scale). */
export function distanceM(a, b) {
  const k = Math.cos((((a.lat + b.lat) / 2) * Math.PI) / 180);
  return Math.hypot((b.lat - a.lat) * M_PER_DEG_LAT, (b.lon - a.lon) * M_PER_DEG_LAT * k);
}

/** How far the device reports itself from its registered position, metres (the pulse's when flagged). */
export function offByM(d) {
  const a = (d && d.attributes) || {};
  if (isMismatch(d) && num(a.position_mismatch_m) !== null) return a.position_mismatch_m;
  return num(d && d.position_error_m) ?? num(a.position_error_m);
}

/** Record a heartbeat's position as reported (a fixed device does not move on the map). */
export function applyReported(d, pos, at) {
  const attrs = { ...(d.attributes || {}), reported_lat: pos.lat, reported_lon: pos.lon, reported_at: at };
  if (num(d.lat) !== null && num(d.lon) !== null) {
    attrs.position_error_m = Math.round(distanceM({ lat: d.lat, lon: d.lon }, pos) * 10) / 10;
    d.position_error_m = attrs.position_error_m;
  }
  d.attributes = attrs;
}

const fmt = (p) => (p ? `${p.lat.toFixed(5)}, ${p.lon.toFixed(5)}` : "—");
const metres = (m) => (m === null ? null : `${Math.round(m)} m`);

function row(label, value, key) {
  if (value === undefined || value === null || value === "") return null;
  return el("tr", { dataset: key ? { row: key } : undefined }, el("th", {}, label), el("td", {}, value));
}

/**
 * The popup section of a fixed device: registered / reported position and distance,
 * and for an admin the form that sets the registered position.
 * `onSaved(device)` receives the center's answer (the device as `GET /devices` shows it).
 */
export function positionSection(d, { role, onSaved }) {
  const mismatch = isMismatch(d);
  const reg = num(d.lat) !== null && num(d.lon) !== null ? { lat: d.lat, lon: d.lon } : null;
  const rep = reportedPos(d);
  const off = offByM(d);
  const a = d.attributes || {};
  const section = el(
    "div",
    { class: "popup-position", dataset: { positionMismatch: String(mismatch) } },
    mismatch
      ? el(
          "p",
          { class: "msg", role: "status", dataset: { kind: "error" }, style: "margin: 6px 0" },
          `Position mismatch: reports ${metres(off) || "far"} from its registered position ` +
            "(its pulses are located at the registered one).",
        )
      : null,
    el(
      "table",
      { class: "kv" },
      row("Registered", fmt(reg), "registered"),
      row("Reported", rep ? `${fmt(rep)}${a.reported_at ? ` (${ago(a.reported_at)})` : ""}` : null, "reported"),
      row("Distance", metres(off), "distance"),
    ),
  );
  if (role === "admin") section.append(fixForm(d, reg, rep, onSaved));
  return section;
}

function fixForm(d, reg, rep, onSaved) {
  const input = (name, label, value) =>
    el("input", { name, "aria-label": label, inputmode: "decimal", autocomplete: "off", value: value ?? "" });
  const lat = input("lat", "Latitude", reg ? reg.lat.toFixed(6) : "");
  const lon = input("lon", "Longitude", reg ? reg.lon.toFixed(6) : "");
  const reason = el("input", {
    name: "reason",
    "aria-label": "Reason",
    required: true,
    minlength: String(MIN_REASON),
    maxlength: "500",
    placeholder: "e.g. re-surveyed on site",
    autocomplete: "off",
  });
  const msg = el("p", { class: "msg", role: "alert", hidden: true });
  const save = el("button", { type: "submit", class: "btn-small btn-primary", dataset: { action: "set-position" } }, "Set position");
  const useReported = rep
    ? el("button", { type: "button", class: "btn-small", dataset: { action: "use-reported" } }, "Use reported position")
    : null;
  const form = el(
    "form",
    { class: "reason-form position-form", novalidate: true, dataset: { form: "position" } },
    el("div", { style: "display: flex; gap: 6px" }, el("label", {}, "Latitude", lat), el("label", {}, "Longitude", lon)),
    el("label", {}, "Reason", reason),
    el("div", { class: "row-actions" }, save, useReported),
    msg,
  );
  const send = async (btn, pos) => {
    const why = reason.value.trim();
    if (why.length < MIN_REASON) {
      message(msg, `A reason is required (at least ${MIN_REASON} characters).`);
      reason.focus();
      return;
    }
    if (!pos) {
      message(msg, "Latitude must be between -90 and 90 and longitude between -180 and 180.");
      return;
    }
    message(msg, "");
    await busy(btn, async () => {
      try {
        const out = await api.call(`devices/${encodeURIComponent(d.id)}/position`, {
          method: "PUT",
          body: { lat: pos.lat, lon: pos.lon, reason: why },
        });
        onSaved(out);
      } catch (err) {
        message(msg, errorText(err));
      }
    });
  };
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const la = Number(lat.value.trim()), lo = Number(lon.value.trim());
    const ok = lat.value.trim() !== "" && lon.value.trim() !== "" && Math.abs(la) <= 90 && Math.abs(lo) <= 180;
    send(save, ok ? { lat: la, lon: lo } : null);
  });
  if (useReported) useReported.addEventListener("click", () => send(useReported, rep));
  return form;
}
