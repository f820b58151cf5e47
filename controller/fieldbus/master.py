"""Modbus master per line: one transaction in flight, dead devices isolated.

Size (558 lines): one line's transaction loop (polls, confirmed writes, contact and
identity tracking, port loss); split across files it would share every field of the
Line.

A Line owns one pymodbus async client (RTU over pyserial, RTU over a TCP
gateway, or Modbus TCP) and the devices on it. Its task loops: pending writes
first (sent right after the loops ran), then the most overdue poll. Every
device is polled round-robin as fast as the line allows (or at its poll
period); its slow reads ride along every slow_s.

Health: a silent timeout marks a device suspect, two in a row mark it down;
a garbled reply (bytes, no valid frame) proves the device alive and is retried
once, like a timeout. A down
device is probed with one read per backoff period (1 s doubling to 30 s), so
it costs the line at most one timeout per period and the other devices keep
their rate. Timeouts come from the baud rate and the device's turnaround
(fieldbus/timing.py), not a blanket 3 s.

Port lost (a USB adapter unplugged, a gateway gone): the line marks every
device down at once and raises one `line_down` event (not one per device per
poll), settles the writes still waiting as refused, and reopens the port by
its configured path with a backoff (0.5 s doubling to 5 s, asleep between
tries); the devices come back through their probe when it opens again
(`line_up` at the first reply). The path is never resolved, so a
/dev/serial/by-id/... link that points to another ttyUSBn after a replug is
found again.

Statistics: transactions, registers and bits delivered (stored from a full
reply), latency p50/p99, timeouts, garbled replies (bytes
came back but no valid frame: CRC or framing), exception replies, and line
utilisation = sum of the physical wire time of completed transactions over
elapsed time (RTU lines).

Size: one class, the line's transaction loop (polls, writes, health, timing),
over the ~300-line mark because splitting the loop from the health rules it
applies per transaction would only move shared state around. The device's
state and the statistics live in device.py.
"""

import asyncio
import logging
import os
import time

from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException
from pymodbus.framer import FramerType

from controller.fieldbus import timing
from controller.fieldbus.device import BACKOFF_START_S, LineStats, echoes
from controller.fieldbus.planner import Write, plan_writes
from firmware import regmap

IDENTITY = ("map_version", "profile_id")  # what a new contact must read again
# A device's uptime (whole seconds, counted from its own ticks) advances with
# the host's clock: less by more than this is a restart (1 s of truncation,
# the poll's latency), the clocks agreeing to CLOCK_TOL.
REBOOT_SLACK_S = 2.0
CLOCK_TOL = 0.01

log = logging.getLogger("greenedge.fieldbus")
# pymodbus logs every timeout with a packet dump; the line statistics count them.
logging.getLogger("pymodbus").setLevel(logging.CRITICAL)

WRITE_EVERY_S = 0.05  # a device polled slowly still takes writes this often
GARBLED = object()  # a reply came but no valid frame (CRC, framing)
BACKOFF_MAX_S = 30.0
FAILS_TO_DOWN = 2
REOPEN_START_S = 0.5  # a lost port is reopened after this, doubling to REOPEN_MAX_S
REOPEN_MAX_S = 5.0


class _Fc06(Write):
    """A single-register write: the settings lock takes FC06 only."""

    @property
    def fc(self):
        return 6


def _key_writes(words):
    return [_Fc06(regmap.HOLDING, regmap.HR_LOCK, [w]) for w in words]


class Line:
    """kind: "rtu" (port, baud, parity, stopbits), "rtu_tcp" (RTU frames through a
    transparent TCP gateway: host, port, plus the serial baud behind it) or
    "tcp" (Modbus TCP)."""

    def __init__(self, name, kind, devices, port=None, host=None, tcp_port=502, baud=19200,
                 parity="E", stopbits=1, turnaround_s=0.005, on_event=None, client_factory=None):
        """client_factory(line) -> a pymodbus-like async client: the seam for an
        in-process line (hil_tests/fakeline.py); None: the real pymodbus client."""
        self.name, self.kind = name, kind
        self.devices = list(devices)
        self.baud = baud
        self.bits = timing.bits_per_char(parity, stopbits)
        self.serial = kind in ("rtu", "rtu_tcp")
        self.silence_s = timing.silence_s(baud, self.bits)
        self._t_end = 0.0
        self.turnaround_s = turnaround_s
        self.stats = LineStats()
        self.on_event = on_event or (lambda *a: None)
        self._rx_bytes = 0
        self._writes = {}  # device name -> [device, {point: value}, arm after]
        self._wake = asyncio.Event()
        self._stop = False
        self.lost = False      # the port is gone: devices down, reopening
        self.reopen_s = REOPEN_START_S
        self._was_open = False
        biggest = max((r.count for d in self.devices for r in d.reads), default=1)
        if self.serial:
            to = timing.timeout_s(3, biggest, baud, self.bits, turnaround_s)
        else:
            to = max(0.05, turnaround_s * 4)
        self.timeout_s = to
        if kind not in ("rtu", "rtu_tcp", "tcp"):
            raise ValueError("line %s: kind %r is not rtu, rtu_tcp or tcp" % (name, kind))
        self._conn = dict(port=port, host=host, tcp_port=tcp_port, parity=parity,
                          stopbits=stopbits)
        self.client = None  # pymodbus async clients are made inside the event loop
        self._client_factory = client_factory

    def _make_client(self):
        if self._client_factory is not None:
            return self._client_factory(self)
        kind, to, trace, c = self.kind, self.timeout_s, self._trace, self._conn
        # reconnect_delay=0: the line reopens the port itself (run(): one event,
        # devices down, backoff); pymodbus's own reconnect task would race it.
        common = dict(timeout=to, retries=0, reconnect_delay=0, trace_packet=trace)
        if kind == "rtu":
            return AsyncModbusSerialClient(c["port"], framer=FramerType.RTU, baudrate=self.baud,
                                           parity=c["parity"], stopbits=c["stopbits"], **common)
        if kind == "rtu_tcp":
            return AsyncModbusTcpClient(c["host"], port=c["tcp_port"], framer=FramerType.RTU,
                                        **common)
        return AsyncModbusTcpClient(c["host"], port=c["tcp_port"], **common)

    def _trace(self, sending, data):
        if not sending:
            self._rx_bytes += len(data)
        return data

    # ---- writes ------------------------------------------------------------
    def submit(self, device, values, arm=False, done=None, unlock=None):
        """Queue {point: value} for a device, sent before the next poll; then
        arm = 1 if asked (commands first, so arming never applies stale ones),
        and only if every block before it was confirmed. done(ok, reason) is
        called once the batch is settled: ok only if every block was confirmed
        (a reply echoing its address and count); an exception reply or a
        timeout is a refusal with its reason, and arm is not sent.
        unlock: (key1, key2) of a device whose settings are locked by key:
        the batch opens with the two FC06 key writes to settings_lock and
        ends with the lock written again (1), whatever its outcome.

        Writes are coalesced per device: a newer value for a point replaces one
        still waiting, so a cycle faster than the line can carry never builds
        a backlog and the polls keep their share."""
        plan_writes(device.profile, values)  # range and access checked now, at the caller
        pend = self._writes.get(device.name)
        if pend is None:
            self._writes[device.name] = pend = [device, {}, False, [], None]
        pend[1].update(values)
        pend[2] = pend[2] or arm
        if done is not None:
            pend[3].append(done)
        pend[4] = unlock or pend[4]
        self._wake.set()

    # ---- one transaction -----------------------------------------------------
    async def _tx(self, dev, fc, start, arg):
        c = self.client
        serial = self.serial
        if serial:
            # The master keeps the 3.5-character silence after a reply too
            # (pymodbus does not): every device on the line must see the reply
            # end before the next request starts, or it drops both as one frame.
            wait = self._t_end + self.silence_s - time.perf_counter()
            if wait > 0:
                await asyncio.sleep(wait)
        self._rx_bytes = 0
        self._t_sent = time.monotonic()  # the device answers between this and the reply
        t0 = time.perf_counter()
        try:
            if fc == 4:
                r = await c.read_input_registers(start, count=arg, device_id=dev.unit)
            elif fc == 2:
                r = await c.read_discrete_inputs(start, count=arg, device_id=dev.unit)
            elif fc == 3:
                r = await c.read_holding_registers(start, count=arg, device_id=dev.unit)
            elif fc == 1:
                r = await c.read_coils(start, count=arg, device_id=dev.unit)
            elif fc == 16:
                r = await c.write_registers(start, arg, device_id=dev.unit)
            elif fc == 6:
                r = await c.write_register(start, arg, device_id=dev.unit)
            else:
                r = await c.write_coils(start, [bool(b) for b in arg], device_id=dev.unit)
        except (ModbusException, asyncio.TimeoutError, OSError) as e:
            self._t_end = time.perf_counter()
            log.debug("line %s unit %d fc %d: %s", self.name, dev.unit, fc, e)
            if self._rx_bytes:
                self.stats.garbled += 1
                return GARBLED  # something answered: a noisy line, not a dead device
            self.stats.timeouts += 1
            return None
        self._t_end = t1 = time.perf_counter()
        st = self.stats
        st.tx += 1
        st.lat.append(t1 - t0)
        if serial:
            st.wire_s += timing.transaction_s(fc, len(arg) if fc >= 15 else arg, self.baud,
                                              self.bits)
        if r.isError():
            st.exceptions += 1
            self.on_event("exception", dev.name, "fc %d addr %d: exception %s"
                          % (fc, start, getattr(r, "exception_code", "?")))
            return False
        return r

    def _ok(self, dev, now):
        dev.fails = 0
        if self.lost:  # the first reply on a reopened port
            self.lost = False
            self.reopen_s = REOPEN_START_S
            self.on_event("line_up", self.name, "%s answers again" % self._where())
        if not dev.up:
            dev.up = True
            dev.ever_up = True
            dev.up_events += 1
            dev.backoff_s = BACKOFF_START_S
            self._new_contact(dev, now)
            self.on_event("device_up", dev.name, "unit %d on %s" % (dev.unit, self.name))

    @staticmethod
    def _new_contact(dev, now, fresh=()):
        """A new contact starts with a full slow pass and no identity: the
        map_version and profile_id held are the previous contact's (perhaps
        another device's) until this contact reads them (fresh: the points
        the read that saw it stored)."""
        dev.slow_done = False
        dev.next_slow = now
        dev.next_status = now
        dev.uptime_seen = None
        for name in IDENTITY:
            if name not in fresh:
                dev.values.pop(name, None)

    def _same_device(self, dev, now, seen, fresh):
        """After a status read: is this still the contact the host judged?
        Not if the identity read differs from the one held (another device
        answers at this unit id), nor if the uptime advanced less than the
        host's clock by more than REBOOT_SLACK_S (the device restarted between
        two polls, faster than it could be seen down: a short uptime can read
        the same whole second again, so "uptime went back" alone misses it).
        Either is a new contact: its settings, arming and identity are those
        of a fresh boot or another device, so it is judged and set up again
        before anything drives it (DeviceProtocol keys all three on up_events)."""
        mv, pid, (up0, sent0, recv0) = seen[0], seen[1], seen[2] or (None, None, None)
        values = dev.values
        up = values.get("uptime_s")
        sent = min(getattr(self, "_t_sent", now), now)
        mine = (up, sent, now) if up is not None else None
        dev.uptime_seen = mine
        why = None
        if mv is not None and pid is not None and \
                (values.get("map_version"), values.get("profile_id")) != (mv, pid):
            why = "identity %s/%s -> %s/%s" % (mv, pid, values.get("map_version"),
                                                values.get("profile_id"))
        elif up is not None and up0 is not None:
            # Each uptime was sampled between its request and its reply: the
            # device's clock moved at least (this request - that reply) and at
            # most (this reply - that request); a stalled host is no restart.
            least, most = sent - recv0, now - sent0
            if up < up0 + least * (1.0 - CLOCK_TOL) - REBOOT_SLACK_S:
                why = "uptime %d s -> %d s in %.1f s" % (up0, up, least)
            elif up > up0 + most * (1.0 + CLOCK_TOL) + REBOOT_SLACK_S:
                # Uptime ran ahead of the host's clock: another device (of the
                # same profile) answers at this unit id.
                why = "uptime %d s -> %d s in %.1f s: another device" % (up0, up, most)
        if why is None or not dev.up:
            return
        dev.up_events += 1
        self._new_contact(dev, now, fresh)
        dev.uptime_seen = mine
        self.on_event("device_restarted", dev.name, "unit %d on %s: %s" % (dev.unit, self.name, why))

    def _fail(self, dev, now):
        dev.fails += 1
        if dev.up and dev.fails >= FAILS_TO_DOWN:
            dev.up = False
            dev.down_events += 1
            self.on_event("device_down", dev.name, "unit %d on %s: no reply" % (dev.unit, self.name))
        if not dev.up:
            dev.next_poll = now + dev.backoff_s
            dev.backoff_s = min(BACKOFF_MAX_S, dev.backoff_s * 2)

    def _store(self, dev, rd, r, now):
        bits = rd.table in (regmap.COIL, regmap.DISCRETE)
        words = r.bits if bits else r.registers
        if bits:  # delivered: counted here, not for an exception or a short reply
            self.stats.bits += rd.count
        else:
            self.stats.regs += rd.count
        plan = rd.__dict__.get("_decode")
        if plan is None:  # once per read: (name, raw point tuple, offset)
            plan = rd._decode = [(p.name, p.raw, off) for p, off in rd.points]
        values, t_value = dev.values, dev.t_value
        seen = None
        if rd.table == regmap.INPUT and rd.start <= regmap.IR_UPTIME < rd.start + rd.count:
            seen = (values.get("map_version"), values.get("profile_id"), dev.uptime_seen)
        if bits:
            for name, _, off in plan:
                values[name] = 1 if words[off] else 0
                t_value[name] = now
        else:
            dec = regmap.decode
            for name, raw, off in plan:
                values[name] = dec(raw, words, off)
                t_value[name] = now
        dev.t_poll = now
        if seen is not None:
            self._same_device(dev, now, seen, {name for name, _, _ in plan})
        if rd.table == regmap.INPUT and rd.start <= regmap.QUALITY_BASE < rd.start + rd.count:
            first = regmap.QUALITY_BASE - rd.start
            n = min(regmap.QUALITY_WORDS, rd.count - first)
            for k in range(8 * n):
                w = words[first + k // 8]
                dev.quality[k] = (w >> (2 * (k % 8))) & 3

    async def _poll(self, dev):
        now = time.monotonic()
        dev.wrote = False
        reads = list(dev.fast) if dev.up else dev.fast[:1]  # a down device: one probe
        status = dev.up and now >= dev.next_status
        if status:
            reads += dev.status
            dev.next_status = now + dev.status_s
        slow = dev.up and now >= dev.next_slow
        if slow:
            reads += dev.slow
        slow_ok = slow
        for rd in reads:
            r = await self._tx(dev, rd.fc, rd.start, rd.count)
            if (r is None or r is GARBLED) and dev.up and self.client.connected:
                # One immediate retry: idempotent and cheap. A down device's
                # probe is not retried: it costs one timeout per backoff period.
                r = await self._tx(dev, rd.fc, rd.start, rd.count)
            now = time.monotonic()
            if r is None and self._port_lost():
                return  # the port is gone, not the device: run() handles the line
            if r is None:
                self._fail(dev, now)
                return
            if r is not GARBLED and r is not False and \
                    len(r.bits if rd.table in (regmap.COIL, regmap.DISCRETE) else r.registers) \
                    < rd.count:
                self.stats.garbled += 1  # a reply shorter than asked: not this read's
                r = GARBLED
            if r is GARBLED or r is False:
                # A full slow pass is one whose every block was stored: what
                # the identity is judged on must be this contact's reading.
                slow_ok = slow_ok and rd.cls != "slow"
                if r is False and rd.cls == "slow" and dev.slow_refused_up != dev.up_events:
                    dev.slow_refused_up = dev.up_events  # said once per contact
                    self.on_event("slow_read_refused", dev.name,
                                  "fc %d addr %d x %d: exception; the device is not driven until "
                                  "its slow pass reads (a firmware without these registers?)"
                                  % (rd.fc, rd.start, rd.count))
            if r is GARBLED:
                continue  # the device lives; this block keeps its last values (they age)
            self._ok(dev, now)
            if r is not False:
                self._store(dev, rd, r, now)
        dev.polls += 1
        if slow:
            dev.next_slow = now + dev.slow_s
            dev.slow_done = dev.slow_done or slow_ok
        dev.next_poll = now + dev.poll_s

    async def _write(self, dev, values, arm, done=(), unlock=None):
        """One device's pending writes: FC16/FC15 runs, then arm if asked and
        every run before it was confirmed; done callbacks get the outcome."""
        dev.wrote = True
        dev.t_wrote = time.monotonic()
        if not dev.up:
            ok, reason = False, "device down"  # re-armed with fresh commands when it returns
        elif unlock:
            ok, reason = await self._send_blocks(dev, {}, False, _key_writes(unlock))
            if ok:
                ok, reason = await self._send_blocks(dev, values, arm)
            relock = await self._send_blocks(dev, {}, False, _key_writes((regmap.LOCK_WORD,)))
            if ok and not relock[0]:
                ok, reason = False, "relock: %s" % relock[1]
        else:
            ok, reason = await self._send_blocks(dev, values, arm)
        if ok is None:  # garbled: not confirmed, keep it pending (unless newer values came)
            self._requeue(dev, values, arm, done, unlock)
            return
        for cb in done:
            cb(ok, reason)

    async def _send_blocks(self, dev, values, arm, writes=None):
        """writes: these Write blocks instead of the values' (the lock's FC06 writes)."""
        if writes is None:
            writes = plan_writes(dev.profile, values)
        if arm:
            writes += plan_writes(dev.profile, {"arm": 1})
        for w in writes:
            fc = w.fc
            arg = w.values[0] if fc == 6 else w.values
            r = await self._tx(dev, fc, w.start, arg)
            if (r is None or r is GARBLED) and self.client.connected:  # idempotent: retry once
                r = await self._tx(dev, fc, w.start, arg)
            if r is None and self._port_lost():
                return False, "line down (port lost)"
            if r is None:
                self._fail(dev, time.monotonic())
                return False, "timeout at address %d" % w.start
            if r is GARBLED:
                return None, "garbled"
            if r is False:
                return False, "refused at address %d (exception reply)" % w.start
            ok = (getattr(r, "address", None) == w.start and list(r.registers) == w.values
                  if fc == 6 else echoes(r, w))  # FC06 echoes its address and value
            if not ok:
                self.stats.exceptions += 1
                return False, "reply to address %d does not echo the write" % w.start
            self.stats.writes += 1
        return True, None

    def _requeue(self, dev, values, arm, done, unlock=None):
        pend = self._writes.get(dev.name)
        if pend is None:
            self._writes[dev.name] = [dev, dict(values), arm, list(done), unlock]
        else:
            for k, v in values.items():
                pend[1].setdefault(k, v)
            pend[2] = pend[2] or arm
            pend[3].extend(done)
            pend[4] = pend[4] or unlock

    def _next_write(self):
        """A device with writes waiting that has not written since its last poll
        or for WRITE_EVERY_S (so writes never take more than one slot per device
        per poll round, and a slowly polled device is not made to wait)."""
        for name, pend in self._writes.items():
            dev = pend[0]
            if not dev.wrote or time.monotonic() - dev.t_wrote >= WRITE_EVERY_S:
                return self._writes.pop(name)
        return None

    def _port_lost(self):
        """After a timeout: is it the port that went (the client lost its
        transport, or the tty's path is gone before pymodbus noticed)? Then
        the line, not the device, is down: the client is closed and run()
        marks the whole line down once."""
        if not self.client.connected:
            return True
        if self.kind == "rtu" and not os.path.exists(self._conn["port"]):
            self.client.close()
            return True
        return False

    def _where(self):
        c = self._conn
        return c["port"] if self.kind == "rtu" else "%s:%s" % (c["host"], c["tcp_port"])

    async def open(self):
        self.client = self._make_client()
        try:
            await self.client.connect()
        except OSError as e:
            log.debug("line %s: open: %s", self.name, e)

    def _line_lost(self):
        """The port is gone (or never opened): every device down at once, one
        event for the line, the writes still waiting settled as refused."""
        self.lost = True
        self.stats.line_downs += 1
        now = time.monotonic()
        down = []
        for dev in self.devices:
            if dev.up:
                dev.up = False
                dev.down_events += 1
                down.append(dev.name)
            dev.fails = 0
            dev.backoff_s = BACKOFF_START_S
            dev.next_poll = now  # probed as soon as the port is back
        pending, self._writes = self._writes, {}
        for _, _, _, done, _ in pending.values():
            for cb in done:
                cb(False, "line down (port lost)")
        self.on_event("line_down", self.name, "%s %s%s; reopening every %g..%g s"
                      % (self._where(), "lost" if self._was_open else "cannot be opened",
                         (": %s down" % ", ".join(down)) if down else "",
                         REOPEN_START_S, REOPEN_MAX_S))

    async def _reopen(self):
        """One reopen attempt after the backoff (asleep: stop() wakes it)."""
        self._wake.clear()
        try:
            await asyncio.wait_for(self._wake.wait(), timeout=self.reopen_s)
        except asyncio.TimeoutError:
            pass
        if self._stop:
            return
        self.reopen_s = min(REOPEN_MAX_S, self.reopen_s * 2)
        self.stats.reopens += 1
        self.client.close()  # drop what is left of the old transport
        try:
            await self.client.connect()
        except OSError as e:
            log.debug("line %s: reopen: %s", self.name, e)

    async def run(self):
        await self.open()
        while not self._stop:
            if not self.client.connected:
                if not self.lost:
                    self._line_lost()
                await self._reopen()
                continue
            self._was_open = True
            pend = self._next_write() if self._writes else None
            if pend is not None:
                await self._write(*pend)
                continue
            now = time.monotonic()
            due = min(self.devices, key=lambda d: d.next_poll) if self.devices else None
            if due is None or due.next_poll > now:
                self._wake.clear()
                wait = 0.1 if due is None else due.next_poll - now
                try:
                    await asyncio.wait_for(self._wake.wait(), timeout=wait)
                except asyncio.TimeoutError:
                    pass
                continue
            await self._poll_guarded(due)

    async def _poll_guarded(self, dev):
        try:
            await self._poll(dev)
        except Exception as e:  # a bug must not silence the line: log it, go on
            log.exception("line %s: poll of %s failed", self.name, dev.name)
            self.on_event("line_error", self.name, "%s: %s" % (type(e).__name__, e))
            dev.next_poll = time.monotonic() + 1.0

    async def round(self):
        """Every pending write, then one poll of every device, now (for tests
        that step the line by hand instead of running it)."""
        while self._writes:
            name = next(iter(self._writes))
            await self._write(*self._writes.pop(name))
        for dev in self.devices:
            await self._poll_guarded(dev)

    def stop(self):
        self._stop = True
        self._wake.set()
        if self.client is not None:
            self.client.close()
