/* The "Send test mail" confirmation page: the subject and message follow the
   chosen mailer. A text still equal to the previous mailer's default is
   replaced by the new mailer's, and so is its hidden initial copy, so the
   server still sees an untouched default and composes it when sending. */
"use strict";
{
  const lf = (text) => text.replace(/\r\n/g, "\n");

  function follow(form, defaults) {
    const select = form.querySelector("select[name=mailer]");
    if (!select) return;
    let current = select.value;
    select.addEventListener("change", () => {
      const before = defaults[current];
      const after = defaults[select.value];
      current = select.value;
      if (!before || !after) return;
      for (const name of ["subject", "body"]) {
        const field = form.querySelector(`[name=${name}]`);
        const initial = form.querySelector(`[name=initial-${name}]`);
        if (field && lf(field.value) === lf(before[name])) {
          field.value = after[name];
          if (initial) initial.value = after[name];
        }
      }
    });
  }

  document.addEventListener("DOMContentLoaded", () => {
    const form = document.getElementById("send-test-mail-form");
    const data = document.getElementById("mailops-mailer-defaults");
    if (form && data) follow(form, JSON.parse(data.textContent));
  });
}
