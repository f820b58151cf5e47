"""One GreenEdge edge service on the fake line as its own process, for
tests/test_site_links.py: `python -m tests.edge_runner DIR SPEEDUP`.

DIR/plant.toml is built as tests/test_site.py builds its in-process edges
(FakeBus of one motor, ScaledClock at SPEEDUP, physics stepped every 50 ms).
Every message the edge hands to paho is appended to DIR/published.jsonl
(topic, paho's rc, the payload in base64), flushed line by line so it
survives SIGKILL: what this edge published, as the edge saw it. Runs until
SIGTERM or SIGINT (the service's own handlers: NDEATH, disconnect), then
prints the edge node's stats() as JSON on stdout."""

import asyncio
import base64
import json
import sys
import time
from pathlib import Path

import paho.mqtt.client as mqtt

from controller.config import load_config
from controller.runtime.service import Service, build_lines
from hil_tests.clock import ScaledClock
from hil_tests.fakeline import FakeBus, FakeDevice


def record(path):
    out = open(path, "a", buffering=1)
    publish = mqtt.Client.publish

    def recorded(self, topic, payload=None, qos=0, retain=False, properties=None):
        info = publish(self, topic, payload, qos, retain, properties)
        out.write(json.dumps({"t": topic, "rc": info.rc, "ms": int(time.time() * 1000),
                              "p": base64.b64encode(payload or b"").decode()}) + "\n")
        return info
    mqtt.Client.publish = recorded


def main(d, speedup):
    d = Path(d)
    record(d / "published.jsonl")
    cfg = load_config(d / "plant.toml")
    bus = FakeBus([FakeDevice("motor", 1)], latency_s=0.001)
    svc = Service(cfg, live=False, historian=False, clock=ScaledClock(speedup, time.time()),
                  lines=build_lines(cfg, None, client_factory=bus.client))

    async def physics():
        while True:
            bus.advance(0.05 * speedup)
            await asyncio.sleep(0.05)

    async def run():
        ph = asyncio.create_task(physics())
        try:
            await svc.run()
        finally:
            ph.cancel()
    asyncio.run(run())
    print(json.dumps(svc.north[0].stats() if svc.north else {}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], float(sys.argv[2]))
