"""Board I/O: the profile's field signals on a board's pins.

Config (the board file, see boards/):
- "ain": 4-20 mA inputs through a shunt into an ADC pin, each feeding one
  measured point: {"point", "pin", "lo", "hi" (values at 4 and 20 mA), "tau_s"
  (filter), "counts_per_ma", "offset" (12-bit counts; 186.2 = 150 ohm at 3.3 V),
  "status": [discrete points that make the reading uncertain, e.g. the
  analyzer's blow-back]}. NAMUR NE43 quality per reading (analog.py).
- "din": {discrete point: pin or {"pin", "invert"}}: e.g. drive fault,
  analyzer blow-back. Output feedbacks are the outputs' own (outputs.py).
- "outputs": {command point: pin or {"pin", "freq"}}: a bit output drives a relay
  pin; an analog output (speed reference, valve, feeder) a PWM pin (a DAC on
  STM32) with duty = value / full scale, into a PWM-to-4-20 mA converter.

Inputs are read every 100 ms by a job of the main loop; outputs are written by
the Outputs block's driver hook whenever it moves them. Built at boot while the
register map is loaded (names resolve to addresses then).
"""

from time import ticks_diff, ticks_ms

from analog import AnalogInput

PERIOD_MS = 100


def _pin(spec, key):
    return spec[key] if isinstance(spec, dict) else spec


class BoardIO:
    def __init__(self, dev, hal, cfg):
        import regmap
        bank = dev.bank
        self.bank = bank
        self.ain = []  # (AnalogInput, adc, [status DI addresses])
        for a in cfg["ain"] or ():
            ai = AnalogInput(bank, a["point"], a["lo"], a["hi"], a.get("tau_s", 0.0),
                             a.get("counts_per_ma", 186.2), a.get("offset", 0.0))
            st = [f[1] for f in bank.lookup(a.get("status", ()))]
            self.ain.append((ai, hal.ain(a["pin"]), st))
        self.din = []  # (DI address, pin, invert)
        for name, spec in (cfg["din"] or {}).items():
            inv = 1 if isinstance(spec, dict) and spec.get("invert") else 0
            self.din.append((bank.lookup((name,))[0][1], hal.din(_pin(spec, "pin")), inv))
        outs = regmap.outputs(cfg["profile"])
        self.out = [None] * len(outs)  # per output: (kind, device, full scale raw)
        want = cfg["outputs"] or {}
        for i in range(len(outs)):
            name = outs[i][0]
            if name not in want:
                continue
            spec = want[name]
            table, _, _, scale = bank.lookup((name,))[0]
            if table == regmap.COIL or scale == 1:
                self.out[i] = (0, hal.dout(_pin(spec, "pin")), 1)
            else:
                full = 100.0 / scale  # raw value of 100 %
                freq = spec.get("freq", 1000) if isinstance(spec, dict) else 1000
                self.out[i] = (1, hal.aout(_pin(spec, "pin"), freq), full)
        self.t_last = ticks_ms()

    def drive(self, i, raw):
        """Outputs' driver hook: put output i's value (register raw) on its pin."""
        o = self.out[i]
        if o is None:
            return
        if o[0] == 0:
            o[1].value(1 if raw else 0)
        else:
            d = int(raw * 65535 / o[2])
            o[1].duty_u16(0 if d < 0 else (65535 if d > 65535 else d))

    def step(self, now_ms):
        """Every 100 ms (a job of the main loop): read the inputs."""
        dt = ticks_diff(now_ms, self.t_last) / 1000.0
        self.t_last = now_ms
        di = self.bank.di
        for addr, pin, inv in self.din:
            di[addr] = pin.value() ^ inv
        for ai, adc, st in self.ain:
            unc = False
            for a in st:
                if di[a]:
                    unc = True
            ai.update_counts(adc.read_u16() >> 4, dt, unc)


def start(dev, hal, cfg):
    """Attach board I/O (app.boot, boards only)."""
    io = BoardIO(dev, hal, cfg)
    dev.outputs.driver = io.drive
    dev.add_job(io.step, PERIOD_MS)
    return io
