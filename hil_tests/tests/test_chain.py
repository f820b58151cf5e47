"""The full chain: simulated plant -> firmware (unix port) -> Modbus RTU on timed
virtual lines (and a TCP gateway) -> `greenedge run` -> Modbus -> firmware
outputs -> plant. Shortened scenarios on a scaled clock (hil_tests/bench.py).
"""

import sqlite3
import time

import pytest

from hil_tests import sim
from controller.historian import latest_kpis
from firmware import regmap
from hil_tests.bench import Bench, scenario_for


def mil(plant, hours, scenario="standard"):
    return sim.run(plant, "optimized", scenario_for(plant, scenario), hours)


@pytest.fixture(scope="module")
def chain():
    """One 1 h run of every plant through the chain at 60x, with its MIL references."""
    hours = 1.0
    with Bench(speedup=60, hours=hours) as b:
        r = b.run()
    return r, {n: mil(n, hours) for n in r["plants"]}


def test_every_plant_through_the_chain_matches_model_in_the_loop(chain):
    r, ref = chain
    st = r["service"]
    assert st["devices_up"] == st["devices_total"] == 8
    assert all(v["errors"] == 0 or v["mode"] != "error" for v in st["loops"].values())
    p = r["plants"]
    for n in ("fan", "pump"):
        # A poll round every ~6 plant-s at 60x (p90 10 s), values ~3 s old: the
        # strategies' 0.995 is met on the bench (measured 0.9967-0.9997 over
        # four runs; tests/test_strategies.py asserts it on the modelled line
        # for the whole day). The margin here is for a host slower than this one.
        assert p[n]["demand_met_frac"] >= 0.99, (n, p[n])
        assert p[n]["energy_kwh"] <= 1.10 * ref[n]["energy_kwh"], (n, p[n], ref[n])
    assert p["scr"]["nox_exceed_hours"] == 0
    assert p["scr"]["nox_hourly_max_mg_nm3"] <= 50.0
    assert p["scr"]["nh3_kg"] <= 1.10 * ref["scr"]["nh3_kg"]
    assert p["scr"]["nh3_slip_p95_ppm"] <= 2.5
    assert p["scr"]["nox_hourly_max_mg_nm3"] == pytest.approx(ref["scr"]["nox_hourly_max_mg_nm3"],
                                                             abs=2.0)  # the chain adds no harm
    assert p["fgd"]["so2_exceed_hours"] == 0
    assert p["fgd"]["ph_in_band_frac"] >= 0.99
    assert p["fgd"]["recirc_pump_kwh"] <= 1.10 * ref["fgd"]["recirc_pump_kwh"]
    # The service measured what the plant did: its energy from the devices'
    # power registers within 3 % of the plant's truth.
    truth = sum(p[n]["energy_kwh"] for n in ("fan", "pump", "compressor", "fgd"))
    assert r["service_kpis"]["energy_kwh"] == pytest.approx(truth, rel=0.03)
    for ln, v in st["lines"].items():
        assert 0.3 < v["utilisation"] <= 1.0, (ln, v)


def test_compressor_station_through_the_chain_holds_its_minimum_pressure(chain):
    r, ref = chain
    p = r["plants"]["compressor"]
    assert p["pressure_min_bar"] >= 6.0, p
    assert p["energy_kwh"] <= 1.10 * ref["compressor"]["energy_kwh"], (p, ref["compressor"])


def test_one_percent_corruption_never_reaches_a_loop():
    # 1 % of bytes: a 23-register reply (59 bytes) arrives intact only ~55 % of
    # the time, so the polling rate halves; 30x keeps the loops' sampling sane.
    with Bench(["fan", "pump", "scr"], speedup=30, hours=0.3,
               line_faults={"rtu1": {"corrupt_rate": 0.01}}) as b:
        r = b.run()
        db = sqlite3.connect(str(b.dir / "history.db"))
        flows = [v for (v,) in db.execute(
            "SELECT value FROM samples WHERE tag IN ('fan.process_pv', 'pump.process_pv')")]
        nox = [v for (v,) in db.execute(
            "SELECT value FROM samples WHERE tag = 'scr.nox_out_mg_nm3' AND quality = 0")]
        stats = b.lines["rtu1"].stats()
    line = r["service"]["lines"]["rtu1"]
    assert stats["corrupted"] > 20 and line["garbled"] + line["timeouts"] > 10
    # Every value a loop could see is physical (CRC caught every corrupted frame).
    assert flows and all(0.0 <= v <= 80.0 for v in flows)
    assert nox and all(0.0 <= v <= 600.0 for v in nox)
    # Control kept: each garbled or lost reply costs a timeout, the poll rate falls
    # to ~40 % and the loops see ~7 plant-seconds old values, yet they hold the
    # demand most of the time (model-in-the-loop: ~0.98) and nothing runs away.
    for n in ("fan", "pump"):
        assert r["plants"][n]["demand_met_frac"] >= 0.75, r["plants"][n]
        assert r["service"]["loops"][n]["mode"] == "auto"
    assert r["plants"]["scr"]["nox_exceed_hours"] == 0


def _safe(link):
    return link.last is not None and link.last[2] & regmap.ST_SAFE_STATE


def _armed(link):
    return link.last is not None and link.last[2] & regmap.ST_ARMED


def test_dead_device_host_kill_and_restart(tmp_path):
    comm_loss_s = 3.0
    with Bench(["fan", "pump", "scr"], speedup=30, hours=2.0, workdir=tmp_path,
               comm_loss_s=comm_loss_s) as b:
        b.begin()
        b.advance(600)  # 10 plant minutes: every loop in auto
        assert all(_armed(b.links[d]) for d in ("fan", "pump", "scr"))
        # A device that dies on the line (deaf and mute: port 2 is the pump):
        # its loop falls back, it reaches its safe state, the others carry on.
        st = b.service_status()
        polls = {d: st["devices"][d]["polls"] for d in ("fan", "scr")}
        b.lines["rtu1"].set(muted=[2], deaf=[2])  # cut off the bus
        t0 = time.monotonic()
        while not _safe(b.links["pump"]) and time.monotonic() - t0 < comm_loss_s + 2:
            b.advance(b.t_plant + 5)
        assert _safe(b.links["pump"]), "pump did not reach its safe state"
        assert time.monotonic() - t0 <= comm_loss_s + 1.0
        b.advance(b.t_plant + 120)
        st = b.service_status()
        assert st["loops"]["pump"]["mode"] == "fallback"
        assert st["loops"]["fan"]["mode"] == "auto"
        assert all(st["devices"][d]["polls"] > polls[d] + 20 for d in ("fan", "scr"))
        b.lines["rtu1"].set(muted=[], deaf=[])
        b.advance(b.t_plant + 240)
        assert _armed(b.links["pump"])  # back and re-armed
        # The host is killed: every device reaches its safe state within its timeout.
        kwh_before = latest_kpis(b.dir / "history.db")["energy_kwh"]
        speed_before = b.links["fan"].last[0]["speed_ref_pct"]
        b.kill_service()
        t_kill = b.t_plant
        con = sqlite3.connect(str(b.dir / "history.db"))
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        t_last = con.execute("SELECT MAX(t) FROM samples").fetchone()[0]
        con.close()
        # Committed every 1 s of wall (30 plant s here) plus one 60 s sample period.
        assert t_last >= t_kill - 30 - 60 - 15
        t0 = time.monotonic()
        while time.monotonic() - t0 < comm_loss_s + 2 and not all(
                _safe(b.links[d]) for d in ("fan", "pump", "scr")):
            b.advance(b.t_plant + 3, check_service=False)
        assert all(_safe(b.links[d]) for d in ("fan", "pump", "scr"))
        assert time.monotonic() - t0 <= comm_loss_s + 1.0
        # Restarted: re-arms everything, counters resume, the fan starts from
        # where its loop was (state restored), not from a cold start.
        b.start_service()
        speeds = []
        t_end = b.t_plant + 600
        while b.t_plant < t_end:
            b.advance(b.t_plant + 5)
            speeds.append(b.links["fan"].last[0]["speed_ref_pct"])
        assert all(_armed(b.links[d]) for d in ("fan", "pump", "scr"))
        st = b.service_status()
        assert st["restored"] is True
        kwh_after = latest_kpis(b.dir / "history.db")["energy_kwh"]
        assert kwh_after >= kwh_before
        # While disarmed the fan held its safe speed; re-armed, the loop's first
        # command is the one it had before the kill (within the process drift).
        cmds = [v for (v,) in sqlite3.connect(str(b.dir / "history.db")).execute(
            "SELECT value FROM samples WHERE tag = 'fan.cmd.drive.speed_ref_pct' AND t > ? "
            "ORDER BY t LIMIT 1", (t_kill,))]
        assert cmds and abs(cmds[0] - speed_before) < 5.0, (cmds, speed_before)


def test_analyzer_wire_break_falls_back_without_overdosing(tmp_path):
    hours = 0.75
    with Bench(["scr"], speedup=60, hours=hours, scenario="scr_wire_break") as b:
        b.begin()
        b.advance(0.35 * 3600)  # inside the break
        st = b.service_status()
        db = sqlite3.connect(str(b.dir / "history.db"))
        q = db.execute("SELECT quality FROM samples WHERE tag = 'scr.nox_out_mg_nm3' "
                       "ORDER BY t DESC LIMIT 1").fetchone()
        assert q == (regmap.Q_BAD,)  # NE43: 0 mA is a failed loop, at the device
        b.advance(hours * 3600)
        r = b.results(b.stop_service())
    ref = sim.run("scr", "optimized", "scr_wire_break", hours)
    p = r["plants"]["scr"]
    assert st["loops"]["scr"]["mode"] == "auto" and st["loops"]["scr"]["errors"] == 0
    assert p["nh3_kg"] <= 1.10 * ref["nh3_kg"]
    assert p["nox_exceed_hours"] == 0


def test_hardware_mode_over_serial_ports_and_a_serial_plant_link(tmp_path):
    """Real-hardware mode from the command line, with the board emulated:
    `greenedge demo --port rtu1=TTY --link fan=TTY` gets a serial port for the
    bus and one for the plant link, and starts nothing behind them. Here the
    "board" is the firmware on the unix port with `--link-tty` (on a board:
    config link_uart), the wires are ptys (8N2: ptys take no parity)."""
    import json
    import subprocess
    import sys
    from hil_tests.devices import DeviceProcess
    from hil_tests.vline import VirtualLine
    with VirtualLine(2, 115200) as bus, VirtualLine(2, 115200, timing=False) as wire:
        with DeviceProcess("motor", 1, bus.ports[1], extra=["--link-tty", wire.ports[1]]):
            p = subprocess.run(
                [sys.executable, "-m", "controller.cli", "demo", "--plants", "fan",
                 "--port", "rtu1=%s" % bus.ports[0], "--link", "fan=%s" % wire.ports[0],
                 "--hw-format", "8N2", "--speedup", "30", "--minutes", "0.2", "--json",
                 "--report", str(tmp_path / "report")],
                capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    r = json.loads(p.stdout)
    assert r["devices_up"] == r["devices_total"] == 1
    assert r["plants"]["fan"]["demand_met_frac"] >= 0.8, r["plants"]["fan"]
    assert (tmp_path / "report" / "report.md").exists()


@pytest.mark.parametrize("args,msg", [
    (["--port", "rtu1"], "expected NAME=TTY"),
    (["--port", "rtu9=/dev/null", "--link", "fan=/dev/null"], "no bus 'rtu9'"),
    (["--port", "rtu1=/dev/null"], "give --link fan=TTY"),
    (["--link", "fan=/dev/null"], "its bus rtu1 is virtual"),
    (["--port", "rtu1=/dev/ttyNOPE0", "--link", "fan=/dev/null"], "does not exist"),
    (["--plants", "fan,boiler"], "no plant 'boiler'"),
    (["--port", "rtu1=/dev/null", "--link", "fan=/dev/null", "--hw-format", "9X1"],
     "--hw-format"),
])
def test_hardware_mode_arguments_are_checked(args, msg):
    import subprocess
    import sys
    p = subprocess.run([sys.executable, "-m", "controller.cli", "demo", "--plants",
                        "fan", *args] if "--plants" not in args else
                       [sys.executable, "-m", "controller.cli", "demo", *args],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and msg in p.stderr, p.stderr
