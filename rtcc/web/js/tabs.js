// The side panel's tabs: buttons `#side-tabs [data-tab]` show `#tab-<name>`.
// A tab shows only once it is enabled (the role may use it and the center has it).

import { $, show } from "./dom.js";

export class Tabs {
  /** @param {HTMLElement} nav  @param {{onShow?: (name: string) => void}} hooks */
  constructor(nav, hooks = {}) {
    this.nav = nav;
    this.hooks = hooks;
    this.current = "feed";
    this._onClick = (e) => {
      const btn = e.target.closest("[data-tab]");
      if (btn) this.select(btn.dataset.tab);
    };
    nav.addEventListener("click", this._onClick);
    this.select("feed");
  }

  enable(name, on) {
    const btn = $(`[data-tab="${name}"]`, this.nav);
    if (btn) show(btn, on);
    if (!on && this.current === name) this.select("feed");
  }

  select(name) {
    for (const btn of this.nav.querySelectorAll("[data-tab]")) {
      const on = btn.dataset.tab === name;
      btn.setAttribute("aria-selected", String(on));
      const panel = document.getElementById(`tab-${btn.dataset.tab}`);
      if (panel) show(panel, on);
    }
    this.current = name;
    if (this.hooks.onShow) this.hooks.onShow(name);
  }

  destroy() {
    this.nav.removeEventListener("click", this._onClick);
    for (const btn of this.nav.querySelectorAll("[data-tab]")) if (btn.dataset.tab !== "feed") show(btn, false);
    this.select("feed");
    this.hooks = {};
    for (const name of ["alerts", "plates", "cameras", "units", "stats", "audit", "users"]) {
      const panel = document.getElementById(`tab-${name}`);
      if (panel) panel.replaceChildren();
    }
  }
}
