"""Supervisor: watchdog feeding, comm-loss safe state, status word.

- Watchdog: fed only when every registered task has reported in since the last
  feed (a task blocked waiting for bytes counts as alive through its `waiting`
  flag), so a dead task resets the board instead of leaving it half-working.
- Comm loss: while armed, the host's heartbeat (holding 4, host_heartbeat)
  must change within comm_loss_timeout_s. A healthy loop of the host writes a
  new value; polling alone does not count, so a dead host, a dead loop and a
  silent line all trip it alike: the supervisor disarms (arm = 0), the outputs
  go to their safe state and stay there until the host writes arm = 1 again
  (arming restarts the timer). The log line names the heartbeat's age and the
  time since the last frame for this unit, so a dead line and a dead loop can
  be told apart.
- Status word (input 3) and the state discrete inputs are refreshed every tick.

tick() takes the time in ms, so tests drive it with any clock. Only the delta
from the previous tick goes through ticks_diff (tens of ms); the heartbeat's
age, the time since the last frame and the uptime are counters advanced by
that delta, so they stay right when ticks wrap at 2^30 ms (12.4 days) on
32-bit ports. The heartbeat is compared at every tick (50 ms): a host writes
it every few hundred ms at the most.
"""

from micropython import const
from time import ticks_diff

from regmap import (HOLDING, Q_BAD, Q_UNCERTAIN, ST_ARMED, ST_COMM_LOST, ST_INTERLOCK,
                    ST_QUALITY_BAD, ST_QUALITY_UNCERTAIN, ST_SAFE_STATE, ST_WDT_RESET)

# Common-block addresses come from the map (regmap owns the numbers).
from regmap import HR_ARM as _ARM, HR_TIMEOUT as _TIMEOUT  # noqa: E402
from regmap import HR_HEARTBEAT as _BEAT  # noqa: E402
from regmap import IR_STATUS as _IR_STATUS, IR_UPTIME as _IR_UPTIME  # noqa: E402
from regmap import IR_TRIPS as _IR_TRIPS, IR_INTERLOCKS as _IR_IL  # noqa: E402
from regmap import IR_RESET_CAUSE as _IR_RESET  # noqa: E402
from regmap import DI_ARMED as _DI_ARMED, DI_SAFE as _DI_SAFE  # noqa: E402
from regmap import DI_COMM_LOST as _DI_COMM_LOST, DI_INTERLOCK as _DI_INTERLOCK  # noqa: E402
from regmap import DI_QBAD as _DI_QBAD  # noqa: E402

# The silence counter saturates above the longest timeout (3600 s).
_SILENT_MAX_MS = const(4000000)


class Supervisor:
    def __init__(self, bank, rtu, outputs, wdt=None, reset_cause=0, now_ms=0):
        self.bank = bank
        self.rtu = rtu
        self.outputs = outputs
        self.wdt = wdt
        self.tasks = 0
        self._ntasks = 0
        self._now_ms = now_ms
        self.reported = 0
        self.waiting = 0  # bit set while a task is blocked on I/O
        self.comm_lost = False
        self.trips = 0
        self.extra_status = 0
        self._seen = rtu.frames_for_me
        self._silent_ms = 0  # since the last frame for this unit, saturating
        self._beat = bank.hr[_BEAT]
        self._beat_ms = 0  # since the heartbeat last changed (or arm), saturating
        self._up_ms = 0  # uptime: whole seconds in _up_s, the rest here
        self._up_s = 0
        bank.ir[_IR_RESET] = reset_cause
        if reset_cause == 1:
            self.extra_status |= ST_WDT_RESET
        rtu.write_hook = self.on_write

    def register(self):
        """A new task bit; the task calls report(bit) once per loop."""
        bit = 1 << self._ntasks
        self._ntasks += 1
        self.tasks |= bit
        return bit

    def report(self, bit):
        self.reported |= bit

    def on_write(self, table, addr, qty):
        # Arming clears the comm-loss latch and restarts the timer.
        if table == HOLDING and addr <= _ARM < addr + qty and self.bank.hr[_ARM] == 1:
            self.comm_lost = False
            self._beat_ms = 0
            self._beat = self.bank.hr[_BEAT]
        self.refresh(self.outputs.update(self._now_ms))

    def tick(self, now_ms):
        dt = ticks_diff(now_ms, self._now_ms)
        if dt < 0:  # a clock that stepped back: no time passed
            dt = 0
        self._now_ms = now_ms
        bank = self.bank
        rtu = self.rtu
        s = self._silent_ms + dt
        self._silent_ms = s if s < _SILENT_MAX_MS else _SILENT_MAX_MS
        if rtu.frames_for_me != self._seen:
            self._seen = rtu.frames_for_me
            self._silent_ms = 0
        s = self._beat_ms + dt
        self._beat_ms = s if s < _SILENT_MAX_MS else _SILENT_MAX_MS
        if bank.hr[_BEAT] != self._beat:
            self._beat = bank.hr[_BEAT]
            self._beat_ms = 0
        timeout_ms = bank.hr[_TIMEOUT] * 100
        if bank.hr[_ARM] == 1 and self._beat_ms > timeout_ms:
            bank.hr[_ARM] = 0
            self.comm_lost = True
            self.trips += 1
            bank.ir[_IR_TRIPS] = self.trips & 0xFFFF
            # One line for the log (USB REPL on a board, stdout on the unix port).
            print("comm loss: no heartbeat for %d ms (last frame %d ms ago), outputs to safe state"
                  % (self._beat_ms, self._silent_ms))
        self.refresh(self.outputs.update(now_ms))
        rtu.show_lock()  # the jumper may be fitted or pulled at any time
        u = self._up_ms + dt
        self._up_s += u // 1000
        self._up_ms = u % 1000
        up = self._up_s
        bank.ir[_IR_UPTIME] = (up >> 16) & 0xFFFF
        bank.ir[_IR_UPTIME + 1] = up & 0xFFFF
        alive = self.reported | self.waiting
        if self.wdt is not None and alive & self.tasks == self.tasks:
            self.wdt.feed()
            self.reported = 0

    def refresh(self, safe):
        """Status word and state inputs, right after anything that changes them."""
        bank = self.bank
        st = self.extra_status
        if not safe:
            st |= ST_ARMED
        else:
            st |= ST_SAFE_STATE
        if self.comm_lost:
            st |= ST_COMM_LOST
        il = self.outputs.interlocks
        if il:
            st |= ST_INTERLOCK
        qbad = False
        qunc = False
        for k in range(bank.n_quality):
            q = bank.get_quality(k)
            if q == Q_BAD:
                qbad = True
            elif q == Q_UNCERTAIN:
                qunc = True
        if qbad:
            st |= ST_QUALITY_BAD
        if qunc:
            st |= ST_QUALITY_UNCERTAIN
        bank.ir[_IR_STATUS] = st
        bank.ir[_IR_IL] = il
        bank.di[_DI_ARMED] = 0 if safe else 1
        bank.di[_DI_SAFE] = 1 if safe else 0
        bank.di[_DI_COMM_LOST] = 1 if self.comm_lost else 0
        bank.di[_DI_INTERLOCK] = 1 if il else 0
        bank.di[_DI_QBAD] = 1 if qbad else 0
