"""Metering task of a device: the meter, its sample source and the registers.

Loaded only on boards with metering (motor and compressor profiles). Every
10 ms (a job of the device's main loop) it feeds the sets due at set_rate_hz through the viper kernel and
publishes each finished block (5 mains cycles) to the metering registers with
quality; energy is persisted in steps (persist.EnergyStore). On the unix port
the sample source is the synthetic ADC of hal/simadc.py; on a board, a
hardware-paced ADC with the same fill(buf, nsets) interface.
"""

from time import ticks_diff, ticks_us

from micropython import const

_METER_KEYS = ("v1", "v2", "v3", "i1", "i2", "i3", "p", "s", "pf", "freq", "wh", "thd_i")
_CHUNK = const(32)


class MeteringTask:
    def __init__(self, dev, adc, store, plan):
        self.dev = dev
        self.bank = dev.bank
        self.outputs = dev.outputs
        self.cfg = cfg = dev.cfg
        self.adc = adc
        self.store = store
        from array import array
        from metering import Meter
        self.set_rate = cfg.get("set_rate_hz", 2400)
        rated_kw = cfg.get("rated_kw", 160.0)
        v_pk = 230.0 * 1.41421356
        i_rated_pk = rated_kw * 1000.0 / (1.7320508 * 400.0 * 0.86) * 1.41421356
        # Calibration: 1500 counts = 230 V rms peak; 1800 counts = rated current peak.
        self.cal_v = v_pk / 1500.0
        self.cal_i = i_rated_pk / 1800.0
        self.rated_kw = rated_kw
        start_wh = self.store.saved if self.store is not None else 0
        self.meter = Meter(self.set_rate, cfg.get("nominal_hz", 50), 5,
                           [self.cal_v] * 3 + [self.cal_i] * 3, energy_wh=start_wh)
        self.sbuf = array("H", bytes(12 * _CHUNK))
        self.m_where, self.m_slots = plan  # resolved by Device (map order: _METER_KEYS)
        self.sets = 0
        self.t_last = self.t_rep = ticks_us()
        self.owed = 0  # sets due, in units of 1/1e6 set
        self.sets_rep = 0
        self.report = cfg.get("metering") == 2  # diagnostic: a status line every 5 s

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

    def _publish(self, r):
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
            self.store.maybe_save(r["wh"])

    def step(self, now_ms):
        """Every 10 ms (a job of the main loop): feed the sets due at set_rate_hz
        since the last step (the sim ADC stands in for a hardware-paced ADC),
        publish each finished block to the registers."""
        meter, adc, buf = self.meter, self.adc, self.sbuf
        self._load_model()
        now = ticks_us()
        self.owed += ticks_diff(now, self.t_last) * self.set_rate
        self.t_last = now
        while self.owed >= 1000000 * _CHUNK:
            adc.fill(buf, _CHUNK)
            meter.feed(buf, _CHUNK)
            self.sets += _CHUNK
            self.owed -= 1000000 * _CHUNK
            r = meter.poll()
            if r is not None:
                self._publish(r)
        if self.report and ticks_diff(now, self.t_rep) >= 5000000:
            import gc
            gc.collect()  # what stays live (the rest of the heap is garbage)
            print("metering: %d sets in %d ms, backlog %d sets, heap live %d of %d"
                  % (self.sets - self.sets_rep, ticks_diff(now, self.t_rep) // 1000,
                     self.owed // 1000000, gc.mem_alloc(), gc.mem_alloc() + gc.mem_free()))
            self.t_rep = now
            self.sets_rep = self.sets


def start(dev):
    """Second boot stage (main.py), after the register map and the boot code
    have left the heap: attach the sample source and the energy store."""
    cfg = dev.cfg
    if dev.meter_plan is None or cfg["hal"] != "sim":
        return  # boards: a hardware-paced ADC HAL plugs in here
    from hal.simadc import Adc
    store = None
    if cfg["state_dir"]:
        from persist import EnergyStore
        store = EnergyStore(cfg["state_dir"] + "/energy_%d.dat" % cfg["unit"], cfg["energy_step_wh"])
    dev.metering = MeteringTask(dev, Adc(cfg["set_rate_hz"]), store, dev.meter_plan)
    dev.add_job(dev.metering.step, 10)
    dev.meter_plan = None
