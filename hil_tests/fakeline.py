"""An in-process fake line: simulated field devices behind a pymodbus-like
async client, so the service's cycle, modes, arming and command gate can be
tested as tables (inputs, a clock step, expected writes) without firmware
processes or ptys (the seam pymodbus' own NullModem gives its tests). The HIL
tests still run the real firmware.

A FakeDevice holds the four Modbus tables of a GreenEdge profile, built from
the register map (identity, defaults), and answers like the firmware does:
writes are range-checked in full before any word is stored (ILLEGAL DATA
VALUE otherwise), arm = 1 arms it (status ST_ARMED), and an armed device whose
host_heartbeat does not change for comm_loss_timeout_s drops to its safe state
(disarmed, ST_COMM_LOST, comm_loss_trips + 1). The settings lock as the
firmware has it (docs/safety.md): settings_lock (FC06 only) reads 0 open, 1
locked by key, 2 by jumper (lock_jumper = True); 1 locks, key1 then key2
unlock (key = (0x5AFE, 0xC0DE) unless set); a safety setting written while
locked is exception 4. Motors have physics: the speed follows the reference at the
ramp rate while running, power goes with speed^3, flow with speed
(advance(dt_s) steps them). Faults for tests: silent (no reply), refuse
(exception 4 to every write), profile_id (answer as another profile, e.g. a
swapped unit id).

FakeBus(devices).client(line) is a Line's client_factory; every transaction
takes latency_s (the wire) and is recorded in bus.log as (unit, fc, start,
values or count).
"""

import asyncio
import random

from controller.registers import point_map
from firmware import regmap

_TABLES = (regmap.COIL, regmap.DISCRETE, regmap.INPUT, regmap.HOLDING)


class Reply:
    def __init__(self, registers=None, bits=None, address=None, count=None, exception_code=None):
        self.registers, self.bits = registers, bits
        self.address, self.count, self.exception_code = address, count, exception_code

    def isError(self):
        return self.exception_code is not None


class FakeDevice:
    def __init__(self, profile, unit, rated_kw=100.0, design_flow=50.0):
        self.profile, self.unit = profile, unit
        self.points = point_map(profile)
        self.by_addr = {t: {} for t in _TABLES}
        for p in self.points.values():
            for i in range(p.words):
                self.by_addr[p.table][p.address + i] = p
        self.boot()
        self.rated_kw, self.design_flow = rated_kw, design_flow
        self._rng = random.Random(unit)
        self.silent = False
        self.refuse = False
        self.short_replies = False
        self.refuse_reads = False
        self.quiet_s = 0.0        # time since the last request addressed to it
        self.beat_s = 0.0         # time since host_heartbeat changed (or arm)
        self.key = (regmap.UNLOCK_KEY_1, regmap.UNLOCK_KEY_2)
        self.key_locked = False
        self.lock_jumper = False
        self._key_stage = 0
        self.writes = []          # [(point, value)] in the order received

    def boot(self, profile=None):
        """Power-up: a fresh register image (defaults, disarmed, uptime 0);
        profile: another device's firmware comes up in this one's place."""
        if profile is not None and profile != self.profile:
            self.__init__(profile, self.unit, self.rated_kw, self.design_flow)
            return
        self.words = {t: {} for t in _TABLES}
        self.uptime = 0.0
        self.set("map_version", regmap.MAP_VERSION)
        self.set("profile_id", regmap.PROFILE_IDS[self.profile])
        for p in self.points.values():
            if p.default is not None and p.access == "rw":
                self.set(p.name, p.default)

    # ---- register image ----------------------------------------------------------
    def set(self, name, value):
        p = self.points[name]
        for i, w in enumerate(regmap.encode(p.raw, value)):
            self.words[p.table][p.address + i] = w

    def get(self, name):
        p = self.points[name]
        return regmap.decode(p.raw, [self.words[p.table].get(p.address + i, 0)
                                     for i in range(p.words)], 0)

    def armed(self):
        return bool(int(self.get("status")) & regmap.ST_ARMED)

    # ---- physics -------------------------------------------------------------------
    def advance(self, dt_s):
        self.quiet_s += dt_s
        self.beat_s += dt_s
        self.uptime += dt_s
        self.set("uptime_s", int(self.uptime))
        timeout = self.get("comm_loss_timeout_s")
        if self.armed() and self.beat_s > timeout:
            self.set("status", regmap.ST_COMM_LOST | regmap.ST_SAFE_STATE)
            self.set("arm", 0)
            self.set("comm_loss_trips", self.get("comm_loss_trips") + 1)
        if self.profile != "motor":
            return
        if self.armed():
            run, ref = self.get("run_cmd"), self.get("speed_ref_pct")
        else:
            run, ref = self.get("run_safe"), self.get("speed_safe_pct")
        target = ref if run else 0.0
        if run:
            target = min(max(target, self.get("min_speed_pct")), self.get("max_speed_pct"))
        v = self.get("speed_actual_pct")
        up, down = self.get("ramp_up_pct_s") * dt_s, self.get("ramp_down_pct_s") * dt_s
        v = min(target, v + up) if target > v else max(target, v - down)
        self.set("speed_actual_pct", v)
        self.set("drive_output_hz", v / 2.0)  # 50 Hz at 100 %
        self.set("power_kw", self.rated_kw * (v / 100.0) ** 3)
        # A live transmitter: 0.2 % of span noise (a reading that never moves is stuck).
        self.set("process_pv", self.design_flow * (v / 100.0 + self._rng.gauss(0.0, 0.002)))
        self.set("running", 1 if v > 0 else 0)

    # ---- Modbus ----------------------------------------------------------------------
    def read(self, table, start, count):
        self.quiet_s = 0.0
        self.set("settings_lock", self.locked())  # the jumper may be fitted any time
        return [self.words[table].get(a, 0) for a in range(start, start + count)]

    def locked(self):
        return 2 if self.lock_jumper else 1 if self.key_locked else 0

    def write_lock(self, v):
        """FC06 to settings_lock (firmware/modbus_rtu.py _lock_write)."""
        self.quiet_s = 0.0
        if self.refuse:
            return 4
        if v == regmap.LOCK_WORD:
            self.key_locked, self._key_stage = True, 0
        elif v == self.key[0]:
            self._key_stage = 1
        elif v == self.key[1] and self._key_stage == 1:
            self.key_locked, self._key_stage = False, 0
        else:
            self._key_stage = 0
            return 3
        self.set("settings_lock", self.locked())
        return None

    def write(self, table, start, values):
        """Validated in full before any word is stored, like the firmware."""
        self.quiet_s = 0.0
        if self.refuse:
            return 4
        lock = self.points["settings_lock"].address
        if table == regmap.HOLDING and start <= lock < start + len(values):
            return 2  # FC06 only
        old = self.words[table]
        staged = dict(old)
        for i, w in enumerate(values):
            staged[start + i] = int(w)
        touched = {self.by_addr[table].get(start + i) for i in range(len(values))}
        if None in touched:
            return 2
        for p in touched:
            if p.access != "rw":
                return 2
        commands = regmap.CMD_BASE <= start and start + len(values) <= regmap.SETTINGS_BASE
        beat = start == regmap.HR_HEARTBEAT and len(values) == 1
        if table == regmap.HOLDING and not commands and not beat and self.locked():
            return 4
        for p in touched:
            v = regmap.decode(p.raw, [staged.get(p.address + i, 0) for i in range(p.words)], 0)
            if not p.min <= v <= p.max:
                return 3
        self.words[table] = staged
        for p in sorted(touched, key=lambda p: p.address):
            v = self.get(p.name)
            self.writes.append((p.name, v))
            if p.name == "arm":
                self.set("status", regmap.ST_ARMED if v else 0)
                self.beat_s = 0.0
            if p.name == "host_heartbeat" and old.get(p.address) != staged[p.address]:
                self.beat_s = 0.0
        return None


class FakeClient:
    def __init__(self, bus):
        self.bus = bus
        self.connected = False

    async def connect(self):
        self.connected = True
        return True

    def close(self):
        self.connected = False

    async def _tx(self, unit, fc, start, arg):
        await asyncio.sleep(self.bus.latency_s)
        dev = self.bus.devices.get(unit)
        self.bus.log.append((unit, fc, start, arg))
        if dev is None or dev.silent:
            raise asyncio.TimeoutError()
        table = {1: regmap.COIL, 2: regmap.DISCRETE, 3: regmap.HOLDING, 4: regmap.INPUT,
                 6: regmap.HOLDING, 15: regmap.COIL, 16: regmap.HOLDING}[fc]
        if fc == 6:
            if start == dev.points["settings_lock"].address:
                ex = dev.write_lock(int(arg))
            else:
                ex = dev.write(table, start, [int(arg)])
            if ex is not None:
                return Reply(exception_code=ex)
            return Reply(address=start, count=1, registers=[int(arg)])
        if fc <= 4:
            if dev.refuse_reads and fc == 3:
                return Reply(exception_code=2)  # a firmware without these holding registers
            words = dev.read(table, start, arg)
            if dev.short_replies:
                words = words[:-1]  # a reply one word short (a broken gateway or firmware)
            if fc <= 2:
                return Reply(bits=[bool(w) for w in words])
            return Reply(registers=words)
        ex = dev.write(table, start, [int(v) for v in arg])
        if ex is not None:
            return Reply(exception_code=ex)
        return Reply(address=start, count=len(arg))

    async def read_input_registers(self, start, count, device_id):
        return await self._tx(device_id, 4, start, count)

    async def read_holding_registers(self, start, count, device_id):
        return await self._tx(device_id, 3, start, count)

    async def read_discrete_inputs(self, start, count, device_id):
        return await self._tx(device_id, 2, start, count)

    async def read_coils(self, start, count, device_id):
        return await self._tx(device_id, 1, start, count)

    async def write_registers(self, start, values, device_id):
        return await self._tx(device_id, 16, start, values)

    async def write_register(self, start, value, device_id):
        return await self._tx(device_id, 6, start, value)

    async def write_coils(self, start, values, device_id):
        return await self._tx(device_id, 15, start, values)


class FakeBus:
    def __init__(self, devices, latency_s=0.0):
        self.devices = {d.unit: d for d in devices}
        self.latency_s = latency_s
        self.log = []

    def client(self, line):
        return FakeClient(self)

    def advance(self, dt_s):
        for d in self.devices.values():
            d.advance(dt_s)


def fake_service(cfg, units, latency_s=0.001, **kw):
    """A Service (not live) whose lines are one FakeBus with a motor FakeDevice
    at each of units; units of the config left out never answer."""
    from controller.runtime.service import Service, build_lines
    bus = FakeBus([FakeDevice("motor", u) for u in units], latency_s=latency_s)
    return Service(cfg, live=False, lines=build_lines(cfg, None, client_factory=bus.client), **kw)
