// Dataset page: for live datasets (hourly / real-time feeds) refresh the row counts and the
// freshness time every 5 seconds, so pushed data is seen arriving without reloading the page.
(() => {
  const facts = document.getElementById("facts");
  if (!facts || !facts.dataset.live) return;
  const id = facts.dataset.dataset;
  const fmt = (n) => Number(n || 0).toLocaleString("en-US");
  async function refresh() {
    try {
      const r = await fetch(`/api/datasets/${id}`, { headers: { Accept: "application/json" } });
      if (!r.ok) return;
      const d = await r.json();
      document.getElementById("row-count").textContent = fmt(d.row_count);
      const live = document.getElementById("live-rows");
      live.hidden = !d.stream_rows;
      live.querySelector("span").textContent = fmt(d.stream_rows);
      if (d.data_updated_at) {
        const utc = new Date(d.data_updated_at.endsWith("Z") || d.data_updated_at.includes("+") ? d.data_updated_at : d.data_updated_at + "Z");
        const t = new Date(utc.getTime() + 8 * 3600 * 1000);  // Beijing time (UTC+8, no DST), like the page
        const pad = (x) => String(x).padStart(2, "0");
        document.getElementById("freshness").textContent =
          `${t.getUTCFullYear()}-${pad(t.getUTCMonth() + 1)}-${pad(t.getUTCDate())} ` +
          `${pad(t.getUTCHours())}:${pad(t.getUTCMinutes())}:${pad(t.getUTCSeconds())}`;
      }
    } catch (e) { /* offline for a moment: try again next tick */ }
  }
  setInterval(refresh, 5000);
})();
