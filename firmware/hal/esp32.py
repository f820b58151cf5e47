"""ESP32 HAL: RS-485 UART with a driver-enable pin, hardware watchdog.

The ESP32 UART driver can drive DE itself in RS-485 half-duplex mode on some
ports; DE is driven as a plain pin (hal/rs485.py) so the same wiring works
everywhere.
"""

from machine import ADC, PWM, UART, Pin

from hal.rs485 import Rs485, Wdt, reset_cause as _reset_cause  # noqa: F401  (Wdt re-exported)


def Uart(uart_id, tx, rx, de, baud, parity=0):
    return Rs485(UART(uart_id, baudrate=baud, bits=8, parity=parity, stop=1,
                      tx=tx, rx=rx, timeout=0, rxbuf=512), de)


def reset_cause(arg=None):
    return _reset_cause(("PWRON_RESET", "WDT_RESET", "SOFT_RESET", "HARD_RESET",
                         "DEEPSLEEP_RESET"))


def ain(pin):
    return ADC(Pin(pin), atten=ADC.ATTN_11DB)  # 0..3.1 V


def din(pin):
    return Pin(pin, Pin.IN, Pin.PULL_UP)


def dout(pin):
    return Pin(pin, Pin.OUT, value=0)


def aout(pin, freq):
    return PWM(Pin(pin), freq=freq, duty_u16=0)
