// Compute center pages: refresh while a job is pending, queued or running (no inline scripts: CSP).
(function () {
  "use strict";
  var live = document.getElementById("jobs-live");
  if (!live || live.getAttribute("data-refresh") !== "1") { return; }
  var jobId = live.getAttribute("data-job");
  var state = live.getAttribute("data-state");
  function reload() { window.location.reload(); }
  if (!jobId) { window.setTimeout(reload, 4000); return; }
  function poll() {
    fetch("/api/jobs/" + encodeURIComponent(jobId), { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (job) {
        if (job && job.state !== state) { reload(); } else { window.setTimeout(poll, 1500); }
      })
      .catch(function () { window.setTimeout(poll, 4000); });
  }
  window.setTimeout(poll, 1500);
})();
