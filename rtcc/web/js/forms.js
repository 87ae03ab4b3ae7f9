// Small form pieces the panels share: a mandatory-reason form and busy buttons.

import { ApiError } from "./api.js";
import { el, message } from "./dom.js";

export const MIN_REASON = 3;

/**
 * A one-line form asking for a reason (required, refused client-side when too short).
 * `onSubmit(reason)` may be async; its ApiError message is shown under the field.
 */
export function reasonForm({ label = "Reason", submit = "Send", name = "reason", placeholder = "", onSubmit, onCancel }) {
  const input = el("input", {
    name,
    required: true,
    minlength: String(MIN_REASON),
    maxlength: "1000",
    placeholder,
    "aria-label": label,
    autocomplete: "off",
  });
  const msg = el("p", { class: "msg", role: "alert", hidden: true });
  const btn = el("button", { type: "submit", class: "btn-small btn-primary" }, submit);
  const cancel = onCancel ? el("button", { type: "button", class: "btn-small btn-ghost", onclick: onCancel }, "Cancel") : null;
  const form = el(
    "form",
    { class: "reason-form", novalidate: true, dataset: { form: name } },
    el("label", {}, label, input),
    el("div", { class: "row-actions" }, btn, cancel),
    msg,
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const reason = input.value.trim();
    if (reason.length < MIN_REASON) {
      message(msg, `A reason is required (at least ${MIN_REASON} characters).`);
      input.focus();
      return;
    }
    message(msg, "");
    await busy(btn, async () => {
      try {
        await onSubmit(reason);
      } catch (err) {
        message(msg, errorText(err));
      }
    });
  });
  setTimeout(() => input.focus(), 0);
  return form;
}

/** Disable `btn` while `fn` runs. */
export async function busy(btn, fn) {
  btn.disabled = true;
  try {
    return await fn();
  } finally {
    btn.disabled = false;
  }
}

/** The text to show for a failed call. */
export function errorText(err) {
  if (err instanceof ApiError) return err.message;
  return "something went wrong — try again";
}

/** True when the error says this center has no such API (the panel is left out). */
export function missingApi(err) {
  return err instanceof ApiError && (err.status === 404 || err.status === 405) && !err.details?.id;
}
