// Password forms: a signed-in person changes their own password (the header's "Change password":
// current, new, repeat), an admin sets someone's password (Users tab: new, repeat). The page refuses
// an empty or mismatched new password itself (`data-refused=client`); the center judges the rest
// (a wrong current password, its password rules) and its message shows in the form
// (`data-refused=server`).
// DOM hooks: `form.password-form[data-form=change|set][data-refused=client|server]`, fields
// `[name=current_password|new_password|repeat_password]`, `.msg`, `[data-action=save-password|cancel]`.

import { el, message } from "./dom.js";
import { busy, errorText } from "./forms.js";

function field(label, input) {
  return el("label", { class: "field" }, el("span", {}, label), input);
}

function secret(name, autocomplete, label) {
  return el("input", { name, type: "password", maxlength: "1024", autocomplete, "aria-label": label, required: true });
}

/**
 * A password form. `current`: ask for the current password (the person's own account).
 * `username`: the account's name (a hidden field, so password managers file the new one under it).
 * `onSubmit({current_password?, new_password})` may be async; an error it throws is shown in the form.
 */
export function passwordForm({ current = false, username = "", submit = "Change password", onSubmit, onCancel, kind = "change" }) {
  const cur = current ? secret("current_password", "current-password", "Current password") : null;
  const fresh = secret("new_password", "new-password", "New password");
  const again = secret("repeat_password", "new-password", "Repeat the new password");
  const msg = el("p", { class: "msg", role: "alert", hidden: true });
  const btn = el("button", { type: "submit", class: "btn-small btn-primary", dataset: { action: "save-password" } }, submit);
  const cancel = onCancel ? el("button", { type: "button", class: "btn-small btn-ghost", dataset: { action: "cancel" }, onclick: onCancel }, "Cancel") : null;
  const form = el(
    "form",
    { class: "password-form", novalidate: true, dataset: { form: kind } },
    username ? el("input", { type: "text", name: "username", value: username, autocomplete: "username", hidden: true, readonly: true, tabindex: "-1" }) : null,
    cur ? field("Current password", cur) : null,
    field("New password", fresh),
    field("Repeat the new password", again),
    msg,
    el("div", { class: "row-actions" }, btn, cancel),
  );
  const refuse = (how, text, input) => {
    form.dataset.refused = how;
    message(msg, text);
    if (input) input.focus();
  };
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    if (cur && !cur.value) return refuse("client", "Enter your current password.", cur);
    if (!fresh.value) return refuse("client", "Enter a new password.", fresh);
    if (fresh.value !== again.value) return refuse("client", "The two new passwords differ: type the same one twice.", again);
    delete form.dataset.refused;
    message(msg, "");
    const body = cur ? { current_password: cur.value, new_password: fresh.value } : { new_password: fresh.value };
    await busy(btn, async () => {
      try {
        await onSubmit(body);
      } catch (err) {
        const which = err && err.details && err.details.field;
        refuse("server", errorText(err), which === "current_password" ? cur : fresh);
      }
    });
  });
  setTimeout(() => (cur || fresh).focus(), 0);
  return form;
}
