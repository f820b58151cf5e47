"""Render docs/benchmarks.md from the results of one benchmark run.

    python bench/run.py all --json --out bench/results.json   # about 10 minutes
    python tools/render_benchmarks.py                         # writes docs/benchmarks.md
    python tools/render_benchmarks.py --check                 # exit 1 if it is out of date

Every figure in the page comes from bench/results.json (committed beside it);
the text around the figures says what is compared and how, and states an aim
as met or not met from the figures themselves. A benchmark missing from the
file is listed as not run.
"""

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results.json"
PAGE = ROOT / "docs" / "benchmarks.md"


def n(x, nd=1):
    """A number with thousands separators and nd decimals ('-' when missing)."""
    if x is None:
        return "-"
    return "{:,.{}f}".format(x, nd)


def pct(x, nd=0):
    return "-" if x is None else "%s %%" % n(100 * x, nd)


def met(ok):
    return "met" if ok else "not met"


def table(head, rows):
    out = ["| " + " | ".join(head) + " |",
           "| " + " | ".join("---" if i == 0 else "---:" for i in range(len(head))) + " |"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def modbus(r):
    rows = [
        ("turnaround p50", "%s ms (%sx t3.5)" % (n(r["turnaround_p50_ms"], 2),
                                                  n(r["turnaround_p50_vs_t35"], 2)),
         "%s ms (%sx)" % (n(r["peer_turnaround_p50_ms"], 2), n(r["peer_turnaround_p50_vs_t35"], 2)),
         "%s ms (t3.5)" % n(r["t35_ms"], 2)),
        ("turnaround p99", "%s ms (%sx t3.5)" % (n(r["turnaround_p99_ms"], 2),
                                                  n(r["turnaround_p99_vs_t35"], 2)),
         "%s ms (%sx)" % (n(r["peer_turnaround_p99_ms"], 2), n(r["peer_turnaround_p99_vs_t35"], 2)),
         ""),
        ("transactions/s, 10 registers", n(r["tx_per_s_10"]), n(r["peer_tx_per_s_10"]),
         n(r["limit_tx_per_s_10"])),
        ("transactions/s, 100 registers", n(r["tx_per_s_100"]), n(r["peer_tx_per_s_100"]),
         n(r["limit_tx_per_s_100"])),
    ]
    early = r["peer_turnaround_p50_vs_t35"] < 1
    return [
        "Firmware device (motor profile) on the MicroPython unix port on an emulated "
        "%d-baud line with wire timing (11 bits a character); client: pymodbus sync serial "
        "client. Peer: %s on an identical line. Turnaround = end of the request on the wire "
        "to the first reply byte leaving the device, from the line's own log; t3.5 is the "
        "3.5-character silence a conformant device keeps before it answers." % (r["baud"], r["peer"]),
        "",
        table(("figure", "GreenEdge firmware", "pymodbus server", "physical limit"), rows),
        "",
        "- GreenEdge runs at %s (10 registers) and %s (100 registers) of the line's physical "
        "limit, which includes the silence before each reply." % (
            pct(r["utilisation_10"]), pct(r["utilisation_100"])),
        "- The pymodbus server's median reply comes %s the silence (%sx t3.5)%s." % (
            "before" if early else "after", n(r["peer_turnaround_p50_vs_t35"], 2),
            ": a spec-conformant master or another device on the segment may take such a "
            "reply as part of the request" if early else ""),
        "- Inside the firmware (unix port, no line): the frame handler takes %s us for a "
        "10-register read and %s us for 100 registers; a supervisor tick %s us. The 3.5-"
        "character silence before a reply is %sx the 100-register handler time: a board's "
        "slower core has that much room before the handler, not the silence, sets the "
        "turnaround." % (n(r["handler_us_10"]), n(r["handler_us_100"]),
                         n(r["supervisor_tick_us"]), n(1000 * r["t35_ms"] / r["handler_us_100"], 0)),
        "- Aim p99 <= 2 ms: %s (%s ms)." % (met(r["turnaround_p99_ms"] <= 2.0),
                                           n(r["turnaround_p99_ms"], 2)),
    ]


def kernels(r):
    ns = r["ns_per_step"]
    keys = sorted(ns["greenedge"], key=int)
    rows = [(n(int(k), 0), n(ns["greenedge"][k]), n(ns["numpy"][k]), n(ns["simple_pid"][k]))
            for k in keys]
    big = keys[-1]
    return [
        "PID bank, full-featured loops (PI + filtered derivative on measurement, limits, rate "
        "limit, feedforward, back-calculation), ns per loop-step, best of several repeats. "
        "Peers in the same run: the same law vectorised with numpy as an expert writes it "
        "(coefficients derived once like the bank's, preallocated buffers), checked to give "
        "the bank's outputs before timing (largest difference %.1e, tolerance %.0e); and "
        "simple-pid (one pure-Python object per loop) with the features it has: the same "
        "gains, output limits, derivative on measurement; it has no derivative filter, rate "
        "limit, feedforward or back-calculation, so it does less per step."
        % (r["numpy_max_abs_dev"], r["tolerance"]),
        "",
        table(("N", "GreenEdge", "numpy", "simple-pid"), rows),
        "",
        "- Single-loop step called from Python: %s us (aim < 1 us: %s)." % (
            n(r["single_step_us"], 3), met(r["single_step_us"] < 1)),
        "- N = %s: numpy takes %sx the bank's time (aim: faster than numpy: %s), simple-pid "
        "%sx (aim 300x: %s). At this N the working set no longer fits the core's cache and "
        "both the bank and numpy are bound by memory traffic." % (
            n(int(big), 0), n(r["ratio_numpy_vs_greenedge_10000"]),
            met(r["ratio_numpy_vs_greenedge_10000"] > 1), n(r["ratio_simple_pid_vs_greenedge_10000"]),
            met(r["ratio_simple_pid_vs_greenedge_10000"] >= 300)),
    ]


def plants(r):
    rows = []
    for p in r["speedup"]:
        ag = r["agreement"][p]
        rows.append((p, n(r["speedup"][p], 0) + "x", n(r["peer_speedup"][p], 0) + "x",
                     n(r["ratio_vs_peer"][p]), "%.1e (%s; tolerance %.0e)" % (
                         ag["max_rel_dev"], ag["quantity"], ag["tolerance"]),
                     n(r["plant_speedup"][p], 0) + "x", "%s s" % n(r["day_wall_s"][p], 2)))
    return [
        "Simulated seconds per wall second over %s. Timed: %s. Peer: %s, each plant's own "
        "equations state for state. Before timing, both run the same span and their states "
        "are compared every %s s of plant time; the benchmark stops if they differ by more "
        "than the plant's tolerance (largest relative deviation below)." % (
            r["scenario"], r["timed"], r["peer"], n(r["sample_s"], 0)),
        "",
        table(("plant", "GreenEdge physics", "peer", "ratio", "largest deviation",
               "GreenEdge whole plant", "24 h takes"), rows),
        "",
        "- Aim (whole plant >= 20,000x for SCR and FGD, a day in under 5 s): %s." % met(
            all(r["plant_speedup"][p] >= 20000 for p in ("scr", "fgd"))
            and all(v < 5 for v in r["day_wall_s"].values())),
    ]


def metering(r):
    return [
        "%s: the metering kernel per sample set (6 channels) with viper against the same "
        "source as bytecode, same signal, results checked equal; and a whole device (motor "
        "profile, %s KB heap) sampling while a pymodbus client polls it." % (
            r["platform"], n(r["heap_bytes"] / 1024, 0)),
        "",
        table(("figure", "value"), [
            ("kernel per sample set, viper", "%s ns" % n(r["ns_per_set_viper"], 0)),
            ("kernel per sample set, bytecode", "%s ns" % n(r["ns_per_set_bytecode"], 0)),
            ("native vs bytecode", "%sx (aim >= 10x: %s)" % (n(r["native_vs_bytecode"]),
                                                             met(r["native_vs_bytecode"] >= 10))),
            ("sample sets/s sustained (highest rung of the ladder)",
             "%s (rung %s/s)" % (n(r["sample_sets_per_s"], 0), n(r["configured_set_rate"], 0))),
            ("Modbus polls served meanwhile", n(r["modbus_polls_during_run"], 0)),
            ("GC heap live at peak", "%s of %s bytes" % (n(r["heap_peak_bytes"], 0),
                                                         n(r["heap_bytes"], 0))),
        ]),
        "",
        "- Stopped at: %s." % (r["stopped_at"] or "the top of the ladder"),
    ]


def service(r):
    c = r["cycle"]
    return [
        "Part 1: the service's line master over TCP loopback against pymodbus' own TCP server "
        "beside %s. Part 2: the real Service with a 100 ms group of 32 fan loops over "
        "%d firmware devices on two emulated 115200-baud lines." % (r["peer"], c["devices_total"]),
        "",
        table(("figure", "GreenEdge", "peer", "aim"), [
            ("host CPU per transaction", "%s us" % n(r["cpu_us_per_tx"]),
             "%s us" % n(r["peer_cpu_us_per_tx"]), ""),
            ("ratio to bare pymodbus", "%sx" % n(r["ratio_cpu_vs_peer"], 2), "1",
             "<= 1.2x: %s" % met(r["ratio_cpu_vs_peer"] <= 1.2)),
            ("transactions to read a motor device", r["tx_per_cycle"], r["peer_tx_per_cycle"],
             "far fewer"),
            ("cycle jitter p99, 100 ms, %d devices" % c["devices_total"],
             "%s ms" % n(r["jitter_p99_ms"], 2), "", "<= 2 ms: %s" % met(r["jitter_p99_ms"] <= 2)),
            ("overruns", "%d in %d cycles" % (r["overruns"], c["cycles"]), "", "0: %s"
             % met(r["overruns"] == 0)),
        ]),
    ]


def line(r):
    rows = [(who, n(r[p + "tx_per_s"]), n(r[p + "registers_per_s"], 0),
             n(r.get(p + "bits_per_s"), 0), pct(r[p + "utilisation"]))
            for who, p in (("GreenEdge line master", ""), ("expert peer", "expert_"),
                           ("naive peer", "peer_"))]
    return [
        "Three firmware devices on one emulated 115200-baud line. GreenEdge: the service's "
        "line master with its coalesced plan. Expert peer: pymodbus' async serial client "
        "reading the same blocks the planner produces on the same schedule. Naive peer: "
        "pymodbus' serial client reading one point per request. Only data from complete "
        "replies counts (registers and bits apart); every side warms up the same way. "
        "Utilisation = physical wire time of the completed transactions (11-bit characters "
        "plus two 3.5-character silences) over elapsed time.",
        "",
        table(("side", "transactions/s", "registers/s", "bits/s", "utilisation"), rows),
        "",
        "- Registers/s: %sx the expert peer's, %sx the naive peer's. Latency p50 %s ms, p99 "
        "%s ms, %d timeouts." % (n(r["ratio_registers_per_s_vs_expert"], 2),
                                 n(r["ratio_registers_per_s_vs_peer"], 2),
                                 n(r["latency_p50_ms"], 2), n(r["latency_p99_ms"], 2),
                                 r["timeouts"]),
        "- The master keeps the 3.5-character silence after each reply before its next "
        "request; pymodbus does not (the peers' utilisation can pass 100 %% of a limit that "
        "assumes both silences). The firmware frames by length and tolerates it; a device "
        "that frames by silence may not. Aim utilisation >= 85 %%: %s." % met(
            r["utilisation"] >= 0.85),
    ]


def alarms(r):
    e = r["engine"]
    return [
        "One alarm engine pass over examples/plant.toml's %d alarms (every device republished "
        "before each pass, the worst case), and the real service's cycle timing (50 ms group "
        "of 8 fan loops on the fake line) with the engine and without it (the peer), runs "
        "alternated." % e["alarms"],
        "",
        table(("figure", "value"), [
            ("engine pass p50 / p99", "%s / %s us" % (n(e["pass_p50_us"], 0), n(e["pass_p99_us"], 0))),
            ("per alarm (p50)", "%s us" % n(e["per_alarm_p50_us"], 2)),
            ("cycle jitter p99 with the engine (median of runs)",
             "%s ms" % n(r["with_alarms_jitter_p99_ms_median"], 2)),
            ("cycle jitter p99 without (median of runs)",
             "%s ms" % n(r["without_jitter_p99_ms_median"], 2)),
        ]),
    ]


def northbound(r):
    s = r["sparkplug"]
    return [
        "OPC UA: GreenEdge's server mapping hub samples to nodes (status codes, one batch per "
        "cycle) against asyncua's own bare write loop on the same address space (%s tags). "
        "Sparkplug B: the edge node against a pysparkplug encode + paho publish loop and a bare "
        "paho loop of the same payload bytes, to a local mosquitto (%s tags)." % (
            n(r["tags"], 0), n(s["tags"], 0)),
        "",
        table(("figure", "GreenEdge", "peer", "ratio"), [
            ("OPC UA us per value update", n(r["ours_us_per_update"]),
             n(r["asyncua_bare_us_per_update"]), n(r["ratio_vs_asyncua_bare"], 2)),
            ("Sparkplug CPU ms per 1,000 tag updates", n(s["ours_cpu_ms_per_1000"]),
             "%s (encode), %s (raw)" % (n(s["peer_encode_cpu_ms_per_1000"]),
                                        n(s["peer_raw_cpu_ms_per_1000"])),
             n(s["ratio_cpu_vs_encode_peer"], 2)),
            ("Sparkplug tag updates/s", n(s["ours_tags_per_s"], 0),
             "%s (encode)" % n(s["peer_encode_tags_per_s"], 0), ""),
        ]),
    ]


def northbound_jitter(r):
    return [
        "The service's cycle timing with the Sparkplug edge node publishing %s tags and "
        "without it, runs alternated." % n(r["tags"], 0),
        "",
        table(("figure", "value"), [
            ("jitter p99 with Sparkplug (median of runs)",
             "%s ms" % n(r["with_sparkplug_jitter_p99_ms_median"], 2)),
            ("jitter p99 without", "%s ms" % n(r["without_jitter_p99_ms_median"], 2)),
            ("tag updates published/s", n(r["sparkplug_tags_per_s"], 0)),
        ]),
    ]


def hmi(r):
    out = ["Cycle jitter of the service with the HMI open in headless Chromium (overview and a "
           "loop faceplate, live), with the HMI running and no browser, and with no HMI, "
           "windows alternated in one service."]
    for key in ("large", "small"):
        g = r.get(key)
        if not g:
            continue
        rig = ("90 devices, 5,040 tags, 8 fan loops at 50 ms" if key == "large"
               else "one fan loop at 100 ms, historian on")
        rows = [(name, g[k]["cycles"], n(g[k]["jitter_mean_ms"], 3), n(g[k]["jitter_p90_ms"], 3),
                 n(g[k]["jitter_p99_ms"], 2), n(g[k]["jitter_max_ms"], 1), g[k]["overruns"])
                for k, name in (("browser", "HMI open in Chromium"),
                                ("no_browser", "HMI, no browser"), ("no_hmi", "no HMI"))]
        out += ["", "%s rig (%s; %d windows of %s s, load average %s):" % (
            key, rig, g["rounds"], n(g["window_s"], 0), n(g["load_avg"])), "",
            table(("", "cycles", "jitter mean ms", "p90 ms", "p99 ms", "max ms", "overruns"), rows),
            "", "- Values pushed to the browser: %s/s; p99 browser / no HMI: %s (aim <= 1.10: %s)."
            % (n(g["values_pushed_per_s"], 0), n(g["ratio_browser_vs_no_hmi_p99"], 2),
               met(g["ratio_browser_vs_no_hmi_p99"] <= 1.10))]
    return out


def scale(r):
    rows = [(x["n"], n(x["polls_per_s"]), n(x["cpu_s_per_1000_polls"], 2),
             n(x["peer_cpu_s_per_1000_polls"], 2), n(x["ratio_cpu_per_poll_vs_peer"], 2),
             pct(x["cpu_share"], 1), "%s ms" % n(x["jitter_p99_ms"], 2), x["overruns"],
             "%s MB" % n(x["rss_mb"])) for x in r["rows"]]
    out = [
        "The host service polls N devices, %d per line, each every %s s, with one fan loop per "
        "device in a %d ms group. RTU lines (%d baud, wire-timed virtual lines) carry real "
        "MicroPython firmware up to N = %d, beyond that and on the RTU-over-TCP and Modbus TCP "
        "lines pymodbus servers with the firmware's register map and physics. Peer: %s. CPU is "
        "each process's own." % (r["per_line"], n(r["poll_ms"] / 1000, 0), r["group_ms"],
                                  r["baud"], r["firmware_max_n"], r["peer"]),
        "",
        table(("N", "polls/s", "service CPU s / 1,000 polls", "peer", "ratio", "share of a core",
               "jitter p99", "overruns", "RSS"), rows),
        "",
    ]
    if r.get("growth_exponent_cpu") is not None:
        out.append("- CPU grows with N to the power %s (the peer %s); CPU per poll at N = %d is "
                   "%sx that at N = %d (aim: within 1.2x: %s)." % (
                       n(r["growth_exponent_cpu"], 2), n(r["peer_growth_exponent_cpu"], 2),
                       r["rows"][-1]["n"], n(r["cpu_per_poll_last_vs_first"], 2),
                       r["rows"][0]["n"], met(r["cpu_per_poll_last_vs_first"] <= 1.2)))
    if r.get("marginal_cpu_s_per_1000_polls") is not None:
        out.append("- A linear fit gives the service %s of a core plus %s s per 1,000 polls "
                   "(the peer %s plus %s s)." % (
                       pct(r["fixed_cpu_share"], 1), n(r["marginal_cpu_s_per_1000_polls"], 2),
                       pct(r["peer_fixed_cpu_share"], 1),
                       n(r["peer_marginal_cpu_s_per_1000_polls"], 2)))
    nb = r.get("north")
    if nb:
        out.append("- Northbound on at N = %d (OPC UA, Sparkplug B to mosquitto, Prometheus "
                   "scraped): %s tag updates/s, %s s extra CPU per 1,000 tag updates, jitter p99 "
                   "%s ms against %s ms." % (
                       nb["n"], n(nb["tag_updates_per_s"], 0),
                       n(nb["extra_cpu_s_per_1000_tag_updates"], 3), n(nb["jitter_p99_ms"], 1),
                       n(nb["jitter_p99_ms_without"], 1)))
    out.append("- What limits one host: " + r["limits"]["note"])
    return out


def site(r):
    rows = [(c["edges"], n(c["tags"], 0), "%s / %s" % (n(c["steady_rows"], 0),
                                                       n(c["steady_expected"], 0)),
             "%s / %s s" % (n(c["latency_p50_s"], 3), n(c["latency_p99_s"], 3)),
             n(c["e2e_metrics_s"], 0), n(c["copy_rows_s"], 0), n(c["ratio"], 2))
            for c in r["configs"]]
    aim = r["aim"]
    ok_ratio = all(c["ratio"] >= aim["ratio_min"] for c in r["configs"])
    ok_p99 = all(c["latency_p99_s"] <= aim["p99_max_s"] for c in r["configs"])
    lost = all(c["steady_rows"] == c["steady_expected"] and c["burst_rows"] == c["burst_expected"]
               for c in r["configs"])
    return [
        "Edges (each a publisher of Sparkplug B at 1 s) -> local broker -> bridge -> site "
        "broker -> `greenedge site` -> PostgreSQL, end to end; latency from the source "
        "timestamp to the committed row; the peer: PostgreSQL's own COPY of the same rows from "
        "a file in the same run. Details and sizing: docs/site.md.",
        "",
        table(("edges", "tags each", "rows stored / sent", "latency p50 / p99",
               "burst metrics/s", "COPY rows/s", "ratio"), rows),
        "",
        "- Aims: no loss: %s; p99 <= %s s: %s; >= %s of COPY: %s." % (
            met(lost), n(aim["p99_max_s"], 0), met(ok_p99), n(aim["ratio_min"], 1), met(ok_ratio)),
    ]


SECTIONS = (("modbus", modbus), ("kernels", kernels), ("plants", plants),
            ("metering", metering), ("service", service), ("line", line), ("alarms", alarms),
            ("northbound", northbound), ("northbound-jitter", northbound_jitter), ("hmi", hmi),
            ("scale", scale), ("site", site))


def render(data):
    h = data["host"]
    out = ["# Benchmark figures", "",
           "Generated by `python tools/render_benchmarks.py` from `bench/results.json`, which "
           "`python bench/run.py all --json --out bench/results.json` wrote on %s at git "
           "revision %s%s, on %s (%d cores, %s, Python %s, pymodbus %s), in %s s. Each "
           "benchmark measures GreenEdge beside its named peer in the same run; rerun both "
           "commands to compare on your hardware. Do not edit this page by hand." % (
               data["date"], data["revision"], " (with uncommitted changes)" if data["dirty"]
               else "", h["cpu"], h["cores"], h["system"], h["python"], h["pymodbus"],
               n(data["total_wall_s"], 0))]
    for name, fn in SECTIONS:
        res = data["results"].get(name)
        form = " --quick" if data["quick"].get(name) else ""
        out += ["", "## %s" % name, ""]
        if res is None:
            out.append("Not in this run.")
            continue
        out.append("`python bench/run.py %s%s --json` (%s s in this run)." % (
            name, form, n(data["wall_s"][name], 0)))
        out.append("")
        out += fn(res)
    return "\n".join(out) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--results", default=str(RESULTS))
    ap.add_argument("--out", default=str(PAGE))
    ap.add_argument("--check", action="store_true", help="exit 1 if the page is out of date")
    a = ap.parse_args(argv)
    text = render(json.loads(Path(a.results).read_text()))
    if a.check:
        if Path(a.out).read_text() != text:
            print("%s is not what %s renders to: run python tools/render_benchmarks.py"
                  % (a.out, a.results), file=sys.stderr)
            return 1
        return 0
    Path(a.out).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
