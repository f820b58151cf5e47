"""Host service pieces without a bus: config errors, poll plans, line timing,
historian durability, persisted loop state."""

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from controller.config import load_config
from controller.fieldbus import timing
from controller.fieldbus.planner import MAX_REGS, plan_reads, plan_writes
from controller.registers import point_map
from controller.config.toml import ConfigError
from firmware import regmap

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "plant.toml"


def test_example_config_loads():
    cfg = load_config(EXAMPLE)
    assert set(cfg.devices) == {"fan1", "pump1", "scr1", "c1", "c2", "c3", "vsd"}
    assert cfg.loops["fan"].process["flow_sp_m3s"] == ("fan1", "process_sp")
    assert cfg.devices["fan1"].settings["skip_low_pct"] == 42
    assert cfg.lines["gw_air"].kind == "rtu_tcp"
    from controller.runtime.modes import LoopRunner
    air = LoopRunner(cfg.loops["air"]).strategy
    assert air.pid.param("kp")[0] == 250 and air.pid.param("ti")[0] == 40


BROKEN = [
    ("[service]\nnmae = 'x'", "service.nmae", "unknown key"),
    ("[devices.fan1]\nline = 'rs485_a'\nunit = 300\nprofile = 'motor'", "devices.fan1.unit", "outside"),
    ("[devices.fan1]\nline = 'nope'\nunit = 1\nprofile = 'motor'", "devices.fan1.line", "no line"),
    ("[devices.fan1]\nline = 'rs485_a'\nunit = 1\nprofile = 'motr'", "devices.fan1.profile", "not one of"),
    ("[devices.pump1]\nline = 'rs485_a'\nunit = 1\nprofile = 'motor'", "devices.pump1.unit", "already device fan1"),
    ("[devices.fan1]\nline = 'rs485_a'\nunit = 1\nprofile = 'motor'\nsettings = { speed_actual_pct = 5 }",
     "devices.fan1.settings.speed_actual_pct", "not a writable"),
    ("[devices.fan1]\nline = 'rs485_a'\nunit = 1\nprofile = 'motor'\nsettings = { min_speed_pct = 150 }",
     "devices.fan1.settings.min_speed_pct", "outside"),
    ("[loops.fan]\nplant = 'fan'\ngroup = 'process'\ndevices = { drive = 'scr1' }\n"
     "process = { flow_sp_m3s = 1.0, flow_design_m3s = 2.0 }", "loops.fan.devices.drive", "needs motor"),
    ("[loops.fan]\nplant = 'fan'\ngroup = 'process'\ndevices = { drive = 'fan1' }\n"
     "process = { flow_sp_m3s = 'fan1.no_such', flow_design_m3s = 2.0 }",
     "loops.fan.process.flow_sp_m3s", "has no point"),
    ("[loops.fan]\nplant = 'fan'\ngroup = 'fast'\ndevices = { drive = 'fan1' }\n"
     "process = { flow_sp_m3s = 1.0, flow_design_m3s = 2.0 }", "loops.fan.group", "runs every 1 s"),
    ("[lines.rs485_a]\nkind = 'rtu'\nport = '/dev/x'\nbaud = 12345", "lines.rs485_a.baud", "not a standard"),
    ("[loops.fan]\nplant = 'fan'\ngroup = 'process'\ndevices = { drive = 'fan1' }\n"
     "process = { flow_sp_m3s = 1.0, flow_design_m3s = 2.0 }\nparams = { gain = 3 }",
     "loops.fan.params.gain", "not a parameter of fan/optimized"),
    ("[loops.fan]\nplant = 'fan'\ngroup = 'process'\ndevices = { drive = 'fan1' }\n"
     "process = { flow_sp_m3s = 1.0, flow_design_m3s = 2.0 }\nparams = { static_head = 1.5 }",
     "loops.fan.params", "expected 0 to 0.9 of the shut-off head"),
    ("[loops.fan]\nplant = 'fan'\ngroup = 'process'\ndevices = { drive = 'fan1' }\n"
     "process = { flow_sp_m3s = 1.0, flow_design_m3s = 2.0 }\nparams = { ti = 0 }",
     "loops.fan.params", "must be > 0"),
    ("[loops.fan]\nplant = 'fan'\ngroup = 'process'\ndevices = { drive = 'fan1' }\n"
     "process = { flow_sp_m3s = 1.0, flow_design_m3s = 0 }", "loops.fan.process.flow_design_m3s",
     "must be > 0"),
    ("[loops.fan]\nplant = 'fan'\ngroup = 'process'\ndevices = { drive = 'fan1' }\n"
     "process = { flow_sp_m3s = 3.0, flow_design_m3s = 2.0 }", "loops.fan.process.flow_sp_m3s",
     "outside 0..2"),
]

BASE = textwrap.dedent("""
    [lines.rs485_a]
    kind = "rtu"
    port = "/dev/ttyUSB0"
    [devices.fan1]
    line = "rs485_a"
    unit = 1
    profile = "motor"
    [devices.scr1]
    line = "rs485_a"
    unit = 3
    profile = "scr"
    [groups.process]
    period_ms = 1000
    [groups.fast]
    period_ms = 100
""")


def _merge(base, patch):
    """Patch tables replace the base's tables of the same name."""
    import re
    tables = {}
    order = []
    for text in (base, patch):
        for block in re.split(r"(?m)^(?=\[)", text.strip()):
            if not block.strip():
                continue
            name = block.split("]")[0]
            if name not in tables:
                order.append(name)
            tables[name] = block.strip()
    return "\n\n".join(tables[n] for n in order) + "\n"


@pytest.mark.parametrize("patch,key,msg", BROKEN)
def test_bad_config_names_key_and_line(tmp_path, patch, key, msg):
    p = tmp_path / "plant.toml"
    text = _merge(BASE, patch)
    p.write_text(text)
    with pytest.raises(ConfigError) as e:
        load_config(p)
    assert e.value.key == key, str(e.value)
    assert msg in str(e.value)
    assert e.value.line is not None
    leaf = key.split(".")[-1]
    assert leaf in text.splitlines()[e.value.line - 1] or "[" in text.splitlines()[e.value.line - 1]


def test_check_command_reports_error_without_traceback(tmp_path):
    p = tmp_path / "plant.toml"
    p.write_text(_merge(BASE, BROKEN[0][0]))
    r = subprocess.run([sys.executable, "-m", "controller.cli", "check", "-c", str(p)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert "service.nmae: unknown key" in r.stderr and "Traceback" not in r.stderr


def _registers(pts, table):
    occ = set()
    for p in pts.values():
        if p.table == table:
            occ.update(range(p.address, p.address + p.words))
    return occ


@pytest.mark.parametrize("profile", regmap.PROFILES)
def test_read_plan_is_minimal_and_never_touches_a_hole(profile):
    pts = point_map(profile)
    reads = plan_reads(profile)
    covered = {}
    for r in reads:
        occ = _registers(pts, r.table)
        assert all(a in occ for a in range(r.start, r.start + r.count)), (r.table, r.start)
        assert r.count <= (MAX_REGS if r.table in ("input", "holding") else 2000)
        for p, off in r.points:
            assert p.address == r.start + off
            assert p.name not in covered
            covered[p.name] = r
    scalar = {n for n, p in pts.items() if p.count == 1}
    assert set(covered) == scalar  # every scalar point polled exactly once
    # Minimal: two reads of one table and class are apart only across a hole.
    by = {}
    for r in reads:
        by.setdefault((r.table, r.cls), []).append(r)
    for (table, _), rs in by.items():
        occ = _registers(pts, table)
        rs.sort(key=lambda r: r.start)
        for a, b in zip(rs, rs[1:]):
            gap = range(a.start + a.count, b.start)
            assert any(x not in occ for x in gap) or len(gap) > 8 \
                or b.start + b.count - a.start > MAX_REGS, (table, a.start, b.start)


def test_fast_poll_of_a_motor_is_three_transactions():
    fast = [r for r in plan_reads("motor") if r.cls == "fast"]
    assert [(r.table, r.start, r.count) for r in fast] == [
        ("discrete", 8, 3), ("input", 16, 4), ("input", 32, 23)]


def test_write_plan_coalesces_contiguous_and_checks_ranges():
    w = plan_writes("motor", {"speed_ref_pct": 55.5, "damper_cmd_pct": 100, "run_cmd": 1,
                              "min_speed_pct": 20, "max_speed_pct": 90})
    assert [(x.fc, x.start, x.values) for x in w] == [
        (16, 32, [5550, 10000]), (16, 50, [2000, 9000]), (15, 0, [1])]
    with pytest.raises(ValueError, match="speed_ref_pct.*outside"):
        plan_writes("motor", {"speed_ref_pct": 101})
    with pytest.raises(ValueError, match="read-only"):
        plan_writes("motor", {"power_kw": 1})


def test_line_timing_from_the_serial_line_spec():
    # 10 registers at 115200 8E1: 8 + 25 bytes of 11 bits + two 1.75 ms silences.
    assert timing.transaction_s(3, 10, 115200) == pytest.approx(33 * 11 / 115200 + 0.0035)
    # Below 19200 the silence is 3.5 characters.
    assert timing.silence_s(9600) == pytest.approx(3.5 * 11 / 9600)
    assert timing.bits_per_char("N", 2) == 11 and timing.bits_per_char("N", 1) == 10
    # The timeout follows the baud rate: far below pymodbus' blanket 3 s.
    assert 0.02 <= timing.timeout_s(3, 125, 115200) < 0.2
    assert timing.timeout_s(3, 125, 9600) > timing.timeout_s(3, 125, 115200)


WRITER = r"""
import sys, time
from controller.historian import Historian
h = Historian(sys.argv[1], commit_s=float(sys.argv[2]))
k = 0
t0 = time.monotonic()
while True:
    h.samples(k, [("fan.power_kw", float(k), 0)])
    if k % 10 == 0:
        print(k, time.monotonic() - t0, flush=True)
    k += 1
    time.sleep(0.005)
"""


def test_historian_survives_kill_9_and_loses_at_most_one_commit_interval(tmp_path):
    db = tmp_path / "h.db"
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parent.parent))
    p = subprocess.Popen([sys.executable, "-c", WRITER, str(db), "0.5"], stdout=subprocess.PIPE,
                         text=True, env=env)
    last = None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        k, t = p.stdout.readline().split()
        last = (int(k), float(t))
        if last[1] > 3.0:
            break
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    con = sqlite3.connect(str(db))
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    n, kmax = con.execute("SELECT COUNT(*), MAX(t) FROM samples").fetchone()
    # Queued at ~200/s; committed every 0.5 s: at most ~0.5 s (+ scheduling) missing.
    rate = last[0] / last[1]
    assert kmax >= last[0] - rate * (0.5 + 0.5), (kmax, last, rate)
    assert n == kmax + 1  # nothing committed is missing in between


def test_loop_state_round_trip_restores_pid_and_plain_state():
    from controller.loops import strategy_class
    from controller.runtime import state
    s = strategy_class("scr", "optimized")()
    snap = {"scr": {"flue_gas_flow_nm3h": 1.8e6, "flue_gas_temp_c": 360.0, "nox_in_mg_nm3": 400.0,
                    "nox_out_mg_nm3": 60.0, "o2_pct": 4.0, "unit_load_pct": 90.0,
                    "analyzer_blowback": 0, "analyzer_fault": 0, "analyzer_cal": 0,
                    "nh3_slip_ppm": 1.0, "dosing_blocked": 0, "valve_pos_pct": 30.0,
                    "nh3_flow_kgh": 100.0}, "process": {}}
    live = lambda k: snap["scr"].update(nox_in_mg_nm3=400.0 + 0.1 * (k % 2),  # analyzers are
                                        nox_out_mg_nm3=60.0 + 0.1 * (k % 2))  # never frozen
    for k in range(200):
        live(k)
        out = s.run(float(k), snap)
    saved = state.capture(s)
    live(200)
    s2 = strategy_class("scr", "optimized")()
    state.restore(s2, saved)
    a = s.run(200.0, snap)
    b = s2.run(200.0, snap)
    assert a["scr"]["valve_cmd_pct"] == pytest.approx(b["scr"]["valve_cmd_pct"], abs=1e-9)
    # What was restored is real state: the PI's integral and the Smith model moved.
    assert s2.pid.integral[0] == s.pid.integral[0] != 0.0
    assert s2.smith.ym[0] == s.smith.ym[0] != 0.0
    # The time of the last run is not: after an outage, the first run after the
    # restart counts one period (it cannot know the error while it was away).
    s3 = strategy_class("scr", "optimized")()
    state.restore(s3, saved)
    assert s3.tick(900.0) == s3.period_s


def test_export_never_truncates_the_database_it_reads(tmp_path):
    from controller.historian import Historian
    db = tmp_path / "history.db"
    h = Historian(db, commit_s=0.05)
    h.samples(1.0, [("fan1.power_kw", 12.5, 0)])
    h.close()
    size = db.stat().st_size
    r = subprocess.run([sys.executable, "-m", "controller.cli", "export", "--db", str(db),
                        "--csv", str(db)], capture_output=True, text=True)
    assert r.returncode == 2 and "historian database itself" in r.stderr
    assert db.stat().st_size == size
    out = tmp_path / "out.csv"
    r = subprocess.run([sys.executable, "-m", "controller.cli", "export", "--db", str(db),
                        "--csv", str(out)], capture_output=True, text=True)
    assert r.returncode == 0 and "fan1.power_kw" in out.read_text()
    r = subprocess.run([sys.executable, "-m", "controller.cli", "export", "--db",
                        str(tmp_path / "none.db"), "--csv", str(out)], capture_output=True, text=True)
    assert r.returncode == 2 and "fan1.power_kw" in out.read_text()  # the old file kept


def test_changed_config_wins_over_saved_state(tmp_path):
    """A state file from before a config change (period, static head, plant
    data) does not bring the old figures back on restart; integrators do."""
    from controller.loops.fan_pump import PumpVsdStrategy
    from controller.loops.compressor import SequencerStrategy
    from controller.runtime import state as st
    old = PumpVsdStrategy({"static_head": 0.32, "period_s": 1.0})
    old.pid.integral[0] = 12.5
    saved = st.capture(old)
    saved.update({"s": 0.32, "period_s": 1.0, "FIXED_M3MIN": 15.0})  # an older file had them
    new = PumpVsdStrategy({"static_head": 0.2, "period_s": 0.5})
    st.restore(new, saved)
    assert new.s == 0.2 and new.period_s == 0.5 and new.pid.integral[0] == 12.5
    comp = SequencerStrategy({"fixed_m3min": 20.0})
    st.restore(comp, saved)
    assert comp.FIXED_M3MIN == 20.0


def test_plant_data_are_loop_params_with_ranges(tmp_path):
    from controller.loops.compressor import SequencerStrategy
    from controller.loops.desox import PumpStagingStrategy
    assert SequencerStrategy({"vsd_max_m3min": 20.0}).VSD_MAX_M3MIN == 20.0
    with pytest.raises(ValueError, match="vsd_min_m3min"):
        SequencerStrategy({"vsd_min_m3min": 14.0})
    assert PumpStagingStrategy({"ntu_ref": 4.0}).NTU_REF == 4.0
    with pytest.raises(ValueError, match="ph_ref = 12.0: expected 3 to 8"):
        PumpStagingStrategy({"ph_ref": 12.0})
