"""`greenedge regmap | docs | device | firmware build | firmware flash`: the
register map, its generated docs, and the firmware on the unix port or a board."""

import json
import os
import subprocess
import sys
from pathlib import Path

from controller import mpvm
from controller.errors import UserError
from firmware import regmap

ROOT = Path(__file__).resolve().parents[2]
DOCS_REGISTERS = ROOT / "docs" / "registers.md"
ARCHES = {"armv6m": "RP2040", "xtensawin": "ESP32", "armv7emsp": "STM32F4", "x64": "unix port"}
BOARD_HAL = {"armv6m": "rp2", "xtensawin": "esp32", "armv7emsp": "stm32"}


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
    argv, env = mpvm.device_command(a.profile, a.unit, a.port, a.baud, heap or "72K", extra)
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
