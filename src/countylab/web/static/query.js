// countylab — query console: posts the form to /api/query and updates the page in place.
// Progressive enhancement: without JavaScript the form posts to /query and the page shows the answer.
(function () {
  "use strict";
  const form = document.getElementById("query-form");
  if (!form || !window.fetch) return;
  const result = document.getElementById("query-result");
  const errorBox = document.getElementById("query-error");
  const csrf = document.querySelector('meta[name="csrf-token"]')?.getAttribute("content") || "";

  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function fmt(v) {
    if (v === null || v === undefined) return "—";
    if (typeof v === "number" && !Number.isInteger(v)) return Number(v.toPrecision(4)).toString();
    return String(v);
  }

  // The answer as people read it: the server's display block (headers, names beside codes,
  // values rounded to their interval); the raw rows only when an older answer has none.
  function shownTable(data) {
    const d = data.display;
    if (d) return d;
    return {
      headers: data.columns, roles: data.columns.map((c) => ((data.intervals || {})[c] ? "measure" : "group")),
      cells: data.rows.map((r) => r.map(fmt)), values: data.rows.map((r) => r.map((v) => (typeof v === "number" ? v : null))),
      low: data.rows.map((r, i) => data.columns.map((c) => { const iv = (data.intervals || {})[c]; return iv && iv[i] ? fmt(iv[i][0]) : null; })),
      high: data.rows.map((r, i) => data.columns.map((c) => { const iv = (data.intervals || {})[c]; return iv && iv[i] ? fmt(iv[i][1]) : null; })),
      names: data.rows.map((r) => r.map(() => null)), missing: {},
    };
  }

  const num = (t) => (t === null || t === undefined ? null : Number(String(t).replace(/,/g, "")));

  // Chart data for countylab.chart: one group column (bars) or two (grouped bars), one measure.
  function chartData(data, d, m) {
    const groups = d.roles.map((r, i) => (r === "group" ? i : -1)).filter((i) => i >= 0);
    if (!groups.length || groups.length > 2 || m < 0) return null;
    const label = (r, c) => (d.names[r][c] !== null && d.names[r][c] !== undefined ? d.names[r][c] : d.cells[r][c]);
    const [g1, g2] = groups;
    const cats = [];
    d.cells.forEach((row, r) => { if (!cats.includes(label(r, g1))) cats.push(label(r, g1)); });
    const keys = g2 === undefined ? [d.headers[m]] : [];
    if (g2 !== undefined) d.cells.forEach((row, r) => { if (!keys.includes(label(r, g2))) keys.push(label(r, g2)); });
    const series = keys.map((k) => {
      const s = { name: k, values: cats.map(() => null), low: cats.map(() => null), high: cats.map(() => null), texts: cats.map(() => null) };
      d.cells.forEach((row, r) => {
        if (g2 !== undefined && label(r, g2) !== k) return;
        const i = cats.indexOf(label(r, g1));
        s.values[i] = d.values[r][m];
        s.low[i] = num(d.low[r][m]);
        s.high[i] = num(d.high[r][m]);
        s.texts[i] = d.cells[r][m];
      });
      return s;
    });
    return { categories: cats, series, missing: (d.missing || {})[data.columns[g1]] || [] };
  }

  function drawChart(data, d) {
    const box = document.getElementById("answer-chart");
    const pick = document.getElementById("chart-measure");
    if (!box) return;
    if (!(window.countylab && window.countylab.chart && window.echarts)) {  // no ECharts: the table only
      box.closest(".answer-chart").hidden = true;
      return;
    }
    const measures = d.roles.map((r, i) => (r === "measure" ? i : -1)).filter((i) => i >= 0);
    const m = pick && pick.value !== "" ? Number(pick.value) : (measures.length ? measures[0] : -1);
    const cd = chartData(data, d, m);
    box.closest(".answer-chart").hidden = !cd;
    if (!cd) return;
    const inst = window.countylab.chart.barsWithIntervals(box, cd, {
      yName: d.headers[m], missingLabel: box.dataset.missing, intervalLabel: box.dataset.interval,
    });
    const ch = window.countylab.chart;
    if (inst && ch.exportButton) ch.exportButton(box, inst, { title: `${result.dataset.chart} ${d.headers[m]}` }, ch.words());
  }

  function chartSection(data, d) {
    const section = el("div", { class: "answer-chart" });
    section.appendChild(el("h3", {}, result.dataset.chart));
    const measures = d.roles.map((r, i) => (r === "measure" ? i : -1)).filter((i) => i >= 0);
    if (measures.length > 1) {
      const pick = el("select", { id: "chart-measure", "aria-label": result.dataset.chart });
      measures.forEach((i) => pick.appendChild(el("option", { value: String(i) }, d.headers[i])));
      pick.addEventListener("change", () => drawChart(data, d));
      section.appendChild(pick);
    }
    section.appendChild(el("div", { id: "answer-chart", class: "chart", role: "img", "aria-label": result.dataset.chart,
      "data-missing": result.dataset.notReleased, "data-interval": result.dataset.interval }));
    section.appendChild(el("p", { class: "muted small" }, result.dataset.chartHint));
    return section;
  }

  function renderAnswer(data) {
    result.replaceChildren();
    const d = shownTable(data);
    result.appendChild(el("h2", {}, result.dataset.resultTitle));
    const wrap = el("div", { class: "table-wrap" });
    const table = el("table", { class: "table result-table" });
    const head = el("tr");
    d.headers.forEach((c, j) => head.appendChild(el("th", { title: data.columns[j] }, c)));
    table.appendChild(el("thead")).appendChild(head);
    const body = el("tbody");
    d.cells.forEach((row, i) => {
      const tr = el("tr");
      row.forEach((v, j) => {
        const td = el("td", d.roles[j] === "measure" ? { class: "num" } : {}, v);
        if (d.low[i][j] !== null && d.low[i][j] !== undefined) {
          td.appendChild(el("span", { class: "ci" }, `${result.dataset.interval} [${d.low[i][j]}, ${d.high[i][j]}]`));
        }
        tr.appendChild(td);
      });
      body.appendChild(tr);
    });
    if (!d.cells.length) {
      body.appendChild(el("tr")).appendChild(el("td", { colspan: d.headers.length, class: "muted" },
        result.dataset.noRows));
    }
    table.appendChild(body);
    wrap.appendChild(table);
    result.appendChild(wrap);
    const cost = data.cached ? result.dataset.cached
      : result.dataset.spent.replace("{epsilon}", fmt(data.epsilon_spent));
    const p = el("p", { class: "query-cost" }, `${cost} · ${result.dataset.remaining} `);
    p.appendChild(el("strong", { id: "budget-remaining" }, fmt(data.budget_remaining)));
    result.appendChild(p);
    if (data.query_id) {
      const dl = el("p", { class: "row-form downloads" });
      dl.appendChild(el("a", { class: "button", id: "download-csv", href: `/api/queries/${data.query_id}/answer.csv`, download: "" }, result.dataset.csv));
      dl.appendChild(el("a", { class: "button", id: "download-xlsx", href: `/api/queries/${data.query_id}/answer.xlsx`, download: "" }, result.dataset.xlsx));
      result.appendChild(dl);
    }
    result.appendChild(chartSection(data, d));
    if (data.suppressed && data.suppressed.length) {
      result.appendChild(el("h3", {}, result.dataset.suppressed));
      const ul = el("ul", { class: "small" });
      data.suppressed.forEach((c) => ul.appendChild(el("li", {}, `${c.row.join(", ")} · ${c.column}: ${c.reasons.join(", ")}`)));
      result.appendChild(ul);
    }
    const notes = el("ul", { class: "muted small" });
    ((data.display && data.display.notes) || data.notes || []).forEach((n) => notes.appendChild(el("li", {}, n)));
    result.appendChild(notes);
    drawChart(data, d);
  }

  function updateBudget(data) {
    (data.budget || []).forEach((b) => {
      const row = document.querySelector(`tr[data-budget="${b.dataset}:${b.user_id || 0}"]`);
      if (!row) return;
      row.querySelector(".b-spent").textContent = fmt(b.epsilon_spent);
      row.querySelector(".b-left").replaceChildren(el("strong", {}, fmt(b.epsilon_remaining)));
      row.querySelector(".b-delta").textContent = Number(b.delta_remaining).toPrecision(2);
    });
  }

  function addHistory(sql, data, status) {
    const tbody = document.querySelector("#history-table tbody");
    if (!tbody) return;
    tbody.querySelector("tr.empty")?.remove();
    const tr = el("tr");
    const beijing = new Date(Date.now() + 8 * 3600 * 1000).toISOString();  // the page shows Beijing time
    tr.appendChild(el("td", { class: "nowrap" }, beijing.slice(0, 19).replace("T", " ")));
    tr.appendChild(el("td", {}, document.querySelector(".topbar .me")?.textContent || ""));
    tr.appendChild(el("td")).appendChild(el("code", {}, sql));
    tr.appendChild(el("td", {}, data ? fmt(data.epsilon_spent) : "0"));
    const cell = tr.appendChild(el("td", {}, status));
    if (data && data.query_id) {  // the answer can be downloaded from the history too
      cell.appendChild(el("br"));
      const links = el("span", { class: "small nowrap" });
      links.appendChild(el("a", { href: `/api/queries/${data.query_id}/answer.csv`, download: "" }, "CSV"));
      links.appendChild(document.createTextNode(" · "));
      links.appendChild(el("a", { href: `/api/queries/${data.query_id}/answer.xlsx`, download: "" }, "XLSX"));
      cell.appendChild(links);
    }
    tbody.prepend(tr);
  }

  // An answer rendered by the server (the form posted without JavaScript, or a reload) gets its chart.
  const initial = document.getElementById("answer-json");
  if (initial) {
    try { renderAnswer(JSON.parse(initial.textContent)); } catch (err) { /* the table stays */ }
  }

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const fd = new FormData(form);
    const body = {
      sql: fd.get("sql"),
      project_id: Number(fd.get("project_id")),
      epsilon: Number(fd.get("epsilon")),
      confirm_delta: fd.get("confirm_delta") === "1",
    };
    const button = document.getElementById("run-query");
    button.disabled = true;
    errorBox.hidden = true;
    result.setAttribute("aria-busy", "true");
    try {
      const post = () => fetch("/api/query", {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
        body: JSON.stringify(body),
      });
      let resp = await post();
      let data = await resp.json();
      // A query that would spend δ asks first: the analyst confirms, then it runs (and is charged).
      if (resp.status === 409 && data?.error?.details?.reason === "confirm_delta") {
        if (!window.confirm(data.error.message)) return;
        body.confirm_delta = true;
        resp = await post();
        data = await resp.json();
      }
      if (!resp.ok) {
        result.replaceChildren(); // a refusal must not sit above the previous query's answer
        errorBox.textContent = data?.error?.message || resp.statusText;
        errorBox.hidden = false;
        addHistory(body.sql, null, document.getElementById("history-table")?.dataset.refused || "");
        return;
      }
      renderAnswer(data);
      updateBudget(data);
      const labels = document.getElementById("history-table")?.dataset || {};
      addHistory(body.sql, data, data.cached ? labels.cached : labels.answered);
    } catch (err) {
      errorBox.textContent = String(err);
      errorBox.hidden = false;
    } finally {
      button.disabled = false;
      result.removeAttribute("aria-busy");
    }
  });
})();
