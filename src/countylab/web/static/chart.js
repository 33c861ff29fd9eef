// countylab — chart component: bars with 95% interval whiskers, on top of ECharts (served from
// /static/vendor/, installed by scripts/assets.sh; no CDN).  Pages reuse it for DP answers,
// dataset profiles, job metering and the showcase:
//
//   countylab.chart.barsWithIntervals(el, data, options)
//
//   data = {
//     categories: ["城关镇", …],                       // x axis, in order
//     series: [{ name: "人数", values: [v|null, …],   // one series: plain bars; several: grouped
//                low: [lo|null, …], high: [hi|null, …], texts: ["1,230", …] }],
//     missing: ["青溪街道", …]                         // groups with no released value, drawn marked
//   }
//   options = { yName, missingLabel, intervalLabel, height }   // words in the page's language
//
// Returns the ECharts instance, or null when ECharts is not loaded (the page keeps its table).
// Tooltips are drawn on the canvas (richText): the lab's CSP allows no inline styles.
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
    const chart = echarts.getInstanceByDom(el) || echarts.init(el, null, {
      renderer: "canvas",
      height: opts.height || 320,
    });
    chart.setOption({
      animation: false,
      grid: { left: 56, right: 16, top: count > 1 ? 36 : 16, bottom: 72 },
      legend: count > 1 ? { data: series.map((s) => s.name), top: 0 } : { show: false },
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

  root.chart = { barsWithIntervals };
})();
