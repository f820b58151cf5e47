"""`greenedge demo`, `scan` and `export` as a user runs them."""

import csv
import io
import json
import subprocess
import sys
import time

from controller.historian import Historian
from hil_tests.devices import DeviceProcess
from hil_tests.vline import VirtualLine


def ge(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "controller.cli", *args],
                          capture_output=True, text=True, timeout=timeout)


def test_demo_json_short_run(tmp_path):
    r = ge("demo", "--minutes", "0.4", "--json", "--report", str(tmp_path / "rep"))
    assert r.returncode == 0, r.stderr[-3000:]
    s = json.loads(r.stdout)
    for k in ("plant_hours", "wall_s", "devices_up", "devices_total", "line_utilisation",
              "energy_kwh", "baseline_energy_kwh", "savings_pct", "nox_exceed_hours",
              "so2_exceed_hours"):
        assert k in s, k
    assert s["plant_hours"] == 0.4
    assert s["devices_up"] == s["devices_total"] == 8
    assert set(s["line_utilisation"]) == {"rtu1", "rtu2", "gw"}
    assert all(0.2 < u <= 1.0 for u in s["line_utilisation"].values())
    assert s["energy_kwh"] < s["baseline_energy_kwh"]  # GreenEdge saves energy
    assert s["nox_exceed_hours"] == 0 and s["so2_exceed_hours"] == 0
    rep = (tmp_path / "rep" / "report.md").read_text()
    assert "| fan | energy [kWh] |" in rep
    assert len(list((tmp_path / "rep").glob("*.png"))) == 5


def test_demo_rejects_bad_arguments():
    r = ge("demo", "--minutes", "-1")
    assert r.returncode == 2 and "minutes" in r.stderr


def test_scan_finds_devices_and_profiles():
    with VirtualLine(3, baud=115200) as line:
        with DeviceProcess("scr", 4, line.ports[1]), DeviceProcess("fgd", 9, line.ports[2]):
            r = ge("scan", "--port", line.ports[0], "--baud", "115200", "--parity", "N",
                   "--units", "1-12", "--json", timeout=120)
    assert r.returncode == 0, r.stderr
    found = {f["unit"]: f for f in json.loads(r.stdout)}
    assert set(found) == {4, 9}
    assert found[4]["vendor"] == "GreenEdge" and found[4]["profile"] == "scr"
    assert found[9]["profile"] == "fgd"


def test_scan_missing_port_is_a_clear_error():
    r = ge("scan", "--port", "/dev/does-not-exist", "--units", "1")
    assert r.returncode == 2 and "cannot open serial port" in r.stderr


def test_export_csv_by_tags_and_time(tmp_path):
    db = tmp_path / "h.db"
    h = Historian(db, commit_s=0.05)
    for t in range(10):
        h.samples(float(t * 60), [("fan1.power_kw", 100.0 + t, 0), ("fan1.process_pv", 20.0, 1)])
    time.sleep(0.3)
    h.close()
    r = ge("export", "--db", str(db), "--from", "120", "--to", "300", "--tags", "fan1.power_kw")
    assert r.returncode == 0, r.stderr
    rows = list(csv.reader(io.StringIO(r.stdout)))
    assert rows[0] == ["t_s", "tag", "value", "quality"]
    assert [float(x[2]) for x in rows[1:]] == [102.0, 103.0, 104.0, 105.0]
    r = ge("export", "--db", str(tmp_path / "nope.db"))
    assert r.returncode == 2 and "not found" in r.stderr
