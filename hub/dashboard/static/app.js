// The dashboard's only script: live updates on every page that shows state (the overview from
// the admin API, other pages by fetching themselves again and swapping their live regions),
// with a pause button, "updated at / connection lost" and the state in the page's title; the
// charts drawn as SVG at their size on the screen, with values on hover; the menu on a phone;
// "select all" on lists.
// It writes text (textContent) and SVG elements it builds itself; the only markup it moves is
// the hub's own page, fetched from the same origin and rendered there with every value
// escaped, and scripts in it never run (DOMParser does not run them).
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

// --- walkthrough: a state's reason in the page's words (reason_templates in pages.py) ---
function reasonWords(card, reasons) {
  const args = card.reason_args || {};
  let code = card.reason_code || "";
  if (code === "paused" && args.note) code = "paused_note";
  const template = reasons[code];
  if (!template) return card.reason || "";
  return template.replace(/\{(\w+)\}/g, (all, name) => (name in args ? String(args[name]) : all));
}
// --- end walkthrough ---

function applyCard(el, card, labels, since, reasons) {
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
    setText(el, "[data-field=reason]", reasonWords(card, reasons || {}));
    reason.title = card.reason || "";
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
  applyAlerts(data.alerts || []);
  if (data.replicas) applyReplicas(data.replicas);
  const cards = document.querySelector("section.cards");
  const labels = cards ? JSON.parse(cards.dataset.labels || "{}") : {};
  const since = cards ? cards.dataset.since || "{time}" : "{time}";
  const reasons = cards ? JSON.parse(cards.dataset.reasons || "{}") : {};
  for (const card of data.connectors) {
    const el = document.querySelector(
      `[data-testid=connector-card][data-connector="${CSS.escape(card.name)}"]`);
    if (el) applyCard(el, card, labels, since, reasons);
  }
}

// The replicas section: who runs which once-only duty, rebuilt from the admin API's overview
// in the words the page carries (as overview.html writes it).
function applyReplicas(r) {
  const section = document.querySelector("[data-testid=replicas]");
  if (!section) return;
  const words = JSON.parse(section.dataset.words || "{}");
  const say = (key, values) => (words[key] || key).replace(
    /\{(\w+)\}/g, (all, name) => (values && name in values ? String(values[name]) : all));
  const make = (tag, attrs, text) => {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    return node;
  };
  section.querySelector("[data-testid=replicas-unread]").hidden = r.store_read;
  const unheld = section.querySelector("[data-testid=duties-unheld]");
  unheld.querySelector("h3").textContent = say("unheld", { n: r.unheld.length });
  unheld.querySelector("ul").replaceChildren(...r.unheld.map((d) => {
    const li = make("li", { "data-duty": d.name });
    li.append(make("strong", { class: "id" }, d.name), ": ", d.last_holder
      ? say("lapsed", { holder: d.last_holder, time: when(d.lapsed_at) }) : say("never"));
    return li;
  }));
  unheld.hidden = r.unheld.length === 0;
  const rows = r.replicas.map((p) => {
    const tr = make("tr", {
      "data-testid": "replica-row", "data-replica": p.name, "data-this": p.this ? "yes" : "no",
    });
    const name = make("th", { scope: "row" });
    name.append(make("span", { class: "id" }, p.name));
    if (p.this) name.append(" ", make("strong", { class: "this-replica" }, `(${say("this")})`));
    const cell = make("td");
    if (p.duties.length) {
      const list = make("ul", { class: "duties" });
      for (const d of p.duties) {
        const li = make("li", { "data-duty": d.name });
        li.append(make("span", { class: "id" }, d.name), " ", make("span", { class: "muted" },
          d.expires_at ? say("until", { time: when(d.expires_at) }) : say("unknown")));
        list.append(li);
      }
      cell.append(list);
    } else {
      cell.append(make("span", { class: "muted" }, say("none")));
    }
    tr.append(name, cell);
    return tr;
  });
  const body = section.querySelector("[data-testid=replica-table] tbody");
  const was = body.textContent;
  const fresh = make("tbody");
  fresh.append(...rows);
  if (fresh.textContent !== was) body.replaceChildren(...rows);
}

// The banner of the hub's own alerts: one line each, in the page's language.
function applyAlerts(alerts) {
  const banner = document.querySelector("[data-testid=alerts]");
  if (!banner) return;
  const lang = banner.dataset.lang === "en" ? "en" : "vi";
  const list = banner.querySelector("ul");
  const lines = alerts.map((a) => {
    const li = document.createElement("li");
    li.dataset.rule = a.rule;
    li.dataset.connector = a.connector || "";
    li.textContent = a.summary[lang];
    return li;
  });
  const now = lines.map((li) => li.textContent).join("\n");
  const was = Array.from(list.children, (li) => li.textContent).join("\n");
  if (now !== was) list.replaceChildren(...lines);
  banner.hidden = alerts.length === 0;
}


// -- liveness -------------------------------------------------------------------------------
// The page must say within 10 s that the hub is gone, whatever `refresh_s` is: it asks at
// least every MAX_EVERY_MS, gives a request FETCH_TIMEOUT_MS before counting it as failed (a
// hung hub), and shows the notice at the first failure; a watchdog shows it too when nothing
// succeeded for a while (timers a background tab delayed). While stale it asks more often,
// to hide the notice soon after the hub answers again. Paused, it asks nothing; the pause
// holds while the operator moves between pages of this tab (sessionStorage).
const OVERVIEW = "/api/v1/admin/overview";
const MAX_EVERY_MS = 5000;
const FETCH_TIMEOUT_MS = 3500;
const STALE_EVERY_MS = 2000;
const PAUSE_KEY = "hub.live.paused";

async function fetchWithin(url, kind) {
  const abort = new AbortController();
  const timer = window.setTimeout(() => abort.abort(), FETCH_TIMEOUT_MS);
  try {
    const r = await fetch(url, {
      credentials: "same-origin", cache: "no-store", signal: abort.signal,
      headers: { "X-Hub-Live": "1" },
    });
    if (r.status === 401 || (kind === "html" && r.redirected && r.url.includes("/login"))) {
      return { outcome: "login" };
    }
    if (!r.ok) return { outcome: "failed" };
    return { outcome: "ok", data: kind === "json" ? await r.json() : await r.text() };
  } catch (e) {
    return { outcome: "failed" };  // refused, reset, aborted by the timer, or not JSON
  } finally {
    window.clearTimeout(timer);
  }
}

// The overview: numbers and states from the admin API.
function overviewSource() {
  const updated = document.querySelector("[data-testid=updated-at]");
  return {
    generated: updated ? updated.dataset.iso : "",
    fetch: () => fetchWithin(OVERVIEW, "json"),
    apply(data) {
      applyOverview(data);
      this.generated = data.generated_at;
      return data.connectors.filter((c) => c.state !== "up").length;
    },
  };
}

// Any other page: itself again, its live regions swapped for the new ones.
function pageSource() {
  return {
    generated: new Date().toISOString(),
    fetch: () => fetchWithin(window.location.href, "html"),
    apply(html) {
      const fresh = new DOMParser().parseFromString(html, "text/html");
      for (const region of document.querySelectorAll("[data-live-region]")) {
        const next = fresh.querySelector(
          `[data-live-region="${CSS.escape(region.dataset.liveRegion)}"]`);
        if (!next) continue;
        region.setAttribute("aria-busy", "true");
        // --- walkthrough: what the operator opened (a payload) stays open across a swap ---
        const opened = new Set(Array.from(
          region.querySelectorAll("details[open][data-keep]"), (d) => d.dataset.keep));
        region.replaceChildren(...Array.from(next.childNodes, (n) => document.importNode(n, true)));
        for (const d of region.querySelectorAll("details[data-keep]")) {
          if (opened.has(d.dataset.keep)) d.open = true;
        }
        // --- end walkthrough ---
        region.removeAttribute("aria-busy");
        drawCharts(region);
      }
      this.generated = new Date().toISOString();
      baseTitle = fresh.title || baseTitle;
      return null;
    },
  };
}

let baseTitle = document.title;

function live(source) {
  const bar = document.querySelector("[data-testid=live-bar]");
  const stateEl = bar.querySelector("[data-testid=live-state]");
  const updatedEl = bar.querySelector("[data-testid=live-updated]");
  const button = bar.querySelector("[data-testid=live-pause]");
  const notice = document.querySelector("[data-testid=stale-notice]");
  const asked = Number(document.body.dataset.refresh) || 5;
  const every = Math.min(MAX_EVERY_MS, Math.max(1, asked) * 1000);
  const staleAfter = Math.max(2 * every, 2 * FETCH_TIMEOUT_MS);
  let lastOkAt = Date.now();
  let stale = false;
  let paused = window.sessionStorage.getItem(PAUSE_KEY) === "1";
  let timer = null;
  let troubled = null;
  bar.hidden = false;

  const show = () => {
    let state = "";
    if (stale) state = (bar.dataset.textLost || "{time}").replace("{time}", when(source.generated));
    else if (paused) state = bar.dataset.textPaused || "";
    if (stateEl.textContent !== state) stateEl.textContent = state;
    updatedEl.dateTime = source.generated || "";
    updatedEl.textContent = when(source.generated);
    bar.classList.toggle("lost", stale);
    bar.classList.toggle("paused", paused);
    button.textContent = paused ? bar.dataset.textResume : bar.dataset.textPause;
    button.setAttribute("aria-pressed", paused ? "true" : "false");
    const prefix = [];
    if (stale) prefix.push(bar.dataset.titleLost);
    else if (paused) prefix.push(bar.dataset.titlePaused);
    let title = baseTitle;
    if (troubled !== null) {
      // The overview counts connectors not up itself; the page's title said so when rendered.
      title = title.replace(/^⚠ [^·]*· /, "");
      if (troubled > 0) prefix.push((bar.dataset.titleTrouble || "{n}").replace("{n}", troubled));
    }
    document.title = prefix.length ? prefix.join(" · ") + " · " + title : title;
  };

  const setStale = (on) => {
    if (on && notice) {
      notice.textContent = (notice.dataset.text || "{time}").replace("{time}", when(source.generated));
    }
    if (on !== stale) {
      stale = on;
      document.body.classList.toggle("stale", on);
      if (notice) notice.hidden = !on;
    }
    show();
  };

  const schedule = (ms) => {
    window.clearTimeout(timer);
    timer = paused ? null : window.setTimeout(tick, ms);
  };

  const tick = async () => {
    if (paused) return;
    const got = await source.fetch();
    if (got.outcome === "login") { window.location.assign("/dashboard/login"); return; }
    if (paused) return;  // paused while the request ran: keep the page as the operator saw it
    if (got.outcome === "ok") {
      troubled = source.apply(got.data);
      lastOkAt = Date.now();
    }
    setStale(got.outcome !== "ok");
    schedule(stale ? Math.min(every, STALE_EVERY_MS) : every);
  };

  button.addEventListener("click", () => {
    paused = !paused;
    window.sessionStorage.setItem(PAUSE_KEY, paused ? "1" : "0");
    if (paused) {
      window.clearTimeout(timer);
      setStale(false);
    } else {
      lastOkAt = Date.now();
      schedule(0);
    }
    show();
  });
  show();
  schedule(every);
  window.setInterval(() => {
    if (!paused && !stale && Date.now() - lastOkAt > staleAfter) setStale(true);
  }, 1000);
}

// -- charts ---------------------------------------------------------------------------------
// Each `[data-chart]` holds a plan made by hub/dashboard/charts.py (ticks, labels, points);
// drawn here at the width it has, so its text is FONT_PX on any screen.
const SVG_NS = "http://www.w3.org/2000/svg";
const FONT_PX = 13;
const CHART_HEIGHT = 220;

function el(name, attrs, text) {
  const node = document.createElementNS(SVG_NS, name);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

function drawChart(box) {
  let plan;
  try { plan = JSON.parse(box.dataset.chart); } catch (e) { return; }
  if (plan.empty) return;
  const width = Math.max(260, Math.floor(box.clientWidth));
  const height = width < 480 ? 180 : CHART_HEIGHT;
  const longest = Math.max(...plan.y.ticks.map((t) => t[1].length));
  const left = Math.ceil(longest * FONT_PX * 0.62) + 12;
  const right = 12, top = 10 + FONT_PX * 1.6 * Math.ceil(plan.series.length / 2), bottom = FONT_PX * 2 + 8;
  const w = width - left - right, h = height - top - bottom;
  const xmin = plan.x.min, xmax = plan.x.max, ymax = plan.y.max;
  const X = (ms) => left + (w * (ms - xmin)) / Math.max(1, xmax - xmin);
  const Y = (v) => top + h * (1 - Math.min(v, ymax) / ymax);
  const svg = el("svg", {
    width, height, viewBox: `0 0 ${width} ${height}`, role: "img", class: "chart",
    "aria-label": plan.title, "font-size": FONT_PX,
  });
  svg.append(el("title", {}, plan.title));
  for (const [v, label] of plan.y.ticks) {
    svg.append(el("line", { x1: left, x2: left + w, y1: Y(v), y2: Y(v), class: "grid" }));
    svg.append(el("text", { x: left - 6, y: Y(v) + FONT_PX * 0.35, "text-anchor": "end", class: "tick" }, label));
  }
  const ticks = plan.x.ticks;
  const room = w / Math.max(1, ticks.length);
  const stride = Math.max(1, Math.ceil((FONT_PX * 0.62 * (ticks.length ? ticks[0][1].length + 2 : 6)) / room));
  ticks.forEach(([ms, label], i) => {
    svg.append(el("line", { x1: X(ms), x2: X(ms), y1: top + h, y2: top + h + 4, class: "axis" }));
    if (i % stride === 0) {
      svg.append(el("text", { x: X(ms), y: top + h + FONT_PX + 6, "text-anchor": "middle", class: "tick" }, label));
    }
  });
  svg.append(el("line", { x1: left, x2: left + w, y1: top + h, y2: top + h, class: "axis" }));
  plan.series.forEach((s, index) => {
    let run = [];
    const flush = () => {
      if (run.length === 1) {
        svg.append(el("circle", { cx: run[0][0], cy: run[0][1], r: 3.5, fill: s.colour }));
      } else if (run.length > 1) {
        svg.append(el("polyline", {
          fill: "none", stroke: s.colour, "stroke-width": 2,
          points: run.map((p) => p.join(",")).join(" "),
        }));
      }
      run = [];
    };
    for (const [ms, v] of s.points) {
      if (v === null) { flush(); continue; }
      run.push([X(ms).toFixed(1), Y(v).toFixed(1)]);
    }
    flush();
    const lx = left + (index % 2) * Math.max(140, w / 2);
    const ly = 6 + FONT_PX + Math.floor(index / 2) * FONT_PX * 1.6;
    svg.append(el("rect", { x: lx, y: ly - FONT_PX * 0.8, width: 14, height: 4, fill: s.colour }));
    svg.append(el("text", { x: lx + 20, y: ly, class: "legend" }, s.name));
  });
  const guide = el("line", { y1: top, y2: top + h, class: "guide", visibility: "hidden" });
  svg.append(guide);
  const tip = document.createElement("div");
  tip.className = "chart-tip";
  tip.dataset.testid = "chart-tip";
  tip.hidden = true;
  const hover = (clientX) => {
    const rect = svg.getBoundingClientRect();
    const ms = xmin + ((clientX - rect.left - left) / w) * (xmax - xmin);
    const base = plan.series[0].points;
    let best = -1, dist = Infinity;
    base.forEach((p, i) => {
      if (p[1] === null) return;
      const d = Math.abs(p[0] - ms);
      if (d < dist) { dist = d; best = i; }
    });
    if (best < 0) { tip.hidden = true; return; }
    const x = X(base[best][0]);
    guide.setAttribute("x1", x); guide.setAttribute("x2", x);
    guide.setAttribute("visibility", "visible");
    const lines = [base[best][2], ...plan.series.map((s) => `${s.name}: ${(s.points[best] || [])[3] || "-"}`)];
    tip.replaceChildren(...lines.map((text, i) => {
      const line = document.createElement(i ? "span" : "strong");
      line.textContent = text;
      return line;
    }));
    tip.hidden = false;
    tip.style.left = Math.min(Math.max(0, x + 8), width - tip.offsetWidth) + "px";
  };
  svg.addEventListener("pointermove", (e) => hover(e.clientX));
  svg.addEventListener("pointerdown", (e) => hover(e.clientX));
  svg.addEventListener("pointerleave", () => { tip.hidden = true; guide.setAttribute("visibility", "hidden"); });
  box.replaceChildren(svg, tip);
}

function drawCharts(root) {
  for (const box of root.querySelectorAll("[data-chart]")) drawChart(box);
}

// -- the page -------------------------------------------------------------------------------

function menu() {
  const toggle = document.querySelector("[data-testid=menu-toggle]");
  const nav = document.getElementById("menu");
  if (!toggle || !nav) return;
  document.documentElement.classList.add("js");
  toggle.addEventListener("click", () => {
    const open = toggle.getAttribute("aria-expanded") !== "true";
    toggle.setAttribute("aria-expanded", open ? "true" : "false");
    nav.classList.toggle("open", open);
  });
}

document.addEventListener("DOMContentLoaded", () => {
  menu();
  drawCharts(document);
  let lastWidth = window.innerWidth;
  window.addEventListener("resize", () => {
    if (window.innerWidth !== lastWidth) { lastWidth = window.innerWidth; drawCharts(document); }
  });
  const mode = document.body.dataset.live;
  if (mode === "overview") live(overviewSource());
  else if (mode === "page") live(pageSource());
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
