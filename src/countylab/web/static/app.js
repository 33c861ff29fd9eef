// countylab — small progressive enhancements; every page works without JavaScript.
document.addEventListener("click", (ev) => {
  const toggle = ev.target.closest("[data-toggle-nav]");
  if (toggle) { document.getElementById("sidebar")?.classList.toggle("open"); return; }
  const confirmBtn = ev.target.closest("[data-confirm]");
  if (confirmBtn && !window.confirm(confirmBtn.dataset.confirm)) { ev.preventDefault(); return; }
  const copyBtn = ev.target.closest("[data-copy-button]");
  if (copyBtn) {
    const text = copyBtn.parentElement.querySelector("[data-copy]")?.textContent || "";
    navigator.clipboard?.writeText(text.trim());
  }
});
