"""STM32 HAL (Pyboard-class boards): RS-485 UART with a driver-enable pin, WDT.

On STM32 a UART's pins are fixed by its id, so tx/rx from the config are ignored.
"""

import machine
from machine import UART, Pin, WDT


class Uart:
    def __init__(self, uart_id, tx, rx, de, baud, parity=0):
        self.port = UART(uart_id, baudrate=baud, bits=8, parity=parity, stop=1,
                         timeout=0, rxbuf=512)
        self.de = Pin(de, Pin.OUT, value=0)

    def readinto(self, buf):
        n = self.port.readinto(buf)
        return n or 0

    def write(self, buf, n):
        self.de.value(1)
        self.port.write(memoryview(buf)[:n])
        self.port.flush()
        self.de.value(0)


class Wdt:
    def __init__(self, timeout_ms):
        self.wdt = WDT(timeout=timeout_ms)

    def feed(self):
        self.wdt.feed()

    def expired(self, now_ms):
        return False

    def fire(self):
        pass


def reset_cause(arg=None):
    c = machine.reset_cause()
    if c == machine.WDT_RESET:
        return 1
    if c == machine.PWRON_RESET:
        return 0
    if c == machine.SOFT_RESET:
        return 2
    if c == machine.HARD_RESET:
        return 3
    return 5
