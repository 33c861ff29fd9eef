// countylab — the public pages' charts.  Each <figure class="sc-chart"> holds a chart description
// (countylab.showcase.chartspec.Chart as JSON, in a non-executed <script type="application/json">)
// and a readable table; this draws the chart with the lab's chart component (chart.js, ECharts
// from /static/vendor/).  Nothing loads from outside; without ECharts the tables stay.
(function () {
  "use strict";

  function draw(el, spec) {
    const root = window.countylab || {};
    const chart = root.chart || {};
    if (typeof chart.draw === "function") return chart.draw(el, spec); // the shared component, once it has one
    if (!window.echarts) return null;
    if (spec.kind === "bar" && typeof chart.barsWithIntervals === "function") {
      return chart.barsWithIntervals(el, { categories: spec.categories, series: spec.series }, {
        yName: spec.unit || "",
        height: el.clientHeight || 320,
      });
    }
    const inst = window.echarts.init(el, null, { renderer: "canvas" });
    inst.setOption({
      animation: false,
      grid: { left: 48, right: 16, top: 24, bottom: 56, containLabel: true },
      tooltip: { trigger: "axis" },
      legend: { bottom: 0 },
      xAxis: { type: "category", data: spec.categories, axisLabel: { interval: 0, rotate: spec.categories.length > 6 ? 30 : 0 } },
      yAxis: { type: "value", name: spec.unit || "" },
      series: spec.series.map((s) => ({ type: spec.kind === "line" ? "line" : "bar", name: s.name, data: s.values })),
    });
    return inst;
  }

  function drawAll() {
    const drawn = [];
    document.querySelectorAll("figure.sc-chart").forEach((fig) => {
      const el = fig.querySelector(".sc-canvas");
      const data = fig.querySelector("script.chart-spec");
      if (!el || !data) return;
      try {
        const inst = draw(el, JSON.parse(data.textContent));
        if (inst) {
          el.dataset.drawn = "1";
          drawn.push(inst);
        }
      } catch (err) {
        el.dataset.drawn = "error";
        el.textContent = String(err);
      }
    });
    window.addEventListener("resize", () => drawn.forEach((c) => c && c.resize && c.resize()));
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", drawAll);
  else drawAll();
})();
