"use strict";
// The site HMI: the area overview (/overview: per area its edges and the site KPIs of
// the last 24 h, as `greenedge site report`) and an edge's values (/edge?g=..&n=..),
// polled every 2 s from the JSON API. On an edge's page, each loop's mode switch: an
// operator's click (confirmed) sends Loops/<loop>/Mode as an NCMD through the site host;
// the edge's command gate decides, and its next value of the metric is the answer.
let csrf = null, session = null;
const main = document.getElementById("main");
const loopsBox = document.getElementById("loops");
const WAIT_S = 15;        // how long the page waits for the edge's new value
let pending = null;       // {loop, mode, t}: a command sent, its value not seen yet
function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}
function fmt(v, d) { return v === null || v === undefined ? "–" :
  (typeof v === "number" ? v.toFixed(d) : String(v)); }
async function get(path) {
  const r = await fetch(path, {credentials: "same-origin"});
  if (r.status === 401) { location.href = "/login"; throw new Error("logged out"); }
  return r.json();
}
// energy, baseline, saving, CO2, cost, active alarms: one row, each cell data-k=<key>
const KPIS = [["energy_kwh", "energy kWh", 1], ["baseline_kwh", "baseline kWh", 1],
              ["saving_kwh", "saving kWh", 1], ["saving_pct", "saving %", 1],
              ["co2_kg", "CO2 kg", 1], ["cost", "cost", 2], ["active_alarms", "active alarms", 0]];
function kpiTable(k, cur) {
  const t = el("table", null, "kpis");
  const h = el("tr"), r = el("tr");
  for (const [key, label, d] of KPIS) {
    h.append(el("th", key === "cost" && cur ? label + " " + cur : label));
    const td = el("td", fmt(k[key], d), "num");
    td.dataset.k = key;
    r.append(td);
  }
  t.append(h, r);
  return t;
}
function alarmTable(alarms) {
  const t = el("table", null, "alarms");
  const h = el("tr");
  for (const c of ["edge", "alarm", "state", "priority", "since"]) h.append(el("th", c));
  t.append(h);
  for (const x of alarms) {
    const r = el("tr", null, "alarm st-" + x.state);
    r.dataset.alarm = x.node + "/" + x.id;
    r.append(el("td", x.node), el("td", x.id), el("td", x.state), el("td", x.priority),
             el("td", x.since));
    t.append(r);
  }
  return t;
}
function emissionTable(hours) {
  // per stack: the last closed hour, and the hours over the limit in the 24 h
  const stacks = new Map();
  for (const e of hours) {
    const key = e.node + "/" + e.stack;
    const s = stacks.get(key) || {e: e, n: 0, over: 0};
    s.n += 1;
    if (e.exceeded) s.over += 1;
    if (e.hour > s.e.hour) s.e = e;
    stacks.set(key, s);
  }
  const t = el("table", null, "emissions");
  const h = el("tr");
  for (const c of ["stack", "last hour (UTC)", "mean mg/Nm3", "limit", "hours over / closed"])
    h.append(el("th", c));
  t.append(h);
  for (const [key, s] of stacks) {
    const r = el("tr", null, "stack");
    r.dataset.stack = key;
    const mean = s.e.mean_mg_nm3 === null ? "invalid" : fmt(s.e.mean_mg_nm3, 1);
    r.append(el("td", key), el("td", s.e.hour), el("td", mean, s.e.exceeded ? "num bad" : "num"),
             el("td", fmt(s.e.limit_mg_nm3, 1), "num"), el("td", s.over + " / " + s.n, "num"));
    t.append(r);
  }
  return t;
}
function overview(s) {
  main.replaceChildren();
  const cur = s.kpis ? s.kpis.currency : null;
  if (s.kpis) {
    const sec = el("section", null, "card total");
    sec.append(el("h2", "site, last 24 h"), kpiTable(s.kpis.total, cur));
    main.append(sec);
  }
  for (const a of s.areas) {
    const sec = el("section", null, "card area");
    sec.dataset.area = a.area;
    sec.append(el("h2", a.area));
    if (a.kpis) sec.append(kpiTable(a.kpis, cur));
    const t = el("table");
    const h = el("tr");
    for (const c of ["edge", "state", "devices", "energy 24 h kWh", "CO2 24 h kg",
                     "active alarms"]) h.append(el("th", c));
    t.append(h);
    for (const e of a.edges) {
      const r = el("tr", null, "edge state-" + e.state);
      r.dataset.node = e.node;
      const td = el("td");
      const link = el("a", e.group + "/" + e.node);
      link.href = "/edge?g=" + encodeURIComponent(e.group) + "&n=" + encodeURIComponent(e.node);
      td.append(link);
      r.append(td, el("td", e.state, "state"), el("td", Object.keys(e.devices).length),
               el("td", fmt(e.energy_kwh_24h, 3)), el("td", fmt(e.co2_kg_24h, 3)),
               el("td", fmt(e.active_alarms, 0)));
      t.append(r);
    }
    sec.append(t);
    if (a.alarms.length) sec.append(el("h3", "active alarms"), alarmTable(a.alarms));
    if (a.emissions.length) sec.append(el("h3", "emission hourly means"), emissionTable(a.emissions));
    main.append(sec);
  }
}
function say(text, ok) {
  const m = document.getElementById("msg");
  m.textContent = text || "";
  m.className = "msg " + (text ? (ok ? "accepted" : "refused") : "");
}
function confirmThen(text) {
  return new Promise((resolve) => {
    const box = document.getElementById("confirm");
    document.getElementById("confirm-text").textContent = text;
    box.classList.remove("hidden");
    const done = (v) => { box.classList.add("hidden"); resolve(v); };
    document.getElementById("confirm-yes").onclick = () => done(true);
    document.getElementById("confirm-no").onclick = () => done(false);
  });
}
async function setMode(e, loop, mode) {
  if (!await confirmThen("Switch loop " + loop + " on edge " + e.group + "/" + e.node +
                         " to " + mode.toUpperCase() + "? The edge's command gate decides."))
    return;
  const r = await fetch("/api/edge/" + encodeURIComponent(e.group) + "/" +
                        encodeURIComponent(e.node) + "/command", {
    method: "POST", credentials: "same-origin",
    headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf},
    body: JSON.stringify({metric: "Loops/" + loop + "/Mode", value: mode})});
  const j = await r.json().catch(() => ({}));
  if (j.result === "sent") {
    pending = {loop: loop, mode: mode, t: Date.now()};
    say(loop + " " + mode + ": sent to the edge; waiting for its new value", true);
  } else {
    say(loop + " " + mode + ": " + (j.result || "refused") + ": " + (j.error || r.status), false);
  }
}
let loopsKey = null;
function loops(e) {
  // the loops' modes from the edge's node metrics Loops/<loop>/Mode; redrawn only on change
  const modes = e.values.filter((v) => !v.device && /^Loops\/[^/]+\/Mode$/.test(v.metric))
    .map((v) => [v.metric.split("/")[1], String(v.value)]);
  if (pending) {
    const now = modes.find(([l]) => l === pending.loop);
    if (now && now[1] === pending.mode) {
      say(pending.loop + " is " + pending.mode + " (the edge applied it)", true);
      pending = null;
    } else if (Date.now() - pending.t > WAIT_S * 1000) {
      say(pending.loop + " " + pending.mode + ": no new value from the edge in " + WAIT_S +
          " s: its command gate refused it or the metric is not writable there (the edge's " +
          "audit says why)", false);
      pending = null;
    }
  }
  const key = JSON.stringify([e.group, e.node, e.state, modes]);
  if (key === loopsKey) return;
  loopsKey = key;
  loopsBox.replaceChildren();
  loopsBox.classList.toggle("hidden", !modes.length);
  if (!modes.length) return;
  loopsBox.append(el("h2", "loops"));
  const why = !session.commands ? session.commands_refused :
    e.state !== "online" ? "the edge is " + e.state : null;
  if (why) loopsBox.append(el("p", "Mode changes disabled: " + why, "reason"));
  for (const [loop, mode] of modes) {
    const p = el("p", null, "loop");
    p.dataset.loop = loop;
    p.append(el("strong", loop), " ", el("span", mode, "mode"), " ");
    for (const m of ["auto", "manual"]) {
      const b = el("button", m === "auto" ? "Auto" : "Manual", "to-" + m);
      b.disabled = !!why || mode === m;
      if (why) b.title = why;
      b.onclick = () => setMode(e, loop, m);
      p.append(b, " ");
    }
    loopsBox.append(p);
  }
}
function edge(e) {
  loops(e);
  main.replaceChildren();
  const back = el("a", "← site");
  back.href = "/overview";
  main.append(back, el("h2", e.group + "/" + e.node + ": " + e.state, "edge-title state-" + e.state));
  const t = el("table", null, "values");
  const h = el("tr");
  for (const c of ["device", "metric", "value", "quality", "age s"]) h.append(el("th", c));
  t.append(h);
  for (const v of e.values) {
    const r = el("tr", null, "value");
    r.dataset.tag = (v.device ? v.device + "/" : "") + v.metric;
    r.append(el("td", v.device), el("td", v.metric),
             el("td", fmt(v.value, 3), "v"), el("td", v.quality), el("td", fmt(v.age_s, 1)));
    t.append(r);
  }
  main.append(t);
}
async function tick() {
  try {
    if (location.pathname === "/edge") {
      const q = new URLSearchParams(location.search);
      edge(await get("/api/edges/" + encodeURIComponent(q.get("g")) + "/" +
                     encodeURIComponent(q.get("n"))));
    } else {
      overview(await get("/api/site"));
    }
  } catch (e) { /* the next tick tries again */ }
}
(async () => {
  const s = session = await get("/api/session");
  csrf = s.csrf;
  document.getElementById("who").textContent = s.user + " (" + s.role + ")";
  document.getElementById("title").textContent = "GreenEdge site " + s.site;
  document.getElementById("logout").onclick = async () => {
    await fetch("/api/logout", {method: "POST", headers: {"Content-Type": "application/json",
      "X-CSRF-Token": csrf}, body: "{}"});
    location.href = "/login";
  };
  await tick();
  document.body.dataset.ready = "1";
  setInterval(tick, 2000);
})();
