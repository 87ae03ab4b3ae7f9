// Small DOM helpers. Text from the center always goes in as text, never as HTML.

/** `el("div", {class: "x", dataset: {id: 1}}, "text", child)` */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "dataset") Object.assign(node.dataset, v);
    else if (k === "style") node.style.cssText = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

export const $ = (sel, root = document) => root.querySelector(sel);

/** "18:39:30" in local time, or "" for a missing/invalid timestamp. */
export function clock(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return "";
  return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false });
}

/** "12 s ago", "3 min ago", … relative to now. */
export function ago(iso) {
  if (!iso) return "never";
  const s = Math.max(0, (Date.now() - new Date(iso).getTime()) / 1000);
  if (s < 60) return `${Math.round(s)} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return new Date(iso).toLocaleString();
}

export function show(node, visible) {
  node.hidden = !visible;
}

/** "2026-11-21 18:39" in local time, or "" for a missing/invalid timestamp. */
export function stamp(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return "";
  const p = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}`;
}

/** A value from the first of `keys` that `obj` has (APIs name things differently). */
export function pick(obj, ...keys) {
  if (!obj) return undefined;
  for (const k of keys) if (obj[k] !== undefined && obj[k] !== null) return obj[k];
  return undefined;
}

/** The list in a response: the array itself, or its `items`. */
export function items(res) {
  if (Array.isArray(res)) return res;
  if (res && Array.isArray(res.items)) return res.items;
  return [];
}

/** A status line (`.msg[data-kind]`) the panels use for errors and results. */
export function message(node, text, kind = "error") {
  node.textContent = text || "";
  node.dataset.kind = kind;
  node.hidden = !text;
}

/** `{lat, lon}` from an object that has `pos`, or `lat`/`lon` (null when neither). */
export function position(obj) {
  if (!obj) return null;
  const p = obj.pos || obj.position || obj;
  if (p.lat === null || p.lat === undefined || p.lon === null || p.lon === undefined) return null;
  const lat = Number(p.lat), lon = Number(p.lon);
  return Number.isFinite(lat) && Number.isFinite(lon) ? { lat, lon } : null;
}

/** Metres between two {lat, lon} (haversine), or undefined when one is missing. */
export function metres(a, b) {
  if (!a || !b) return undefined;
  const R = 6371008.8, rad = Math.PI / 180;
  const dlat = (b.lat - a.lat) * rad, dlon = (b.lon - a.lon) * rad;
  const h = Math.sin(dlat / 2) ** 2 + Math.cos(a.lat * rad) * Math.cos(b.lat * rad) * Math.sin(dlon / 2) ** 2;
  return 2 * R * Math.asin(Math.sqrt(h));
}

/** Human text for snake_case enum values ("recovered_gun" → "recovered gun"). */
export function words(s) {
  return String(s ?? "").replace(/_/g, " ");
}

/**
 * Make `list`'s children exactly `nodes`, in order, touching only what differs
 * (a row that stays keeps its place, its focus and any form open in it).
 */
export function reconcile(list, nodes) {
  const keep = new Set(nodes);
  for (const child of [...list.children]) if (!keep.has(child)) child.remove();
  nodes.forEach((node, i) => {
    if (list.children[i] !== node) list.insertBefore(node, list.children[i] || null);
  });
}
