"""RP2040 HAL: RS-485 UART with a driver-enable pin, hardware watchdog.

Thin on purpose: all logic lives in the shared modules and is tested on the unix
port. The DE pin is raised for the reply and dropped after the last stop bit
(UART.flush waits for the transmit FIFO and shift register to empty).
"""

import machine
from machine import UART, Pin, WDT


class Uart:
    def __init__(self, uart_id, tx, rx, de, baud, parity=0):
        self.port = UART(uart_id, baudrate=baud, bits=8, parity=parity, stop=1,
                         tx=Pin(tx), rx=Pin(rx), timeout=0, rxbuf=512)
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
        self.wdt = WDT(timeout=min(timeout_ms, 8388))

    def feed(self):
        self.wdt.feed()

    def expired(self, now_ms):
        return False  # the hardware resets by itself

    def fire(self):
        pass


def reset_cause(arg=None):
    c = machine.reset_cause()
    if c == machine.WDT_RESET:
        return 1
    if c == machine.PWRON_RESET:
        return 0
    return 5
