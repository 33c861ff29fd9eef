// Release request page: while the automatic checks run (state "submitted"), poll the request's
// state and reload when it moves on, so nobody stares at a frozen page (no inline scripts: CSP).
(function () {
  "use strict";
  var live = document.getElementById("checks-live");
  if (!live) { return; }
  var id = live.getAttribute("data-request");
  var state = live.getAttribute("data-state");
  var began = Date.now();
  var clock = live.querySelector(".progress-elapsed");
  function tick() {
    if (!clock) { return; }
    var s = Math.floor((Date.now() - began) / 1000);
    clock.textContent = Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0");
  }
  window.setInterval(tick, 500);
  function poll() {
    fetch("/api/airlock/requests/" + encodeURIComponent(id) + "/state",
          { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (got) {
        if (got && got.state !== state) { window.location.reload(); } else { window.setTimeout(poll, 1500); }
      })
      .catch(function () { window.setTimeout(poll, 4000); });
  }
  window.setTimeout(poll, 1500);
})();
