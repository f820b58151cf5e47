"use strict";
// The site HMI: the area overview (/overview) and an edge's values (/edge?g=..&n=..),
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
function overview(s) {
  main.replaceChildren();
  for (const a of s.areas) {
    const sec = el("section", null, "card area");
    sec.dataset.area = a.area;
    sec.append(el("h2", a.area));
    const t = el("table");
    const h = el("tr");
    for (const c of ["edge", "state", "devices", "energy 24 h kWh", "CO2 24 h kg"]) h.append(el("th", c));
    t.append(h);
    for (const e of a.edges) {
      const r = el("tr", null, "edge state-" + e.state);
      r.dataset.node = e.node;
      const td = el("td");
      const link = el("a", e.group + "/" + e.node);
      link.href = "/edge?g=" + encodeURIComponent(e.group) + "&n=" + encodeURIComponent(e.node);
      td.append(link);
      r.append(td, el("td", e.state, "state"), el("td", Object.keys(e.devices).length),
               el("td", fmt(e.energy_kwh_24h, 3)), el("td", fmt(e.co2_kg_24h, 3)));
      t.append(r);
    }
    sec.append(t);
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
