// The dashboard's only script: live numbers on the overview, and "select all" on lists.
// It writes text only (textContent), never markup, so nothing it shows can run as code.
"use strict";

const TZ = "Asia/Ho_Chi_Minh";

function when(iso) {
  if (!iso) return "-";
  const d = new Date(iso);
  if (isNaN(d)) return iso;
  const parts = new Intl.DateTimeFormat("sv-SE", {
    timeZone: TZ, year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false,
  }).format(d);
  return parts.replace("T", " ");
}

function duration(s) {
  if (s === null || s === undefined) return "-";
  if (s < 1) return Math.round(s * 1000) + " ms";
  if (s < 120) return s.toFixed(1) + " s";
  if (s < 7200) return (s / 60).toFixed(1) + " min";
  return (s / 3600).toFixed(1) + " h";
}

function percent(r) {
  return r === null || r === undefined ? "-" : (r * 100).toFixed(1) + " %";
}

function number(n) {
  if (n === null || n === undefined) return "-";
  return Number.isInteger(n) ? n.toLocaleString("en-US")
    : n.toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
}

function setText(root, selector, text) {
  const el = root.querySelector(selector);
  if (el && el.textContent !== text) el.textContent = text;
}

function applyOverview(data) {
  const c = data.completeness;
  setText(document, "[data-testid=completeness]", percent(c.ratio));
  setText(document, "[data-testid=completeness-confirmed]", number(c.confirmed));
  setText(document, "[data-testid=completeness-dossiers]", number(c.dossiers));
  setText(document, "[data-testid=lag-p50]", duration(data.lag.p50_s));
  setText(document, "[data-testid=lag-p95]", duration(data.lag.p95_s));
  setText(document, "[data-testid=lag-samples]", number(data.lag.samples));
  setText(document, "[data-testid=updated-at]", when(data.generated_at));
  const labels = window.hubStates || {};
  for (const card of data.connectors) {
    const el = document.querySelector(
      `[data-testid=connector-card][data-connector="${CSS.escape(card.name)}"]`);
    if (!el) continue;
    el.className = "card state-" + card.state;
    const state = el.querySelector("[data-field=state]");
    if (state && state.dataset.state !== card.state) {
      state.dataset.state = card.state;
      state.textContent = labels[card.state] || card.state;
    }
    setText(el, "[data-field=last_success]", when(card.last_success_at));
    setText(el, "[data-field=throughput]", number(card.throughput_per_min));
    setText(el, "[data-field=error_rate]", percent(card.error_rate));
    setText(el, "[data-field=queue_depth]", number(card.queue_depth));
    setText(el, "[data-field=oldest_waiting]", duration(card.oldest_waiting_s));
    setText(el, "[data-field=dead_letters] a", number(card.dead_letters));
  }
}

function liveOverview() {
  const every = Math.max(1, Number(document.body.dataset.refresh || 5)) * 1000;
  const tick = async () => {
    try {
      const r = await fetch("/api/v1/admin/overview", { credentials: "same-origin" });
      if (r.status === 401) { window.location.assign("/dashboard/login"); return; }
      if (r.ok) applyOverview(await r.json());
    } catch (e) { /* the next tick tries again */ }
    window.setTimeout(tick, every);
  };
  window.setTimeout(tick, every);
}

document.addEventListener("DOMContentLoaded", () => {
  const cards = document.querySelector("section.cards[data-labels]");
  window.hubStates = cards ? JSON.parse(cards.dataset.labels) : {};
  if (document.body.dataset.live === "overview") liveOverview();
  for (const box of document.querySelectorAll("input.select-all")) {
    box.addEventListener("change", () => {
      for (const item of box.closest("form").querySelectorAll("input[name=message_id]")) {
        item.checked = box.checked;
      }
    });
  }
});
