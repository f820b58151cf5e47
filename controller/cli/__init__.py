"""`greenedge`: one command line for the whole system, from one command table.

COMMANDS below is the whole CLI in one place (after mpremote's _COMMANDS):
each entry names its handler as "module:function", imported only when that
command runs, so `greenedge check` never loads the bench and `greenedge sim`
never loads pymodbus. The CLI is the one module that sees every layer
(docs/architecture.md): the product commands dispatch into controller/, the
bench commands (sim, demo) into hil_tests/.

Errors a user can cause (controller.errors.UserError, ConfigError among them)
print one line on stderr and exit with status 2.
"""

import argparse
import importlib
import sys

from controller.cli import args as t
from controller.cli.device_cmds import ARCHES
from controller.errors import UserError
from firmware.regmap import PROFILES

PLANTS = ("fan", "pump", "compressor", "scr", "fgd")


def A(*flags, **kw):
    return flags, kw


_CONFIG = A("-c", "--config", required=True, help="plant config (TOML)")

COMMANDS = {
    "regmap": ("print the register map", "controller.cli.device_cmds:cmd_regmap", [
        A("--profile", choices=PROFILES),
        A("--format", choices=("md", "csv", "json"), default="md")]),
    "docs": ("regenerate docs/registers.md", "controller.cli.device_cmds:cmd_docs", [
        A("--check", action="store_true", help="fail if the file is stale")]),
    "device": ("run a firmware device on the unix port", "controller.cli.device_cmds:cmd_device", [
        A("--profile", choices=PROFILES, required=True),
        A("--unit", type=t.unit, required=True),
        A("--port", required=True, help="tty path"),
        A("--baud", type=int, default=115200),
        A("--heap", help="MicroPython heap size (default 72K, 96K with --metering and a plant link: see README)"),
        A("--comm-loss-s", type=t.positive, help="comm-loss timeout override"),
        A("--metering", action="store_true",
          help="sample V/I from the synthetic ADC and meter (motor, compressor)"),
        A("--set-rate", type=int, default=2400, help="metering sample sets per second"),
        A("--state-dir", help="keep the energy counter here across restarts"),
        A("--on-hangup", choices=("wait", "exit"), default="wait",
          help="when the tty hangs up or disappears: stop the device and wait for the "
               "port to come back (default), or exit with status 75")]),
    "firmware build": ("compile a deployable folder for a board",
                       "controller.cli.device_cmds:cmd_firmware_build", [
        A("--board", metavar="FILE",
          help="a board file (boards/*.json: pins, channels, calibration, limits)"),
        A("--profile", choices=PROFILES), A("--arch", choices=sorted(ARCHES)), A("--out"),
        A("--unit", type=t.unit), A("--baud", type=int), A("--parity", choices=("E", "O", "N")),
        A("--hal", choices=("rp2", "esp32", "stm32")), A("--uart-id", type=int),
        A("--tx", type=int), A("--rx", type=int),
        A("--de", type=int, help="RS-485 driver-enable pin"),
        A("--comm-loss-s", type=t.positive),
        A("--link-uart", metavar="ID,TX,RX,DE",
          help="sim-input mode for the HIL bench: the plant link's UART (docs/hil.md)")]),
    "firmware flash": ("copy a built folder to a board with mpremote",
                       "controller.cli.device_cmds:cmd_firmware_flash", [
        A("--port", required=True),
        A("--dir", required=True, help="folder from `greenedge firmware build`"),
        A("--dry-run", action="store_true", help="print the mpremote command only")]),
    "run": ("run the host service (poll, control, record)", "controller.cli.service_cmds:cmd_run", [
        _CONFIG,
        A("--json-status", metavar="FILE", help="keep a JSON status file current"),
        A("--duration", type=t.positive, help="stop after this many seconds (wall)"),
        A("--json", action="store_true", help="print the final status as JSON"),
        A("--quiet", action="store_true"),
        A("--metrics", metavar="HOST:PORT",
          help="Prometheus /metrics here (default from [metrics]; docs/integration.md)"),
        A("--opcua", metavar="opc.tcp://HOST:PORT",
          help="OPC UA server here (certificates and users from [opcua])"),
        A("--mqtt", metavar="mqtts://HOST:PORT",
          help="Sparkplug B edge node to this broker (the rest from [mqtt]; docs/integration.md)"),
        A("--hmi", metavar="HOST:PORT",
          help="the web HMI here (users and TLS from [hmi], else [opcua] users; docs/hmi.md)")]),
    "certs": ("create a self-signed OPC UA server certificate and key",
              "controller.cli.north_cmds:cmd_certs", [
        A("-c", "--config", help="plant config: its [opcua] certificate and private_key paths"),
        A("--cert", help="certificate file (DER), instead of -c"),
        A("--key", help="private key file (PEM), instead of -c"),
        A("--name", help="service name in the application URI (default: the config's)"),
        A("--host", action="append", help="host name or address in the certificate; repeat"),
        A("--days", type=t.positive, default=3650),
        A("--force", action="store_true", help="replace existing files")]),
    "site": ("the site's Sparkplug primary host into PostgreSQL; `site report`: energy, "
             "savings, CO2, cost, emissions and alarms per area (docs/site.md)", "controller.site.cli:cmd_site", [
        A("action", nargs="?", choices=("report",), help="report: site KPIs per area and in total"),
        A("-c", "--config", required=True, help="site config (site.toml)"),
        A("--duration", type=t.positive, help="stop after this many seconds (wall)"),
        A("--json", action="store_true",
          help="print the final status as JSON (report: the report as JSON)"),
        A("--from", dest="t_from", metavar="TIME", help="report: from (ISO 8601, UTC default)"),
        A("--to", dest="t_to", metavar="TIME", help="report: to (ISO 8601)"),
        A("--csv", metavar="FILE", help="report: CSV to FILE (- for stdout)"),
        A("--hmi", metavar="HOST:PORT", help="the site HMI here, read-only (docs/site.md)"),
        A("--hmi-users", metavar="FILE", help="its users file (`greenedge users add`)"),
        A("--hmi-cert", metavar="PEM", help="its TLS certificate (needed off loopback)"),
        A("--hmi-key", metavar="PEM", help="its TLS private key")]),
    "users add": ("add or replace a user of the interfaces (scrypt-hashed password)",
                  "controller.cli.north_cmds:cmd_users_add", [
        A("--file", required=True, help="the users file (TOML)"),
        A("name"), A("--role", required=True, choices=("viewer", "operator", "engineer")),
        A("--password-stdin", action="store_true",
          help="read the password from one line on stdin (default: prompt)")]),
    "check": ("validate a plant config without touching the bus",
              "controller.cli.service_cmds:cmd_check", [_CONFIG]),
    "scan": ("find devices and their profiles on a line (43/14)",
             "controller.cli.service_cmds:cmd_scan", [
        A("--port", required=True), A("--baud", type=int, default=19200),
        A("--parity", choices=("E", "O", "N"), default="E"),
        A("--stopbits", type=int, choices=(1, 2), default=1),
        A("--units", type=t.units, default=(1, 247), help="N or N-M (default 1-247)"),
        A("--json", action="store_true")]),
    "mode": ("switch a loop of a running service to manual or auto",
             "controller.cli.service_cmds:cmd_mode", [
        _CONFIG, A("loop"), A("mode", choices=("auto", "manual")),
        A("--set", action="append", metavar="ROLE.POINT=VALUE",
          help="manual output (repeatable); others hold their last value")]),
    "export": ("export historian samples as CSV", "controller.cli.service_cmds:cmd_export", [
        A("-c", "--config", help="plant config (its historian path)"),
        A("--db", help="historian database (instead of -c)"),
        A("--from", dest="t_from", type=float, help="plant time in s"),
        A("--to", dest="t_to", type=float, help="plant time in s"),
        A("--tags", help="comma-separated device.point tags"),
        A("--csv", default="-", help="output file (default stdout)")]),
    "alarms": ("list a service's alarms; acknowledge or shelve them through its command gate",
               "controller.cli.alarm_cmds:cmd_alarms", [
        _CONFIG,
        A("--active", action="store_true", help="only alarms that are not normal"),
        A("--json", action="store_true", help="print a JSON list"),
        A("--ack", metavar="ID", help="acknowledge this alarm"),
        A("--shelve", metavar="ID", help="shelve this alarm (with --minutes and --reason)"),
        A("--unshelve", metavar="ID", help="return a shelved alarm to service"),
        A("--minutes", type=t.positive, help="how long to shelve (plant minutes)"),
        A("--reason", help="why (required to shelve)")]),
    "sim": ("model-in-the-loop run of one plant with a strategy (bench)", "hil_tests.family:cmd_sim", [
        A("--plant", choices=PLANTS, help="required, except with --family (default: every plant)"),
        A("--strategy", choices=("typical", "best-practice", "baseline", "optimized"),
          help="typical | best-practice (alias baseline, the default) | optimized "
               "(with --family: the strategy set against best-practice, default optimized)"),
        A("--scenario", help="name in hil_tests/scenarios or a TOML file"),
        A("--hours", type=t.positive, help="override the scenario length"),
        A("--seed", type=int),
        A("--json", action="store_true", help="print one JSON object"),
        A("--plot", metavar="DIR", help="write PNG trend plots to DIR"),
        A("--poll-s", type=t.positive, metavar="S",
          help="through a modelled fieldbus: the loop sees a poll every S plant-s"),
        A("--meas-delay-s", type=t.nonneg, default=0.0, metavar="S",
          help="with --poll-s: measurements S plant-s old when polled"),
        A("--cmd-delay-s", type=t.nonneg, default=0.0, metavar="S",
          help="with --poll-s: commands reach the plant S plant-s later"),
        A("--family", type=int, metavar="N",
          help="a seeded family of N plants drawn within +-spread of nominal (docs/models.md, "
               "\"Model mismatch\"); --seed seeds the draw"),
        A("--spread", type=t.nonneg, default=0.2, metavar="F",
          help="with --family: the relative spread of the drawn physics (default 0.2)")]),
    "demo": ("the virtual plant: firmware + Modbus + service, simulated plant (bench)",
             "hil_tests.demo:cmd_demo", [
        A("--minutes", type=t.positive, default=2.0, help="wall time (default 2)"),
        A("--speedup", type=t.positive, default=60.0, help="plant clock / wall clock (default 60)"),
        A("--scenario", default="standard", help="standard | disturbances | a scenario name"),
        A("--seed", type=int),
        A("--report", default="greenedge-report", help="folder for report.md and plots"),
        A("--json", action="store_true", help="print one JSON object"),
        A("--plants", metavar="P,P", help="a subset: fan,pump,scr,compressor,fgd"),
        A("--port", action="append", metavar="BUS=TTY",
          help="real-hardware mode: boards on this bus (rtu1, rtu2, gw) at TTY; repeat"),
        A("--link", action="append", metavar="DEVICE=TTY",
          help="the plant link of a board on a hardware bus (fan, pump, scr, c1..c3, vsd, fgd); "
               "repeat"),
        A("--hw-format", default="8E1", help="character format on hardware buses (8E1)"),
        A("--hmi", metavar="HOST:PORT", help="the service's web HMI here (docs/hmi.md)"),
        A("--hmi-users", metavar="FILE",
          help="its users file (default: viewer/operator/engineer, random passwords printed)"),
        A("--opcua", metavar="opc.tcp://HOST:PORT",
          help="an OPC UA server on the demo's service (fresh certificate; users as --hmi-users)"),
        A("--mqtt", metavar="mqtt://HOST:PORT",
          help="a Sparkplug B edge node to this broker (docs/integration.md)"),
        A("--metrics", metavar="HOST:PORT", help="Prometheus /metrics here")]),
    "faults": ("fault campaign: every measured point through every signal fault, device "
               "faults on the HIL bench, safety invariants (bench)", "hil_tests.faults:cmd_faults", [
        A("--plants", metavar="P,P", help="a subset: fan,pump,compressor,scr,fgd"),
        A("--json", action="store_true", help="print one JSON object"),
        A("--short", action="store_true", help="the short campaign (CI)"),
        A("--strategy", choices=("baseline", "optimized"), default="optimized"),
        A("--jobs", type=int, help="parallel model-in-the-loop runs (default: 2 or the cores)"),
        A("--seed", type=int),
        A("--no-bench", action="store_true", help="model-in-the-loop faults only")]),
}


def build_parser():
    ap = argparse.ArgumentParser(prog="greenedge", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    groups = {}
    for name, (help_, handler, arglist) in COMMANDS.items():
        parent = sub
        if " " in name:
            group, name = name.split(" ", 1)
            if group not in groups:
                g = sub.add_parser(group, help="%s commands" % group)
                groups[group] = g.add_subparsers(dest=group + "_cmd", required=True)
            parent = groups[group]
        p = parent.add_parser(name, help=help_)
        for flags, kw in arglist:
            p.add_argument(*flags, **kw)
        p.set_defaults(handler=handler)
    return ap


def _handler(spec):
    mod, _, fn = spec.partition(":")
    return getattr(importlib.import_module(mod), fn)


def main(argv=None):
    a = build_parser().parse_args(argv)
    from controller.mpvm import ToolMissing
    try:
        return _handler(a.handler)(a)
    except (UserError, ToolMissing) as e:
        print("greenedge: %s" % e, file=sys.stderr)
        return 2
