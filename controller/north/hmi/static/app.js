// GreenEdge HMI pages: one script, no framework, no build step.
// Every read is a GET on /api; every change a POST with the session's CSRF
// token; live values arrive by server-sent events (/api/stream), at most one
// message a second, and are marked stale when the stream drops.
"use strict";
const S = {session: null, frame: {points: {}, clocks: {}, loops: {}, devices: {},
           kpi: {}, alarms: {}},
           connected: false, page: location.pathname.slice(1) || "overview", timer: null};
const $ = (id) => document.getElementById(id);
const esc = (v) => String(v === null || v === undefined ? "" : v).replace(/[&<>"']/g,
  (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
const fmt = (v, d) => (v === null || v === undefined) ? "–" :
  (typeof v === "number" ? (Math.abs(v) >= 1000 ? v.toFixed(0) : v.toPrecision(d || 4)) : esc(v));
const TITLES = {overview: "Overview", loops: "Loops", alarms: "Alarms", trends: "Trends",
                devices: "Devices", audit: "Audit", export: "Export"};

async function api(method, path, body) {
  const opt = {method, headers: {}};
  if (method !== "GET") {
    opt.headers["Content-Type"] = "application/json";
    opt.headers["X-CSRF-Token"] = S.session ? S.session.csrf : "";
    opt.body = JSON.stringify(body || {});
  }
  const r = await fetch(path, opt);
  if (r.status === 401) { location.href = "/login"; throw new Error("not logged in"); }
  let j = {}; try { j = await r.json(); } catch (_) {}
  j._status = r.status;
  return j;
}

function say(text, ok) {
  const m = $("msg");
  m.textContent = text || "";
  m.className = "msg " + (text ? (ok ? "accepted" : "refused") : "");
}

function confirmThen(text) {
  return new Promise((resolve) => {
    $("confirm-text").textContent = text;
    $("confirm").classList.remove("hidden");
    const done = (v) => { $("confirm").classList.add("hidden"); resolve(v); };
    $("confirm-yes").onclick = () => done(true);
    $("confirm-no").onclick = () => done(false);
  });
}

async function command(path, body, what) {
  const j = await api("POST", path, body);
  if (j.accepted) say(what + ": accepted" + (j.applied ? " and applied" : ""), true);
  else say(what + ": refused: " + (j.error || j._status), false);
  return j;
}

// ---- live values ------------------------------------------------------------------------
// Messages only update S.frame; the page is painted once per animation frame
// (messages that arrive together cost one paint, a hidden tab none), and only
// the point tables in view are painted: a table scrolled into view is painted
// at once from the latest values kept here.
const L = {queued: false, loops: false, kpi: false, alarms: false, seen: null,
           shown: new Set()};

function stream() {
  const es = new EventSource("/api/stream");
  es.onopen = () => setConn(true);
  es.onerror = () => setConn(false);   // EventSource reconnects by itself
  es.addEventListener("logout", () => { es.close(); location.href = "/login"; });
  es.onmessage = (e) => {
    const m = JSON.parse(e.data);
    Object.assign(S.frame.points, m.points || {});
    Object.assign(S.frame.clocks, m.clocks || {});
    for (const k of ["loops", "devices", "kpi", "alarms"]) if (m[k]) { S.frame[k] = m[k]; L[k] = true; }
    S.frame.now = m.now; S.frame.plant_s = m.plant_s;
    setConn(true);
    if (!L.queued) { L.queued = true; requestAnimationFrame(paintLive); }
  };
}

function setConn(ok) {
  S.connected = ok;
  const c = $("conn");
  c.textContent = ok ? "live" : "connection lost: values are stale, reconnecting…";
  c.className = "conn " + (ok ? "ok" : "lost");
  document.body.classList.toggle("stale", !ok);
}

function setText(el, text) {
  if (el && el.textContent !== text) el.textContent = text;
}

function watchPoints() {
  // the tables with point rows on the page just drawn (earlier ones are gone)
  if (L.seen) L.seen.disconnect();
  L.shown.clear();
  L.seen = new IntersectionObserver((entries) => {
    for (const en of entries) {
      if (en.isIntersecting) { L.shown.add(en.target); paintRows(en.target); }
      else L.shown.delete(en.target);
    }
  });
  for (const t of $("page").querySelectorAll("table")) if (t.querySelector("[data-tag]")) L.seen.observe(t);
}

function paintRows(table) {
  // touching only text that changed
  const pts = S.frame.points;
  for (const el of table.querySelectorAll("[data-tag]")) {
    const pv = pts[el.dataset.tag];
    if (pv === undefined) continue;
    const c = el.cells;
    setText(c[1], fmt(pv[0]));
    setText(c[3], pv[1]);
    if (c[3].className !== "q " + pv[1]) c[3].className = "q " + pv[1];
    setText(c[4], age(pv));
  }
}

function age(pv) {
  // a point is [value, quality, clock]: the age of its read, from the server's time
  const t = S.frame.clocks[pv[2]];
  return (t === null || t === undefined || S.frame.now === undefined) ? "" :
    Math.max(0, S.frame.now - t).toFixed(1) + " s";
}

function paintLive() {
  L.queued = false;
  for (const t of L.shown) paintRows(t);
  if (L.loops && PAINT[S.page + "_loops"]) PAINT[S.page + "_loops"]();
  if (L.kpi && S.page === "overview") paintKpi();
  if (L.alarms) paintAlarmBadge();
  if (L.alarms && S.page === "alarms") loadAlarms();
  L.loops = L.kpi = L.alarms = false;
}

function paintAlarmBadge() {
  const st = (S.frame.alarms || {}).states || {};
  const n = (st.unacknowledged || 0) + (st.returned_unacknowledged || 0);
  const a = document.querySelector('#nav a[href="/alarms"]');
  if (a) a.textContent = "Alarms" + (n ? " (" + n + ")" : "");
}

function pointRow(tag, name, unit) {
  const pv = S.frame.points[tag] || [null, "–", null];
  return '<tr data-tag="' + esc(tag) + '"><td>' + esc(name) + '</td><td class="num v">' +
    fmt(pv[0]) + '</td><td>' + esc(unit) + '</td><td class="q ' + esc(pv[1]) + '">' +
    esc(pv[1]) + '</td><td class="age">' + age(pv) +
    "</td></tr>";
}

// ---- pages ----------------------------------------------------------------------------------
const PAGES = {}, PAINT = {};

PAGES.overview = async () => {
  const j = await api("GET", "/api/overview");   // (its frame is the API's: the stream's is newer)
  let h = '<section id="kpi" class="card"></section><div class="grid">';
  for (const a of j.areas) {
    h += '<section class="card area"><h2>' + esc(a.area) + "</h2>";
    for (const d of a.devices) {
      h += '<div class="dev"><h3>' + esc(d.name) + ' <small>' + esc(d.profile) + "</small></h3>" +
        '<table class="points"><tr><th>point</th><th>value</th><th>unit</th><th>quality</th>' +
        "<th>age</th></tr>" + d.points.map((p) => pointRow(p.tag, p.name, p.unit)).join("") +
        "</table></div>";
    }
    h += "</section>";
  }
  $("page").innerHTML = h + "</div>";
  watchPoints();
  paintKpi();
};

function paintKpi() {
  const k = S.frame.kpi || {}, el = $("kpi");
  if (!el) return;
  let h = "<h2>Energy and emissions</h2><table><tr><td>energy</td><td class='num' id='kpi-energy'>" +
    fmt(k.energy_kwh) + "</td><td>kWh</td></tr><tr><td>CO2</td><td class='num'>" + fmt(k.co2_kg) +
    "</td><td>kg</td></tr>";
  if (k.baseline_kw) h += "<tr><td>used in the last " + fmt(k.since_h, 3) + " h</td><td class='num'>" +
    fmt(k.used_kwh) + "</td><td>kWh</td></tr><tr><td>baseline (" + fmt(k.baseline_kw) +
    " kW) over them</td><td class='num'>" + fmt(k.baseline_kwh) + "</td><td>kWh</td></tr>" +
    "<tr><td>saving vs baseline</td><td class='num'>" + fmt(k.saving_pct, 3) + "</td><td>%</td></tr>";
  else h += "<tr><td>saving vs baseline</td><td colspan=2>no baseline_kw in [hmi]</td></tr>";
  for (const e of k.emissions || []) {
    const over = e.open_hour_mean !== null && e.open_hour_mean > e.limit;
    h += "<tr><td>" + esc(e.pollutant) + " open-hour mean / limit</td><td class='num " +
      (over ? "bad" : "") + "'>" + fmt(e.open_hour_mean) + " / " + fmt(e.limit) + "</td><td>" +
      esc(e.unit) + "</td></tr>";
  }
  el.innerHTML = h + "</table>";
}

PAGES.loops = async () => {
  const j = await api("GET", "/api/loops");
  S.loops = j.loops;
  const eng = S.session.role === "engineer";
  let h = '<div class="grid">';
  for (const l of j.loops) {
    const n = esc(l.name);
    h += '<section class="card faceplate" id="fp-' + n + '"><h2>' + n + " <small>" +
      esc(l.plant) + " / " + esc(l.strategy) + '</small></h2><p>mode <b class="mode">' +
      esc(l.state.mode) + "</b> " +
      '<button class="to-auto" data-loop="' + n + '">Auto</button> ' +
      '<button class="to-manual" data-loop="' + n + '">Manual</button></p>' +
      "<h3>SP</h3><table>" + l.setpoints.map((s) => s.fixed ? pointRow(s.source, s.key +
        " (from " + s.source + ")", "") : "<tr><td>" + esc(s.key) +
        "</td><td class='num sp' data-sp='" + esc(s.key) + "'>" + fmt(s.value) +
        "</td><td><input class='sp-in' data-key='" +
        esc(s.key) + "' type='number' step='any' min='" + esc(s.min) + "' max='" + esc(s.max) +
        "'> <button class='sp-set small' data-loop='" + n + "' data-key='" + esc(s.key) +
        "'>Set</button> <small>" + fmt(s.min) + "…" + fmt(s.max) + "</small></td></tr>").join("") +
      "</table><h3>PV</h3><table>" + l.pv.map((p) => pointRow(
        l.devices[p.role] + "." + p.point, p.role + "." + p.point, p.unit)).join("") +
      "</table><h3>OP</h3><table>" + l.outputs.map((o) => "<tr><td>" + esc(o.role + "." +
        o.point) + "</td><td class='num op' data-op='" + esc(o.role + "." + o.point) + "'>" +
        fmt(o.value) + "</td><td>" + esc(o.unit) + "</td><td>manual: <input class='op-in' " +
        "type='number' step='any' data-role='" + esc(o.role) + "' data-point='" + esc(o.point) +
        "' min='" + esc(o.min) + "' max='" + esc(o.max) + "' placeholder='" + fmt(o.min) + "…" +
        fmt(o.max) + "'></td></tr>").join("") + "</table>" +
      "<h3>Parameters" + (eng ? "" : " <small>(engineer)</small>") + "</h3><table>" +
      l.params.map((p) => "<tr><td>" + esc(p.name) + "</td><td class='num'>" + fmt(p.value) +
        "</td><td>" + (eng ? "<input class='par-in' type='number' step='any' data-name='" +
          esc(p.name) + "'> <button class='par-set small' data-loop='" + n + "' data-name='" +
          esc(p.name) + "'>Set</button>" : "") + "</td></tr>").join("") + "</table></section>";
  }
  $("page").innerHTML = h + "</div>";
  document.querySelectorAll(".to-manual").forEach((b) => b.onclick = () => toManual(b.dataset.loop));
  document.querySelectorAll(".to-auto").forEach((b) => b.onclick = async () => {
    if (await confirmThen("Switch loop " + b.dataset.loop + " to AUTO?"))
      await command("/api/loops/" + b.dataset.loop + "/mode", {mode: "auto"}, b.dataset.loop + " auto");
  });
  document.querySelectorAll(".sp-set").forEach((b) => b.onclick = async () => {
    const v = parseFloat(b.parentElement.querySelector(".sp-in").value);
    if (await confirmThen("Set " + b.dataset.loop + " " + b.dataset.key + " = " + v + "?"))
      await command("/api/loops/" + b.dataset.loop + "/setpoint", {key: b.dataset.key, value: v},
                    b.dataset.key);
  });
  document.querySelectorAll(".par-set").forEach((b) => b.onclick = async () => {
    const v = parseFloat(b.parentElement.querySelector(".par-in").value);
    if (await confirmThen("Set parameter " + b.dataset.name + " of " + b.dataset.loop + " = " + v + "?")) {
      await command("/api/loops/" + b.dataset.loop + "/param", {name: b.dataset.name, value: v},
                    b.dataset.name);
      PAGES.loops();
    }
  });
  watchPoints();
  PAINT.loops_loops();
};

async function toManual(loop) {
  const fp = $("fp-" + loop), outputs = {}, parts = [];
  fp.querySelectorAll(".op-in").forEach((i) => {
    if (i.value === "") return;
    (outputs[i.dataset.role] = outputs[i.dataset.role] || {})[i.dataset.point] = parseFloat(i.value);
    parts.push(i.dataset.role + "." + i.dataset.point + " = " + i.value);
  });
  const text = "Switch loop " + loop + " to MANUAL" + (parts.length ? " with " + parts.join(", ") :
    " (outputs hold their last values)") + "?";
  if (await confirmThen(text))
    await command("/api/loops/" + loop + "/mode", {mode: "manual", outputs}, loop + " manual");
}

PAINT.loops_loops = () => {
  for (const [n, l] of Object.entries(S.frame.loops || {})) {
    const fp = $("fp-" + n);
    if (!fp) continue;
    fp.querySelector(".mode").textContent = l.manual ? "manual" : l.mode;
    fp.querySelectorAll(".op").forEach((el) => {
      const [role, pt] = el.dataset.op.split(".");
      el.textContent = fmt(((l.op || {})[role] || {})[pt]);
    });
    fp.querySelectorAll(".sp[data-sp]").forEach((el) => {
      if (el.dataset.sp in (l.sp || {})) el.textContent = fmt(l.sp[el.dataset.sp]);
    });
  }
};

async function loadAlarms() {
  const j = await api("GET", "/api/alarms");
  const el = $("alarm-rows");
  if (!el) return;
  el.innerHTML = j.alarms.map((a) => '<tr class="st-' + esc(a.state) + '" data-alarm="' +
    esc(a.id) + '"><td>' + esc(a.priority) + "</td><td>" + esc(a.id) + '</td><td class="state">' +
    esc(a.state) + "</td><td class='num'>" + fmt(a.value) + "</td><td>" + esc(a.text) +
    (a.limit ? ' <small class="limit">' + esc(a.limit.condition) + " " + fmt(a.limit.value) +
      "</small>" + (S.session.role === "engineer" ? ' <button class="set-limit small secondary"' +
        ' data-id="' + esc(a.id) + '" data-cond="' + esc(a.limit.condition) + '">Limit</button>' : "")
      : "") +
    "</td><td>" + esc(a.who || "") + " " + esc(a.reason || "") + "</td><td>" +
    ((a.state === "unacknowledged" || a.state === "returned_unacknowledged") ?
      '<button class="ack small" data-id="' + esc(a.id) + '">Ack</button> ' : "") +
    (a.state === "shelved" ? '<button class="unshelve small" data-id="' + esc(a.id) +
      '">Unshelve</button>' : '<button class="shelve small secondary" data-id="' + esc(a.id) +
      '">Shelve</button>') + "</td></tr>").join("");
  el.querySelectorAll(".ack").forEach((b) => b.onclick = async () => {
    await command("/api/alarms/" + b.dataset.id + "/ack", {}, "ack " + b.dataset.id);
    loadAlarms();
  });
  el.querySelectorAll(".unshelve").forEach((b) => b.onclick = async () => {
    await command("/api/alarms/" + b.dataset.id + "/unshelve", {}, "unshelve " + b.dataset.id);
    loadAlarms();
  });
  el.querySelectorAll(".set-limit").forEach((b) => b.onclick = () => {
    $("limit-id").value = b.dataset.id;
    $("limit-cond").textContent = b.dataset.cond;
    $("limit-form").classList.remove("hidden");
  });
  el.querySelectorAll(".shelve").forEach((b) => b.onclick = () => {
    $("shelve-id").value = b.dataset.id;
    $("shelve-form").classList.remove("hidden");
  });
}

PAGES.alarms = async () => {
  $("page").innerHTML = '<section class="card"><h2>Alarms</h2>' +
    '<form id="shelve-form" class="hidden inline">Shelve <input id="shelve-id" readonly> for ' +
    '<input id="shelve-min" type="number" min="1" value="60"> min, reason ' +
    '<input id="shelve-reason" size="30" required> <button id="shelve-go">Shelve</button> ' +
    '<button type="button" id="shelve-cancel" class="secondary">Cancel</button></form>' +
    '<form id="limit-form" class="hidden inline">Limit of <input id="limit-id" readonly> ' +
    '<span id="limit-cond"></span> = <input id="limit-value" type="number" step="any" required> ' +
    '<button id="limit-go">Set</button> <button type="button" id="limit-cancel" ' +
    'class="secondary">Cancel</button> <small>(engineer; until the next start)</small></form>' +
        '<table class="alarms"><thead><tr><th>prio</th><th>alarm</th><th>state</th><th>value</th>' +
    '<th>text</th><th>who / reason</th><th></th></tr></thead><tbody id="alarm-rows"></tbody>' +
    "</table></section>";
  $("shelve-cancel").onclick = () => $("shelve-form").classList.add("hidden");
  $("limit-cancel").onclick = () => $("limit-form").classList.add("hidden");
  $("limit-form").onsubmit = async (e) => {
    e.preventDefault();
    const id = $("limit-id").value, values = {};
    values[$("limit-cond").textContent] = parseFloat($("limit-value").value);
    if (await confirmThen("Set " + id + " " + JSON.stringify(values) + "?"))
      await command("/api/alarms/" + id + "/limit", {values}, "limit " + id);
    $("limit-form").classList.add("hidden");
    loadAlarms();
  };
  $("shelve-form").onsubmit = async (e) => {
    e.preventDefault();
    const id = $("shelve-id").value;
    await command("/api/alarms/" + id + "/shelve", {minutes: parseFloat($("shelve-min").value),
      reason: $("shelve-reason").value}, "shelve " + id);
    $("shelve-form").classList.add("hidden");
    loadAlarms();
  };
  await loadAlarms();
};

async function tagPicker(id, presetRe) {
  const j = await api("GET", "/api/tags");
  const preset = presetRe ? j.tags.filter((t) => presetRe.test(t)).slice(0, 2) : [];
  return '<select id="' + id + '" multiple size="8">' + j.tags.map((t) => "<option" +
    (preset.includes(t) ? " selected" : "") + ">" + esc(t) + "</option>").join("") + "</select>";
}

function rangeQuery(prefix) {
  const sel = $(prefix + "-range").value;
  if (sel !== "custom") return "range=" + sel;
  const now = S.frame.plant_s || Date.now() / 1000;
  return "from=" + (now - 3600 * parseFloat($(prefix + "-from").value)) + "&to=" +
    (now - 3600 * parseFloat($(prefix + "-to").value));
}

function rangeInputs(prefix) {
  return '<select id="' + prefix + '-range"><option value="1h">1 h</option><option value="8h">8 h' +
    '</option><option value="24h">24 h</option><option value="custom">custom</option></select>' +
    ' custom: from <input id="' + prefix + '-from" type="number" value="2" step="any" size="4"> h ' +
    'to <input id="' + prefix + '-to" type="number" value="0" step="any" size="4"> h ago';
}

const selected = (id) => Array.from($(id).selectedOptions).map((o) => o.value);

PAGES.trends = async () => {
  $("page").innerHTML = '<section class="card"><h2>Trends</h2><div class="inline">' +
    await tagPicker("trend-tags", /\.(process_pv|speed_actual_pct)$/) + " " + rangeInputs("trend") +
    ' <button id="trend-go">Draw</button></div><div id="chart"></div></section>';
  const draw = () => {
    const tags = selected("trend-tags");
    if (!tags.length) { $("chart").textContent = "choose tags"; return; }
    $("chart").innerHTML = '<img id="trend-img" alt="trend" src="/api/trend.svg?tags=' +
      encodeURIComponent(tags.join(",")) + "&" + rangeQuery("trend") + "&_=" + Date.now() + '">';
  };
  $("trend-go").onclick = draw;
  draw();
  S.timer = setInterval(draw, 10000);
};

PAGES.devices = async () => {
  const j = await api("GET", "/api/devices");
  if (!S.timer) S.timer = setInterval(PAGES.devices, 3000);
  $("page").innerHTML = '<section class="card"><h2>Devices</h2><table class="devices"><tr>' +
    "<th>device</th><th>line</th><th>unit</th><th>profile</th><th>health</th><th>identity</th>" +
    "<th>polls</th><th>up / down events</th><th>writes refused</th><th>heartbeats</th>" +
    "<th>last error</th></tr>" + j.devices.map((d) => '<tr data-device="' + esc(d.name) +
      '"><td>' + esc(d.name) + "</td><td>" + esc(d.line) + "</td><td>" + esc(d.unit) + "</td><td>" +
      esc(d.profile) + '</td><td class="q ' + (d.up ? "good" : "down") + '">' + (d.up ? "up" : "down") +
      "</td><td>" + (d.identity_ok === false ? "MISMATCH" : d.identity_ok ? "ok" : "–") +
      "</td><td class='num'>" + fmt(d.polls) + "</td><td>" + fmt(d.up_events) + " / " +
      fmt(d.down_events) + "</td><td>" + fmt(d.writes_refused) + "</td><td>" + fmt(d.heartbeats) +
      "</td><td>" + (d.last_error ? esc(d.last_error.kind + ": " + d.last_error.text) : "") +
      "</td></tr>").join("") + "</table><h3>Lines</h3><table><tr><th>line</th><th>stats</th></tr>" +
    Object.entries(j.lines).map(([n, s]) => "<tr><td>" + esc(n) + "</td><td><small>" +
      esc(Object.entries(s).map(([k, v]) => k + " " + (typeof v === "number" ? fmt(v) :
        JSON.stringify(v))).join(", ")) + "</small></td></tr>").join("") + "</table></section>";
};

PAGES.audit = async () => {
  const j = await api("GET", "/api/audit?limit=200");
  if (!S.timer) S.timer = setInterval(PAGES.audit, 3000);
  $("page").innerHTML = '<section class="card"><h2>Audit: every command through the gate</h2>' +
    '<table class="audit"><tr><th>time (UTC)</th><th>who</th><th>role</th><th>command</th>' +
    "<th>loop / target</th><th>old</th><th>new</th><th>result</th></tr>" +
    j.audit.map((r) => '<tr class="' + (r.accepted ? "accepted" : "refused") + '"><td>' +
      esc(new Date(1000 * r.wall).toISOString().replace("T", " ").slice(0, 19)) + "</td><td>" +
      esc(r.who) + "</td><td>" + esc(r.role) + "</td><td>" + esc(r.kind) + "</td><td>" +
      esc((r.loop || "") + " " + (r.target || "")) + "</td><td><small>" + esc(JSON.stringify(r.old)) +
      "</small></td><td><small>" + esc(JSON.stringify(r.new)) + "</small></td><td>" +
      (r.accepted ? "accepted" : "refused: " + esc(r.reason)) + "</td></tr>").join("") +
    "</table></section>";
};

PAGES.export = async () => {
  $("page").innerHTML = '<section class="card"><h2>Export (CSV)</h2><div class="inline">' +
    await tagPicker("export-tags", null) + " " + rangeInputs("export") +
    ' <a id="export-link" class="button" href="#">Download CSV</a></div>' +
    '<p><small>Columns: t_s (plant time, s), tag, value, quality (0 good, 1 uncertain, 2 bad).' +
    "</small></p></section>";
  const upd = () => {
    const tags = selected("export-tags");
    $("export-link").href = "/api/export.csv?tags=" + encodeURIComponent(tags.join(",")) + "&" +
      rangeQuery("export");
  };
  $("page").querySelectorAll("select, input").forEach((e) => e.onchange = upd);
  upd();
};

// ---- boot -------------------------------------------------------------------------------------
async function boot() {
  S.session = await api("GET", "/api/session");
  $("service").textContent = "GreenEdge " + S.session.service;
  $("who").textContent = S.session.user + " (" + S.session.role + ")";
  $("nav").innerHTML = S.session.pages.map((p) => '<a href="/' + p + '"' +
    (p === S.page ? ' class="here"' : "") + ">" + TITLES[p] + "</a>").join("");
  $("logout").onclick = async () => { await api("POST", "/api/logout"); location.href = "/login"; };
  document.title = "GreenEdge HMI: " + (TITLES[S.page] || S.page);
  stream();
  await (PAGES[S.page] || PAGES.overview)();
  paintAlarmBadge();
  document.body.dataset.ready = "1";
}
boot();
