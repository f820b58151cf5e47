"""The data hub: one in-process publish/subscribe point between the runtime and
everything that watches it (historian, status line, and the northbound
interfaces: HMI, OPC UA, Sparkplug, Prometheus).

Topics and what a value is:
    device  key = device name   {"up": bool, "points": {point: (value, quality, source wall s)}}
    loop    key = loop name     {"mode", "runs", "held", "errors", "cmds", "t_s"}
    kpi     key = "kpis"        the live accounting's figures
    status  key = "service"     lines, groups, devices (once a second)
    event   (stream)            {"t_s", "kind", "source", "text"}
    audit   (stream)            one record per command through the gate
    alarm   (stream)            one record per alarm state change (controller/alarms/engine.py:
                                id, old, new, value, who, reason, priority, t_s)

Two kinds of topic. State topics keep the newest value per key: a
subscriber that falls behind sees the latest state, and every value it never
saw is counted in `dropped`. Stream topics queue every item in a bounded
deque (maxlen per subscription); on overflow the oldest is dropped and
counted. publish() never blocks and never waits on a subscriber: it costs a
dict store (or deque append) per subscription under one uncontended lock, so a
slow or stuck subscriber cannot delay the control cycle. Subscribers drain
from their own task or thread: drain() returns what is new; wait(timeout)
blocks a thread until something is (wait_async for an asyncio task).

The hub also keeps the latest value of every state key (latest()), so an
interface that connects late starts from the current state.
"""

import asyncio
import threading
from collections import deque

STATE = ("device", "loop", "kpi", "status")
STREAM = ("event", "audit", "alarm")


class Subscription:
    def __init__(self, hub, name, topics, maxlen):
        self.hub, self.name = hub, name
        self.topics = frozenset(topics)
        self._state = {}                # (topic, key) -> value
        self._stream = deque(maxlen=maxlen)
        self.received = 0
        self.dropped = 0
        self._ready = threading.Event()

    def _put_state(self, topic, key, value):
        k = (topic, key)
        if k in self._state:
            self.dropped += 1  # the newest wins: the older value was never seen
        self._state[k] = value
        self.received += 1
        self._ready.set()

    def _put_stream(self, topic, item):
        if len(self._stream) == self._stream.maxlen:
            self.dropped += 1
        self._stream.append((topic, item))
        self.received += 1
        self._ready.set()

    def drain(self):
        """(state {(topic, key): value}, stream [(topic, item)]) since the last drain."""
        with self.hub._lock:
            state, self._state = self._state, {}
            stream = list(self._stream)
            self._stream.clear()
            self._ready.clear()
        return state, stream

    def wait(self, timeout):
        """Block this (subscriber's) thread until something is new or timeout s."""
        return self._ready.wait(timeout)

    async def wait_async(self, timeout):
        """An asyncio subscriber's wait: polls the flag (publish may come from
        any thread) every 20 ms up to timeout s."""
        t = 0.0
        while not self._ready.is_set() and t < timeout:
            await asyncio.sleep(0.02)
            t += 0.02
        return self._ready.is_set()

    def close(self):
        self.hub.unsubscribe(self)


class Hub:
    def __init__(self):
        self._lock = threading.Lock()
        self._subs = []
        self._latest = {t: {} for t in STATE}
        self.published = 0

    def subscribe(self, name, topics, maxlen=10000):
        bad = set(topics) - set(STATE) - set(STREAM)
        if bad:
            raise ValueError("no hub topic %s (topics: %s)"
                             % (", ".join(sorted(bad)), ", ".join(STATE + STREAM)))
        sub = Subscription(self, name, topics, maxlen)
        with self._lock:
            self._subs.append(sub)
        return sub

    def unsubscribe(self, sub):
        with self._lock:
            if sub in self._subs:
                self._subs.remove(sub)

    def publish(self, topic, key, value):
        """A state topic's newest value for key."""
        with self._lock:
            self._latest[topic][key] = value
            self.published += 1
            for s in self._subs:
                if topic in s.topics:
                    s._put_state(topic, key, value)

    def emit(self, topic, item):
        """One item of a stream topic (event, audit, alarm)."""
        if topic not in STREAM:
            raise ValueError("%s is not a stream topic" % topic)
        with self._lock:
            self.published += 1
            for s in self._subs:
                if topic in s.topics:
                    s._put_stream(topic, item)

    def latest(self, topic):
        with self._lock:
            return dict(self._latest[topic])

    def stats(self):
        with self._lock:
            return {s.name: {"received": s.received, "dropped": s.dropped} for s in self._subs}
