"""The plant config's shape: one dataclass per table, units in the names.

    [service]      name, state_dir, stale_s
    [bench]        clock_speedup, clock_epoch: the HIL bench's scaled plant clock
                   (greenedge demo writes them; a plant config has no [bench])
    [lines.NAME]   kind = "rtu" | "rtu_tcp" | "tcp"; port (an absolute tty path; a
                   /dev/serial/by-id/... link is followed at each reopen), baud, parity,
                   stopbits, turnaround_ms (rtu); host, port (tcp kinds); settings_key
                   = [word, word]: the unlock key of its devices' settings lock
                   (default [0x5AFE, 0xC0DE], docs/safety.md)
    [devices.NAME] line, unit, profile, poll_ms, slow_s, settings = {point = value},
                   settings_key (default: its line's)
    [groups.NAME]  period_ms            (loop groups, each its own IPO cycle)
    [loops.NAME]   plant, strategy, group, devices = {role = device},
                   process = {key = number | "device.point"}, params = {period_s = ...}
    [accounting]   grid_kg_co2_per_kwh, nox_limit_mg_nm3, so2_limit_mg_nm3, o2_ref_pct,
                   nox_point, so2_point ("device.point"), nox_o2_point, so2_o2_point
                   (default: the o2_pct point of the emission point's device)
    [historian]    path, commit_s, sample_s, retention_days, max_mb (disk budget)

Loading and its errors: controller/config/load.py.
"""

from dataclasses import dataclass, field
from pathlib import Path

from firmware import regmap

DEFAULT_KEY = (regmap.UNLOCK_KEY_1, regmap.UNLOCK_KEY_2)  # the settings lock's (docs/safety.md)
BAUDS = (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600)


@dataclass
class LineCfg:
    name: str
    kind: str
    port: str = None
    host: str = None
    tcp_port: int = 502
    baud: int = 19200
    parity: str = "E"
    stopbits: int = 1
    turnaround_s: float = 0.005
    settings_key: tuple = DEFAULT_KEY


@dataclass
class DeviceCfg:
    name: str
    line: str
    unit: int
    profile: str
    poll_s: float = 0.0
    slow_s: float = 5.0
    settings: dict = field(default_factory=dict)
    settings_key: tuple = DEFAULT_KEY


@dataclass
class LoopCfg:
    name: str
    plant: str
    strategy: str
    group: str
    devices: dict          # role -> device name
    process: dict          # key -> number or (device, point)
    params: dict = field(default_factory=dict)


@dataclass
class Config:
    path: Path
    name: str
    state_dir: Path
    stale_s: float
    lines: dict
    devices: dict
    groups: dict           # name -> period_s (plant time)
    loops: dict
    accounting: dict
    historian: dict
    bench: dict = None     # {"speedup": x, "epoch": unix s} on the HIL bench, else None
