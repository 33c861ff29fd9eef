// countylab — the leader's big screen (驾驶舱): a 1920×1080 lobby display that rotates through the
// configured dashboards every N seconds and follows their data live: it polls the small JSON of
// /api/bigscreens/{id}/data (cached charts only, no query) and redraws only a page whose stamp
// changed; the page itself never reloads.  No navigation; the cursor hides after 3 s without
// movement; the button (or F11) enters full screen.
(function () {
  "use strict";
  const body = document.body;
  if (!body.classList.contains("bigscreen")) return;
  const id = body.dataset.screen;
  const words = document.getElementById("dash-words").dataset;
  let data = JSON.parse(document.getElementById("bs-data").textContent || "{}");
  let index = 0;
  let shown = null; // the stamp of the page on screen
  let timer = null;

  function page() {
    const pages = data.pages || [];
    return pages.length ? pages[index % pages.length] : null;
  }

  function layout(n) {
    // as many columns as fit a 16:9 screen; the first widget (often the map) spans two rows
    if (n <= 1) return "bs-n1";
    if (n <= 4) return "bs-n4";
    if (n <= 6) return "bs-n6";
    return "bs-n9";
  }

  function render(force) {
    const p = page();
    const stage = document.getElementById("bs-stage");
    const pages = data.pages || [];
    document.getElementById("bs-page").textContent = pages.length ? `${(index % pages.length) + 1} / ${pages.length}` : "";
    if (!p) {
      document.getElementById("bs-title").textContent = data.title || "";
      stage.textContent = words.empty || "";
      return;
    }
    const stamp = `${p.id}:${p.stamp}`;
    if (!force && stamp === shown) return;
    shown = stamp;
    document.getElementById("bs-title").textContent = p.title;
    const old = window.echarts ? stage.querySelectorAll(".dash-chart") : [];
    old.forEach((el) => { const c = window.echarts.getInstanceByDom(el); if (c) c.dispose(); });
    stage.className = `bs-stage ${layout(p.widgets.length)}`;
    stage.dataset.dashboard = p.id;
    while (stage.firstChild) stage.removeChild(stage.firstChild);
    p.widgets.forEach((w, i) => {
      const fig = document.createElement("figure");
      fig.className = `bs-widget bs-${w.kind}` + (i === 0 && w.kind === "map" ? " bs-lead" : "");
      const cap = document.createElement("figcaption");
      cap.textContent = w.title;
      const el = document.createElement("div");
      el.className = "dash-chart";
      el.dataset.chart = w.id;
      const src = document.createElement("p");
      src.className = "bs-source";
      src.textContent = w.chart && w.chart.source ? w.chart.source.label + (w.chart.note ? ` · ${w.chart.note}` : "") : "";
      fig.append(cap, el, src);
      stage.append(fig);
    });
    requestAnimationFrame(() => {
      p.widgets.forEach((w) => {
        const el = stage.querySelector(`[data-chart="${w.id}"]`);
        if (el && w.chart) window.countylab.dashboard.drawWidget(el, w.chart, { dark: true });
      });
    });
  }

  function next() {
    index += 1;
    render(true);
  }

  function poll() {
    fetch(`/api/bigscreens/${id}/data`, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then((r) => (r.ok ? r.json() : null))
      .then((d) => {
        if (!d) return;
        const seconds = d.seconds !== data.seconds;
        data = d;
        document.getElementById("bs-updated").textContent = `${words.updated} ${clock(new Date())}`;
        if (seconds) start();
        render(false);
      })
      .catch(() => {});
  }

  function start() {
    if (timer) clearInterval(timer);
    timer = setInterval(next, Math.max(5, data.seconds || 20) * 1000);
  }

  function clock(d) {
    const two = (n) => String(n).padStart(2, "0");
    return `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
  }

  let idle = null;
  function awake() {
    body.classList.remove("bs-idle");
    if (idle) clearTimeout(idle);
    idle = setTimeout(() => body.classList.add("bs-idle"), 3000);
  }

  document.addEventListener("DOMContentLoaded", () => {
    render(true);
    start();
    setInterval(poll, Math.min(30, Math.max(5, data.seconds || 20)) * 1000);
    setInterval(() => { document.getElementById("bs-clock").textContent = clock(new Date()); }, 1000);
    document.getElementById("bs-fullscreen").addEventListener("click", () => {
      if (document.fullscreenElement) document.exitFullscreen();
      else if (document.documentElement.requestFullscreen) document.documentElement.requestFullscreen();
    });
    document.addEventListener("keydown", (e) => {
      if (e.key === "ArrowRight" || e.key === " ") next();
      if (e.key === "ArrowLeft") { index = Math.max(0, index - 1 + (data.pages || []).length); render(true); }
    });
    document.addEventListener("mousemove", awake);
    awake();
    window.addEventListener("resize", () => {
      document.querySelectorAll(".dash-chart").forEach((el) => {
        const c = window.echarts && window.echarts.getInstanceByDom(el);
        if (c) c.resize();
      });
    });
  });
})();
