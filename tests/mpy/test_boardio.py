"""Board I/O (boardio.py) on the real MicroPython VM against simulated field
devices: 4-20 mA transmitters through a 150 ohm shunt into a 12-bit ADC at
3.3 V (left-justified read_u16 like machine.ADC), contacts on input pins, a
relay pin and a PWM-to-4-20 mA converter on the outputs."""

from time import ticks_add, ticks_ms

from mpytest import check, finish

import boardio
from device import Device


class Transmitter:
    """A 4-20 mA loop into a shunt: read_u16 as machine.ADC returns it."""

    def __init__(self, ma):
        self.ma = ma

    def read_u16(self):
        counts = int(self.ma / 1000 * 150.0 / 3.3 * 4095 + 0.5)
        return min(counts, 4095) << 4


class Contact:
    def __init__(self, v=0):
        self.v = v

    def value(self, v=None):
        if v is None:
            return self.v
        self.v = v


class Pwm:
    def __init__(self):
        self.duty = None

    def duty_u16(self, d):
        self.duty = d


class Hal:
    """The board HAL's pin factories (hal/rp2.py, esp32.py, stm32.py), here
    handing out the simulated field devices by pin."""

    def __init__(self):
        self.pins = {}

    def _get(self, pin, make):
        if pin not in self.pins:
            self.pins[pin] = make()
        return self.pins[pin]

    def ain(self, pin):
        return self._get(pin, lambda: Transmitter(4.0))

    def din(self, pin):
        return self._get(pin, Contact)

    def dout(self, pin):
        return self._get(pin, Contact)

    def aout(self, pin, freq):
        return self._get(pin, Pwm)


class Uart:
    port = None


cfg = {"profile": "scr", "unit": 1, "baud": 115200, "comm_loss_timeout_s": None, "model": "",
       "hal": "esp32",
       "ain": [{"point": "flue_gas_temp_c", "pin": 32, "lo": 0, "hi": 500},
               {"point": "flue_gas_flow_nm3h", "pin": 33, "lo": 0, "hi": 2500000},
               {"point": "nox_out_mg_nm3", "pin": 34, "lo": 0, "hi": 200, "tau_s": 0,
                "status": ["analyzer_blowback", "analyzer_cal"]},
               {"point": "nox_in_mg_nm3", "pin": 35, "lo": 0, "hi": 800},
               {"point": "nh3_flow_kgh", "pin": 36, "lo": 0, "hi": 400}],
       "din": {"analyzer_blowback": 16, "analyzer_fault": {"pin": 17, "invert": True}},
       "outputs": {"valve_cmd_pct": {"pin": 25, "freq": 2000}, "dosing_enable": 26}}
hal = Hal()
dev = Device(cfg, Uart())
t0 = ticks_ms()


def at(ms):
    return ticks_add(t0, ms)

io = boardio.start(dev, hal, cfg)
bank = dev.bank
check("one input job", len(dev.jobs), 1)

hal.pins[32].ma = 4.0 + 16 * 350 / 500      # 350 C
hal.pins[33].ma = 4.0 + 16 * 0.8            # 2.0e6 Nm3/h
hal.pins[34].ma = 12.0                      # 100 mg/Nm3
hal.pins[35].ma = 4.0 + 16 * 300 / 800      # inlet NOx 300 mg/Nm3
hal.pins[36].ma = 4.0 + 16 * 50 / 400       # NH3 50 kg/h: under its ceiling
hal.pins[17].v = 1                          # fault contact closed = healthy (inverted)
io.step(at(100))
check("temperature from the loop", round(bank.get("flue_gas_temp_c")), 350)
check("NOx from the loop", round(bank.get("nox_out_mg_nm3")), 100)
slot = bank.quality_slot("nox_out_mg_nm3")
check("NOx good", bank.get_quality(slot), 0)
check("fault input inverted", bank.get("analyzer_fault"), 0)

hal.pins[16].v = 1                          # blow-back contact
io.step(at(200))
check("blow-back -> NOx uncertain", bank.get_quality(slot), 1)
check("blow-back input", bank.get("analyzer_blowback"), 1)
hal.pins[16].v = 0
hal.pins[34].ma = 1.0                       # wire break
io.step(at(300))
check("wire break -> bad, value held", (bank.get_quality(slot), round(bank.get("nox_out_mg_nm3"))),
      (2, 100))

# Outputs: the driver hook puts what the Outputs block decides on the pins.
bank.set("valve_rate_pct_s", 100.0)
bank.set("valve_cmd_pct", 50.0)
bank.co[0] = 1
bank.hr[0] = 1  # armed
dev.outputs.update(at(1000))
check("valve PWM at 50 %", hal.pins[25].duty, 32767)
check("dosing relay on", hal.pins[26].v, 1)
hal.pins[32].ma = 4.0 + 16 * 280 / 500      # catalyst too cold
io.step(at(1100))
dev.outputs.update(at(1200))
check("interlock: valve PWM 0", hal.pins[25].duty, 0)
check("interlock: dosing relay off", hal.pins[26].v, 0)
bank.hr[0] = 0  # disarmed: safe state (valve_safe 0 %, dosing off)
hal.pins[32].ma = 4.0 + 16 * 350 / 500
io.step(at(1300))
dev.outputs.update(at(1400))
check("safe state on the pins", (hal.pins[25].duty, hal.pins[26].v), (0, 0))
finish()
