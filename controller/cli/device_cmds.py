"""`greenedge regmap | docs | device | firmware build | firmware flash`: the
register map, its generated docs, and the firmware on the unix port or a board.

Size (339 lines): the firmware commands (unix-port device, build, flash) that share the
board-file handling.
"""

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


HANGUP_EXIT = 75       # --on-hangup exit: the tty went away (EX_TEMPFAIL: restart me later)
PORT_POLL_S = 0.5      # how often a missing tty is looked for (and its path re-checked)
CHILD_STOP_S = 5.0     # SIGTERM, then SIGKILL after this


def _tty_id(path):
    """(device number, inode) of what path names now (a by-id link followed), or None."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_rdev, st.st_ino)


def _open_watch(path):
    """An fd on the tty that is only polled, never read (the device's bytes stay
    the device's): it reports POLLHUP the moment the tty hangs up (an adapter
    pulled, the pty's other side closed). None if it cannot be opened now."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    except OSError:
        return None
    import select
    p = select.poll()
    p.register(fd, select.POLLHUP | select.POLLERR)  # no POLLIN: never woken by data
    if p.poll(0):
        os.close(fd)
        return None  # already hung up (a pty whose other side is gone)
    return fd, p


def _pdeathsig():
    """In the child: SIGTERM it if its parent dies (even by SIGKILL). Linux only."""
    try:
        import ctypes
        import signal
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class DeviceSupervisor:
    """`greenedge device`: the MicroPython firmware process on a tty, supervised.

    - SIGTERM, SIGINT and SIGHUP are forwarded to the child and its exit is
      waited for (SIGKILL after CHILD_STOP_S); the child also gets SIGTERM if
      this process dies (PR_SET_PDEATHSIG), so it is never left running alone.
    - The tty is watched (poll for POLLHUP on an fd that is never read, and
      its path every PORT_POLL_S): when it hangs up or disappears the child is
      stopped (the firmware would spin on a dead tty) and, on_hangup "wait",
      the path is looked for every PORT_POLL_S (asleep in between) and the
      child started again when it is back; "exit": exit with HANGUP_EXIT.
    - The child exiting on its own (a watchdog reset exits 3) ends this with
      its exit status, as before.
    """

    def __init__(self, argv, env, port, on_hangup="wait", log=None):
        self.argv, self.env, self.port, self.on_hangup = argv, env, port, on_hangup
        self.log = log or (lambda msg: print("greenedge device: " + msg, file=sys.stderr,
                                             flush=True))
        self.child = None
        self.signal = None
        self.starts = 0
        self._wake = None  # (read, write) ends of the signal wake-up pipe while running

    def _on_signal(self, signum, frame):
        self.signal = signum
        if self.child is not None and self.child.poll() is None:
            try:
                self.child.send_signal(signum)
            except OSError:
                pass

    def _stop_child(self, signum=None):
        import signal
        c = self.child
        if c is None:
            return None
        if c.poll() is None:
            try:
                c.send_signal(signum or signal.SIGTERM)
            except OSError:
                pass
            try:
                c.wait(CHILD_STOP_S)
            except subprocess.TimeoutExpired:
                c.kill()
                c.wait()
        self.child = None
        return c.returncode

    def _sleep(self, s):
        """Sleep s seconds unless a signal came (signals interrupt time.sleep)."""
        import time
        end = time.monotonic() + s
        while self.signal is None and time.monotonic() < end:
            time.sleep(min(0.1, end - time.monotonic()))

    def _wait_for_port(self):
        while self.signal is None:
            w = _open_watch(self.port)
            if w is not None:
                return w
            self._sleep(PORT_POLL_S)
        return None

    def _watch(self, watch):
        """Until the child exits, a signal comes or the tty goes: 'child',
        'signal' or 'hangup'."""
        import select
        fd, poller = watch
        tty = _tty_id(self.port)
        if self._wake is not None:
            poller.register(self._wake[0], select.POLLIN)  # a signal wakes the poll at once

        def hung(events):
            return any(f == fd for f, _ in events) or _tty_id(self.port) != tty
        try:
            while True:
                if self.signal is not None:
                    return "signal"
                if self.child.poll() is not None:
                    # Gone by itself: because the tty went, or for its own reasons.
                    return "hangup" if hung(poller.poll(0)) else "child"
                events = poller.poll(int(PORT_POLL_S * 1000))
                if self._wake is not None and any(f == self._wake[0] for f, _ in events):
                    try:
                        os.read(self._wake[0], 64)
                    except OSError:
                        pass
                    events = [e for e in events if e[0] != self._wake[0]]
                if hung(events):
                    return "hangup"
        finally:
            os.close(fd)

    def run(self):
        import signal
        old = {s: signal.signal(s, self._on_signal)
               for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
        r, w = os.pipe()
        os.set_blocking(r, False)
        os.set_blocking(w, False)
        self._wake = (r, w)
        old_fd = signal.set_wakeup_fd(w, warn_on_full_buffer=False)
        try:
            while True:
                watch = self._wait_for_port()
                if watch is None:
                    break
                self.child = subprocess.Popen(self.argv, env=self.env, preexec_fn=_pdeathsig)
                self.starts += 1
                why = self._watch(watch)
                if why == "child":
                    return self._stop_child()
                if why == "signal":
                    break
                self._stop_child()
                if self.on_hangup == "exit":
                    self.log("%s hung up or went away: exiting (--on-hangup exit)" % self.port)
                    return HANGUP_EXIT
                self.log("%s hung up or went away: device stopped, waiting for the port "
                         "to come back (checked every %g s)" % (self.port, PORT_POLL_S))
        finally:
            if self.signal is not None:
                self._stop_child(self.signal)
            for s, h in old.items():
                signal.signal(s, h)
            signal.set_wakeup_fd(old_fd)
            os.close(r)
            os.close(w)
            self._wake = None
        return 128 + self.signal


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
    argv, env = mpvm.device_command(a.profile, a.unit, a.port, a.baud, heap, extra)
    return DeviceSupervisor(argv, env, a.port, a.on_hangup).run()


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
