"""`greenedge demo`: the virtual plant, end to end, on a machine with no hardware.

A fan train, a pump train, a compressor station, an SCR reactor and an FGD
absorber, instrumented by nine firmware devices (MicroPython unix port) on two
virtual RS-485 lines and one RTU-over-TCP gateway, controlled by the host
service (`greenedge run`) with GreenEdge's strategies; the plant runs on a
scaled clock (default 60x), the Modbus traffic in real time (hil_tests/bench.py).

The baseline (today's control) and the same strategies without the chain run
model-in-the-loop on the same scenario and seed first (seconds), so the live
progress can show energy saved against the baseline at the same plant time and
the report can show what the chain costs (nothing, if it is right).
"""

import json
import sys
import time
from pathlib import Path

from controller.errors import UserError

ENERGY_PLANTS = ("fan", "pump", "compressor", "fgd")


def _cum_energy(trace):
    """[(t_h, kWh so far)] from trend rows of power (one row per minute)."""
    out, e, t_prev = [], 0.0, 0.0
    for r in trace:
        e += r["power_kw"] * (r["t_h"] - t_prev)
        t_prev = r["t_h"]
        out.append((r["t_h"], e))
    return out


def _at(series, t_h):
    e = 0.0
    for t, v in series:
        if t > t_h:
            break
        e = v
    return e


def mil(plants, strategy, scenario, hours, seed, traces=None):
    """traces: a dict to receive each plant's trend rows (the report's baseline)."""
    from hil_tests import sim
    from hil_tests.bench import scenario_for
    res, series = {}, {}
    for p in plants:
        tr = []
        res[p] = sim.run(p, strategy, scenario_for(p, scenario), hours, seed, trace=tr)
        if traces is not None:
            traces[p] = tr
        if p in ENERGY_PLANTS:
            series[p] = _cum_energy(tr)
    return res, series


def run_demo(minutes=2.0, speedup=60.0, scenario="standard", seed=None, report=None,
             quiet=False, plants=None, ports=None, link_ports=None, hw_format="8E1",
             hmi=None, north=None):
    """ports {bus: tty}, link_ports {device: tty}: real-hardware mode for those
    buses (boards in sim-input mode; docs/hil.md). north: {"opcua", "mqtt",
    "metrics", "users"} (demo_north)."""
    from hil_tests.bench import DEMO, Bench
    plants = list(plants or DEMO)
    hours = minutes * speedup / 60.0
    say = (lambda *a: None) if quiet else (lambda msg: print(msg, file=sys.stderr, flush=True))
    say("greenedge demo: %.2f plant hours at %gx (%.1f min wall), scenario %s"
        % (hours, speedup, minutes, scenario))
    t0 = time.monotonic()
    base_traces = {}
    base, base_series = mil(plants, "baseline", scenario, hours, seed, base_traces)
    ref, _ = mil(plants, "optimized", scenario, hours, seed)
    say("  baseline and model-in-the-loop reference: %.1f s" % (time.monotonic() - t0))
    tty = sys.stderr.isatty() and not quiet

    def progress(bench, status):
        t_h = bench.t_plant / 3600.0
        e = sum(sum(bench.kpi[p].kwh.values()) for p in plants if p in ENERGY_PLANTS)
        eb = sum(_at(base_series[p], t_h) for p in base_series)
        saved = 100.0 * (1 - e / eb) if eb > 0 else 0.0
        up = "%d/%d" % (status["devices_up"], status["devices_total"]) if status else "-/-"
        util = " ".join("%s %.0f%%" % (ln, 100 * (v["utilisation"] or 0))
                        for ln, v in (status or {}).get("lines", {}).items())
        k = (status or {}).get("kpis", {})
        em = ""
        for key, lim in (("nox", 50), ("so2", 35)):
            v = k.get("%s_hour_mean_mg_nm3" % key)
            if v is not None:
                em += " %s %.1f/%g" % (key.upper(), v, lim)
        msg = "  plant %5.2f h | devices %s | %s | energy %.0f kWh, saved %.1f %%%s" % (
            t_h, up, util, e, saved, em)
        if tty:
            sys.stderr.write("\r" + msg.ljust(150))
            sys.stderr.flush()
        else:
            say(msg)

    hmi_table = demo_hmi(hmi, say)
    extra = demo_north(north, (hmi_table or {}).get("users"), say)
    cls = Bench if not extra else _bench_with(Bench, extra)
    with cls(plants, speedup=speedup, hours=hours, scenario=scenario, seed=seed,
             ports=ports, link_ports=link_ports, hw_format=hw_format, hmi=hmi_table) as b:
        say("  %d devices on %s started%s; service starting" % (
            len(b.devices), ", ".join(sorted(b.lines)) or "no virtual line",
            "; boards on %s" % ", ".join("%s %s" % kv for kv in sorted((ports or {}).items()))
            if ports else ""))
        hil = b.run(progress=progress, every_s=1.0 if tty else 10.0)
        if tty:
            sys.stderr.write("\n")
        traces = b.trace
    summary = summarize(hil, base, ref, plants)
    if report:
        out = Path(report)
        summary["report"] = write_report(out, summary, hil, base, ref, traces, plants,
                                         base_traces)
        say("  report: %s" % summary["report"])
    return summary


def summarize(hil, base, ref, plants):
    status = hil.get("service") or {}
    e = sum(hil["plants"][p]["energy_kwh"] for p in plants if p in ENERGY_PLANTS)
    eb = sum(base[p]["energy_kwh"] for p in plants if p in ENERGY_PLANTS)
    er = sum(ref[p]["energy_kwh"] for p in plants if p in ENERGY_PLANTS)
    out = {
        "plant_hours": hil["plant_hours"], "speedup": hil["speedup"], "wall_s": hil["wall_s"],
        "devices_up": status.get("devices_up", 0), "devices_total": status.get("devices_total", 0),
        "line_utilisation": {ln: v["utilisation"] for ln, v in status.get("lines", {}).items()},
        "line_tx_per_s": {ln: v["tx_per_s"] for ln, v in status.get("lines", {}).items()},
        "energy_kwh": round(e, 2), "baseline_energy_kwh": round(eb, 2),
        "mil_energy_kwh": round(er, 2),
        "savings_pct": round(100.0 * (1 - e / eb), 2) if eb > 0 else None,
        "nox_exceed_hours": hil["plants"].get("scr", {}).get("nox_exceed_hours"),
        "so2_exceed_hours": hil["plants"].get("fgd", {}).get("so2_exceed_hours"),
        "service_energy_kwh": (hil.get("service_kpis") or {}).get("energy_kwh"),
        "cycle": status.get("groups"), "loops": status.get("loops"),
        "plants": {p: {"hil": hil["plants"][p], "baseline": base[p], "mil": ref[p]} for p in plants},
    }
    return out


ROWS = [("energy_kwh", "energy [kWh]"), ("demand_met_frac", "demand met [frac]"),
        ("pressure_min_bar", "min header pressure [bar]"),
        ("nox_exceed_hours", "NOx hours over limit"), ("nox_hourly_max_mg_nm3", "NOx max hourly [mg/Nm3]"),
        ("nh3_kg", "NH3 [kg]"), ("nh3_slip_p95_ppm", "NH3 slip p95 [ppm]"),
        ("so2_exceed_hours", "SO2 hours over limit"), ("so2_hourly_max_mg_nm3", "SO2 max hourly [mg/Nm3]"),
        ("limestone_kg", "limestone [kg]")]


def table(summary):
    lines = ["| plant | KPI | baseline (MIL) | GreenEdge (MIL) | GreenEdge (HIL, full chain) |",
             "| --- | --- | ---: | ---: | ---: |"]
    for p, r in summary["plants"].items():
        for key, label in ROWS:
            if key in r["hil"]:
                lines.append("| %s | %s | %s | %s | %s |" % (
                    p, label, _fmt(r["baseline"].get(key)), _fmt(r["mil"].get(key)),
                    _fmt(r["hil"].get(key))))
    lines.append("| all | energy [kWh] | %s | %s | %s |" % (
        _fmt(summary["baseline_energy_kwh"]), _fmt(summary["mil_energy_kwh"]),
        _fmt(summary["energy_kwh"])))
    return "\n".join(lines)


def _fmt(v):
    if v is None:
        return "-"
    if isinstance(v, float):
        return "%.4g" % v if abs(v) < 1000 else "%.0f" % v
    return str(v)


def write_report(out, summary, hil, base, ref, traces, plants, base_traces=None):
    """The figures: the full chain (HIL) with the model-in-the-loop baseline on the
    same axes (hil_tests/plots.py; hourly means from the trend rows)."""
    from hil_tests import sim
    from controller.accounting import KpiFrame
    out.mkdir(parents=True, exist_ok=True)
    plots = []
    for p in plants:
        if traces.get(p):
            others = [("baseline", base_traces[p], None)] if (base_traces or {}).get(p) else []
            plots += sim.plot(traces[p], p, "hil", hil["plants"][p]["scenario"], out, KpiFrame(p),
                              others)
    text = ["# GreenEdge demo report", "",
            "%.2f plant hours at %gx in %.0f s wall; %d/%d devices up at the end."
            % (summary["plant_hours"], summary["speedup"], summary["wall_s"],
               summary["devices_up"], summary["devices_total"]), "",
            "Energy saved against the baseline: **%s %%** (fans, pumps, compressors, FGD pumps)."
            % _fmt(summary["savings_pct"]), "",
            "Line utilisation: " + ", ".join("%s %.0f %%" % (k, 100 * (v or 0))
                                             for k, v in summary["line_utilisation"].items()), "",
            table(summary), ""]
    text += ["![%s](%s)" % (Path(x).stem, Path(x).name) for x in plots]
    (out / "report.md").write_text("\n".join(text) + "\n")
    (out / "summary.json").write_text(json.dumps(summary, indent=1, default=str))
    return str(out / "report.md")


def _pairs(items, what, known):
    """["name=tty", ...] -> {name: tty}, names checked against known."""
    out = {}
    for it in items or ():
        name, sep, tty = it.partition("=")
        if not sep or not name or not tty:
            raise ValueError("--%s %r: expected NAME=TTY" % (what, it))
        if name not in known:
            raise ValueError("--%s %s: no %s %r here (known: %s)"
                             % (what, it, "bus" if what == "port" else "device", name,
                                ", ".join(sorted(known))))
        if name in out:
            raise ValueError("--%s %s given twice" % (what, name))
        out[name] = tty
    return out


def hardware_args(a):
    """Plants, bus ports and link ports from the command line, checked."""
    from hil_tests.bench import DEMO
    plants = DEMO if not a.plants else a.plants.split(",")
    for p in plants:
        if p not in DEMO:
            raise ValueError("--plants: no plant %r (known: %s)" % (p, ", ".join(DEMO)))
    buses = {DEMO[p][0] for p in plants}
    devices = {d: DEMO[p][0] for p in plants for d, _ in DEMO[p][1].values()}
    ports = _pairs(a.port, "port", buses)
    links = _pairs(a.link, "link", devices)
    for dev, bus in sorted(devices.items()):
        if bus in ports and dev not in links:
            raise ValueError("device %s is on hardware bus %s: give --link %s=TTY "
                             "(its plant link)" % (dev, bus, dev))
        if dev in links and bus not in ports:
            raise ValueError("--link %s: its bus %s is virtual (give --port %s=TTY)"
                             % (dev, bus, bus))
    for tty in list(ports.values()) + list(links.values()):
        if not Path(tty).exists():
            raise ValueError("serial port %s does not exist" % tty)
    if len(a.hw_format) != 3 or a.hw_format[0] not in "78" or a.hw_format[1] not in "NEO" \
            or a.hw_format[2] not in "12":
        raise ValueError("--hw-format %r: expected e.g. 8E1, 8N2" % a.hw_format)
    return list(plants), ports, links


def demo_hmi(hmi, say):
    """demo --hmi HOST:PORT [--hmi-users FILE]: the service's web HMI; without
    a users file, one with a viewer, an operator and an engineer and fresh
    random passwords (printed once) in a temporary folder."""
    if not hmi or not hmi[0]:
        return None
    listen, users = hmi
    from controller.north import is_loopback, parse_hostport
    host, _ = parse_hostport(listen, "--hmi")
    if not is_loopback(host):
        raise UserError("--hmi %s: the demo's HMI binds to a loopback address only (it has "
                        "no TLS); `greenedge run` with [hmi] certificate and key binds "
                        "elsewhere" % listen)
    if users is None:
        import secrets
        import tempfile
        from controller.north.users import add_user
        users = Path(tempfile.mkdtemp(prefix="greenedge-demo-hmi-")) / "users.toml"
        for name, role in (("viewer", "viewer"), ("operator", "operator"),
                           ("engineer", "engineer")):
            pw = secrets.token_urlsafe(9)
            add_user(users, name, role, pw)
            # stderr even with --json: printed once, kept nowhere else in clear
            print("  HMI user %s (%s) password %s" % (name, role, pw), file=sys.stderr)
    say("  HMI: http://%s/ (users %s)" % (listen, users))
    return {"listen": listen, "users": str(users)}


def _demo_users(say, what):
    """A users file with a viewer, an operator and an engineer and fresh random
    passwords (printed once on stderr) in a temporary folder."""
    import secrets
    import tempfile
    from controller.north.users import add_user
    users = Path(tempfile.mkdtemp(prefix="greenedge-demo-users-")) / "users.toml"
    for name, role in (("viewer", "viewer"), ("operator", "operator"),
                       ("engineer", "engineer")):
        pw = secrets.token_urlsafe(9)
        add_user(users, name, role, pw)
        print("  %s user %s (%s) password %s" % (what, name, role, pw), file=sys.stderr)
    return users


def demo_north(north, hmi_users, say):
    """demo --opcua URL / --mqtt URL / --metrics HOST:PORT: the bench's service
    config gets [opcua] (a fresh self-signed certificate in a temporary folder;
    users from --hmi-users, else the HMI's generated file, else generated here),
    [mqtt] (the broker; the rest [mqtt]'s defaults: command role viewer, nothing
    writable) and [metrics]. Returns a function of the bench's folder giving the
    TOML lines (the certificate goes there and goes with it), or None."""
    north = north or {}
    lines = []
    if north.get("metrics"):
        from controller.north import parse_hostport
        parse_hostport(north["metrics"], "--metrics")
        lines += ["[metrics]", 'listen = "%s"' % north["metrics"], ""]
        say("  Prometheus: http://%s/metrics" % north["metrics"])
    if north.get("mqtt"):
        from controller.config.north import parse_broker
        parse_broker(north["mqtt"], "--mqtt")
        lines += ["[mqtt]", 'broker = "%s"' % north["mqtt"], ""]
        say("  Sparkplug B: %s (group greenedge, node hil-bench)" % north["mqtt"])
    opc = None
    if north.get("opcua"):
        from controller.config.north import parse_endpoint
        from controller.north import need
        _, host, _ = parse_endpoint(north["opcua"], "--opcua")
        need("asyncua", "--opcua")
        need("cryptography.x509", "--opcua")
        users = north.get("users") or hmi_users or _demo_users(say, "OPC UA")
        opc = (north["opcua"], host, Path(users).resolve())
        say("  OPC UA: %s (Basic256Sha256 / Aes256_Sha256_RsaPss, users %s)"
            % (north["opcua"], users))
    if not lines and opc is None:
        return None

    def extra(workdir):
        out = list(lines)
        if opc is not None:
            from controller.north.certs import APP_URI, make_cert
            url, host, users = opc
            pki = Path(workdir) / "pki"
            pki.mkdir(exist_ok=True)
            if not (pki / "server.der").exists():
                make_cert(pki / "server.der", pki / "server.pem", APP_URI % "hil-bench",
                          hosts=sorted({host, "127.0.0.1", "localhost"}))
            out += ["[opcua]", 'endpoint = "%s"' % url,
                    'certificate = "%s"' % (pki / "server.der"),
                    'private_key = "%s"' % (pki / "server.pem"), 'users = "%s"' % users, ""]
        return out
    return extra


def _bench_with(bench_cls, extra):
    """The bench whose service config ends with extra(its folder)'s TOML lines."""
    class NorthBench(bench_cls):
        def write_config(self, path=None):
            super().write_config(path)
            p = path or self.config_path
            p.write_text(p.read_text() + "\n\n" + "\n".join(extra(self.dir)) + "\n")
    return NorthBench


def cmd_demo(a):
    try:
        plants, ports, links = hardware_args(a)
    except ValueError as e:
        raise UserError(str(e))
    s = run_demo(a.minutes, a.speedup, a.scenario, a.seed, a.report, quiet=a.json,
                 plants=plants, ports=ports, link_ports=links, hw_format=a.hw_format,
                 hmi=(getattr(a, "hmi", None), getattr(a, "hmi_users", None)),
                 north={"opcua": getattr(a, "opcua", None), "mqtt": getattr(a, "mqtt", None),
                        "metrics": getattr(a, "metrics", None),
                        "users": getattr(a, "hmi_users", None)})
    if a.json:
        s = {k: v for k, v in s.items() if k != "plants"} | {
            "plants": {p: r["hil"] for p, r in s["plants"].items()}}
        print(json.dumps(s, default=str))
    else:
        print(table(s))
        print("\nenergy %.1f kWh vs baseline %.1f kWh: %s %% saved; NOx hours over limit %s, "
              "SO2 %s" % (s["energy_kwh"], s["baseline_energy_kwh"], _fmt(s["savings_pct"]),
                          s["nox_exceed_hours"], s["so2_exceed_hours"]))
    return 0
