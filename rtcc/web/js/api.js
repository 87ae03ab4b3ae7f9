// The center's HTTP API, as the dashboard uses it.
//
// Calls go to paths relative to the page (so the dashboard also works behind a
// path prefix) and authenticate with the HttpOnly `rtcc_session` cookie the
// login sets: the page never stores the token. Every error the center sends is
// the envelope {"error": {"code", "message", "details"}, "request_id"}; it
// surfaces here as an ApiError. A 401 from any call (other than the login
// itself) means the session ended: the handler set with onUnauthorized runs.

export const API = "api/v1/";

export class ApiError extends Error {
  constructor(status, envelope, fallback) {
    const err = (envelope && envelope.error) || {};
    super(err.message || fallback || `request failed (HTTP ${status})`);
    this.name = "ApiError";
    this.status = status;
    this.code = err.code || (status === 0 ? "network" : "http_" + status);
    this.details = err.details || {};
    this.requestId = envelope ? envelope.request_id : undefined;
  }
}

let unauthorized = () => {};

/** Run `fn(error)` whenever a call answers 401 (the session is gone). */
export function onUnauthorized(fn) {
  unauthorized = fn;
}

/**
 * Call the API. `path` is relative to /api/v1/ (e.g. "devices").
 * Options: method, body (JSON), query (object; arrays repeat the key),
 * expect401 (a 401 is an ordinary error for this call, e.g. the login).
 */
export async function call(path, { method = "GET", body, query, expect401 = false } = {}) {
  const url = new URL(API + path, document.baseURI);
  for (const [k, v] of Object.entries(query || {})) {
    for (const item of Array.isArray(v) ? v : [v]) url.searchParams.append(k, String(item));
  }
  const init = { method, credentials: "same-origin", headers: { accept: "application/json" } };
  if (body !== undefined) {
    init.headers["content-type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(url, init);
  } catch (e) {
    throw new ApiError(0, null, "cannot reach the center — check the network connection");
  }
  if (res.status === 204) return null;
  let data = null;
  try {
    data = await res.json();
  } catch (e) {
    data = null;
  }
  if (!res.ok) {
    const err = new ApiError(res.status, data);
    if (res.status === 401 && !expect401) unauthorized(err);
    throw err;
  }
  return data;
}

export const get = (path, query) => call(path, { query });
export const post = (path, body, opts = {}) => call(path, { method: "POST", body, ...opts });

/** The live WebSocket's URL (same origin; ws: or wss: to match the page). */
export function wsUrl(path = "ws") {
  const url = new URL(API + path, document.baseURI);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  return url.toString();
}

/**
 * What this center's API offers, from its OpenAPI document: `has("GET", "/alerts")`.
 * Path templates match with any parameter names (`/packets/{kind}/{ref_id}` ~ `/packets/{a}/{b}`).
 * Panels whose API is missing are left out instead of failing. `schema("Role")` is a schema of the
 * document's components (null when unknown), e.g. the values an enum accepts.
 */
export async function capabilities() {
  const routes = new Set();
  let doc;
  try {
    doc = await get("openapi.json");
    for (const [path, ops] of Object.entries((doc && doc.paths) || {})) {
      const rel = path.replace(/^\/api\/v1/, "").replace(/\{[^}]+\}/g, "{}");
      for (const m of Object.keys(ops)) routes.add(`${m.toUpperCase()} ${rel}`);
    }
  } catch (e) {
    return { has: () => true, known: false, schema: () => null }; // cannot tell: try everything
  }
  const schemas = (doc && doc.components && doc.components.schemas) || {};
  return {
    has: (method, path) => routes.has(`${method.toUpperCase()} ${path.replace(/\{[^}]+\}/g, "{}")}`),
    known: true,
    schema: (name) => schemas[name] || null,
  };
}
