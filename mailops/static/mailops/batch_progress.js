// mailops: keeps the batch progress page current while the batch is unfinished.
// Polls the page's JSON (data-progress-url) and updates every element marked
// data-field, data-show-if or data-segment; stops once the batch is finished.
"use strict";
(function () {
  const root = document.getElementById("mailops-batch-progress");
  if (!root || root.dataset.finished === "true") {
    return;
  }
  const url = root.dataset.progressUrl;
  const interval = Number(root.dataset.interval) || 2000;
  const bar = root.querySelector(".mailops-progress-bar");

  function update(data) {
    for (const element of document.querySelectorAll("[data-field]")) {
      const value = data[element.dataset.field];
      if (value !== undefined && value !== null) {
        element.textContent = String(value);
      }
    }
    for (const element of root.querySelectorAll("[data-show-if]")) {
      element.hidden = !data[element.dataset.showIf];
    }
    for (const segment of data.segments) {
      const rect = root.querySelector('[data-segment="' + segment.key + '"]');
      if (rect) {
        rect.setAttribute("x", segment.x);
        rect.setAttribute("width", segment.width);
        const title = rect.querySelector("title");
        if (title) {
          title.textContent = segment.label + ": " + segment.count;
        }
      }
    }
    if (bar) {
      bar.setAttribute("aria-valuemax", String(data.total));
      bar.setAttribute("aria-valuenow", String(data.done));
    }
    root.dataset.state = data.state;
    root.dataset.finished = data.finished ? "true" : "false";
  }

  async function poll() {
    try {
      const response = await fetch(url, {
        headers: { Accept: "application/json" },
        credentials: "same-origin",
        cache: "no-store",
      });
      if (response.redirected || response.status === 403 || response.status === 404) {
        return; // Signed out (sent to the login page) or the rows are gone: stop.
      }
      if (response.ok) {
        const data = await response.json();
        update(data);
        if (data.finished) {
          return;
        }
      }
    } catch (error) {
      // A dropped request (server restart, network blip): try again next time.
    }
    window.setTimeout(poll, interval);
  }

  window.setTimeout(poll, interval);
})();
