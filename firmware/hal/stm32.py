"""STM32 HAL (Pyboard-class boards): RS-485 UART with a driver-enable pin, WDT.

On STM32 a UART's pins are fixed by its id, so tx/rx from the config are ignored.
"""

from machine import ADC, UART, Pin

from hal.rs485 import Rs485, Wdt, reset_cause as _reset_cause  # noqa: F401  (Wdt re-exported)


def Uart(uart_id, tx, rx, de, baud, parity=0):
    return Rs485(UART(uart_id, baudrate=baud, bits=8, parity=parity, stop=1,
                      timeout=0, rxbuf=512), de)


def reset_cause(arg=None):
    return _reset_cause(("PWRON_RESET", "WDT_RESET", "SOFT_RESET", "HARD_RESET"))


def ain(pin):
    return ADC(Pin(pin))


def din(pin):
    return Pin(pin, Pin.IN, Pin.PULL_UP)


def dout(pin):
    return Pin(pin, Pin.OUT, value=0)


class _Dac:
    """An analog output on the STM32's 12-bit DAC (pins X5, X6 on a pyboard),
    into a V-to-4-20 mA converter; duty_u16 like a PWM's."""

    def __init__(self, pin):
        import pyb
        self.dac = pyb.DAC(Pin(pin), bits=12)
        self.dac.write(0)

    def duty_u16(self, d):
        self.dac.write(d >> 4)


def aout(pin, freq):
    return _Dac(pin)  # freq: a DAC has none
