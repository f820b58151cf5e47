"""One GreenEdge device: register bank + RTU server + outputs + supervisor.

One main loop (run): it serves the line and, on every pass, runs the periodic
jobs that are due: the supervisor tick every 50 ms, the software watchdog check
where there is no hardware one, and what boot attached (metering, the plant
link). Frames are cut by length (rtuframe.py), so a job that runs long does not
merge or split them, and no byte stream holds the jobs back. The loop steps in
100 us only while a reply waits for its 3.5-character silence; otherwise it
waits on the UART with select.poll until the next job is due.
"""

from time import sleep_ms, sleep_us, ticks_add, ticks_diff, ticks_ms, ticks_us

from regmap import FW_VERSION, VENDOR
from outputs import Outputs
from regbank import RegBank
from supervisor import Supervisor

_SUP_PERIOD_MS = 50
_STEP_US = 100
_WDT_PERIOD_MS = 100


class Device:
    def __init__(self, cfg, uart, wdt=None, reset_cause=0, driver=None):
        profile = cfg["profile"]
        self.cfg = cfg
        self.uart = uart
        self.bank = RegBank(profile, cfg.get("settings"))
        if cfg["comm_loss_timeout_s"] is not None:
            self.bank.set("comm_loss_timeout_s", cfg["comm_loss_timeout_s"])
        ident = (VENDOR, profile, "%d.%d.%d" % FW_VERSION, "",
                 "GreenEdge %s device" % profile, cfg["model"] or cfg["hal"],
                 "unit %d" % cfg["unit"])
        # Outputs first: walking the map for them is the boot's peak, and the
        # RTU server's code is not on the heap yet.
        self.outputs = Outputs(self.bank, profile, driver, None,
                               int(cfg.get("start_delay_s", 0) * 1000),
                               int(cfg.get("start_stagger_s", 0) * 1000))
        self.metering = None
        self.meter_plan = None
        if cfg.get("metering") and profile in ("motor", "compressor"):
            # Resolve the metering registers now, while the map is loaded; the
            # metering code itself is loaded by meterdev.start() after the map
            # has been dropped, so the two never share the heap.
            names = ("voltage_l1_v", "voltage_l2_v", "voltage_l3_v", "current_l1_a",
                     "current_l2_a", "current_l3_a", "power_kw", "apparent_power_kva",
                     "power_factor", "frequency_hz", "energy_kwh", "thd_i_pct")
            found = self.bank.lookup(names)
            self.meter_plan = ([(None, f[0], f[1], f[2], f[3]) for f in found],
                               self.bank.quality_slots(names))
        import gc
        gc.collect()  # the map walks' garbage, before the RTU code loads
        from modbus_rtu import RtuServer
        gc.collect()  # the import's garbage, before the server's buffers
        self.rtu = RtuServer(self.bank, cfg["unit"], cfg["baud"], ident)
        if cfg.get("settings_key"):
            self.rtu.key1, self.rtu.key2 = cfg["settings_key"]
        if cfg.get("settings_locked"):
            self.rtu.key_locked = True
            self.rtu.show_lock()
        self.wdt = wdt
        self.sup = Supervisor(self.bank, self.rtu, self.outputs, wdt, reset_cause, ticks_ms())
        self._chunk = bytearray(64)
        self.jobs = []  # [fn(now_ms), period_ms, next due, supervisor bit]
    def add_job(self, fn, period_ms):
        """A periodic job fn(now_ms) run by the main loop between frames."""
        self.jobs.append([fn, period_ms, ticks_ms(), 0])

    def _wdt_job(self, now_ms):
        if self.wdt.expired(now_ms):
            self.wdt.fire()

    def run(self):
        """The main loop (never returns): serve the line, run due jobs between
        frames, wait on the UART until the next job is due.

        A superloop, not asyncio: no scheduler or task objects on the heap, and
        nothing allocated per pass. Every job and the line server report to the
        supervisor, which feeds the watchdog only when all have run, so a job
        starved by the line (or a hung pass) resets the board.
        """
        import select
        sup, rtu, uart, chunk = self.sup, self.rtu, self.uart, self._chunk
        self.add_job(sup.tick, _SUP_PERIOD_MS)
        if self.wdt is not None:
            self.add_job(self._wdt_job, _WDT_PERIOD_MS)
        jobs = self.jobs
        for j in jobs:
            j[3] = sup.register()
        bit = sup.register()
        poller = select.poll()
        poller.register(uart.port, select.POLLIN)
        hup = select.POLLHUP | select.POLLERR
        print("greenedge device: %s unit %d ready" % (self.cfg["profile"], self.cfg["unit"]))
        while True:
            sup.report(bit)
            # Every pass runs what is due, frame in progress or not: a line
            # that never falls silent (noise, a babbling node) cannot starve
            # the supervisor tick, the comm-loss check or the watchdog feed.
            now = ticks_ms()
            wait = 1000
            for j in jobs:
                d = ticks_diff(j[2], now)
                if d <= 0:
                    sup.report(j[3])
                    j[0](now)
                    nxt = ticks_add(j[2], j[1])
                    j[2] = nxt if ticks_diff(nxt, now) > 0 else ticks_add(now, j[1])
                    d = ticks_diff(j[2], now)
                if d < wait:
                    wait = d
            w = rtu.wait_us(ticks_us())
            if w < 0:
                # Nothing due on the line: wait for bytes until the next job.
                for ev in poller.ipoll(wait):
                    if ev[1] & hup:
                        # The port hung up (the unix port's tty closed): poll
                        # would return at once forever. Sleep to the next job;
                        # the jobs (comm-loss safe state, watchdog) go on.
                        sleep_ms(wait)
                    break
                k = uart.readinto(chunk)
            else:
                # A reply (or a frame end by silence) is due within 3.5
                # characters: watch the line in 100 us steps (a short busy
                # wait on a board, a nanosleep on the unix port).
                k = uart.readinto(chunk)
                if not k and w > 0:
                    sleep_us(_STEP_US if w > _STEP_US else w)
                    k = uart.readinto(chunk)
            rtu.feed(chunk, k, ticks_us())
            while k == len(chunk):
                # The read filled its chunk: more was waiting. Take it all now,
                # before any job runs (a job between the two reads would hide
                # a real silence behind the full read and merge two frames).
                k = uart.readinto(chunk)
                rtu.feed(chunk, k, ticks_us())
            # A reply held back while the master already sends again goes out
            # now, before the next frame for this unit is handled.
            while rtu.reply_n and rtu.backlog():
                uart.write(rtu.tx, rtu.take())
                rtu.resume()
            r = rtu.poll(ticks_us())
            if r:
                uart.write(rtu.tx, r)
                if rtu.backlog():
                    rtu.resume()
