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

  function renderAnswer(data) {
    result.replaceChildren();
    result.appendChild(el("h2", {}, result.dataset.resultTitle));
    const wrap = el("div", { class: "table-wrap" });
    const table = el("table", { class: "table result-table" });
    const head = el("tr");
    data.columns.forEach((c) => head.appendChild(el("th", {}, c)));
    table.appendChild(el("thead")).appendChild(head);
    const body = el("tbody");
    data.rows.forEach((row, i) => {
      const tr = el("tr");
      row.forEach((v, j) => {
        const td = el("td", {}, fmt(v));
        const iv = (data.intervals || {})[data.columns[j]];
        if (iv && iv[i]) {
          td.appendChild(el("span", { class: "ci" },
            `${result.dataset.interval} [${fmt(iv[i][0])}, ${fmt(iv[i][1])}]`));
        }
        tr.appendChild(td);
      });
      body.appendChild(tr);
    });
    if (!data.rows.length) {
      body.appendChild(el("tr")).appendChild(el("td", { colspan: data.columns.length, class: "muted" },
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
    if (data.suppressed && data.suppressed.length) {
      result.appendChild(el("h3", {}, result.dataset.suppressed));
      const ul = el("ul", { class: "small" });
      data.suppressed.forEach((c) => ul.appendChild(el("li", {}, `${c.row.join(", ")} · ${c.column}: ${c.reasons.join(", ")}`)));
      result.appendChild(ul);
    }
    const notes = el("ul", { class: "muted small" });
    (data.notes || []).forEach((n) => notes.appendChild(el("li", {}, n)));
    result.appendChild(notes);
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
    tr.appendChild(el("td", { class: "nowrap" }, new Date().toISOString().slice(0, 19).replace("T", " ")));
    tr.appendChild(el("td", {}, document.querySelector(".topbar .me")?.textContent || ""));
    tr.appendChild(el("td")).appendChild(el("code", {}, sql));
    tr.appendChild(el("td", {}, data ? fmt(data.epsilon_spent) : "0"));
    tr.appendChild(el("td", {}, status));
    tbody.prepend(tr);
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
