// The live WebSocket (/api/v1/ws, cookie auth), with reconnection and backoff.
//
// States, shown by the indicator (#ws-status, its text and data-state):
//   connecting   — first attempt
//   live         — the server said hello; events are flowing
//   reconnecting — the connection dropped; retrying with backoff (1 s … 30 s, jittered)
// A connection that closes before the hello may mean the session ended: the
// caller's `checkSession` (e.g. GET /auth/me, whose 401 sends the page back to
// the login) is asked before each retry.

import { wsUrl } from "./api.js";

const MIN_DELAY_MS = 1000;
const MAX_DELAY_MS = 30000;
const PING_EVERY_MS = 25000;

export class LiveStream {
  /**
   * @param {{onEvent: (ev: object, subject: string) => void, onHello?: (hello: object, reconnected: boolean) => void,
   *          onState?: (state: string) => void, checkSession?: () => Promise<boolean>}} hooks
   */
  constructor(hooks) {
    this.hooks = hooks;
    this.ws = null;
    this.state = "idle";
    this.attempt = 0;
    this.helloCount = 0;
    this.stopped = true;
    this._retry = null;
    this._ping = null;
  }

  start() {
    this.stopped = false;
    this._setState("connecting");
    this._connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this._retry);
    clearInterval(this._ping);
    if (this.ws) {
      this.ws.onclose = null;
      this.ws.close(1000, "bye");
      this.ws = null;
    }
    this._setState("idle");
  }

  _setState(state) {
    if (this.state === state) return;
    this.state = state;
    if (this.hooks.onState) this.hooks.onState(state);
  }

  _connect() {
    let ws;
    try {
      ws = new WebSocket(wsUrl());
    } catch (e) {
      this._scheduleRetry(false);
      return;
    }
    this.ws = ws;
    let greeted = false;
    ws.onmessage = (msg) => {
      let data;
      try {
        data = JSON.parse(msg.data);
      } catch (e) {
        return;
      }
      if (data.kind === "hello") {
        greeted = true;
        this.attempt = 0;
        this.helloCount += 1;
        this._setState("live");
        if (this.hooks.onHello) this.hooks.onHello(data, this.helloCount > 1);
      } else if (data.kind === "event" && data.event) {
        try {
          this.hooks.onEvent(data.event, data.subject);
        } catch (e) {
          console.error("live event handler failed", e, data);
        }
      }
    };
    ws.onclose = () => {
      clearInterval(this._ping);
      if (this.ws === ws) this.ws = null;
      if (!this.stopped) this._scheduleRetry(greeted);
    };
    ws.onerror = () => {
      // onclose follows; nothing else to do
    };
    clearInterval(this._ping);
    this._ping = setInterval(() => {
      if (ws.readyState === WebSocket.OPEN) ws.send("ping");
    }, PING_EVERY_MS);
  }

  async _scheduleRetry(wasLive) {
    this._setState("reconnecting");
    if (!wasLive && this.hooks.checkSession) {
      // refused before the hello: is the session still valid? (a 401 ends the dashboard)
      let ok = true;
      try {
        ok = await this.hooks.checkSession();
      } catch (e) {
        ok = true; // the center is unreachable: keep retrying
      }
      if (!ok || this.stopped) return;
    }
    const base = Math.min(MAX_DELAY_MS, MIN_DELAY_MS * 2 ** this.attempt);
    this.attempt += 1;
    const delay = base / 2 + Math.random() * (base / 2);
    clearTimeout(this._retry);
    this._retry = setTimeout(() => {
      if (!this.stopped) this._connect();
    }, delay);
  }
}
