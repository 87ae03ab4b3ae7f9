// The public community-camera page (no sign-in).
//
//   register.html                 form + map position + view direction / field of view
//   register.html?verify=TOKEN    the emailed link: confirms the address
//   register.html?manage=TOKEN    the owner's page: the registration, footage requests, withdraw
//   register.html?footage=TOKEN   one footage request (emailed link): upload a clip or decline
//
// Panels: #reg-panel, #verify-panel, #manage-panel, #footage-panel, #done-panel
// (one shows at a time: body[data-step]). Everything from the center is inserted as text.

import { ApiError, API, call, get, post } from "./api.js";
import { $, el, message, stamp, words } from "./dom.js";
import { sectorLatLngs } from "./map.js";

const STEPS = ["reg", "verify", "manage", "footage", "done"];
const MAX_CLIP_BYTES = 1_000_000;

function step(name) {
  for (const s of STEPS) $(`#${s}-panel`).hidden = s !== name;
  document.body.dataset.step = name;
  message($("#reg-msg"), "");
}

function fail(err) {
  message($("#reg-msg"), err instanceof ApiError ? err.message : "Something went wrong — please try again.");
}

function done(title, text) {
  $("#done-title").textContent = title;
  $("#done-text").textContent = text;
  step("done");
}

/** POST a file as the raw body (clip uploads). */
async function upload(path, file, note) {
  const url = new URL(API + path, document.baseURI);
  if (note) url.searchParams.set("note", note);
  let res;
  try {
    res = await fetch(url, { method: "POST", body: file, headers: { "content-type": file.type || "application/octet-stream", accept: "application/json" } });
  } catch (e) {
    throw new ApiError(0, null, "cannot reach the center — check the network connection");
  }
  const data = await res.json().catch(() => null);
  if (!res.ok) throw new ApiError(res.status, data);
  return data;
}

// -- 1. the registration form with its map ---------------------------------------

class PositionMap {
  constructor(node, onPick) {
    const L = window.L;
    this.L = L;
    this.map = L.map(node, { minZoom: 2, maxZoom: 20, zoomSnap: 0.5 });
    this.map.attributionControl.setPrefix('<a href="https://leafletjs.com" rel="noopener">Leaflet</a>');
    L.control.scale({ position: "bottomleft" }).addTo(this.map);
    this.map.setView([20, 0], 2);
    this.marker = null;
    this.cone = null;
    this.map.on("click", (e) => onPick(e.latlng.lat, e.latlng.lng));
  }

  show(lat, lon, bearing, fov, range, recenter) {
    const L = this.L;
    if (!this.marker) {
      this.marker = L.circleMarker([lat, lon], { radius: 7, className: "reg-marker", color: "#fff", weight: 2, fillColor: "#a78bfa", fillOpacity: 1 }).addTo(this.map);
    } else this.marker.setLatLng([lat, lon]);
    const pts = fov >= 360 ? null : sectorLatLngs(lat, lon, range, bearing, fov);
    if (this.cone) this.cone.remove();
    this.cone = pts
      ? L.polygon(pts, { className: "reg-cone", color: "#c4b5fd", weight: 1, fillOpacity: 0.25 }).addTo(this.map)
      : L.circle([lat, lon], { radius: range, className: "reg-cone", color: "#c4b5fd", weight: 1, fillOpacity: 0.2 }).addTo(this.map);
    if (recenter) this.map.setView([lat, lon], Math.max(this.map.getZoom(), 18));
  }
}

function num(id) {
  const v = $(id).value.trim().replace(",", ".");
  return v === "" ? NaN : Number(v);
}

function setupRegistration() {
  step("reg");
  const pmap = new PositionMap($("#reg-map"), (lat, lon) => {
    $("#reg-lat").value = lat.toFixed(6);
    $("#reg-lon").value = lon.toFixed(6);
    redraw(false);
  });
  const redraw = (recenter) => {
    $("#reg-bearing-out").textContent = $("#reg-bearing").value;
    $("#reg-fov-out").textContent = $("#reg-fov").value;
    const lat = num("#reg-lat"), lon = num("#reg-lon");
    if (!Number.isFinite(lat) || !Number.isFinite(lon) || Math.abs(lat) > 90 || Math.abs(lon) > 180) return;
    pmap.show(lat, lon, Number($("#reg-bearing").value), Number($("#reg-fov").value), Math.max(1, num("#reg-range") || 30), recenter);
  };
  for (const id of ["#reg-bearing", "#reg-fov", "#reg-range"]) $(id).addEventListener("input", () => redraw(false));
  for (const id of ["#reg-lat", "#reg-lon"]) $(id).addEventListener("change", () => redraw(true));
  $("#reg-level").addEventListener("change", () => {
    $("#reg-stream-row").hidden = $("#reg-level").value !== "integrated";
  });
  $("#reg-locate").addEventListener("click", () => {
    if (!navigator.geolocation) return fail(new ApiError(0, null, "This browser cannot tell your location: click the map."));
    navigator.geolocation.getCurrentPosition(
      (p) => {
        $("#reg-lat").value = p.coords.latitude.toFixed(6);
        $("#reg-lon").value = p.coords.longitude.toFixed(6);
        redraw(true);
      },
      () => fail(new ApiError(0, null, "Your location is not available: click the map where the camera is.")),
    );
  });
  setTimeout(() => pmap.map.invalidateSize(), 50);
  $("#reg-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const body = formBody();
    if (body.error) {
      message($("#reg-msg"), body.error);
      $("#reg-form").dataset.refused = "client";
      return;
    }
    delete $("#reg-form").dataset.refused;
    const btn = $("#reg-submit");
    btn.disabled = true;
    try {
      const res = await post("community/registrations", body.value);
      sessionStorage.setItem("rtcc-registration", String(res.registration_id));
      $("#verify-text").textContent = res.message || $("#verify-text").textContent;
      step("verify");
      $("#verify-code").focus();
    } catch (err) {
      fail(err);
    } finally {
      btn.disabled = false;
    }
  });
}

/** The registration body, or an error naming what is missing. */
function formBody() {
  const lat = num("#reg-lat"), lon = num("#reg-lon");
  const missing = [];
  const name = $("#reg-name").value.trim();
  const owner = $("#reg-owner").value.trim();
  const email = $("#reg-email").value.trim();
  if (!name) missing.push("a name for the camera");
  if (!Number.isFinite(lat) || !Number.isFinite(lon) || Math.abs(lat) > 90 || Math.abs(lon) > 180) missing.push("its position (click the map)");
  if (!owner) missing.push("your name");
  if (!/^[^@\s]+@[^@\s]+\.[^@\s]{2,}$/.test(email)) missing.push("a valid email address");
  const level = $("#reg-level").value;
  const stream = $("#reg-stream").value.trim();
  if (level === "integrated" && !stream) missing.push("the live feed address");
  if (missing.length) return { error: `Please give ${missing.join(", ")}.` };
  const value = {
    name,
    owner_type: $("#reg-owner-type").value,
    owner_name: owner,
    email,
    lat,
    lon,
    bearing_deg: Number($("#reg-bearing").value),
    fov_deg: Number($("#reg-fov").value),
    range_m: Math.max(1, num("#reg-range") || 30),
    level,
  };
  const phone = $("#reg-phone").value.trim();
  const address = $("#reg-address").value.trim();
  if (phone) value.phone = phone;
  if (address) value.address = address;
  if (level === "integrated") value.stream_url = stream;
  return { value };
}

// -- 2. verification -------------------------------------------------------------------

async function verify(body) {
  const res = await post("community/verify", body);
  sessionStorage.removeItem("rtcc-registration");
  // the owner's page, on the manage token (also emailed)
  history.replaceState(null, "", `register.html?manage=${encodeURIComponent(res.manage_token)}`);
  await showManage(res.manage_token, res.manage_url);
}

function setupVerifyForm() {
  $("#verify-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const code = $("#verify-code").value.replace(/\s+/g, "");
    const id = sessionStorage.getItem("rtcc-registration");
    if (!/^[0-9]{6}$/.test(code)) return message($("#reg-msg"), "Enter the 6-digit code from the email.");
    if (!id) return message($("#reg-msg"), "Open the link in the email instead (this browser did not register the camera).");
    const btn = $("#verify-submit");
    btn.disabled = true;
    try {
      await verify({ registration_id: id, code });
    } catch (err) {
      fail(err);
    } finally {
      btn.disabled = false;
    }
  });
}

// -- 3. the owner's page ----------------------------------------------------------------

async function showManage(token, manageUrl) {
  let reg;
  try {
    reg = await get(`community/manage/${encodeURIComponent(token)}`);
  } catch (err) {
    step("done");
    $("#done-title").textContent = "Link not valid";
    $("#done-text").textContent = err instanceof ApiError ? err.message : "This link does not work.";
    return;
  }
  step("manage");
  $("#manage-panel").dataset.status = reg.status;
  if (manageUrl) {
    $("#manage-link").hidden = false;
    $("#manage-link").replaceChildren("Your manage link: ", el("a", { href: manageUrl }, manageUrl));
  }
  const status = {
    pending_verification: "waiting for you to confirm your email",
    pending_approval: "confirmed — waiting for the center to approve it",
    active: "active",
    rejected: "not accepted by the center",
  }[reg.status] || words(reg.status);
  $("#manage-body").replaceChildren(
    el(
      "table",
      { class: "kv", id: "manage-table" },
      el("tr", {}, el("th", {}, "Camera"), el("td", {}, reg.name)),
      el("tr", { dataset: { status: reg.status } }, el("th", {}, "Status"), el("td", { id: "manage-status" }, status)),
      el("tr", {}, el("th", {}, "Sharing"), el("td", {}, reg.level === "integrated" ? "live feed" : "footage on request")),
      el("tr", {}, el("th", {}, "Position"), el("td", {}, Number.isFinite(reg.lat) ? `${reg.lat.toFixed(5)}, ${reg.lon.toFixed(5)}` : "—")),
      el("tr", {}, el("th", {}, "View"), el("td", {}, `${Math.round(reg.bearing_deg)}° · ${Math.round(reg.fov_deg)}° wide · ${Math.round(reg.range_m)} m`)),
      el("tr", {}, el("th", {}, "Contact"), el("td", {}, [reg.owner_name, reg.email, reg.phone].filter(Boolean).join(" · "))),
    ),
  );
  const reqs = reg.requests || [];
  $("#manage-requests").replaceChildren(
    ...(reqs.length ? reqs.map((r) => requestRow(r, `community/manage/${encodeURIComponent(token)}/requests/${encodeURIComponent(r.id)}`, () => showManage(token, manageUrl))) : [el("li", { class: "muted empty" }, "No request.")]),
  );
  const form = $("#withdraw-form");
  form.onsubmit = async (e) => {
    e.preventDefault();
    if (!$("#withdraw-confirm").checked) return message($("#reg-msg"), "Tick the box to confirm you want to withdraw.");
    const btn = $("#withdraw-submit");
    btn.disabled = true;
    try {
      const res = await call(`community/manage/${encodeURIComponent(token)}`, { method: "DELETE" });
      history.replaceState(null, "", "register.html");
      done("Withdrawn", (res && res.message) || "Your camera, contact details and clips were deleted.");
    } catch (err) {
      fail(err);
    } finally {
      btn.disabled = false;
    }
  };
}

/** A footage request: window, reason, status; upload a clip or decline when still open. */
function requestRow(r, base, reload) {
  const open = r.status === "requested" || r.status === "notified";
  const file = el("input", { type: "file", accept: "video/*", "aria-label": "Clip" });
  const note = el("input", { maxlength: "1000", placeholder: "note to the center (optional)", "aria-label": "Note" });
  const act = async (fn, btn) => {
    btn.disabled = true;
    try {
      await fn();
      await reload();
    } catch (err) {
      fail(err);
    } finally {
      btn.disabled = false;
    }
  };
  return el(
    "li",
    { class: "request-row", dataset: { requestId: String(r.id), status: r.status } },
    el("div", { class: "row-main" }, el("span", { class: "row-title" }, `${stamp(r.window_start)} – ${stamp(r.window_end)}`), el("span", { class: `status-tag st-${r.status}` }, words(r.status))),
    el("p", {}, r.reason),
    open
      ? el(
          "div",
          { class: "row-actions" },
          file,
          note,
          el("button", {
            type: "button",
            class: "btn-small btn-primary",
            onclick: (e) => {
              const f = file.files && file.files[0];
              if (!f) return message($("#reg-msg"), "Choose the clip to send.");
              if (f.size > MAX_CLIP_BYTES) return message($("#reg-msg"), `The clip is too large (at most ${MAX_CLIP_BYTES / 1e6} MB here).`);
              return act(() => upload(`${base}/clip`, f, note.value.trim()), e.currentTarget);
            },
          }, "Send clip"),
          el("button", { type: "button", class: "btn-small btn-ghost", onclick: (e) => act(() => post(`${base}/decline`, { note: note.value.trim() }), e.currentTarget) }, "Decline"),
        )
      : null,
  );
}

// -- 4. one footage request from a mailed link -------------------------------------------

async function showFootage(token) {
  step("footage");
  const base = `community/footage/${encodeURIComponent(token)}`;
  try {
    const r = await get(base);
    $("#footage-body").replaceChildren(el("ol", { class: "rows" }, requestRow(r, base, () => showFootage(token))));
  } catch (err) {
    done("Link not valid", err instanceof ApiError ? err.message : "This link does not work.");
  }
}

// -- start ----------------------------------------------------------------------------------

async function main() {
  setupVerifyForm();
  const q = new URLSearchParams(window.location.search);
  if (q.get("manage")) return showManage(q.get("manage"));
  if (q.get("footage")) return showFootage(q.get("footage"));
  if (q.get("verify")) {
    step("verify");
    try {
      await verify({ token: q.get("verify") });
    } catch (err) {
      fail(err);
    }
    return;
  }
  setupRegistration();
}

main();
