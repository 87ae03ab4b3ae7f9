// Accounts (admins only): every account with its role, MFA, disabled and locked state; create an
// account; per account change the role, disable / enable it, unlock it (after failed logins) and
// reset its MFA (a lost phone; asks for a confirmation first), set its password (another account's:
// an inline form, new password twice; the center ends that account's sessions and lifts a lockout;
// your own you change with the header's "Change password"). The center refuses what would leave
// no enabled admin (409) and bad input (422): its message shows in `#users-msg`. After each change
// the list is read again. Changing your own account can end your session (a new role, disabled):
// the page then goes back to sign-in. Every change is audited by the center.
// DOM hooks: `#user-form[data-refused=client|server]`, `#user-rows tr[data-username][data-role]
// [data-disabled][data-locked][data-mfa]`, in a row `select[name=role]` and buttons
// `[data-action=set-role|disable|enable|unlock|reset-mfa|confirm-reset-mfa|set-password|cancel]`, `[data-action=refresh]`,
// `#users-msg`; the set-password form `form.password-form[data-form=set][data-refused=client|server]` in the row.

import * as api from "./api.js";
import { el, items, message } from "./dom.js";
import { busy, errorText } from "./forms.js";
import { passwordForm } from "./password.js";

/** The roles an account can hold when the API document does not say (`public` is no account's). */
const FALLBACK_ROLES = ["admin", "supervisor", "analyst", "officer", "auditor"];
const ROLE_HINTS = {
  admin: "accounts, devices, settings and operations",
  supervisor: "operations and body-cam control",
  analyst: "searches and analysis",
  officer: "alerts in the field",
  auditor: "the oversight board: the audit log and statistics",
};

function field(label, input) {
  return el("label", { class: "field" }, el("span", {}, label), input);
}

/** The roles the API accepts for an account (its `Role` enum in the OpenAPI document), minus `public`. */
export function accountRoles(caps) {
  const schema = caps && caps.schema ? caps.schema("Role") : null;
  const roles = schema && Array.isArray(schema.enum) ? schema.enum.filter((r) => r !== "public") : [];
  return roles.length ? roles : FALLBACK_ROLES;
}

function roleSelect(roles, current, attrs = {}) {
  return el("select", attrs, ...roles.map((r) => el("option", { value: r, selected: r === current, title: ROLE_HINTS[r] }, r)));
}

export class UserAdmin {
  /** @param {HTMLElement} root  @param {{me?: string, caps?: object}} opts */
  constructor(root, { me = "", caps = null } = {}) {
    this.root = root;
    this.me = me;
    this.roles = accountRoles(caps);
    this.msg = el("p", { id: "users-msg", class: "msg", role: "alert", hidden: true });
    this.rows = el("tbody", { id: "user-rows" });
    this._buildForm();
    // lockouts come from failed logins elsewhere: the list is read on demand too
    this.refreshBtn = el("button", { type: "button", class: "btn-small btn-ghost", dataset: { action: "refresh" } }, "Refresh");
    this.refreshBtn.addEventListener("click", () => busy(this.refreshBtn, () => this.load()));
    const table = el(
      "table",
      { id: "user-table", class: "data-table user-table" },
      el(
        "thead",
        {},
        el("tr", {}, ...["Username", "Display name", "Role", "MFA", "State", "Actions"].map((h) => el("th", { scope: "col" }, h))),
      ),
      this.rows,
    );
    root.replaceChildren(
      el("div", { class: "panel-head" }, el("h2", {}, "Accounts"), this.refreshBtn),
      el(
        "div",
        { class: "panel-scroll" },
        this.msg,
        el("div", { class: "table-scroll" }, table),
        el("h3", { class: "sub-head" }, "New account"),
        this.form,
      ),
    );
  }

  _buildForm() {
    this.f = {
      username: el("input", { id: "user-username", name: "username", maxlength: "64", autocomplete: "off", autocapitalize: "none", spellcheck: "false", placeholder: "e.g. j.doe" }),
      display_name: el("input", { id: "user-display", name: "display_name", maxlength: "128", autocomplete: "off", placeholder: "e.g. Jane Doe" }),
      role: roleSelect(this.roles, "analyst", { id: "user-role-new", name: "role" }),
      password: el("input", { id: "user-password", name: "password", type: "password", maxlength: "1024", autocomplete: "new-password" }),
    };
    this.createBtn = el("button", { id: "user-submit", type: "submit", class: "btn-primary" }, "Create account");
    const f = this.f;
    this.form = el(
      "form",
      { id: "user-form", class: "panel-form", novalidate: true },
      el("div", { class: "two" }, field("Username", f.username), field("Display name", f.display_name)),
      el("div", { class: "two" }, field("Role", f.role), field("Initial password", f.password)),
      el("p", { class: "muted small" }, "Give the initial password to the person in a safe way; the center's password rules apply."),
      this.createBtn,
    );
    this.form.addEventListener("submit", (e) => {
      e.preventDefault();
      this.create();
    });
  }

  /** The new account as the API takes it, or an error message (nothing is sent then). */
  body() {
    const f = this.f;
    const username = f.username.value.trim();
    const problems = [];
    if (!username) problems.push("a username");
    if (!f.password.value) problems.push("an initial password");
    if (problems.length) return { error: `A new account needs ${problems.join(" and ")}.` };
    return { body: { username, display_name: f.display_name.value.trim(), role: f.role.value, password: f.password.value } };
  }

  async create() {
    const { body, error } = this.body();
    if (error) {
      this.form.dataset.refused = "client";
      message(this.msg, error);
      return;
    }
    await busy(this.createBtn, async () => {
      let u;
      try {
        u = await api.post("users", body);
      } catch (err) {
        this.form.dataset.refused = "server";
        message(this.msg, errorText(err));
        return;
      }
      delete this.form.dataset.refused;
      for (const k of ["username", "display_name", "password"]) this.f[k].value = "";
      await this.load();
      message(this.msg, `Account ${u.username} created (${u.role}).`, "ok");
    });
  }

  /** (Re)read every account. */
  async load() {
    let res;
    try {
      res = await api.get("users");
    } catch (err) {
      message(this.msg, `Accounts unavailable: ${errorText(err)}`);
      return;
    }
    const users = items(res);
    this.rows.replaceChildren(...(users.length ? users.map((u) => this._row(u)) : [el("tr", {}, el("td", { colspan: "6", class: "muted" }, "No accounts."))]));
  }

  /** Send a change for `u`, then show the outcome and read the list again. */
  async change(btn, u, done, fn) {
    await busy(btn, async () => {
      try {
        await fn();
      } catch (err) {
        message(this.msg, `${u.username}: ${errorText(err)}`);
        await this.load();
        return;
      }
      await this.load();
      message(this.msg, done, "ok");
    });
  }

  patch(u, body) {
    return api.call(`users/${encodeURIComponent(u.username)}`, { method: "PATCH", body });
  }

  _row(u) {
    const you = u.username === this.me;
    const state = [];
    if (u.disabled) state.push(el("span", { class: "status-tag st-disabled" }, "disabled"));
    if (u.locked) state.push(el("span", { class: "status-tag st-locked" }, "locked"));
    if (!state.length) state.push(el("span", { class: "status-tag st-active" }, "active"));
    const role = roleSelect(this.roles, u.role, { name: "role", "aria-label": `Role of ${u.username}` });
    const setRole = el("button", { type: "button", class: "btn-small btn-ghost", dataset: { action: "set-role" }, disabled: true }, "Set role");
    role.addEventListener("change", () => {
      setRole.disabled = role.value === u.role;
    });
    setRole.addEventListener("click", () =>
      this.change(setRole, u, `${u.username} is now ${role.value}.`, () => this.patch(u, { role: role.value })),
    );
    const actions = el("div", { class: "row-actions" });
    const toggle = u.disabled
      ? el("button", { type: "button", class: "btn-small btn-ghost", dataset: { action: "enable" } }, "Enable")
      : el("button", { type: "button", class: "btn-small btn-ghost btn-warn", dataset: { action: "disable" }, title: "Ends the account's sessions; it can no longer sign in" }, "Disable");
    toggle.addEventListener("click", () =>
      this.change(toggle, u, `${u.username} ${u.disabled ? "enabled" : "disabled"}.`, () => this.patch(u, { disabled: !u.disabled })),
    );
    actions.append(toggle);
    if (u.locked) {
      const unlock = el("button", { type: "button", class: "btn-small btn-ghost", dataset: { action: "unlock" }, title: "Lift the lockout after failed logins" }, "Unlock");
      unlock.addEventListener("click", () => this.change(unlock, u, `${u.username} unlocked.`, () => this.patch(u, { locked: false })));
      actions.append(unlock);
    }
    if (!you) {
      const setPw = el("button", { type: "button", class: "btn-small btn-ghost", dataset: { action: "set-password" }, title: "Set a new password; ends the account's sessions and lifts a lockout" }, "Set password");
      setPw.addEventListener("click", () => actions.replaceChildren(this._setPassword(u, actions)));
      actions.append(setPw);
    }
    if (u.mfa_enabled) {
      const reset = el("button", { type: "button", class: "btn-small btn-ghost", dataset: { action: "reset-mfa" } }, "Reset MFA");
      reset.addEventListener("click", () => actions.replaceChildren(this._confirmReset(u, actions)));
      actions.append(reset);
    }
    return el(
      "tr",
      {
        class: ["user-row", u.disabled ? "user-disabled" : ""].join(" ").trim(),
        dataset: { username: u.username, role: u.role, disabled: String(u.disabled), locked: String(u.locked), mfa: String(u.mfa_enabled) },
      },
      el("td", { class: "mono" }, u.username, you ? el("span", { class: "muted" }, " (you)") : null),
      el("td", {}, u.display_name),
      el("td", {}, el("div", { class: "role-cell" }, role, setRole)),
      el("td", {}, el("span", { class: `status-tag ${u.mfa_enabled ? "st-active" : ""}` }, u.mfa_enabled ? "on" : "off")),
      el("td", {}, ...state),
      el("td", {}, actions),
    );
  }

  /** A new password for `u` (twice), in place of the row's buttons; the center's refusal shows in it. */
  _setPassword(u, actions) {
    const keep = [...actions.childNodes];
    return passwordForm({
      kind: "set",
      username: u.username,
      submit: "Set password",
      onCancel: () => actions.replaceChildren(...keep),
      onSubmit: async ({ new_password }) => {
        await api.post(`users/${encodeURIComponent(u.username)}/password`, { password: new_password });
        await this.load();
        message(this.msg, `New password set for ${u.username}; their sessions were signed out.`, "ok");
      },
    });
  }

  /** "Turn MFA off for …?" with Confirm / Cancel in place of the row's buttons. */
  _confirmReset(u, actions) {
    const keep = [...actions.childNodes];
    const confirm = el("button", { type: "button", class: "btn-small btn-primary", dataset: { action: "confirm-reset-mfa" } }, "Confirm reset");
    const cancel = el("button", { type: "button", class: "btn-small btn-ghost", dataset: { action: "cancel" }, onclick: () => actions.replaceChildren(...keep) }, "Cancel");
    confirm.addEventListener("click", () =>
      this.change(confirm, u, `MFA of ${u.username} turned off: they set it up again at their next sign-in if it is required.`, () =>
        api.post(`users/${encodeURIComponent(u.username)}/reset-mfa`),
      ),
    );
    setTimeout(() => confirm.focus(), 0);
    return el(
      "div",
      { class: "confirm-box", role: "group", "aria-label": `Reset MFA of ${u.username}` },
      el("span", { class: "small" }, `Turn off two-factor sign-in for ${u.username}?`),
      confirm,
      cancel,
    );
  }
}
