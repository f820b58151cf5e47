"""What every board HAL shares: an RS-485 UART with a driver-enable pin, the
hardware watchdog, and reset causes mapped to the register map's codes.

A board module (rp2, esp32, stm32) only builds its machine.UART (pin arguments
differ per port) and says which reset causes its port knows. DE is raised for
the reply and dropped after the last stop bit (UART.flush waits for the
transmit FIFO and the shift register to empty).
"""

import machine
from machine import Pin, WDT


class Rs485:
    def __init__(self, port, de):
        self.port = port
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
        return False  # the hardware resets by itself

    def fire(self):
        pass


def reset_cause(names):
    """Register-map reset code (regmap.RESET_CAUSES order) of machine.reset_cause().

    names: the machine constants this port has, in the code order
    (power_on, watchdog, soft, hard, deep_sleep); anything else is 5 (unknown).
    """
    c = machine.reset_cause()
    for code in range(len(names)):
        if hasattr(machine, names[code]) and c == getattr(machine, names[code]):
            return code
    return 5
