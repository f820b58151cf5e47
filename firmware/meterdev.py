"""Metering task of a device: the meter, its sample source and the registers.

Loaded only on devices with metering (motor and compressor profiles). A job of
the device's main loop every 10 ms: it takes the sets its ADC source has ready
(streaming: sim, RP2040 DMA ring) or, every burst_every_ms, one burst (ESP32,
STM32; each burst one block, energy over the time between bursts), feeds them
through the viper kernel and publishes each finished block to the metering
registers with quality. Energy is persisted in steps within a flash write
budget (persist.EnergyStore).
Built by meterboot.start().
"""

from time import ticks_diff, ticks_ms, ticks_us


_METER_KEYS = ("v1", "v2", "v3", "i1", "i2", "i3", "p", "s", "pf", "freq", "wh", "thd_i")


class MeteringTask:
    def __init__(self, dev, adc, meter, store, plan, sbuf, nbuf):
        """Built by meterboot.start() (boot-only code, dropped afterwards)."""
        self.bank = dev.bank
        self.outputs = dev.outputs
        self.cfg = cfg = dev.cfg
        self.adc = adc
        self.meter = meter
        self.store = store
        self.sbuf = sbuf  # nbuf sets: one burst, or a chunk while streaming
        self.nburst = nbuf
        self.burst_every = cfg["burst_every_ms"]
        self.t_burst = ticks_ms()
        self.m_where, self.m_slots = plan  # resolved by Device (map order: _METER_KEYS)
        self.sets = 0
        self.gaps = 0
        self.t_rep = ticks_us()
        self.sets_rep = 0
        self.report = cfg.get("metering") == 2  # diagnostic: a status line every 5 s
        self.model = cfg["hal"] == "sim"

    def _load_model(self):
        """Sim only, without a plant link: electrical state from what is driven
        (fan law: power ~ speed^3 while running)."""
        on = self.outputs.actual
        if self.cfg["profile"] == "motor":
            running, speed = on[1], on[0] / 10000.0
        else:
            running, speed = on[0], (1.0 if on[1] else 0.3)
        frac = speed ** 3 if running else 0.0
        i_pk = 1800.0 * frac ** 0.5 if frac else 0.0
        self.adc.set_state(1500, i_pk * 0.9, 30.7, 50.0, 0.04)

    def _publish(self, r, now_ms):
        from codec import encode
        bank = self.bank
        for k in range(len(_METER_KEYS)):
            v = r[_METER_KEYS[k]]
            p = self.m_where[k]
            if k == 6 or k == 7:
                v = v / 1000.0  # W -> kW, VA -> kVA
            elif k == 10:
                v = v / 1000.0  # Wh -> kWh
            elif k == 11:
                v = v * 100.0
            try:
                w = encode(p, v)
            except ValueError:
                continue  # beyond the register's range: keep the last value
            regs = bank.ir
            regs[p[2]] = w[0]
            if len(w) > 1:
                regs[p[2] + 1] = w[1]
            q = 0 if (r["ac"] or k < 9) else 2
            bank.set_quality(self.m_slots[k], q)
        if self.store is not None:
            self.store.maybe_save(r["wh"], now_ms)

    def step(self, now_ms):
        """A job of the main loop (every 10 ms): meter what the source has."""
        meter, adc, buf = self.meter, self.adc, self.sbuf
        if self.model:
            self._load_model()
        if adc.burst:
            waited = ticks_diff(now_ms, self.t_burst)
            if waited >= self.burst_every:
                self.t_burst = now_ms
                meter.restart()
                n = adc.take(buf, self.nburst)
                meter.feed(buf, n)
                self.sets += n
                r = meter.poll(waited / 1000.0)
                if r is not None:
                    self._publish(r, now_ms)
        else:
            while True:
                n = adc.take(buf, self.nburst)
                if not n:
                    break
                if adc.gaps != self.gaps:  # samples were lost: not one block across
                    self.gaps = adc.gaps
                    meter.restart()
                meter.feed(buf, n)
                self.sets += n
                r = meter.poll()
                if r is not None:
                    self._publish(r, now_ms)
        if self.report:
            now = ticks_us()
            if ticks_diff(now, self.t_rep) >= 5000000:
                import gc
                gc.collect()  # what stays live (the rest of the heap is garbage)
                backlog = adc.owed // 1000000 if hasattr(adc, "owed") else 0
                print("metering: %d sets in %d ms, backlog %d sets, heap live %d of %d"
                      % (self.sets - self.sets_rep, ticks_diff(now, self.t_rep) // 1000,
                         backlog, gc.mem_alloc(), gc.mem_alloc() + gc.mem_free()))
                self.t_rep = now
                self.sets_rep = self.sets

