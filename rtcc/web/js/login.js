// Sign-in and MFA enrolment screens.
//
// Sign-in posts /auth/login; the server sets the session cookie. When the
// server answers that a code is needed (details.mfa_required) the code field
// appears. A 423 is a lockout. When the login says mfa_enrolment_required (or
// /auth/me says mfa_pending) the enrolment panel shows the TOTP secret, its
// otpauth URI (and a QR code) and asks for a code to confirm.

import { ApiError, get, post } from "./api.js";
import { $, el, show } from "./dom.js";

function message(err) {
  if (err instanceof ApiError) return err.message;
  return "something went wrong — try again";
}

function lockoutText(err) {
  const until = err.details && err.details.locked_until;
  if (!until) return err.message;
  const t = new Date(until);
  const when = Number.isNaN(t.getTime()) ? until : t.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  return `${err.message} (until ${when})`;
}

/** The secret in groups of four, as authenticator apps show it. */
function grouped(secret) {
  return (secret.match(/.{1,4}/g) || [secret]).join(" ");
}

export class AuthScreens {
  /** @param {{onSignedIn: (user: object) => void}} hooks */
  constructor(hooks) {
    this.hooks = hooks;
    this.view = $("#login-view");
    this.form = $("#login-form");
    this.user = $("#login-username");
    this.password = $("#login-password");
    this.totpRow = $("#login-totp-row");
    this.totp = $("#login-totp");
    this.error = $("#login-error");
    this.notice = $("#login-notice");
    this.submit = $("#login-submit");
    this.enrol = $("#enrol-panel");
    this.enrolForm = $("#enrol-form");
    this.enrolError = $("#enrol-error");
    this.form.addEventListener("submit", (e) => {
      e.preventDefault();
      this._login();
    });
    this.enrolForm.addEventListener("submit", (e) => {
      e.preventDefault();
      this._confirm();
    });
    $("#enrol-cancel").addEventListener("click", async () => {
      try {
        await post("auth/logout", undefined, { expect401: true });
      } catch (e) {
        /* the session may already be gone */
      }
      this.showLogin();
    });
  }

  /** Show the sign-in form; `notice` explains why (e.g. the session ended). */
  showLogin(notice = "") {
    show(this.view, true);
    show(this.form, true);
    show(this.enrol, false);
    this._error("");
    this.notice.textContent = notice;
    show(this.notice, Boolean(notice));
    this.password.value = "";
    this.totp.value = "";
    show(this.totpRow, false);
    this.submit.disabled = false;
    (this.user.value ? this.password : this.user).focus();
  }

  hide() {
    show(this.view, false);
  }

  _error(text, kind = "error") {
    this.error.textContent = text;
    this.error.dataset.kind = kind;
    show(this.error, Boolean(text));
  }

  async _login() {
    const body = { username: this.user.value.trim(), password: this.password.value };
    const code = this.totp.value.replace(/\s+/g, "");
    if (!this.totpRow.hidden && code) body.totp_code = code;
    this.submit.disabled = true;
    this._error("");
    show(this.notice, false);
    try {
      const res = await post("auth/login", body, { expect401: true });
      this.password.value = "";
      this.totp.value = "";
      if (res.mfa_enrolment_required) await this.showEnrol();
      else this.hooks.onSignedIn(res.user);
    } catch (err) {
      if (err instanceof ApiError && err.status === 423) {
        this._error(lockoutText(err), "locked");
      } else if (err instanceof ApiError && err.details && err.details.mfa_required) {
        show(this.totpRow, true);
        this._error(err.message, "mfa");
        this.totp.value = "";
        this.totp.focus();
      } else {
        this._error(message(err));
        this.password.select();
      }
    } finally {
      this.submit.disabled = false;
    }
  }

  /** Begin TOTP enrolment and show the secret. */
  async showEnrol() {
    show(this.view, true);
    show(this.form, false);
    show(this.enrol, true);
    this.enrolError.textContent = "";
    show(this.enrolError, false);
    const secretEl = $("#enrol-secret");
    const uriEl = $("#enrol-uri");
    const qr = $("#enrol-qr");
    secretEl.textContent = "…";
    uriEl.textContent = "";
    qr.replaceChildren();
    try {
      const res = await post("auth/mfa/enrol");
      secretEl.textContent = grouped(res.secret);
      uriEl.textContent = res.otpauth_uri;
      uriEl.href = res.otpauth_uri;
      if (typeof window.qrcode === "function") {
        const q = window.qrcode(0, "M");
        q.addData(res.otpauth_uri);
        q.make();
        qr.append(el("img", { src: q.createDataURL(4, 2), alt: "QR code of the authenticator secret", width: 168, height: 168 }));
      }
      $("#enrol-code").focus();
    } catch (err) {
      this.enrolError.textContent = message(err);
      show(this.enrolError, true);
    }
  }

  async _confirm() {
    const code = $("#enrol-code").value.replace(/\s+/g, "");
    const btn = $("#enrol-submit");
    btn.disabled = true;
    try {
      await post("auth/mfa/confirm", { code });
      $("#enrol-code").value = "";
      const me = await get("auth/me").catch(() => null);
      this.hooks.onSignedIn(me);
    } catch (err) {
      this.enrolError.textContent = message(err);
      show(this.enrolError, true);
    } finally {
      btn.disabled = false;
    }
  }
}
