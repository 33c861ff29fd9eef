// countylab — the chart component, on top of ECharts (served from /static/vendor/, installed by
// scripts/assets.sh; no CDN).  One component for every chart of the lab: the query console, the
// dataset profile, job metering, the operator's views and the showcase (public pages, dashboards,
// big screen).
//
//   countylab.chart.draw(el, spec, options)
//     spec: a countylab.showcase.chartspec.Chart as JSON (Chart.to_dict()):
//       { kind: "bar"|"line"|"table"|"card"|"map", title, unit, source: {kind, label, ref, as_of},
//         categories, category_names?, series: [{ name, values, low?, high?, texts? }],
//         columns?, rows?, level?, note }
//     bar: grouped bars with 95% interval whiskers where low/high are given; line: one line per
//     series with an interval band; table: an HTML table; card: one large figure with its unit and
//     interval; map: countylab.map.draw (static/map.js) when the page loaded it, else ranked bars.
//     options: { height, dark, exportButton (default true), words: { interval, noData, exportPng },
//                title (drawn on the canvas unless the chart sits in a <figure> with a <figcaption>) }
//     Words come from options.words, else from the page's <script type="application/json"
//     id="countylab-chart-words"> (templates/_chart_words.html), so every label is in the page's
//     language.  Every chart gets a "save as PNG" button: ECharts' getDataURL, downloaded under
//     the chart's title (a table is painted onto a canvas for it).
//
//   countylab.chart.barsWithIntervals(el, data, options)   (the bars alone, as the query console uses)
//     data = { categories, series: [{ name, values, low, high, texts }], missing: [...] }
//     options = { yName, missingLabel, intervalLabel, height }
//
// Each returns the ECharts instance (a small stand-in with getDataURL/resize for tables), or null
// when ECharts is not loaded (the page keeps its table).  Tooltips are drawn on the canvas
// (richText) and styles are set through the DOM: the lab's CSP allows no inline styles.
(function () {
  "use strict";
  const root = (window.countylab = window.countylab || {});

  function whiskers(seriesIndex, count, color) {
    return {
      type: "custom",
      name: "",
      silent: true,
      z: 10,
      tooltip: { show: false },
      renderItem(params, api) {
        const lo = api.value(1);
        const hi = api.value(2);
        if (lo === null || hi === null || Number.isNaN(lo) || Number.isNaN(hi)) return null;
        const layout = api.barLayout({ count: count, barGap: "20%", barCategoryGap: "30%" });
        const slot = layout[seriesIndex];
        const base = api.coord([api.value(0), lo]);
        const top = api.coord([api.value(0), hi]);
        const x = base[0] + slot.offsetCenter;
        const cap = Math.max(3, slot.width / 4);
        const style = { stroke: color, lineWidth: 1.5 };
        return {
          type: "group",
          children: [
            { type: "line", shape: { x1: x, y1: base[1], x2: x, y2: top[1] }, style },
            { type: "line", shape: { x1: x - cap, y1: base[1], x2: x + cap, y2: base[1] }, style },
            { type: "line", shape: { x1: x - cap, y1: top[1], x2: x + cap, y2: top[1] }, style },
          ],
        };
      },
    };
  }

  function barsWithIntervals(el, data, options) {
    const echarts = window.echarts;
    if (!el || !echarts) return null;
    const opts = options || {};
    const missing = (data.missing || []).filter((m) => !data.categories.includes(m));
    const categories = data.categories.concat(missing);
    const pad = (arr) => (arr || []).concat(missing.map(() => null));
    const series = data.series || [];
    const count = series.length;
    const palette = ["#2f6fb0", "#d9822b", "#3c9d5d", "#8e5bb5", "#c24d4d", "#5a8f9c"];
    const empty = new Set();
    categories.forEach((c, i) => {
      if (series.every((s) => pad(s.values)[i] === null || pad(s.values)[i] === undefined)) empty.add(i);
    });
    const out = [];
    series.forEach((s, k) => {
      const values = pad(s.values);
      const low = pad(s.low);
      const high = pad(s.high);
      const texts = pad(s.texts);
      const color = palette[k % palette.length];
      out.push({
        type: "bar",
        name: s.name,
        barGap: "20%",
        barCategoryGap: "30%",
        itemStyle: { color },
        data: values.map((v, i) => ({
          value: v,
          text: texts[i] !== null && texts[i] !== undefined ? texts[i] : v,
          low: low[i],
          high: high[i],
        })),
      });
      const w = whiskers(k, count, "#333");
      w.data = values.map((v, i) => [i, low[i], high[i]]);
      w.encode = { x: 0, y: [1, 2] };
      out.push(w);
    });
    if (empty.size) {
      // Groups with no released value: a grey label on the axis instead of a bar of zero.
      out.push({
        type: "custom",
        name: opts.missingLabel || "",
        silent: true,
        tooltip: { show: false },
        renderItem(params, api) {
          const p = api.coord([api.value(0), 0]);
          return {
            type: "text",
            x: p[0],
            y: p[1] - 6,
            rotation: Math.PI / 2,
            style: { text: opts.missingLabel || "—", fill: "#888", align: "left", verticalAlign: "middle",
              font: "12px sans-serif" },
          };
        },
        data: Array.from(empty).map((i) => [i, 0]),
      });
    }
    const chart = echarts.getInstanceByDom(el) || echarts.init(el, opts.dark ? "dark" : null, {
      renderer: "canvas",
      height: opts.height || 320,
    });
    chart.setOption({
      animation: false,
      backgroundColor: opts.dark ? "transparent" : "#fff",
      title: opts.title ? { text: opts.title, left: 0, top: 0, textStyle: { fontSize: 14 } } : undefined,
      grid: { left: 56, right: 16, top: (count > 1 ? 36 : 16) + (opts.title ? 40 : 0), bottom: 72 },
      legend: count > 1 ? { data: series.map((s) => s.name), top: opts.title ? 28 : 0 } : { show: false },
      tooltip: {
        trigger: "item",
        renderMode: "richText",
        formatter(p) {
          const d = p.data || {};
          const iv = d.low !== null && d.low !== undefined && d.high !== null && d.high !== undefined
            ? `\n${opts.intervalLabel || "95%"} [${d.low}, ${d.high}]` : "";
          return `${p.name}\n${p.seriesName}: ${d.text}${iv}`;
        },
      },
      xAxis: {
        type: "category",
        data: categories,
        axisLabel: { interval: 0, rotate: categories.length > 6 ? 35 : 0,
          color: (value) => (missing.includes(value) ? "#999" : "#333") },
      },
      yAxis: { type: "value", name: opts.yName || "", nameTextStyle: { align: "left" } },
      series: out,
    }, true);
    return chart;
  }

  const PALETTE = ["#2f6fb0", "#d9822b", "#3c9d5d", "#8e5bb5", "#c24d4d", "#5a8f9c"];

  // Words of the page's language: options.words, else the JSON the page carries, else neutral marks.
  function words(opts) {
    let page = {};
    const node = document.getElementById("countylab-chart-words");
    if (node) {
      try {
        page = JSON.parse(node.textContent) || {};
      } catch (err) {
        page = {};
      }
    }
    const given = (opts && opts.words) || {};
    return {
      interval: given.interval || page.interval || "95%",
      noData: given.noData || page.noData || "—",
      exportPng: given.exportPng || page.exportPng || "PNG",
    };
  }

  const isNum = (v) => v !== null && v !== undefined && !Number.isNaN(v);
  const dash = (v) => (isNum(v) ? v : "-");

  function names(spec) {
    return spec.category_names && spec.category_names.length ? spec.category_names : spec.categories || [];
  }

  function shown(s, i) {
    const t = s.texts && s.texts[i];
    if (t !== null && t !== undefined && t !== "") return String(t);
    const v = s.values[i];
    return isNum(v) ? Number(v).toLocaleString() : "";
  }

  function init(el, opts, height) {
    const echarts = window.echarts;
    return echarts.getInstanceByDom(el) || echarts.init(el, opts.dark ? "dark" : null, {
      renderer: "canvas",
      height: opts.height || el.clientHeight || height,
    });
  }

  // Lines, each with a shaded band between low and high (two stacked, invisible-edged areas).
  function lineWithBand(el, spec, opts, w) {
    const chart = init(el, opts, 320);
    const labels = names(spec);
    const out = [];
    (spec.series || []).forEach((s, k) => {
      const color = PALETTE[k % PALETTE.length];
      if (s.low && s.high) {
        const stack = `band-${k}`;
        out.push({ type: "line", stack, silent: true, symbol: "none", lineStyle: { opacity: 0 },
          tooltip: { show: false }, data: s.low.map(dash) });
        out.push({ type: "line", stack, silent: true, symbol: "none", lineStyle: { opacity: 0 },
          areaStyle: { color, opacity: 0.22 }, tooltip: { show: false },
          data: s.high.map((h, i) => (isNum(h) && isNum(s.low[i]) ? h - s.low[i] : "-")) });
      }
      out.push({ type: "line", name: s.name, symbolSize: 5, itemStyle: { color }, lineStyle: { color, width: 2 },
        data: s.values.map((v, i) => ({ value: dash(v), text: shown(s, i),
          low: s.low ? s.low[i] : null, high: s.high ? s.high[i] : null })) });
    });
    chart.setOption({
      animation: false,
      backgroundColor: opts.dark ? "transparent" : "#fff",
      title: { text: opts.titled ? spec.title || "" : "", left: 0, top: 0, textStyle: { fontSize: 14 } },
      legend: (spec.series || []).length > 1
        ? { top: opts.titled ? 26 : 0, data: spec.series.map((s) => s.name) } : { show: false },
      grid: { left: 56, right: 16, bottom: 56,
        top: ((spec.series || []).length > 1 ? 20 : 0) + (opts.titled ? 40 : 16) },
      tooltip: {
        trigger: "item",
        renderMode: "richText",
        formatter(p) {
          const d = p.data || {};
          const iv = isNum(d.low) && isNum(d.high) ? `\n${w.interval} [${d.low}, ${d.high}]` : "";
          return `${p.name}\n${p.seriesName}: ${d.text}${iv}`;
        },
      },
      xAxis: { type: "category", data: labels, boundaryGap: false,
        axisLabel: { rotate: labels.length > 8 ? 30 : 0 } },
      yAxis: { type: "value", name: spec.unit || "", scale: true },
      series: out,
    }, true);
    return chart;
  }

  // One figure, large, with its unit, the interval of a DP number and its source.
  function card(el, spec, opts, w) {
    const chart = init(el, opts, 150);
    const s = (spec.series || [])[0] || { values: [null] };
    const lo = s.low ? s.low[0] : null;
    const hi = s.high ? s.high[0] : null;
    const fg = opts.dark ? "#e8eef7" : "#333";
    const y = opts.titled ? 28 : 0;  // under a figure caption the card shows no second title
    const items = [
      { type: "text", left: 16, top: 14, style: { text: opts.titled ? spec.title || "" : "", fill: fg,
        font: "14px sans-serif" } },
      { type: "text", left: 16, top: 14 + y, style: {
        text: `{v|${shown(s, 0) || w.noData}}{u| ${spec.unit || ""}}`,
        rich: { v: { fill: opts.dark ? "#6cb4ff" : PALETTE[0], font: "bold 40px sans-serif" },
          u: { fill: fg, font: "16px sans-serif", padding: [14, 0, 0, 4] } } } },
    ];
    if (isNum(lo) && isNum(hi)) {
      items.push({ type: "text", left: 16, top: 72 + y, style: { text: `${w.interval} [${lo}, ${hi}]`, fill: fg,
        font: "12px sans-serif" } });
    }
    if (spec.source && spec.source.label) {
      items.push({ type: "text", left: 16, top: 94 + y, style: { text: spec.source.label, fill: "#888",
        font: "11px sans-serif" } });
    }
    chart.setOption({ animation: false, backgroundColor: opts.dark ? "transparent" : "#fff", graphic: items },
      true);
    return chart;
  }

  // A table stays HTML (text to read and copy); for the PNG button it is painted onto a canvas.
  function table(el, spec) {
    const columns = spec.columns || [];
    const rows = spec.rows || [];
    el.textContent = "";
    const t = document.createElement("table");
    t.className = "table chart-table";
    const head = t.createTHead().insertRow();
    columns.forEach((c) => {
      const th = document.createElement("th");
      th.textContent = c;
      head.appendChild(th);
    });
    const body = t.createTBody();
    rows.forEach((r) => {
      const tr = body.insertRow();
      r.forEach((cell) => {
        const td = tr.insertCell();
        td.textContent = typeof cell === "number" ? cell.toLocaleString() : String(cell === null ? "" : cell);
        if (typeof cell === "number") td.style.textAlign = "right";
      });
    });
    el.appendChild(t);
    return {
      resize() {},
      dispose() {
        el.textContent = "";
      },
      getDataURL(o) {
        return tableImage(spec, (o && o.pixelRatio) || 2);
      },
    };
  }

  function tableImage(spec, ratio) {
    const columns = spec.columns || [];
    const rows = (spec.rows || []).map((r) => r.map((c) => (typeof c === "number" ? c.toLocaleString() : String(c === null ? "" : c))));
    const canvas = document.createElement("canvas");
    const ctx = canvas.getContext("2d");
    const font = "14px sans-serif";
    ctx.font = font;
    const pad = 8;
    const lineH = 26;
    const widths = columns.map((c, j) => Math.max(ctx.measureText(String(c)).width,
      ...rows.map((r) => ctx.measureText(r[j] || "").width)) + 2 * pad);
    const total = widths.reduce((a, b) => a + b, 0);
    if (total < 360 && widths.length) widths[widths.length - 1] += 360 - total;  // not a thumbnail
    const width = Math.max(360, total, ctx.measureText(spec.title || "").width) + 2;
    const height = lineH * (rows.length + 2) + 2;
    canvas.width = Math.ceil(width * ratio);
    canvas.height = Math.ceil(height * ratio);
    ctx.scale(ratio, ratio);
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, width, height);
    ctx.font = "bold 15px sans-serif";
    ctx.fillStyle = "#111";
    ctx.textBaseline = "middle";
    ctx.fillText(spec.title || "", 1, lineH / 2);
    ctx.font = font;
    [columns].concat(rows).forEach((r, i) => {
      const y = lineH * (i + 1);
      if (i === 0) {
        ctx.fillStyle = "#eef2f7";
        ctx.fillRect(0, y, width, lineH);
      }
      let x = 0;
      r.forEach((cell, j) => {
        ctx.strokeStyle = "#999";
        ctx.strokeRect(x + 0.5, y + 0.5, widths[j], lineH);
        ctx.fillStyle = "#111";
        ctx.fillText(String(cell), x + pad, y + lineH / 2);
        x += widths[j];
      });
    });
    return canvas.toDataURL("image/png");
  }

  // "Save as PNG": the chart's pixels (white background) downloaded under the chart's title.
  function fileName(title) {
    const safe = String(title || "").replace(/[\\/:*?"<>|\r\n\t]+/g, " ").trim().slice(0, 80);
    return `${safe || "chart"}.png`;
  }

  function addExport(el, inst, spec, w) {
    el.countylabChart = inst;
    el.countylabTitle = spec.title || "";
    if (el.dataset.chartExport === "1" || !el.parentNode) return;
    el.dataset.chartExport = "1";
    const tools = document.createElement("div");
    tools.className = "chart-tools";
    tools.style.textAlign = "right";
    const button = document.createElement("button");
    button.type = "button";
    button.className = "small chart-export";
    button.textContent = w.exportPng;
    button.title = `${w.exportPng}: ${fileName(spec.title)}`;
    button.addEventListener("click", () => {
      const current = el.countylabChart;
      if (!current) return;
      const a = document.createElement("a");
      a.href = current.getDataURL({ type: "png", pixelRatio: 2, backgroundColor: "#fff" });
      a.download = fileName(el.countylabTitle);
      document.body.appendChild(a);
      a.click();
      a.remove();
    });
    tools.appendChild(button);
    el.parentNode.insertBefore(tools, el.nextSibling);
  }

  // A chart inside a <figure> with a <figcaption> has its title on the page already.
  function captioned(el) {
    const fig = el.closest("figure");
    return !!(fig && fig.querySelector("figcaption"));
  }

  function draw(el, spec, options) {
    if (!el || !spec || !window.echarts) return null;
    const opts = Object.assign({}, options || {});
    opts.titled = opts.title !== undefined ? !!opts.title : !captioned(el);
    const w = words(opts);
    let inst = null;
    if (spec.kind === "line") {
      inst = lineWithBand(el, spec, opts, w);
    } else if (spec.kind === "card") {
      inst = card(el, spec, opts, w);
    } else if (spec.kind === "table") {
      inst = table(el, spec);
    } else if (spec.kind === "map" && root.map && typeof root.map.draw === "function") {
      inst = root.map.draw(el, spec, opts);
    } else {
      // bars (and a map on a page without static/map.js: its areas as bars, nothing lost)
      inst = barsWithIntervals(el, { categories: names(spec), series: spec.series || [] }, {
        yName: spec.unit || "",
        intervalLabel: w.interval,
        missingLabel: w.noData,
        height: opts.height || el.clientHeight || 320,
        dark: opts.dark,
        title: opts.titled ? spec.title || "" : "",
      });
    }
    if (inst && opts.exportButton !== false) addExport(el, inst, spec, w);
    return inst;
  }

  // Pages carry their charts as <figure class="lab-chart"> with a .lab-chart-canvas and the spec
  // as non-executed JSON (templates/_lab_chart.html); draw them all once the page is parsed.
  function drawAll() {
    const drawn = [];
    document.querySelectorAll("figure.lab-chart").forEach((fig) => {
      const el = fig.querySelector(".lab-chart-canvas");
      const data = fig.querySelector("script.chart-spec");
      if (!el || !data || el.dataset.drawn) return;
      fig.style.margin = "0";  // a <figure>'s default 40px sides would squeeze the chart
      try {
        const inst = draw(el, JSON.parse(data.textContent), { height: Number(el.dataset.height) || 280 });
        if (inst) {
          el.dataset.drawn = "1";
          drawn.push(inst);
        }
      } catch (err) {
        el.dataset.drawn = "error";
      }
    });
    if (drawn.length) window.addEventListener("resize", () => drawn.forEach((c) => c.resize && c.resize()));
  }

  root.chart = { draw, drawAll, barsWithIntervals, fileName, exportButton: addExport, words };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", drawAll);
  else drawAll();
})();
