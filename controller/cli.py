"""`greenedge`: one command line for the whole system.

Subcommands:
  regmap    print the register map (md, csv, json)
  docs      regenerate docs/registers.md (--check: fail if it is stale)
  device    run one firmware device on the MicroPython unix port, serving a tty
  firmware  build a deployable .mpy folder for a board / flash it with mpremote
  sim       model-in-the-loop run: a plant simulator and a control strategy
  run       the host service: poll the devices, run the loops, record (-c plant.toml)
  check     validate a plant config without touching the bus
  scan      find devices and their profiles on a serial line
  export    historian samples as CSV
  demo      the virtual plant: firmware, Modbus and service on a simulated plant

Errors a user can cause print one line on stderr and exit with status 2.
"""

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from controller import mpvm
from firmware import regmap

ROOT = Path(__file__).resolve().parent.parent
DOCS_REGISTERS = ROOT / "docs" / "registers.md"
ARCHES = {"armv6m": "RP2040", "xtensawin": "ESP32", "armv7emsp": "STM32F4", "x64": "unix port"}
BOARD_HAL = {"armv6m": "rp2", "xtensawin": "esp32", "armv7emsp": "stm32"}


class UserError(Exception):
    """An error the user can fix; printed without a traceback."""


def cmd_regmap(a):
    from controller import registers
    profiles = [a.profile] if a.profile else list(regmap.PROFILES)
    if a.format == "json":
        if a.profile:
            print(registers.to_json(a.profile))
        else:
            print(json.dumps({p: json.loads(registers.to_json(p)) for p in profiles}, indent=1))
    elif a.format == "csv":
        if not a.profile:
            raise UserError("--format csv needs --profile (one table per profile)")
        sys.stdout.write(registers.to_csv(a.profile))
    else:
        print("\n".join(registers.to_markdown(p) for p in profiles))
    return 0


def cmd_docs(a):
    from controller import registers
    text = registers.docs_markdown()
    if a.check:
        have = DOCS_REGISTERS.read_text() if DOCS_REGISTERS.exists() else ""
        if have != text:
            raise UserError("%s is stale: run `greenedge docs`" % DOCS_REGISTERS)
        print("%s is current" % DOCS_REGISTERS)
        return 0
    DOCS_REGISTERS.parent.mkdir(parents=True, exist_ok=True)
    DOCS_REGISTERS.write_text(text)
    print("wrote %s" % DOCS_REGISTERS)
    return 0


def cmd_device(a):
    if not os.path.exists(a.port):
        raise UserError("serial port %s does not exist" % a.port)
    extra = []
    if a.comm_loss_s is not None:
        extra += ["--comm-loss-s", str(a.comm_loss_s)]
    heap = a.heap
    if a.metering:
        if a.profile not in ("motor", "compressor"):
            raise UserError("--metering: the %s profile has no metering points" % a.profile)
        extra += ["--metering", "1", "--set-rate", str(a.set_rate)]
        if a.state_dir:
            extra += ["--state-dir", a.state_dir]
    argv, env = mpvm.device_command(a.profile, a.unit, a.port, a.baud, heap or "64K", extra)
    try:
        return subprocess.call(argv, env=env)
    except KeyboardInterrupt:
        return 130


def _load_board(path):
    try:
        cfg = json.loads(Path(path).read_text())
    except OSError as e:
        raise UserError("board file %s: %s" % (path, e.strerror or e))
    except ValueError as e:
        raise UserError("board file %s: not valid JSON (%s)" % (path, e))
    if not isinstance(cfg, dict):
        raise UserError("board file %s: expected a JSON object" % path)
    return {k: v for k, v in cfg.items() if not k.startswith("_")}  # "_about": comments


def _board_config(a):
    """(config, arch) from --board FILE and/or the options (options win)."""
    if a.board:
        cfg = _load_board(a.board)
        arch = {v: k for k, v in BOARD_HAL.items()}.get(cfg.get("hal"))
        if arch is None:
            raise UserError("board file %s: hal %r is not rp2, esp32 or stm32"
                            % (a.board, cfg.get("hal")))
        if a.arch and a.arch != arch:
            raise UserError("--arch %s does not match the board's hal %s" % (a.arch, cfg["hal"]))
        if a.profile and a.profile != cfg.get("profile"):
            raise UserError("--profile %s does not match the board's profile %s"
                            % (a.profile, cfg.get("profile")))
    else:
        if not a.profile or not a.arch:
            raise UserError("give --board FILE, or --profile and --arch")
        arch = a.arch
        hal = a.hal or BOARD_HAL.get(arch)
        if hal is None:
            raise UserError("--arch %s is not a board architecture" % arch)
        cfg = {"profile": a.profile, "hal": hal, "uart": {"id": 0, "tx": 0, "rx": 1, "de": 2}}
    if a.hal and a.board and a.hal != cfg["hal"]:
        raise UserError("--hal %s does not match the board's hal %s" % (a.hal, cfg["hal"]))
    cfg.setdefault("model", ARCHES[arch])
    for key, v in (("unit", a.unit), ("baud", a.baud), ("parity", a.parity),
                   ("comm_loss_timeout_s", a.comm_loss_s)):
        if v is not None:
            cfg[key] = v
    cfg.setdefault("unit", 1)
    uart = dict(cfg.get("uart") or {})
    for key, v in (("id", a.uart_id), ("tx", a.tx), ("rx", a.rx), ("de", a.de)):
        if v is not None:
            uart[key] = v
    cfg["uart"] = uart
    if a.link_uart:
        try:
            i, tx, rx, de = (int(x) for x in a.link_uart.split(","))
        except ValueError:
            raise UserError("--link-uart %r: expected ID,TX,RX,DE (e.g. 1,4,5,6)" % a.link_uart)
        cfg["link_uart"] = {"id": i, "tx": tx, "rx": rx, "de": de}
    # Validate with the firmware's own rules, so a bad board config fails here.
    sys.path.insert(0, str(ROOT / "firmware"))
    try:
        import fwconfig
        fwconfig.validate(cfg)
    except ValueError as e:
        raise UserError(("board file %s: " % a.board if a.board else "") + str(e))
    finally:
        sys.path.pop(0)
    return cfg, arch


def cmd_firmware_build(a):
    cfg, arch = _board_config(a)
    out = Path(a.out or ("build/firmware-%s-%s" % (cfg["profile"], arch)))
    if out.exists() and any(out.iterdir()) and not (out / "config.json").exists():
        raise UserError("%s exists and is not a firmware folder; choose another --out" % out)
    try:
        files = mpvm.compile_firmware(out, arch)
    except RuntimeError as e:
        raise UserError(str(e))
    (out / "config.json").write_text(json.dumps(cfg, indent=1) + "\n")
    size = sum(f.stat().st_size for f in files)
    print("built %d modules (%d bytes) + config.json for %s (%s) in %s"
          % (len(files), size, cfg["profile"], ARCHES[arch], out))
    return 0


def cmd_firmware_flash(a):
    src = Path(a.dir)
    if not (src / "config.json").exists() or not (src / "main.py").exists():
        raise UserError("%s is not a built firmware folder (run `greenedge firmware build`)" % src)
    base = [sys.executable, "-m", "mpremote", "connect", a.port]
    cmd = base + ["fs", "cp", "-r"] + [str(p) for p in sorted(src.iterdir())] + [":"]
    if a.dry_run:
        print(" ".join(cmd))
        return 0
    r = subprocess.run(cmd)
    if r.returncode != 0:
        raise UserError("mpremote failed on %s (exit %d): is the board connected?"
                        % (a.port, r.returncode))
    subprocess.run(base + ["reset"])
    print("flashed %s to %s and reset the board" % (src, a.port))
    return 0


def cmd_sim(a):
    from controller import sim
    if a.poll_s is None and (a.meas_delay_s or a.cmd_delay_s):
        raise UserError("--meas-delay-s and --cmd-delay-s model a fieldbus: give --poll-s too")
    try:
        r = sim.run(a.plant, a.strategy, a.scenario, a.hours, a.seed, a.plot,
                    poll_s=a.poll_s, meas_delay_s=a.meas_delay_s, cmd_delay_s=a.cmd_delay_s)
    except ValueError as e:  # ConfigError is one: file, key and line
        raise UserError(str(e))
    if a.json:
        print(json.dumps(r, sort_keys=True))
        return 0
    print("%s / %s / %s: %.1f h simulated in %.2f s" % (r["plant"], r["strategy"], r["scenario"],
                                                          r["hours"], r["wall_s"]))
    for k, v in r.items():
        if k not in ("plant", "strategy", "scenario", "hours", "wall_s"):
            print("  %-28s %s" % (k, v))
    return 0


def _number(s, ok, what):
    try:
        v = float(s)
    except ValueError:
        raise argparse.ArgumentTypeError("expected a number, got %r" % s)
    if not ok(v) or v != v or v == float("inf"):
        raise argparse.ArgumentTypeError("must be %s, got %r" % (what, s))
    return v


def _positive(s):
    return _number(s, lambda v: v > 0, "> 0")


def _nonneg(s):
    return _number(s, lambda v: v >= 0, ">= 0")


def _unit(s):
    try:
        v = int(s)
    except ValueError:
        raise argparse.ArgumentTypeError("unit id must be an integer, got %r" % s)
    if not 1 <= v <= 247:
        raise argparse.ArgumentTypeError("unit id %d outside 1..247" % v)
    return v


def build_parser():
    ap = argparse.ArgumentParser(prog="greenedge", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)

    p = sub.add_parser("regmap", help="print the register map")
    p.add_argument("--profile", choices=regmap.PROFILES)
    p.add_argument("--format", choices=("md", "csv", "json"), default="md")
    p.set_defaults(func=cmd_regmap)

    p = sub.add_parser("docs", help="regenerate docs/registers.md")
    p.add_argument("--check", action="store_true", help="fail if the file is stale")
    p.set_defaults(func=cmd_docs)

    p = sub.add_parser("device", help="run a firmware device on the unix port")
    p.add_argument("--profile", choices=regmap.PROFILES, required=True)
    p.add_argument("--unit", type=_unit, required=True)
    p.add_argument("--port", required=True, help="tty path")
    p.add_argument("--baud", type=int, default=115200)
    p.add_argument("--heap", help="MicroPython heap size (default 64K)")
    p.add_argument("--comm-loss-s", type=float, help="comm-loss timeout override")
    p.add_argument("--metering", action="store_true",
                   help="sample V/I from the synthetic ADC and meter (motor, compressor)")
    p.add_argument("--set-rate", type=int, default=2400, help="metering sample sets per second")
    p.add_argument("--state-dir", help="keep the energy counter here across restarts")
    p.set_defaults(func=cmd_device)

    fw = sub.add_parser("firmware", help="build or flash board firmware")
    fsub = fw.add_subparsers(dest="fwcmd", required=True)
    p = fsub.add_parser("build", help="compile a deployable folder for a board")
    p.add_argument("--board", metavar="FILE",
                   help="a board file (boards/*.json: pins, channels, calibration, limits)")
    p.add_argument("--profile", choices=regmap.PROFILES)
    p.add_argument("--arch", choices=sorted(ARCHES))
    p.add_argument("--out")
    p.add_argument("--unit", type=_unit)
    p.add_argument("--baud", type=int)
    p.add_argument("--parity", choices=("E", "O", "N"))
    p.add_argument("--hal", choices=("rp2", "esp32", "stm32"))
    p.add_argument("--uart-id", type=int)
    p.add_argument("--tx", type=int)
    p.add_argument("--rx", type=int)
    p.add_argument("--de", type=int, help="RS-485 driver-enable pin")
    p.add_argument("--comm-loss-s", type=float)
    p.add_argument("--link-uart", metavar="ID,TX,RX,DE",
                   help="sim-input mode for the HIL bench: the plant link's UART (docs/hil.md)")
    p.set_defaults(func=cmd_firmware_build)
    p = fsub.add_parser("flash", help="copy a built folder to a board with mpremote")
    p.add_argument("--port", required=True)
    p.add_argument("--dir", required=True, help="folder from `greenedge firmware build`")
    p.add_argument("--dry-run", action="store_true", help="print the mpremote command only")
    p.set_defaults(func=cmd_firmware_flash)
    p = sub.add_parser("sim", help="model-in-the-loop run of one plant with a strategy")
    p.add_argument("--plant", choices=("fan", "pump", "compressor", "scr", "fgd"), required=True)
    p.add_argument("--strategy", choices=("baseline", "optimized"), default="baseline")
    p.add_argument("--scenario", help="name in hil_tests/scenarios or a TOML file")
    p.add_argument("--hours", type=_positive, help="override the scenario length")
    p.add_argument("--seed", type=int)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--plot", metavar="DIR", help="write PNG trend plots to DIR")
    p.add_argument("--poll-s", type=_positive, metavar="S",
                   help="through a modelled fieldbus: the loop sees a poll every S plant-s")
    p.add_argument("--meas-delay-s", type=_nonneg, default=0.0, metavar="S",
                   help="with --poll-s: measurements S plant-s old when polled")
    p.add_argument("--cmd-delay-s", type=_nonneg, default=0.0, metavar="S",
                   help="with --poll-s: commands reach the plant S plant-s later")
    p.set_defaults(func=cmd_sim)

    from controller import cli_service, demo
    cli_service.add_parsers(sub, _wrap)
    demo.add_parser(sub, _wrap)
    return ap


def _wrap(fn):
    """Commands in other modules raise their own UserError: print it the same way."""
    def run(a):
        try:
            return fn(a)
        except Exception as e:
            if type(e).__name__ == "UserError":
                raise UserError(str(e))
            raise
    return run


def main(argv=None):
    ap = build_parser()
    a = ap.parse_args(argv)
    try:
        return a.func(a)
    except (UserError, mpvm.ToolMissing) as e:
        print("greenedge: %s" % e, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
