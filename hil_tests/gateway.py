"""Transparent Modbus gateway: RTU frames over TCP <-> a serial line.

What a serial device server (ser2net, an RTU-over-TCP gateway) does: bytes
from the TCP client go to the serial port unchanged and back. The host talks
RTU framing over the socket (line kind "rtu_tcp"); the wire timing is the
serial line's (the virtual line behind the gateway). One client at a time,
like most gateways in transparent mode.
"""

import os
import selectors
import socket
import termios
import threading


class Gateway:
    def __init__(self, tty_path, host="127.0.0.1", port=0):
        self.fd = os.open(tty_path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        attr = termios.tcgetattr(self.fd)
        attr[0] = attr[1] = attr[3] = 0  # raw: no translation, no echo
        attr[2] |= termios.CREAD | termios.CLOCAL
        termios.tcsetattr(self.fd, termios.TCSANOW, attr)
        self.srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.srv.bind((host, port))
        self.srv.listen(1)
        self.address = self.srv.getsockname()
        self.bytes_up = self.bytes_down = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="gateway", daemon=True)
        self._thread.start()

    def _run(self):
        sel = selectors.DefaultSelector()
        sel.register(self.srv, selectors.EVENT_READ, "accept")
        sel.register(self.fd, selectors.EVENT_READ, "tty")
        client = None
        while not self._stop.is_set():
            for key, _ in sel.select(0.2):
                if key.data == "accept":
                    conn, _ = self.srv.accept()
                    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    if client is not None:  # transparent mode: the newest client wins
                        sel.unregister(client)
                        client.close()
                    client = conn
                    sel.register(client, selectors.EVENT_READ, "client")
                elif key.data == "tty":
                    try:
                        data = os.read(self.fd, 4096)
                    except (BlockingIOError, OSError):
                        continue
                    if client is not None and data:
                        self.bytes_down += len(data)
                        try:
                            client.sendall(data)
                        except OSError:
                            pass
                else:
                    try:
                        data = client.recv(4096)
                    except OSError:
                        data = b""
                    if not data:
                        sel.unregister(client)
                        client.close()
                        client = None
                        continue
                    self.bytes_up += len(data)
                    os.write(self.fd, data)
        if client is not None:
            client.close()

    def close(self):
        self._stop.set()
        self._thread.join(timeout=2)
        self.srv.close()
        os.close(self.fd)
