// countylab — the county map on top of ECharts (served from /static/vendor/, no CDN, no tiles):
// the boundaries are GeoJSON that ECharts draws itself.
//
//   countylab.map.draw(el, chartSpec, geojson, options)   -> ECharts instance (or null)
//   countylab.map.load(level)                             -> Promise of the level's GeoJSON
//   countylab.map.render(el, chartSpec, options)          -> Promise: load(chartSpec.level) + draw
//
//   chartSpec: a map-kind countylab.showcase.chartspec.Chart as to_dict() writes it
//              ({kind: "map", level, title, unit, source, categories: [code…], category_names,
//                series: [{name, values, low, high, texts}]}), or null for the bare boundaries.
//   geojson:   a FeatureCollection whose features carry properties.code and properties.name.
//   options:   {words: {noData, interval, source, hour, layers: {air_quality: …}},
//               layers: [{layer, title, value_label: [zh, en], points: [{id, name, lon, lat,
//               value, hour, readings: [[zh, en, v]…]}]}], level, theme: "dark", labels: bool,
//               townBorders: the town GeoJSON, drawn as lines over a village map}
//
// Areas with a value are coloured along a visualMap legend; a DP value's tooltip shows its 95%
// interval and every tooltip names the source.  Areas without a value are hatched grey and say
// 无数据, so "no figure released" never reads as zero.  Tooltips are drawn on the canvas
// (richText): the lab's CSP allows no inline styles.
(function () {
  "use strict";
  const root = (window.countylab = window.countylab || {});
  let seq = 0;
  const cache = {};

  function hatch(dark) {
    const c = document.createElement("canvas");
    c.width = 8;
    c.height = 8;
    const g = c.getContext("2d");
    g.fillStyle = dark ? "#2b3440" : "#f1f1f1";
    g.fillRect(0, 0, 8, 8);
    g.strokeStyle = dark ? "#56606c" : "#b9b9b9";
    g.lineWidth = 1.2;
    g.beginPath();
    g.moveTo(0, 8);
    g.lineTo(8, 0);
    g.moveTo(-2, 2);
    g.lineTo(2, -2);
    g.moveTo(6, 10);
    g.lineTo(10, 6);
    g.stroke();
    return { image: c, repeat: "repeat" };
  }

  function fmt(v) {
    if (v === null || v === undefined || Number.isNaN(v)) return "";
    const digits = Math.abs(v) >= 100 ? 0 : 1;
    return Number(v).toLocaleString(undefined, { maximumFractionDigits: digits });
  }

  function has(v) {
    return v !== null && v !== undefined && !Number.isNaN(v);
  }

  // HJ 633-2012 AQI colours (优 良 轻度 中度 重度 严重)
  function aqiColour(v) {
    if (!has(v)) return "#999";
    if (v <= 50) return "#00a651";
    if (v <= 100) return "#f2c500";
    if (v <= 150) return "#ff7e00";
    if (v <= 200) return "#e60012";
    if (v <= 300) return "#8f3f97";
    return "#7e0023";
  }

  function pointSeries(layers, words, lang) {
    const out = [];
    (layers || []).forEach((l) => {
      const air = l.layer === "air_quality";
      const vals = l.points.map((p) => p.value).filter(has);
      const top = vals.length ? Math.max.apply(null, vals) : 1;
      const name = (words.layers || {})[l.layer] || l.title;
      out.push({
        type: air ? "effectScatter" : "scatter",
        name,
        coordinateSystem: "geo",
        geoIndex: 0,
        symbol: air ? "circle" : "rect",
        symbolSize: (val) => (has(val[2]) ? (air ? 9 : 6) + (air ? 11 : 7) * Math.min(1, val[2] / (top || 1)) : 8),
        rippleEffect: { scale: 2.2, brushType: "stroke" },
        zlevel: 2,
        itemStyle: air
          ? { color: (p) => aqiColour(p.value[2]), borderColor: "#fff", borderWidth: 1 }
          : { color: "#1f5f99", borderColor: "#fff", borderWidth: 1 },
        data: l.points.map((p) => ({
          name: p.name,
          value: [p.lon, p.lat, p.value],
          hour: p.hour,
          readings: p.readings,
          layerTitle: l.title,
        })),
        tooltip: {
          formatter(p) {
            const d = p.data || {};
            const lines = [d.name];
            (d.readings || []).forEach((r) => lines.push(`${lang === "en" ? r[1] : r[0]}: ${has(r[2]) ? r[2] : "—"}`));
            if (d.hour) lines.push(`${words.hour || "hour"}: ${String(d.hour).replace("T", " ").slice(0, 16)}`);
            lines.push(`${words.source || "source"}: ${d.layerTitle || ""}`);
            return lines.join("\n");
          },
        },
      });
    });
    return out;
  }

  function draw(el, spec, geojson, options) {
    const echarts = window.echarts;
    if (!el || !echarts || !geojson || !geojson.features) return null;
    const o = options || {};
    const words = o.words || {};
    const dark = o.theme === "dark";
    const level = (spec && spec.level) || o.level || "town";
    const mapName = "countylab-map-" + ++seq;
    echarts.registerMap(mapName, geojson);
    const names = {};
    geojson.features.forEach((f) => {
      names[f.properties.code] = f.properties.name || f.properties.code;
    });
    const s = spec && spec.series && spec.series.length ? spec.series[0] : null;
    const unit = (spec && spec.unit) || "";
    const sourceLabel = spec && spec.source ? spec.source.label : "";
    const data = [];
    const valued = new Set();
    const values = [];
    if (s) {
      (spec.categories || []).forEach((code, i) => {
        const v = s.values[i];
        if (!has(v)) return;
        const text = s.texts && s.texts[i] ? s.texts[i] : fmt(v);
        data.push({
          name: code,
          value: v,
          text,
          low: s.low ? s.low[i] : null,
          high: s.high ? s.high[i] : null,
        });
        if (spec.category_names && spec.category_names[i]) names[code] = names[code] || spec.category_names[i];
        valued.add(code);
        values.push(v);
      });
    }
    const labels = o.labels !== undefined ? o.labels : level === "town";
    const ink = dark ? "#e8eef5" : "#2b2b2b";
    const regions = [];
    const noData = words.noData || "无数据";
    if (s) {
      const pattern = hatch(dark);
      geojson.features.forEach((f) => {
        const code = f.properties.code;
        if (valued.has(code)) return;
        regions.push({
          name: code,
          itemStyle: { areaColor: pattern, borderColor: dark ? "#56606c" : "#a0a0a0" },
          // a region's own label does not inherit the geo's formatter: name + 无数据 given here
          label: { show: labels, color: dark ? "#aab4c0" : "#666", formatter: () => `${names[code]}\n${noData}` },
        });
        // in the data too (no value), so that hovering it names the area: ECharts gives the
        // tooltip of an area outside the series data no name
        data.push({ name: code, value: NaN, missing: true });
      });
    }
    let min = values.length ? Math.min.apply(null, values) : 0;
    let max = values.length ? Math.max.apply(null, values) : 1;
    if (min === max) {
      min = Math.min(0, min);
      max = max + 1;
    }
    const series = [];
    if (s) {
      series.push({
        type: "map",
        // a bare column name (n, count) says less than the word "value" in the page's language
        name: s.name && !/^[a-z0-9_]+$/.test(s.name) ? s.name : words.value || spec.title,
        geoIndex: 0,
        data,
        tooltip: {
          formatter(p) {
            const d = p.data;
            const area = names[p.name] || p.name;
            if (!d || d.missing || !has(d.value)) return `${area}\n${noData}`;
            const lines = [area, `${p.seriesName}: ${d.text}${unit ? " " + unit : ""}`];
            if (has(d.low) && has(d.high)) lines.push(`${words.interval || "95%"} [${fmt(d.low)}, ${fmt(d.high)}]`);
            if (sourceLabel) lines.push(`${words.source || "source"}: ${sourceLabel}`);
            return lines.join("\n");
          },
        },
      });
    }
    if (o.townBorders && o.townBorders.features) {
      // at village level, the towns' borders drawn over the villages (a reader finds a village by its town)
      const rings = [];
      o.townBorders.features.forEach((f) => {
        const g = f.geometry || {};
        const polys = g.type === "Polygon" ? [g.coordinates] : g.type === "MultiPolygon" ? g.coordinates : [];
        polys.forEach((poly) => rings.push({ coords: poly[0] }));
      });
      series.push({
        type: "lines",
        coordinateSystem: "geo",
        geoIndex: 0,
        polyline: true,
        silent: true,
        zlevel: 1,
        tooltip: { show: false },
        lineStyle: { color: dark ? "#c9d6e3" : "#4f6478", width: 1.6, opacity: 0.9 },
        data: rings,
      });
    }
    const points = pointSeries(o.layers, words, words.lang || document.documentElement.lang);
    points.forEach((p) => series.push(p));
    const chart = echarts.getInstanceByDom(el) || echarts.init(el, null, { renderer: "canvas" });
    chart.setOption(
      {
        animation: false,
        backgroundColor: "transparent",
        tooltip: { trigger: "item", renderMode: "richText", confine: true },
        geo: {
          map: mapName,
          nameProperty: "code",
          roam: true,
          scaleLimit: { min: 0.8, max: 12 },
          top: 16,
          bottom: s ? 56 : 16,
          aspectScale: 0.87, // cos(latitude) near 29°N: a kilometre looks as long both ways
          label: {
            show: labels,
            color: ink,
            // light ink on the big screen sits on pale choropleth fills too: a dark halo keeps it legible
            textBorderColor: dark ? "rgba(8, 20, 34, 0.9)" : "transparent",
            textBorderWidth: dark ? 2 : 0,
            fontSize: 11,
            formatter: (p) =>
              (names[p.name] || p.name) + (s && !valued.has(p.name) ? `\n${words.noData || "无数据"}` : ""),
          },
          itemStyle: {
            areaColor: dark ? "#1d2b3a" : s ? "#eef2f6" : "#dce8f4",
            borderColor: dark ? "#8aa0b8" : "#ffffff",
            borderWidth: level === "town" ? 1.2 : 0.6,
          },
          emphasis: {
            label: { show: true, color: ink, formatter: (p) => names[p.name] || p.name },
            itemStyle: { areaColor: dark ? "#3d5a7a" : "#ffd98a" },
          },
          select: { disabled: true },
          tooltip: {
            show: true,
            formatter: (p) => `${names[p.name] || p.name}${s ? "\n" + (words.noData || "无数据") : ""}`,
          },
          regions,
        },
        visualMap: s && values.length
          ? {
              type: "continuous",
              seriesIndex: 0,
              min,
              max,
              calculable: false,
              orient: "horizontal",
              left: 16,
              bottom: 8,
              itemWidth: 12,
              itemHeight: 160,
              text: [fmt(max) + (unit ? " " + unit : ""), fmt(min)],
              textStyle: { color: ink },
              inRange: { color: ["#fff3d6", "#fdc877", "#f08c3c", "#c9532b", "#8c2d1e"] },
            }
          : undefined,
        legend: points.length
          ? { data: points.map((p) => p.name), right: 10, top: 8, orient: "vertical", textStyle: { color: ink } }
          : { show: false },
        series,
      },
      true,
    );
    el.setAttribute("data-map-ready", "1");
    el.setAttribute("data-map-areas", String(geojson.features.length));
    el.setAttribute("data-map-valued", String(valued.size));
    return chart;
  }

  function load(levelOrUrl) {
    const url = levelOrUrl.indexOf("/") >= 0 ? levelOrUrl : `/public/api/map/boundaries/${levelOrUrl}`;
    if (!cache[url]) {
      cache[url] = fetch(url, { credentials: "same-origin" }).then((r) => {
        if (!r.ok) throw new Error(`boundaries ${r.status}`);
        return r.json();
      });
    }
    return cache[url];
  }

  function render(el, spec, options) {
    const level = (spec && spec.level) || (options && options.level) || "town";
    return load(level).then((g) => draw(el, spec, g, options));
  }

  function json(id) {
    const node = document.getElementById(id);
    if (!node) return null;
    try {
      return JSON.parse(node.textContent);
    } catch (e) {
      return null;
    }
  }

  function autoInit() {
    const words = json("map-words") || {};
    document.querySelectorAll("[data-countylab-map]").forEach((el) => {
      const preview = el.getAttribute("data-preview") === "1";
      const spec = preview ? null : json("map-chart");
      const layers = preview ? [] : json("map-layers") || [];
      const level = el.getAttribute("data-level");
      const towns = level === "village" ? load("town").catch(() => null) : Promise.resolve(null);
      Promise.all([load(el.getAttribute("data-countylab-map")), towns])
        .then(([g, townBorders]) => {
          if (!g.features || !g.features.length) {
            el.classList.add("county-map-empty");
            el.textContent = words.noBoundaries || "";
            el.setAttribute("data-map-ready", "0");
            return;
          }
          const chart = draw(el, spec, g, { words, layers, level, townBorders });
          if (chart) window.addEventListener("resize", () => chart.resize());
        })
        .catch(() => {
          el.classList.add("county-map-empty");
          el.textContent = words.noBoundaries || "";
        });
    });
  }

  root.map = { draw, load, render };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", autoInit);
  else autoInit();
})();
