// Co-travelling vehicles: plates read with a given plate at N or more cameras, each time
// within T seconds of it (GET /plates/cotravel).
//
// The purpose, case number and period come from the plate panel's "why" block
// (plates.js). This form does not check them itself: the center refuses a
// search without them and audits the refusal; its message is shown here
// (`#cotravel-search[data-refused=server]`).
// Results: `#cotravel-results li[data-plate][data-cameras][data-sightings]`; a click
// draws both vehicles' tracks on the map in two colours
// (`[data-track-plate][data-track-index][data-track-role=target|cotraveller]`).

import * as api from "./api.js";
import { clock, el, items, message, position, stamp } from "./dom.js";
import { busy, errorText } from "./forms.js";

export const TRACK_COLORS = { target: "#facc15", cotraveller: "#f472b6" };

function field(label, input) {
  return el("label", { class: "field" }, el("span", {}, label), input);
}

const plural = (n, one, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

/**
 * Draw several vehicles' tracks (reads in time order) in their role's colour, replacing the
 * track layer. The co-traveller's numbered points sit beside the target's, so both show
 * where they passed the same camera. Returns the number of points drawn.
 *
 * @param {object} ops  the OpsMap  @param {{plate: string, role: "target"|"cotraveller", reads: object[]}[]} tracks
 */
export function drawTracks(ops, tracks) {
  if (!ops || ops.destroyed) return 0;
  const L = ops.L;
  ops.groups.track.clearLayers();
  const all = [];
  for (const t of tracks) {
    const pts = t.reads.map((r) => ({ r, p: position(r) })).filter((x) => x.p);
    if (!pts.length) continue;
    const color = TRACK_COLORS[t.role];
    L.polyline(
      pts.map((x) => [x.p.lat, x.p.lon]),
      { className: `track-line track-${t.role}`, color, weight: 3, dashArray: t.role === "target" ? "6 5" : "2 6" },
    ).addTo(ops.groups.track);
    const anchor = t.role === "target" ? [9, 9] : [-3, 21];
    pts.forEach((x, i) => {
      const m = L.marker([x.p.lat, x.p.lon], {
        icon: L.divIcon({ className: `track-point tr-${t.role}`, html: el("span", {}, String(i + 1)), iconSize: [18, 18], iconAnchor: anchor }),
        title: `${t.plate} #${i + 1}`,
        zIndexOffset: t.role === "target" ? 0 : 100,
      });
      m.on("add", () => {
        const n = m.getElement();
        if (n) Object.assign(n.dataset, { trackPlate: t.plate, trackIndex: String(i + 1), trackRole: t.role });
      });
      m.bindTooltip(el("span", {}, `${t.plate} · ${clock(x.r.read_at || x.r.occurred_at)} · ${x.r.device || ""}`), { direction: "top" });
      m.addTo(ops.groups.track);
      all.push([x.p.lat, x.p.lon]);
    });
  }
  ops.setVisible("track", true);
  // no animation: the view is final when the legend shows (and in screenshots)
  if (all.length) ops.map.fitBounds(L.latLngBounds(all), { padding: [40, 40], maxZoom: 17, animate: false });
  return all.length;
}

export class CoTravel {
  /**
   * @param {{map: object, why: () => object, period: () => object}} hooks
   *   why: purpose, purpose_category and case_number; period: start and end (ISO), when set
   */
  constructor(hooks) {
    this.hooks = hooks;
    this.plate = el("input", { id: "ct-plate", name: "plate", autocapitalize: "characters", spellcheck: "false", maxlength: "16", placeholder: "e.g. 7ABC123" });
    this.minCameras = el("input", { id: "ct-cameras", name: "min_cameras", type: "number", min: "1", max: "100", step: "1", value: "2", inputmode: "numeric" });
    this.window = el("input", { id: "ct-window", name: "window_s", type: "number", min: "1", max: "3600", step: "any", value: "60", inputmode: "numeric" });
    this.btn = el("button", { id: "ct-submit", type: "submit", class: "btn-primary" }, "Find co-travellers");
    this.msg = el("p", { id: "cotravel-msg", class: "msg", role: "alert", hidden: true });
    this.legend = el("p", { id: "cotravel-legend", class: "track-legend small", hidden: true });
    this.results = el("ol", { id: "cotravel-results", class: "rows" });
    this.form = el(
      "form",
      { id: "cotravel-search", class: "panel-form", novalidate: true },
      el("p", { class: "muted small" }, "Vehicles read with a plate at N or more cameras, each time within T seconds of it. The purpose and case number above apply."),
      field("Plate", this.plate),
      el("div", { class: "two" }, field("N cameras (at least)", this.minCameras), field("T seconds (at most apart)", this.window)),
      this.btn,
      this.msg,
    );
    this.form.addEventListener("submit", (e) => {
      e.preventDefault();
      this.search();
    });
    this.node = el("div", { class: "cotravel" }, this.form, this.legend, this.results);
  }

  /** Search the co-travellers of `plate` (or of the plate typed). */
  async run(plate) {
    if (plate) this.plate.value = plate;
    await this.search();
  }

  async search() {
    const plate = this.plate.value.toUpperCase().replace(/[^A-Z0-9]+/g, "");
    if (!plate) {
      message(this.msg, "Type the plate whose co-travellers you look for.");
      this.form.dataset.refused = "client";
      return;
    }
    this.plate.value = plate;
    const q = { ...this.hooks.why(), ...this.hooks.period(), plate };
    if (this.minCameras.value !== "") q.min_cameras = this.minCameras.value;
    if (this.window.value !== "") q.window_s = this.window.value;
    delete this.form.dataset.refused;
    message(this.msg, "");
    await busy(this.btn, async () => {
      let res;
      try {
        res = await api.get("plates/cotravel", q);
      } catch (err) {
        this.form.dataset.refused = err.status === 422 ? "server" : "error";
        message(this.msg, errorText(err));
        return;
      }
      const found = items(res);
      const reads = res && Number.isFinite(res.target_reads) ? res.target_reads : 0;
      message(
        this.msg,
        reads
          ? `${plural(found.length, "vehicle")} seen with ${plate} at ${q.min_cameras || 2}+ cameras within ${q.window_s || 60} s (${plural(reads, "read")} of ${plate}).`
          : `No reads of ${plate} in this period.`,
        found.length ? "ok" : "info",
      );
      this.legend.hidden = true;
      this.results.replaceChildren(...found.map((c) => this._row(c, q)));
    });
  }

  _row(c, q) {
    const cams = c.cameras || [];
    const li = el(
      "li",
      { class: "cotravel-row", dataset: { plate: c.plate, cameras: String(cams.length), sightings: String(c.sightings || 0) } },
      el(
        "div",
        { class: "row-main", title: "Show both tracks on the map" },
        el("span", { class: "plate" }, c.plate),
        el("span", { class: "status-tag" }, plural(cams.length, "camera")),
        el("span", { class: "muted" }, plural(c.sightings || 0, "sighting")),
      ),
      el("div", { class: "row-meta" }, el("span", {}, `${stamp(c.first_at)} – ${clock(c.last_at)}`), el("span", { class: "cams" }, cams.join(", "))),
      el("div", { class: "row-actions" }, el("button", { type: "button", class: "btn-small btn-ghost", dataset: { action: "tracks" } }, "Show both tracks")),
    );
    const btn = li.querySelector('[data-action="tracks"]');
    const go = () => this.tracks(c.plate, q, btn, li);
    btn.addEventListener("click", go);
    li.querySelector(".row-main").addEventListener("click", go);
    return li;
  }

  /** Both vehicles' tracks on the map (two audited track searches under the same purpose). */
  async tracks(other, q, btn, li) {
    const terms = { purpose: q.purpose, purpose_category: q.purpose_category, case_number: q.case_number };
    if (q.start) terms.start = q.start;
    if (q.end) terms.end = q.end;
    await busy(btn, async () => {
      try {
        const [a, b] = await Promise.all([q.plate, other].map((plate) => api.get("plates/track", { ...terms, plate })));
        const n = drawTracks(this.hooks.map, [
          { plate: q.plate, role: "target", reads: items(a) },
          { plate: other, role: "cotraveller", reads: items(b) },
        ]);
        for (const row of this.results.children) row.classList.toggle("selected", row === li);
        this.legend.replaceChildren(
          el("span", { class: "swatch tr-target" }), el("span", { class: "plate" }, q.plate), ` ${plural(items(a).length, "read")}`,
          el("span", { class: "swatch tr-cotraveller" }), el("span", { class: "plate" }, other), ` ${plural(items(b).length, "read")}`,
        );
        this.legend.dataset.points = String(n);
        this.legend.hidden = false;
      } catch (err) {
        message(this.msg, errorText(err));
      }
    });
  }
}
