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

// Long actions show progress, not a frozen page.  A form with data-progress="message" gets, on
// submit: its submit buttons disabled (after the event, so the pressed button's name/value is
// still sent; a second click cannot send it twice), a spinner with the message, and after two
// seconds the time elapsed.  When the page's own script sends the form (it called
// preventDefault), the indicator stays until that script enables its button again.  Any element
// with data-elapsed-since="<ISO time>" (a job still running) shows the time since then, live.
(() => {
  "use strict";
  const clock = (seconds) => {
    const s = Math.max(0, Math.floor(seconds));
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
    const two = (n) => String(n).padStart(2, "0");
    return h ? `${h}:${two(m)}:${two(r)}` : `${m}:${two(r)}`;
  };

  function start(form, submitter, { disable }) {
    if (form.dataset.progressActive === "1") return null;
    form.dataset.progressActive = "1";
    form.setAttribute("aria-busy", "true");
    const buttons = Array.from(form.querySelectorAll("button:not([type=button]):not([type=reset]), input[type=submit]"))
      .filter((b) => !b.disabled);
    const note = document.createElement("div");
    note.className = "progress-note";
    note.setAttribute("role", "status");
    note.setAttribute("aria-live", "polite");
    const spinner = document.createElement("span");
    spinner.className = "spinner";
    spinner.setAttribute("aria-hidden", "true");
    const text = document.createElement("span");
    text.className = "progress-text";
    text.textContent = form.dataset.progress || "";
    const elapsed = document.createElement("span");
    elapsed.className = "progress-elapsed";
    note.append(spinner, text, elapsed);
    const anchor = submitter || buttons[buttons.length - 1];
    if (anchor && anchor.parentElement && form.contains(anchor)) anchor.insertAdjacentElement("afterend", note);
    else form.appendChild(note);
    if (disable) window.setTimeout(() => buttons.forEach((b) => { b.disabled = true; }), 0);
    const began = Date.now();
    const timer = window.setInterval(() => {
      const s = (Date.now() - began) / 1000;
      elapsed.textContent = s >= 2 ? clock(s) : "";
    }, 500);
    return () => {
      window.clearInterval(timer);
      note.remove();
      form.removeAttribute("aria-busy");
      delete form.dataset.progressActive;
      if (disable) buttons.forEach((b) => { b.disabled = false; });
    };
  }

  document.addEventListener("submit", (ev) => {
    const form = ev.target;
    if (!(form instanceof HTMLFormElement) || !form.hasAttribute("data-progress")) return;
    if (form.dataset.progressActive === "1" && !ev.defaultPrevented) { ev.preventDefault(); return; }
    const submitter = ev.submitter || null;
    if (!ev.defaultPrevented) { start(form, submitter, { disable: true }); return; }
    // the page's script sends it: follow its button (it disables it now, enables it when done)
    const button = submitter || form.querySelector("button:not([type=button]), input[type=submit]");
    const stop = start(form, submitter, { disable: false });
    if (!stop) return;
    if (!button) { form.addEventListener("countylab:done", stop, { once: true }); return; }
    const watch = new MutationObserver(() => {
      if (!button.disabled) { watch.disconnect(); stop(); }
    });
    watch.observe(button, { attributes: true, attributeFilter: ["disabled"] });
    window.setTimeout(() => { if (!button.disabled) { watch.disconnect(); stop(); } }, 0);
    form.addEventListener("countylab:done", () => { watch.disconnect(); stop(); }, { once: true });
  });

  // back/forward cache: a page restored after navigating away must not stay "busy"
  window.addEventListener("pageshow", (ev) => {
    if (!ev.persisted) return;
    document.querySelectorAll(".progress-note").forEach((n) => n.remove());
    document.querySelectorAll("form[data-progress-active]").forEach((f) => {
      delete f.dataset.progressActive;
      f.removeAttribute("aria-busy");
      f.querySelectorAll("button, input[type=submit]").forEach((b) => { b.disabled = false; });
    });
  });

  const since = document.querySelectorAll("[data-elapsed-since]");
  if (since.length) {
    const tick = () => since.forEach((el) => {
      const t0 = Date.parse(el.dataset.elapsedSince);
      if (!Number.isNaN(t0)) el.textContent = clock((Date.now() - t0) / 1000);
    });
    tick();
    window.setInterval(tick, 1000);
  }
})();
