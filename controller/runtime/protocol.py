"""The device protocol: one object per field device, the only code that decides
what is written to it and when.

    identity -> settings -> commands -> arm, each confirmed

- Identity: a device is driven only once its map_version and profile_id (read
  in its first full pass) match the config; a device at the wrong unit id (a
  swapped address) is refused, reported once per contact, and its loop sees it
  as down.
- Settings are sent each time the device comes up (so its safe state is the
  configured one before any loop arms it), and again before every arm.
- A device that is up but disarmed (boot, comm-loss trip) gets its settings,
  the loop's current commands, then arm = 1, in one batch: the line sends arm
  only if every block before it was confirmed (fieldbus/master.py). A refused
  or timed-out batch is reported and retried after ARM_RETRY_S.
- Armed: a command is sent when it moved by one register step, and every
  REFRESH_S in any case; a refused write is reported and resent on the next
  refresh.
- Heartbeat: the device stays armed only while host_heartbeat (holding 4)
  changes within its comm_loss_timeout_s (firmware/supervisor.py). Only a
  healthy loop's cycle writes it (write(..., beat=True), called by the cycle
  after the strategy ran, never for a loop that raised or is held), a new
  value every quarter of the device's timeout, in the same batch as that
  cycle's commands; keepalive() is the service's own for devices that no loop
  drives (metering). A dead loop thus leaves its devices to go safe within
  their timeout while polling goes on.
- Settings lock (docs/safety.md): a device whose settings_lock reads 1 (key)
  gets every batch with safety settings (settings, arm) between the unlock
  key and a relock, in one line slot; one that reads 2 (jumper) is reported
  (settings_locked) and neither written nor armed until the jumper is pulled.
  Commands and the heartbeat pass the lock and are sent as they are.
Outputs are clamped to the register map's range before they are queued.
"""

import json
import math
import time

from firmware import regmap

REFRESH_S = 10.0       # resend unchanged commands this often (wall time)
ARM_RETRY_S = 1.0
BEATS_PER_TIMEOUT = 4  # heartbeat writes per comm_loss_timeout_s
DEFAULT_TIMEOUT_S = 10.0  # the firmware's default comm_loss_timeout_s
KEY = (regmap.UNLOCK_KEY_1, regmap.UNLOCK_KEY_2)  # the settings lock's documented key
LOCKED_BY_KEY, LOCKED_BY_JUMPER = 1, 2  # settings_lock readings (docs/safety.md)


class DeviceProtocol:
    def __init__(self, device, line, settings, on_event, key=KEY):
        self.device = device          # fieldbus.master.Device: values, health
        self.line = line
        self.settings = dict(settings)
        self.on_event = on_event      # (kind, source, text)
        self.key = tuple(key)         # the unlock key of the settings lock
        self.settings_up = 0          # the up_events count its settings were sent for
        self.identity_up = 0          # the up_events count its identity was checked for
        self.identity_ok = False
        self.arm_sent = -math.inf
        self.last_sent = {}           # point -> value of the last queued command
        self.t_sent = -math.inf
        self.refused = 0              # write batches refused (exception reply, timeout)
        self.confirmed = 0            # write batches confirmed
        self.last_refusal = None
        self.beat = None              # the last heartbeat value queued
        self.t_beat = -math.inf       # when (monotonic)
        self.beats = 0                # heartbeats queued
        self.jumper_up = 0            # the up_events count a jumper lock was reported for

    @property
    def name(self):
        return self.device.name

    def drivable(self):
        """Up, fully read once since it came up, and the device it should be."""
        d = self.device
        return d.up and d.slow_done and self.check_identity()

    def identity_checked(self):
        """The identity was read and judged for the present contact (or the
        device is down again: its loop runs in fallback)."""
        self.check_identity()
        return not self.device.up or self.identity_up == self.device.up_events

    def check_identity(self):
        d = self.device
        if self.identity_up == d.up_events:
            return self.identity_ok
        if not d.slow_done or "map_version" not in d.values or "profile_id" not in d.values:
            # Not read yet in this contact: the values held may be the previous
            # contact's (a device swapped while it was down).
            return False
        self.identity_up = d.up_events
        want = (regmap.MAP_VERSION, regmap.PROFILE_IDS[d.profile])
        have = (int(d.values["map_version"]), int(d.values["profile_id"]))
        self.identity_ok = have == want
        if not self.identity_ok:
            names = {v: k for k, v in regmap.PROFILE_IDS.items()}
            self.on_event("identity_mismatch", d.name,
                          "unit %d answers as map %d profile %s, expected map %d profile %s: "
                          "not driven" % (d.unit, have[0], names.get(have[1], have[1]),
                                          want[0], d.profile))
        return self.identity_ok

    def clamp(self, name, v):
        p = self.device.points.get(name)
        if p is None or p.access != "rw" or v is None or (isinstance(v, float) and math.isnan(v)):
            return None
        return min(max(float(v), p.min), p.max)

    def _done(self, what, unlock=None):
        def cb(ok, reason):
            if ok:
                self.confirmed += 1
                return
            self.refused += 1
            if unlock and reason and "address %d" % regmap.HR_LOCK in reason:
                reason = "the settings lock refused the unlock key (%s): %s" % (
                    ", ".join("0x%04X" % k for k in self.key), reason)
            elif self.lock_state() and reason and "exception" in reason:
                reason += "; settings locked (settings_lock reads %d)" % self.lock_state()
            self.last_refusal = reason
            if what == "arm":
                self.arm_sent = time.monotonic()  # retry after ARM_RETRY_S
            else:
                self.t_sent = -math.inf           # resend everything on the next cycle
                self.last_sent = {}
            self.on_event("write_refused", self.name, "%s: %s" % (what, reason))
        return cb

    # ---- the settings lock ------------------------------------------------------------
    def lock_state(self):
        """settings_lock as last read: 0 open, 1 locked by key, 2 by jumper."""
        return int(self.device.values.get("settings_lock", 0))

    def _unlock(self):
        """The key for a batch with safety settings, None if the device is open;
        False (reported once per contact) if its jumper locks it."""
        st = self.lock_state()
        if st == LOCKED_BY_JUMPER:
            d = self.device
            if self.jumper_up != d.up_events:
                self.jumper_up = d.up_events
                self.on_event("settings_locked", self.name,
                              "unit %d: settings locked by its jumper: settings not written, "
                              "not armed (pull the jumper to let the host drive it)" % d.unit)
            return False
        return self.key if st == LOCKED_BY_KEY else None

    def send_settings(self):
        """Settings once per coming up, as soon as the device is known to be itself."""
        d = self.device
        if d.up and self.settings and self.settings_up != d.up_events and self.check_identity():
            unlock = self._unlock()
            if unlock is False:
                return  # tried again once the jumper is pulled
            self.settings_up = d.up_events
            self.line.submit(d, dict(self.settings), done=self._done("settings", unlock),
                             unlock=unlock)
            self.on_event("settings", self.name, json.dumps(self.settings))

    # ---- the heartbeat ----------------------------------------------------------------
    def beat_period_s(self):
        """A new heartbeat this often: a quarter of the device's timeout (the
        shorter of the one read and the one configured, which may not have
        been read back yet)."""
        ts = [t for t in (self.device.values.get("comm_loss_timeout_s"),
                          self.settings.get("comm_loss_timeout_s")) if t]
        return (min(ts) if ts else DEFAULT_TIMEOUT_S) / BEATS_PER_TIMEOUT

    def heartbeat(self, now):
        """{"host_heartbeat": next value} when one is due, else {}."""
        if now - self.t_beat < self.beat_period_s():
            return {}
        if self.beat is None:  # continue from the device's (a restarted host)
            self.beat = int(self.device.values.get("host_heartbeat", 0))
        self.beat = (self.beat + 1) & 0xFFFF
        self.t_beat = now
        self.beats += 1
        return {"host_heartbeat": self.beat}

    def keepalive(self, now):
        """The service's heartbeat for an armed device that no loop drives."""
        if self.drivable() and self.armed():
            hb = self.heartbeat(now)
            if hb:
                self.line.submit(self.device, hb, done=self._done("heartbeat"))

    def armed(self):
        return bool(int(self.device.values.get("status", 0)) & regmap.ST_ARMED)

    def write(self, cmds, now, beat=True):
        """The loop's commands {point: value}: arm a disarmed device with them,
        or send what changed to an armed one; beat: the loop is healthy, so
        the heartbeat goes along when it is due."""
        if not self.drivable():
            return
        vals = {}
        for name, v in cmds.items():
            c = self.clamp(name, v)
            if c is not None:
                vals[name] = c
        if not self.armed():
            if now - self.arm_sent > ARM_RETRY_S:
                unlock = self._unlock()
                if unlock is False:
                    return
                batch = dict(self.settings)
                batch.update(vals)
                if beat:
                    batch.update(self.heartbeat(now))
                self.line.submit(self.device, batch, arm=True, done=self._done("arm", unlock),
                                 unlock=unlock)
                self.arm_sent = now
                self.last_sent = dict(vals)
                self.t_sent = now
                self.on_event("arm", self.name, "commands %s" % json.dumps(vals))
            return
        refresh = now - self.t_sent > REFRESH_S
        pts = self.device.points
        changed = {k: v for k, v in vals.items()  # one register step is a change
                   if refresh or abs(self.last_sent.get(k, math.inf) - v) >= pts[k].scale}
        hb = self.heartbeat(now) if beat else {}
        if changed or hb:
            self.line.submit(self.device, dict(changed, **hb), done=self._done("commands"))
            self.last_sent.update(changed)
            if refresh:
                self.t_sent = now
