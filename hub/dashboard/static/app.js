// The dashboard's only script: live numbers and states on the overview, a notice when they are
// stale, and "select all" on lists.
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

// Numbers as the page's language writes them (1.382,49 in Vietnamese, 1,382.49 in English),
// as pages.py does.
const LOCALE = document.documentElement.lang === "en" ? "en-US" : "vi-VN";

function grouped(n, decimals) {
  return n.toLocaleString(LOCALE, {
    minimumFractionDigits: decimals, maximumFractionDigits: decimals,
  });
}

function duration(s) {
  if (s === null || s === undefined) return "-";
  if (s < 1) return grouped(s * 1000, 0) + " ms";
  if (s < 120) return grouped(s, 1) + " s";
  if (s < 7200) return grouped(s / 60, 1) + " min";
  return grouped(s / 3600, 1) + " h";
}

function percent(r) {
  return r === null || r === undefined ? "-" : grouped(r * 100, 1) + " %";
}

function number(n) {
  if (n === null || n === undefined) return "-";
  return grouped(n, Number.isInteger(n) ? 0 : 2);
}

function setText(root, selector, text) {
  const el = root.querySelector(selector);
  if (el && el.textContent !== text) el.textContent = text;
}

// A state's "since": the time alone when it is today (UTC+7), else the date too (as pages.py).
function clock(iso) {
  const full = when(iso);
  if (full.length !== 19) return full;
  const today = when(new Date().toISOString()).slice(0, 10);
  return full.startsWith(today) ? full.slice(11) : full;
}

function applyCard(el, card, labels, since) {
  el.className = "card state-" + card.state;
  const state = el.querySelector("[data-field=state]");
  if (state && state.dataset.state !== card.state) {
    state.dataset.state = card.state;
    state.textContent = labels[card.state] || card.state;
  }
  const at = el.querySelector("[data-field=since]");
  if (at) {
    at.dataset.iso = card.since || "";
    at.title = card.since ? when(card.since) : "";
    setText(el, "[data-field=since]", card.since ? since.replace("{time}", clock(card.since)) : "");
  }
  const reason = el.querySelector("[data-field=reason]");
  if (reason) {
    setText(el, "[data-field=reason]", card.reason || "");
    reason.hidden = !card.reason;
  }
  setText(el, "[data-field=last_success]", when(card.last_success_at));
  setText(el, "[data-field=throughput]", number(card.throughput_per_min));
  setText(el, "[data-field=error_rate]", percent(card.error_rate));
  setText(el, "[data-field=queue_depth]", number(card.queue_depth));
  setText(el, "[data-field=oldest_waiting]", duration(card.oldest_waiting_s));
  setText(el, "[data-field=dead_letters] a", number(card.dead_letters));
  const window_ = el.querySelector("[data-field=rate_window]");
  if (window_ && card.rate_window_s) {
    setText(el, "[data-field=rate_window]",
      (window_.dataset.text || "{window}").replace("{window}", duration(card.rate_window_s)));
  }
}

function applyOverview(data) {
  const c = data.completeness;
  setText(document, "[data-testid=completeness]", percent(c.ratio));
  setText(document, "[data-testid=completeness-confirmed]", number(c.confirmed));
  setText(document, "[data-testid=completeness-dossiers]", number(c.dossiers));
  setText(document, "[data-testid=lag-p50]", duration(data.lag.p50_s));
  setText(document, "[data-testid=lag-p95]", duration(data.lag.p95_s));
  for (const [selector, over] of [
    ["[data-testid=completeness]", c.below_min], ["[data-testid=lag-p95]", data.lag.over_max],
  ]) {
    const el = document.querySelector(selector);
    if (el) el.classList.toggle("over", Boolean(over));
  }
  setText(document, "[data-testid=lag-samples]", number(data.lag.samples));
  setText(document, "[data-testid=updated-at]", when(data.generated_at));
  const cards = document.querySelector("section.cards");
  const labels = cards ? JSON.parse(cards.dataset.labels || "{}") : {};
  const since = cards ? cards.dataset.since || "{time}" : "{time}";
  for (const card of data.connectors) {
    const el = document.querySelector(
      `[data-testid=connector-card][data-connector="${CSS.escape(card.name)}"]`);
    if (el) applyCard(el, card, labels, since);
  }
}

// The page must say within 10 s that the hub is gone, whatever `refresh_s` is: it asks at
// least every MAX_EVERY_MS, gives a request FETCH_TIMEOUT_MS before counting it as failed (a
// hung hub), and shows the notice at the first failure; a watchdog shows it too when nothing
// succeeded for a while (timers a background tab delayed). While stale it asks more often,
// to hide the notice soon after the hub answers again.
const OVERVIEW = "/api/v1/admin/overview";
const MAX_EVERY_MS = 5000;
const FETCH_TIMEOUT_MS = 3500;
const STALE_EVERY_MS = 2000;

async function fetchOverview() {
  const abort = new AbortController();
  const timer = window.setTimeout(() => abort.abort(), FETCH_TIMEOUT_MS);
  try {
    const r = await fetch(OVERVIEW, {
      credentials: "same-origin", cache: "no-store", signal: abort.signal,
    });
    if (r.status === 401) return { outcome: "login" };
    if (!r.ok) return { outcome: "failed" };
    return { outcome: "ok", data: await r.json() };
  } catch (e) {
    return { outcome: "failed" };  // refused, reset, aborted by the timer, or not JSON
  } finally {
    window.clearTimeout(timer);
  }
}

function liveOverview() {
  const asked = Number(document.body.dataset.refresh) || 5;
  const every = Math.min(MAX_EVERY_MS, Math.max(1, asked) * 1000);
  const staleAfter = Math.max(2 * every, 2 * FETCH_TIMEOUT_MS);
  const notice = document.querySelector("[data-testid=stale-notice]");
  const updated = document.querySelector("[data-testid=updated-at]");
  let lastGenerated = updated ? updated.dataset.iso : "";
  let lastOkAt = Date.now();
  let stale = false;

  const setStale = (on) => {
    if (on && notice) {
      notice.textContent = (notice.dataset.text || "{time}").replace("{time}", when(lastGenerated));
    }
    if (on === stale) return;
    stale = on;
    document.body.classList.toggle("stale", on);
    if (notice) notice.hidden = !on;
  };

  const tick = async () => {
    const got = await fetchOverview();
    if (got.outcome === "login") { window.location.assign("/dashboard/login"); return; }
    if (got.outcome === "ok") {
      applyOverview(got.data);
      lastGenerated = got.data.generated_at;
      lastOkAt = Date.now();
    }
    setStale(got.outcome !== "ok");
    window.setTimeout(tick, stale ? Math.min(every, STALE_EVERY_MS) : every);
  };
  window.setTimeout(tick, every);
  window.setInterval(() => {
    if (!stale && Date.now() - lastOkAt > staleAfter) setStale(true);
  }, 1000);
}

document.addEventListener("DOMContentLoaded", () => {
  if (document.body.dataset.live === "overview") liveOverview();
  for (const box of document.querySelectorAll("input.select-all")) {
    box.addEventListener("change", () => {
      for (const item of box.closest("form").querySelectorAll("input[name=message_id]")) {
        item.checked = box.checked;
      }
    });
  }
});

// --- console-stuck: a bulk replay or discard's progress, read from the admin API until done ---
const BULK_EVERY_MS = 1000;

function liveBulkJob() {
  const id = document.body.dataset.job;
  const box = document.querySelector("[data-testid=bulk-job]");
  if (!id || !box) return;
  const words = JSON.parse(box.dataset.words || "{}");
  const tick = async () => {
    let job = null;
    try {
      const r = await fetch(`/api/v1/admin/dead-letter-actions/${encodeURIComponent(id)}`, {
        credentials: "same-origin", cache: "no-store",
      });
      if (r.ok) job = await r.json();
    } catch (e) {
      job = null;  // the hub is away: ask again
    }
    if (job) {
      box.dataset.state = job.state;
      box.dataset.done = String(job.done);
      setText(box, "[data-field=state]", words[job.state] || job.state);
      const expected = job.expected === null ? "?" : number(job.expected);
      setText(box, "[data-field=progress]", (words.progress || "{done} / {expected}")
        .replace("{done}", number(job.done)).replace("{expected}", expected));
      const bar = box.querySelector("[data-field=bar]");
      if (bar) {
        bar.max = Math.max(job.expected || 0, job.done, 1);
        bar.value = job.done;
      }
      const error = box.querySelector("[data-field=error]");
      if (error) {
        error.textContent = job.error || "";
        error.hidden = !job.error;
      }
      if (job.state !== "running") return;
    }
    window.setTimeout(tick, BULK_EVERY_MS);
  };
  if (box.dataset.state === "running") window.setTimeout(tick, 200);
}

document.addEventListener("DOMContentLoaded", () => {
  if (document.body.dataset.live === "bulk-job") liveBulkJob();
});
// --- end console-stuck ---
