"""Metering boot (main.py's second stage; dropped from the heap afterwards):
the board's sample source, the meter with its calibration, the energy store.

Calibration per channel (cal_v, cal_i: V and A per ADC count) and the current
sensors' phase lead (phase_deg) come from the board config; the multiplexing
delay between a phase's V and I samples comes from the source; the sim ADC's
calibration follows rated_kw.
"""


def sim_calibration(rated_kw):
    """Sim ADC: 1500 counts = 230 V rms peak; 1800 counts = rated current peak."""
    v_pk = 230.0 * 1.41421356
    i_rated_pk = rated_kw * 1000.0 / (1.7320508 * 400.0 * 0.86) * 1.41421356
    return [v_pk / 1500.0] * 3, [i_rated_pk / 1800.0] * 3


def _adc(cfg, burst_sets):
    """The board's sample source (config adc_pins), or the sim ADC."""
    hal, rate = cfg["hal"], cfg["set_rate_hz"]
    if hal == "rp2":
        from hal.adc_rp2 import Adc
        return Adc(rate, cfg["adc_pins"])
    if hal == "esp32":
        from hal.adc_esp32 import Adc
        return Adc(rate, cfg["adc_pins"])
    if hal == "stm32":
        from hal.adc_stm32 import Adc
        return Adc(rate, cfg["adc_pins"], burst_sets)
    from hal.simadc import Adc
    return Adc(rate, burst=bool(cfg["adc_burst"]))


def start(dev):
    """Second boot stage (main.py), after the register map and the boot code
    have left the heap: attach the sample source and the energy store.

    The big buffers come first (the sample buffer, the meter's wave buffer),
    while the heap still has the register map's space in one piece; the code
    loads after them into what is left."""
    cfg = dev.cfg
    if dev.meter_plan is None:
        return
    import gc
    from metering import Meter, burst_sets, phase_comp
    rate, nominal = cfg["set_rate_hz"], cfg["nominal_hz"]
    burst = cfg["hal"] in ("esp32", "stm32") or bool(cfg["adc_burst"])
    cycles = cfg["block_cycles"] or (1 if burst else 5)
    nbuf = burst_sets(rate, nominal, cycles) if burst else 32
    sbuf = bytearray(12 * nbuf)  # sets of 6 u16 (the kernels take ptr16)
    cal_v, cal_i = cfg["cal_v"], cfg["cal_i"]
    if cal_v is None:
        cal_v, cal_i = sim_calibration(cfg["rated_kw"])
    meter = Meter(rate, nominal, cycles, list(cal_v) + list(cal_i),
                  noac_cycles=cycles * 1.12 + 0.3 if burst else None)
    gc.collect()  # each module load leaves its file buffer behind
    adc = _adc(cfg, nbuf)
    lead = cfg["phase_deg"] or (0.0, 0.0, 0.0)
    meter.set_phase([phase_comp(lead[p], adc.mux_delay(p), rate, nominal) for p in range(3)])
    gc.collect()
    from meterdev import MeteringTask
    gc.collect()
    store = None
    if cfg["state_dir"]:
        from persist import EnergyStore
        from time import ticks_ms
        store = EnergyStore(cfg["state_dir"] + "/energy_%d.dat" % cfg["unit"], cfg["energy_step_wh"],
                            cfg["flash_cycles"], cfg["flash_life_years"], ticks_ms())
        meter.energy_wh = store.saved
    dev.metering = MeteringTask(dev, adc, meter, store, dev.meter_plan, sbuf, nbuf)
    dev.meter_plan = None
    dev.add_job(dev.metering.step, 10)
