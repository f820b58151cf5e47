"use strict";
// The site HMI: the area overview (/overview: per area its edges and the site KPIs of
// the last 24 h, as `greenedge site report`) and an edge's values (/edge?g=..&n=..),
// polled every 2 s from the JSON API (read-only).
let csrf = null;
const main = document.getElementById("main");
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
function edge(e) {
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
  const s = await get("/api/session");
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
