"""RP2040 HAL: RS-485 UART with a driver-enable pin, hardware watchdog.

Thin on purpose: all logic lives in the shared modules and is tested on the unix
port; what boards share is in hal/rs485.py.
"""

from machine import ADC, PWM, UART, Pin

from hal.rs485 import Rs485, Wdt as _Wdt, reset_cause as _reset_cause


def Uart(uart_id, tx, rx, de, baud, parity=0):
    return Rs485(UART(uart_id, baudrate=baud, bits=8, parity=parity, stop=1,
                      tx=Pin(tx), rx=Pin(rx), timeout=0, rxbuf=512), de)


def Wdt(timeout_ms):
    return _Wdt(min(timeout_ms, 8388))  # the RP2040 watchdog's longest period


def reset_cause(arg=None):
    return _reset_cause(("PWRON_RESET", "WDT_RESET"))


def ain(pin):
    return ADC(Pin(pin))  # GPIO26..29


def din(pin):
    return Pin(pin, Pin.IN, Pin.PULL_UP)


def dout(pin):
    return Pin(pin, Pin.OUT, value=0)


def aout(pin, freq):
    p = PWM(Pin(pin), freq=freq, duty_u16=0)
    return p
