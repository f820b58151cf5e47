"""One GreenEdge device: register bank + RTU server + outputs + supervisor.

Tasks (asyncio): the RTU task serves the line; the supervisor task ticks every
50 ms; the watchdog task stands in for a hardware watchdog where there is none.
The RTU task busy-waits only while a frame is in progress (at most the
3.5-character silence), so the reply leaves right after it; otherwise it waits on
the UART through asyncio.
"""

# asyncio is imported by the tasks, not here: main.py loads it after the
# register map has left the heap (it is the largest boot-time user of RAM).
from time import sleep_us, ticks_ms, ticks_us

from regmap import FW_VERSION, VENDOR
from modbus_rtu import RtuServer
from outputs import Outputs
from regbank import RegBank
from supervisor import Supervisor

_SUP_PERIOD_MS = 50
_STEP_US = 100


class Device:
    def __init__(self, cfg, uart, wdt=None, reset_cause=0, driver=None):
        profile = cfg["profile"]
        self.cfg = cfg
        self.uart = uart
        self.bank = RegBank(profile)
        if cfg["comm_loss_timeout_s"] is not None:
            self.bank.set("comm_loss_timeout_s", cfg["comm_loss_timeout_s"])
        ident = (VENDOR, profile, "%d.%d.%d" % FW_VERSION, "",
                 "GreenEdge %s device" % profile, cfg["model"] or cfg["hal"],
                 "unit %d" % cfg["unit"])
        self.rtu = RtuServer(self.bank, cfg["unit"], cfg["baud"], ident)
        self.outputs = Outputs(self.bank, profile, driver)
        self.wdt = wdt
        self.sup = Supervisor(self.bank, self.rtu, self.outputs, wdt, reset_cause, ticks_ms())
        self._chunk = bytearray(64)
        self.metering = None
        self.meter_plan = None
        self.tasks = []  # extra coroutines (plant link), started by run()
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

    async def rtu_task(self):
        bit = self.sup.register()
        sup = self.sup
        rtu = self.rtu
        uart = self.uart
        chunk = self._chunk
        import asyncio
        stream = asyncio.StreamReader(uart.port)
        print("greenedge device: %s unit %d ready" % (self.cfg["profile"], self.cfg["unit"]))
        while True:
            sup.report(bit)
            if rtu.wait_us(ticks_us()) < 0:
                sup.waiting |= bit
                try:
                    k = await stream.readinto(chunk)
                finally:
                    sup.waiting &= ~bit
            else:
                # Inside a frame: watch the line without yielding until the
                # 3.5-character silence is over (at most ~1.75 ms above 19200
                # baud), so the reply leaves on time whatever else is scheduled.
                k = uart.readinto(chunk)
                while not k and rtu.wait_us(ticks_us()) > 0:
                    # 100 us steps: on a board a short busy wait, on the unix
                    # port a nanosleep, so devices sharing a host's cores do
                    # not burn them while the line is busy.
                    sleep_us(_STEP_US)
                    k = uart.readinto(chunk)
            if k:
                rtu.feed(chunk, k, ticks_us())
            r = rtu.poll(ticks_us())
            if r:
                uart.write(rtu.tx, r)
            elif rtu.wait_us(ticks_us()) < 0:
                await asyncio.sleep_ms(0)  # let the other tasks run between frames

    async def supervisor_task(self):
        import asyncio
        bit = self.sup.register()
        while True:
            self.sup.report(bit)
            self.sup.tick(ticks_ms())
            await asyncio.sleep_ms(_SUP_PERIOD_MS)

    async def wdt_task(self):
        import asyncio
        while True:
            if self.wdt.expired(ticks_ms()):
                self.wdt.fire()
            await asyncio.sleep_ms(100)

    async def run(self):
        import asyncio
        asyncio.create_task(self.supervisor_task())
        if self.metering is not None:
            asyncio.create_task(self.metering.run())
        for t in self.tasks:
            asyncio.create_task(t)
        if self.wdt is not None:
            asyncio.create_task(self.wdt_task())
        await self.rtu_task()
