// countylab — dashboards: draws every widget of a dashboard (in the lab, on the public pages and on
// the big screen) from its chart description (countylab.showcase.chartspec.Chart.to_dict()).
//
//   countylab.dashboard.drawWidget(el, spec, { dark })   // one chart into el
//   countylab.dashboard.drawAll(container, widgets, opts) // [{id, chart}] into [data-chart=id]
//
// Bars and lines use the shared chart component (countylab.chart.draw when it exists, else the
// bars-with-whiskers of chart.js); maps use countylab.map.draw (static/map.js, GeoJSON drawn by
// ECharts, no tiles).  Figure cards and tables are plain HTML.  DP numbers always come with their
// interval: the whiskers on bars, the band on lines, "low–high" in tooltips, cards and tables.
// Tooltips are drawn on the canvas (richText): the lab's CSP allows no inline styles.
(function () {
  "use strict";
  const root = (window.countylab = window.countylab || {});
  const PALETTE = ["#2f6fb0", "#d9822b", "#3c9d5d", "#8e5bb5", "#c24d4d", "#5a8f9c"];
  const DARK = ["#4fc3f7", "#ffb74d", "#81c784", "#ce93d8", "#e57373", "#4dd0e1"];

  function words() {
    const w = document.getElementById("dash-words");
    return {
      interval: (w && w.dataset.interval) || "95% 区间",
      nodata: (w && w.dataset.nodata) || "无数据",
    };
  }

  function names(spec) {
    return spec.category_names || spec.categories || [];
  }

  function fmt(v) {
    if (v === null || v === undefined) return "—";
    return Math.abs(v) >= 1000 ? Math.round(v).toLocaleString("zh-CN") : String(Math.round(v * 100) / 100);
  }

  function textOf(s, i) {
    if (s.texts && s.texts[i]) return s.texts[i];
    const lo = s.low ? s.low[i] : null;
    const hi = s.high ? s.high[i] : null;
    return fmt(s.values[i]) + (lo !== null && lo !== undefined ? `（${fmt(lo)}–${fmt(hi)}）` : "");
  }

  function clear(el) {
    const old = window.echarts && window.echarts.getInstanceByDom(el);
    if (old) old.dispose();
    while (el.firstChild) el.removeChild(el.firstChild);
  }

  function card(el, spec) {
    clear(el);
    const s = spec.series[0] || { values: [null] };
    const box = document.createElement("div");
    box.className = "dash-figure";
    const v = document.createElement("span");
    v.className = "dash-figure-value";
    v.textContent = s.texts && s.texts[0] ? s.texts[0].split("（")[0] : fmt(s.values[0]);
    const u = document.createElement("span");
    u.className = "dash-figure-unit";
    u.textContent = spec.unit || "";
    box.append(v, " ", u);
    if (s.low && s.low[0] !== null && s.low[0] !== undefined) {
      const iv = document.createElement("div");
      iv.className = "dash-figure-interval";
      iv.textContent = `${words().interval} ${fmt(s.low[0])}–${fmt(s.high[0])}`;
      box.append(iv);
    }
    if (spec.categories && spec.categories[0]) {
      const c = document.createElement("div");
      c.className = "dash-figure-label";
      c.textContent = spec.categories[0];
      box.append(c);
    }
    el.append(box);
  }

  function table(el, spec) {
    clear(el);
    const wrap = document.createElement("div");
    wrap.className = "table-wrap";
    const t = document.createElement("table");
    t.className = "table";
    const head = t.createTHead().insertRow();
    (spec.columns || []).forEach((c) => {
      const th = document.createElement("th");
      th.textContent = c;
      head.append(th);
    });
    const body = t.createTBody();
    (spec.rows || []).forEach((r) => {
      const tr = body.insertRow();
      r.forEach((cell) => {
        tr.insertCell().textContent = cell === null || cell === undefined ? "—" : String(cell);
      });
    });
    wrap.append(t);
    el.append(wrap);
  }

  function chartOf(el, dark) {
    const echarts = window.echarts;
    const old = echarts.getInstanceByDom(el);
    if (old) return old;
    while (el.firstChild) el.removeChild(el.firstChild);
    return echarts.init(el, dark ? "dark" : null, { renderer: "canvas" });
  }

  function axisColors(dark) {
    return dark
      ? { text: "#cfd8dc", line: "#455a64", bg: "transparent" }
      : { text: "#333", line: "#ccd3da", bg: "transparent" };
  }

  function cartesian(el, spec, opts) {
    const dark = !!opts.dark;
    const colors = dark ? DARK : PALETTE;
    const ax = axisColors(dark);
    const cats = names(spec);
    const w = words();
    const series = [];
    (spec.series || []).forEach((s, k) => {
      const color = colors[k % colors.length];
      const data = s.values.map((v, i) => ({ value: v, text: textOf(s, i) }));
      if (spec.kind === "line") {
        series.push({ type: "line", name: s.name, data, smooth: true, symbolSize: dark ? 10 : 6,
          lineStyle: { width: dark ? 4 : 2, color }, itemStyle: { color } });
        if (s.low && s.high) {
          series.push({ type: "line", name: "", data: s.low, stack: "iv" + k, lineStyle: { opacity: 0 },
            symbol: "none", silent: true, tooltip: { show: false } });
          series.push({ type: "line", name: "", data: s.high.map((h, i) => (h === null || s.low[i] === null ? null : h - s.low[i])),
            stack: "iv" + k, lineStyle: { opacity: 0 }, symbol: "none", silent: true, tooltip: { show: false },
            areaStyle: { color, opacity: 0.18 } });
        }
      } else {
        series.push({ type: "bar", name: s.name, data, itemStyle: { color }, barMaxWidth: dark ? 64 : 42,
          label: { show: dark, position: "top", color: ax.text, fontSize: 18,
            formatter: (p) => (p.data && p.data.text ? String(p.data.text).split("（")[0] : "") } });
        if (s.low && s.high) {
          series.push({
            type: "custom", name: "", silent: true, z: 10, tooltip: { show: false },
            data: s.values.map((v, i) => [i, s.low[i], s.high[i]]),
            encode: { x: 0, y: [1, 2] },
            renderItem(params, api) {
              const lo = api.value(1);
              const hi = api.value(2);
              if (lo === null || hi === null || Number.isNaN(lo) || Number.isNaN(hi)) return null;
              const layout = api.barLayout({ count: spec.series.length });
              const slot = layout[k] || layout[0];
              const a = api.coord([api.value(0), lo]);
              const b = api.coord([api.value(0), hi]);
              const x = a[0] + slot.offsetCenter;
              const cap = Math.max(4, slot.width / 4);
              const style = { stroke: dark ? "#eceff1" : "#333", lineWidth: dark ? 2.5 : 1.5 };
              return { type: "group", children: [
                { type: "line", shape: { x1: x, y1: a[1], x2: x, y2: b[1] }, style },
                { type: "line", shape: { x1: x - cap, y1: a[1], x2: x + cap, y2: a[1] }, style },
                { type: "line", shape: { x1: x - cap, y1: b[1], x2: x + cap, y2: b[1] }, style },
              ] };
            },
          });
        }
      }
    });
    const chart = chartOf(el, dark);
    const big = dark ? 18 : 12;
    chart.setOption({
      backgroundColor: ax.bg,
      animation: !!dark,
      grid: { left: 64, right: 24, top: 28, bottom: cats.length > 6 ? 84 : 48 },
      legend: { show: false },
      tooltip: {
        trigger: "item", renderMode: "richText",
        formatter: (p) => `${p.name}\n${p.seriesName}: ${p.data && p.data.text !== undefined ? p.data.text : p.value}`,
      },
      xAxis: { type: "category", data: cats, axisLabel: { interval: 0, rotate: cats.length > 6 ? 35 : 0,
        color: ax.text, fontSize: big }, axisLine: { lineStyle: { color: ax.line } } },
      yAxis: { type: "value", name: spec.unit || "", nameTextStyle: { color: ax.text, fontSize: big },
        axisLabel: { color: ax.text, fontSize: big }, splitLine: { lineStyle: { color: ax.line } } },
      series,
    }, true);
    if (spec.note) el.dataset.note = spec.note || w.interval;
    return chart;
  }

  // A choropleth without static/map.js (it draws the county's GeoJSON): the areas as sorted bars
  // coloured by the same scale, with the scale's legend, so the numbers are still readable.
  function mapFallback(el, spec, opts) {
    const dark = !!opts.dark;
    const ax = axisColors(dark);
    const s = spec.series[0];
    const rows = names(spec).map((n, i) => [n, s.values[i], textOf(s, i)]).filter((r) => r[1] !== null);
    rows.sort((a, b) => a[1] - b[1]);
    const vals = rows.map((r) => r[1]);
    const chart = chartOf(el, dark);
    chart.setOption({
      backgroundColor: ax.bg,
      grid: { left: 96, right: 24, top: 16, bottom: 56 },
      tooltip: { trigger: "item", renderMode: "richText", formatter: (p) => `${p.name}\n${p.data.text}` },
      visualMap: { type: "continuous", min: Math.min(...vals, 0), max: Math.max(...vals, 1), orient: "horizontal",
        left: "center", bottom: 0, calculable: false, text: [spec.unit || "", ""], textStyle: { color: ax.text },
        inRange: { color: ["#e3f2fd", "#1565c0"] }, dimension: 0 },
      xAxis: { type: "value", axisLabel: { color: ax.text } },
      yAxis: { type: "category", data: rows.map((r) => r[0]), axisLabel: { color: ax.text } },
      series: [{ type: "bar", data: rows.map((r) => ({ value: r[1], text: r[2] })) }],
    }, true);
    return chart;
  }

  function drawWidget(el, spec, opts) {
    const o = opts || {};
    if (!el || !spec) return null;
    if (spec.kind === "card") return card(el, spec);
    if (spec.kind === "table") return table(el, spec);
    if (!window.echarts) return null;
    if (spec.kind === "map") {
      if (root.map && typeof root.map.render === "function") {
        clear(el);
        const w = words();
        const options = { words: { noData: w.nodata, interval: w.interval }, level: spec.level };
        if (o.dark) options.theme = "dark";
        return root.map.render(el, spec, options).catch(() => mapFallback(el, spec, o));
      }
      return mapFallback(el, spec, o);
    }
    if (!o.dark && root.chart && typeof root.chart.draw === "function") return root.chart.draw(el, spec);
    return cartesian(el, spec, o);
  }

  function drawAll(container, widgets, opts) {
    (widgets || []).forEach((w) => {
      const el = container.querySelector(`[data-chart="${w.id}"]`);
      if (el && w.chart) drawWidget(el, w.chart, opts);
    });
  }

  function resizeAll() {
    if (!window.echarts) return;
    document.querySelectorAll(".dash-chart").forEach((el) => {
      const c = window.echarts.getInstanceByDom(el);
      if (c) c.resize();
    });
  }

  root.dashboard = { drawWidget, drawAll };

  // widget forms of the edit page (add, and edit each widget): show the fields of the chosen
  // source only (the server reads only those anyway)
  function sourceFields(form) {
    const pick = form.querySelector("[data-source-kind]");
    if (!pick) return;
    const show = () => form.querySelectorAll("fieldset[data-source]").forEach((f) => {
      f.hidden = f.dataset.source !== pick.value;
    });
    pick.addEventListener("change", show);
    show();
  }

  document.addEventListener("DOMContentLoaded", () => {
    document.querySelectorAll("form[data-widget-form]").forEach(sourceFields);
    const grid = document.getElementById("dash-grid");
    if (!grid) return;
    const embedded = document.getElementById("dash-data");
    if (embedded) {
      drawAll(grid, JSON.parse(embedded.textContent || "{}").widgets, {});
    } else if (grid.dataset.src) {
      const load = () => fetch(grid.dataset.src, { credentials: "same-origin" })
        .then((r) => (r.ok ? r.json() : null))
        .then((d) => { if (d) drawAll(grid, d.widgets, {}); })
        .catch(() => {});
      load();
      setInterval(load, 60000); // DP metrics and open data refresh in the background: follow them
    }
    window.addEventListener("resize", resizeAll);
  });
})();
