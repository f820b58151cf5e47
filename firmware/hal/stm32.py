"""STM32 HAL (Pyboard-class boards): RS-485 UART with a driver-enable pin, WDT.

On STM32 a UART's pins are fixed by its id, so tx/rx from the config are ignored.
"""

from machine import UART

from hal.rs485 import Rs485, Wdt, reset_cause as _reset_cause  # noqa: F401  (Wdt re-exported)


def Uart(uart_id, tx, rx, de, baud, parity=0):
    return Rs485(UART(uart_id, baudrate=baud, bits=8, parity=parity, stop=1,
                      timeout=0, rxbuf=512), de)


def reset_cause(arg=None):
    return _reset_cause(("PWRON_RESET", "WDT_RESET", "SOFT_RESET", "HARD_RESET"))
