"""The MQTT Sparkplug B 3.0 edge node (`greenedge run --mqtt mqtts://HOST:PORT`).

Size (669 lines): one MQTT session state machine (connect, STATE, births, seq/bdSeq,
rebirth, store-and-forward replay); metric tables and the buffer are in
sparkplug_data.py.

One edge node per service (spBv1.0/<group>/NBIRTH/<node>), one Sparkplug
device per field device (DBIRTH/DDATA/DDEATH/DCMD on .../<node>/<device>).
Payloads are encoded and decoded by pysparkplug (its compiled sparkplug_b.proto);
the MQTT session is paho-mqtt's client, driven by this module's own thread
(paho's loop() called here), so the will, QoS and the order of every packet are
ours and nothing runs on the control cycle's event loop.

Metrics (docs/integration.md has the table):
    device  <point>                     every single-value point of the device's profile
                                        (firmware/regmap.py), datatype from its register
                                        type (bit Boolean, u16 UInt16, i32 Int32, f32
                                        Float, scaled Double), properties engUnit (String)
                                        and Quality (Int32: 192 good, 64 uncertain, 0 bad,
                                        OPC DA codes; stale and device down are bad)
    node    bdSeq, Node Control/Rebirth
            Loops/<loop>/Mode (auto|manual), /State, /Errors, /SP/<key>, /OP/<role>.<point>
            KPIs/<kpi>
            Alarms/<alarm id>/State (String: the ISA-18.2 state of controller/alarms:
            normal, unacknowledged, acknowledged, returned_unacknowledged,
            shelved, suppressed), Alarms/<alarm id>/Priority (UInt32, 1 most
            urgent .. 4), Alarms/Active (UInt32: the alarms unacknowledged or
            acknowledged, the alarm engine's own "active"); every alarm in
            NBIRTH, a state change in the next NDATA stamped with its
            transition's wall time

Session: CONNECT carries the will NDEATH (QoS 1, not retained) with bdSeq, which
goes up by one per CONNECT (0..255); NBIRTH repeats that bdSeq and has seq 0,
every following NBIRTH/DBIRTH/NDATA/DDATA/DDEATH seq + 1 (mod 256). With a
primary host configured, NBIRTH waits for spBv1.0/STATE/<host> {"online": true,
"timestamp": ms} (a STATE older than the newest seen is ignored); online false
while in session: NDEATH, disconnect, start over. Behind a local broker bridged
to the site broker, the bridge's notification on that topic (mosquitto
notification_topic, notifications_local_only) counts too: 0 (the bridge is
down) as offline, 1 as nothing (the host's own STATE follows over the bridge).
NCMD Node Control/Rebirth = true: NBIRTH and every DBIRTH again (same bdSeq,
seq from 0).

Report by exception: the hub is drained every `period_s`; a metric is sent when
its value moved more than its deadband ([mqtt] deadband, absolute, in the
point's unit; default 0: any change) or its quality changed; changes of one
device go in one DDATA (node metrics in one NDATA), each metric with the poll's
timestamp. A device going down sends DDEATH; back up, a fresh DBIRTH.

Commands: NCMD/DCMD metrics named in [mqtt] writable go to the command gate
with the role [mqtt] command_role (default "viewer": the gate refuses every
change, audited). MQTT does not tell a subscriber who published a message, so
the role is the one the broker's ACL grants by letting a client publish on this
node's NCMD/DCMD topics (docs/integration.md: the ACL to deploy). A metric not
writable is refused here (an "mqtt_command_refused" event on the hub).

Store-and-forward (Buffer in controller/north/sparkplug_data.py): while there
is no session (broker unreachable, primary host offline), every change that
would have been sent is written to a SQLite file in the state dir, in order,
with its timestamp; on the next session, after the births, the buffer is sent
oldest first as DDATA/NDATA with is_historical = true, and new changes queue
behind it until it is empty (the order holds). A batch is deleted once paho has
written it to the socket. Bounded at buffer_max rows: beyond it the oldest rows
are dropped and counted (stats() "dropped", one "mqtt_buffer_full" event per
outage).
"""

import json
import logging
import math
import threading
import time

from controller.alarms.engine import ACKED, UNACK
from controller.config.north import parse_broker
from controller.errors import UserError
from controller.north import need
from controller.north.sparkplug_data import (ALARMS_ACTIVE, BAD, QUALITY, REBIRTH, Buffer,
                                             alarm_metric, build_metrics, make_metric)

log = logging.getLogger("greenedge.sparkplug")

NS = "spBv1.0"
FLUSH_ROWS = 200          # historical metrics per message while forwarding
ACTIVE = (UNACK, ACKED)   # what the alarm engine's summary() counts as active


class SparkplugNode:
    """The edge node on its own thread; start() returns once the thread runs
    (the broker may be down: the node keeps trying and buffers), stop() sends
    NDEATH, disconnects and joins."""

    def __init__(self, cfg, mq, hub, gate, period_s=0.1, kpi_keys=()):
        self.cfg, self.mq, self.hub, self.gate = cfg, mq, hub, gate
        self.sp = need("pysparkplug", "--mqtt")
        self.paho = need("paho.mqtt.client", "--mqtt")
        self.period_s = min(1.0, max(0.02, period_s))
        self.tls, self.host, self.port = parse_broker(mq["broker"], "mqtt broker")
        self.group, self.node = mq["group_id"], mq["node_id"]
        self.topic = {k: "%s/%s/%s/%s" % (NS, self.group, k, self.node)
                      for k in ("NBIRTH", "NDEATH", "NDATA", "NCMD", "DBIRTH", "DDATA",
                                "DDEATH", "DCMD")}
        self.state_topic = ("%s/STATE/%s" % (NS, mq["primary_host_id"])
                            if mq.get("primary_host_id") else None)
        self.dev_metrics, self.node_metrics, self.loop_cmd, self.dev_loop = build_metrics(
            self.sp, cfg, mq, kpi_keys)
        self._ssl = self._tls_context(mq) if self.tls else None
        self.buffer = Buffer(cfg.state_dir / "sparkplug_buffer.sqlite", mq["buffer_max"])
        self._thread = None
        self._stop = threading.Event()
        self._client = None
        self.connected = False       # MQTT session up
        self.subscribed = False      # its NCMD/DCMD/STATE subscriptions acknowledged
        self.host_online = self.state_topic is None
        self._host_ts = None         # newest STATE timestamp seen
        self.live = False            # births sent in this session
        self.bd_seq = -1             # of the latest CONNECT
        self.seq = 0
        self._inflight = {}          # mid -> last buffer id of that batch
        self._cmds = []              # commands received (paho callback -> our loop)
        self._lock = threading.Lock()
        self._rebirth = False
        self._host_offline = False
        self._reported = {}          # (device, name) -> (value, quality) last sent or buffered
        self._current = {}           # (device, name) -> (value, quality, ts_ms) newest known
        self._dev_up = {}            # device -> up as last reported
        self._alarm_state = {}       # alarm id -> its state as last seen
        self._full_warned = False
        self._connect_warned = False
        self.sent = {"NBIRTH": 0, "DBIRTH": 0, "NDATA": 0, "DDATA": 0, "DDEATH": 0,
                     "NDEATH": 0, "historical": 0, "metrics": 0}
        self.commands = {"accepted": 0, "refused": 0}
        self.connects = 0
        self.unsent = 0              # buffered values of a device down at forwarding time
        self.publish_s = 0.0

    # ---- lifecycle ----------------------------------------------------------------------
    def start(self):
        self._thread = threading.Thread(target=self._run, name="greenedge-sparkplug",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30.0)

    @staticmethod
    def _tls_context(mq):
        """The broker's certificate and host name checked against ca (else the
        system's CAs); the client certificate if configured. Read once, at start:
        a missing or bad file stops the start with its name."""
        import ssl
        try:
            ctx = ssl.create_default_context(cafile=str(mq["ca"]) if mq.get("ca") else None)
            if mq.get("client_cert"):
                ctx.load_cert_chain(str(mq["client_cert"]), str(mq["client_key"]))
        except (OSError, ssl.SSLError) as e:
            raise UserError("mqtt: cannot load ca %s / client_cert %s: %s"
                            % (mq.get("ca"), mq.get("client_cert"), e)) from None
        return ctx

    def _new_client(self):
        m = self.paho
        mq = self.mq
        c = m.Client(client_id=mq["client_id"], clean_session=True, protocol=m.MQTTv311)
        if mq.get("username"):
            c.username_pw_set(mq["username"], mq.get("password"))
        if self._ssl is not None:
            c.tls_set_context(self._ssl)
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_message = self._on_message
        c.on_publish = self._on_publish
        return c

    def _run(self):
        sub = self.hub.subscribe("sparkplug", ("device", "loop", "kpi"), maxlen=1000)
        # subscribed before the engine's states are read: no transition falls between
        alarms = self.hub.subscribe("sparkplug_alarms", ("alarm",), maxlen=10000)
        for dn, v in self.hub.latest("device").items():
            self._device_sample(dn, v, [])
        self._alarm_sync([], _ms())
        alarms_dropped = 0
        retry_at, backoff = 0.0, 0.5
        next_drain = 0.0
        try:
            while not self._stop.is_set():
                now = time.monotonic()
                if self._client is None and now >= retry_at:
                    if self._connect():
                        backoff = 0.5
                    else:
                        retry_at = now + backoff
                        backoff = min(backoff * 2, 5.0)
                if self._client is not None:
                    try:
                        rc = self._client.loop(timeout=0.02)
                    except OSError as e:   # TLS EOF, reset: paho passes some through
                        rc = "%s" % e
                    if rc != 0 and self._client is not None:
                        self._lost("loop: %s" % (rc,))
                        retry_at = time.monotonic() + backoff
                else:
                    self._stop.wait(0.02)
                if self._host_offline:
                    self._host_offline = False
                    self._event("mqtt_host_offline", self.mq["primary_host_id"])
                    self._ndeath_and_disconnect()
                    self._lost("primary host offline")
                    retry_at = time.monotonic() + backoff
                self._handle_commands()
                if self.connected and self.subscribed and self.host_online and not self.live:
                    self._births()
                if time.monotonic() >= next_drain:
                    next_drain = time.monotonic() + self.period_s
                    resync = alarms.dropped != alarms_dropped   # a flood overflowed the stream
                    alarms_dropped = alarms.dropped
                    self._drain(sub, alarms, resync)
                if self.live and self.buffer.rows and not self._inflight:
                    self._forward()
        except Exception as e:
            log.exception("Sparkplug edge node failed")
            self._event("mqtt_failed", "the edge node stopped: %s: %s" % (type(e).__name__, e))
            raise
        finally:
            sub.close()
            alarms.close()
            self._shutdown()

    def _connect(self):
        """One CONNECT; bdSeq goes up only when a CONNECT packet was sent (a
        refused TCP connection sends none)."""
        bd = (self.bd_seq + 1) % 256
        c = self._new_client()
        will = self.sp.NDeath(timestamp=_ms(), bd_seq_metric=self._bdseq_metric(bd))
        c.will_set(self.topic["NDEATH"], will.encode(include_dtypes=True), qos=1, retain=False)
        self.connects += 1
        try:
            c.connect(self.host, self.port, keepalive=self.mq["keepalive_s"])
        except (OSError, ValueError) as e:
            log.info("MQTT %s:%d: %s", self.host, self.port, e)
            if not self._connect_warned:   # once per outage: the first reason
                self._connect_warned = True
                self._event("mqtt_connect_failed", "%s:%d: %s" % (self.host, self.port, e))
            return False
        self._connect_warned = False
        self.bd_seq = bd
        self._client = c
        return True

    def _bdseq_metric(self, bd=None):
        return self.sp.Metric(timestamp=_ms(), name="bdSeq", datatype=self.sp.DataType.INT64,
                              value=self.bd_seq if bd is None else bd)

    def _on_connect(self, client, userdata, flags, rc):
        if rc != 0:
            log.warning("MQTT broker refused the connection: %s", self.paho.connack_string(rc))
            self._event("mqtt_refused", self.paho.connack_string(rc))
            return
        self.connected = True
        self.subscribed = False
        client.on_subscribe = self._on_subscribe
        client.subscribe([(self.topic["NCMD"], 1), (self.topic["DCMD"] + "/+", 1)]
                         + ([(self.state_topic, 1)] if self.state_topic else []))
        self._event("mqtt_connected", "%s:%d bdSeq %d" % (self.host, self.port, self.bd_seq))

    def _on_subscribe(self, client, userdata, mid, granted_qos):
        # 3.0: NCMD (rebirth requests) and DCMD subscribed before the NBIRTH
        self.subscribed = True

    def _on_disconnect(self, client, userdata, rc):
        self.connected = False

    def _lost(self, why):
        c, self._client = self._client, None
        if c is not None:
            try:
                c.socket() and c.disconnect()
            except (OSError, ValueError):
                pass
        if self.connected or self.live:
            self._event("mqtt_lost", why)
        self.connected = self.live = False
        self.host_online = self.state_topic is None
        self._inflight.clear()

    def _ndeath_and_disconnect(self):
        """NDEATH (QoS 1, waits up to 5 s for it to be written) and DISCONNECT."""
        c = self._client
        if c is None or not self.connected:
            return
        try:
            d = self.sp.NDeath(timestamp=_ms(), bd_seq_metric=self._bdseq_metric())
            info = c.publish(self.topic["NDEATH"], d.encode(include_dtypes=True), qos=1)
            self.sent["NDEATH"] += 1
            t_end = time.monotonic() + 5.0
            while not info.is_published() and time.monotonic() < t_end:
                if c.loop(timeout=0.05) != 0:
                    break
            c.disconnect()
            c.loop(timeout=0.05)
        except OSError as e:   # the link is going anyway: the broker sends our will
            log.info("NDEATH not sent: %s", e)

    def _shutdown(self):
        self._ndeath_and_disconnect()
        self._client = None
        self.connected = self.live = False
        self.buffer.close()

    # ---- MQTT callbacks (called inside our loop()) ------------------------------------
    def _on_message(self, client, userdata, msg):
        if self.state_topic is not None and msg.topic == self.state_topic:
            self._on_state(msg.payload)
            return
        with self._lock:
            self._cmds.append((msg.topic, msg.payload))

    def _on_state(self, payload):
        if payload in (b"0", b"1"):
            # mosquitto's bridge notification on an edge PC's local broker
            # (notification_topic = this STATE topic, notifications_local_only
            # true: tests/test_site_links.py BridgedBroker): 0, the bridge to
            # the site broker is down, so the host is out of reach (buffer, as
            # for a host offline); 1, the bridge is up, which is not the host
            # online: its own STATE comes over the bridge next
            if payload == b"0" and (self.live or self.host_online):
                self.host_online = False
                self._host_offline = True
            return
        try:
            s = json.loads(payload.decode())
            online, ts = bool(s["online"]), int(s["timestamp"])
        except (ValueError, KeyError, TypeError, UnicodeDecodeError):
            log.warning("STATE from the primary host is not {online, timestamp}: %r", payload)
            return
        if self._host_ts is not None and ts < self._host_ts:
            return   # an older STATE than one already seen
        self._host_ts = ts
        if online:
            self.host_online = True
        elif self.live or self.host_online:
            self.host_online = False
            self._host_offline = True   # acted on in our loop, not inside paho's callback

    def _on_publish(self, client, userdata, mid):
        last = self._inflight.pop(mid, None)
        if last is not None:
            self.buffer.delete_upto(last)

    # ---- births -------------------------------------------------------------------------
    def _publish(self, kind, payload, device=None):
        t0 = time.perf_counter()
        topic = self.topic[kind] + ("/" + device if device else "")
        try:
            info = self._client.publish(topic, payload.encode(include_dtypes=True), qos=0,
                                        retain=False)
        except OSError:   # the link went under us: the caller keeps what it sent
            info = _FAILED
        self.sent[kind] += 1
        self.publish_s += time.perf_counter() - t0
        return info

    def _next_seq(self):
        s = self.seq
        self.seq = (self.seq + 1) % 256
        return s

    def _births(self):
        sp = self.sp
        self.seq = 0
        now = _ms()
        metrics = [self._bdseq_metric()]
        for name, dt in self.node_metrics.items():
            if name == REBIRTH:
                metrics.append(make_metric(self.sp, name, dt, False, now))
                continue
            v = self._current.get(("", name))
            if v is not None:
                self._reported[("", name)] = (v[0], v[1])
            metrics.append(make_metric(self.sp, name, dt, v[0] if v else None, v[2] if v else now))
        self._publish("NBIRTH", sp.NBirth(timestamp=now, seq=self._next_seq(),
                                          metrics=tuple(metrics)))
        self.sent["metrics"] += len(metrics)
        for dn in self.dev_metrics:
            if self._dev_up.get(dn):
                self._dbirth(dn)
        self.live = True
        self._rebirth = False
        self._full_warned = False   # a new outage may warn again
        self._event("mqtt_birth", "bdSeq %d, %d devices" % (
            self.bd_seq, sum(1 for d in self._dev_up.values() if d)))

    def _dbirth(self, dn):
        now = _ms()
        metrics = []
        for name, (dt, unit) in self.dev_metrics[dn].items():
            v = self._current.get((dn, name))
            if v is None:
                metrics.append(make_metric(self.sp, name, dt, None, now, BAD, unit))
            else:
                self._reported[(dn, name)] = (v[0], v[1])
                metrics.append(make_metric(self.sp, name, dt, v[0], v[2], v[1], unit))
        self._publish("DBIRTH", self.sp.DBirth(timestamp=now, seq=self._next_seq(),
                                               metrics=tuple(metrics)), dn)
        self.sent["metrics"] += len(metrics)

    # ---- values from the hub --------------------------------------------------------------
    def _drain(self, sub, alarms, resync=False):
        state, _ = sub.drain()
        rows = []             # (device, name, dtype, value, quality, ts_ms) in time order
        self._alarm_records(alarms.drain()[1], rows, resync)
        for (topic, key), v in state.items():
            if topic == "device":
                self._device_sample(key, v, rows)
                time.sleep(0)   # let the control thread have the GIL between devices
            elif topic == "loop":
                self._loop_sample(key, v, rows)
            elif topic == "kpi":
                for k, val in v.items():
                    self._change(rows, "", "KPIs/" + k, val, None, _ms(), 0.0)
        if not rows:
            return
        if self.live and not self.buffer.rows:
            self._send_live(rows)
        else:
            self._buffer(rows)

    # ---- alarms ---------------------------------------------------------------------------
    def _alarm_sync(self, rows, ts_ms):
        """Every alarm's state from the engine itself (at start: a restored
        unacknowledged alarm is in the first NBIRTH; after a stream overflow)."""
        eng = getattr(self.gate, "alarms", None)
        if eng is None or ALARMS_ACTIVE not in self.node_metrics:
            return
        for r in eng.rows():
            self._change(rows, "", alarm_metric(r["id"], "Priority"), r["priority"], None,
                         ts_ms, 0)
            self._alarm_set(rows, r["id"], r["state"], ts_ms)
        self._alarm_active(rows, ts_ms)

    def _alarm_records(self, stream, rows, resync):
        """The hub's alarm stream: each transition as its own State sample, in
        order, stamped with its wall time; Alarms/Active after them."""
        t = None
        for _, rec in stream:
            t = int(rec.get("wall", time.time()) * 1000)
            self._alarm_set(rows, rec["id"], rec["new"], t)
        if resync:
            self._alarm_sync(rows, _ms())
        elif t is not None:
            self._alarm_active(rows, t)

    def _alarm_set(self, rows, aid, state, ts_ms):
        name = alarm_metric(aid, "State")
        if name in self.node_metrics:
            self._alarm_state[aid] = state
            self._change(rows, "", name, state, None, ts_ms, 0)

    def _alarm_active(self, rows, ts_ms):
        n = sum(1 for s in self._alarm_state.values() if s in ACTIVE)
        self._change(rows, "", ALARMS_ACTIVE, n, None, ts_ms, 0)

    def _dtype(self, dn, name):
        return self.node_metrics[name] if dn == "" else self.dev_metrics[dn][name][0]

    def _device_sample(self, dn, v, rows):
        if dn not in self.dev_metrics:
            return
        up = bool(v.get("up"))
        was = self._dev_up.get(dn)
        dband = self.mq["deadband"]
        for p, (val, q, src) in (v.get("points") or {}).items():
            if p not in self.dev_metrics[dn]:
                continue
            qual = QUALITY.get(q, BAD) if up else BAD   # the image's q: NE43, stale
            self._change(rows, dn, p, val, qual, int(src * 1000), dband.get(p, 0.0),
                         report=up)
        self._dev_up[dn] = up
        if up != bool(was) and self.live:
            self._flush_rows(rows)
            if up:
                self._dbirth(dn)
            else:
                self._publish("DDEATH", self.sp.DDeath(timestamp=_ms(), seq=self._next_seq()),
                              dn)

    def _flush_rows(self, rows):
        """Changes gathered so far go out before a DBIRTH/DDEATH (order on the wire)."""
        if rows and self.live and not self.buffer.rows:
            self._send_live(rows)
            rows.clear()

    def _loop_sample(self, ln, v, rows):
        s = "Loops/%s/" % ln
        t = _ms()
        self._change(rows, "", s + "Mode", "manual" if v.get("manual") else "auto", None, t, 0)
        self._change(rows, "", s + "State", str(v.get("mode")), None, t, 0)
        self._change(rows, "", s + "Errors", float(v.get("errors", 0)), None, t, 0)
        for key, val in (v.get("process") or {}).items():
            if s + "SP/" + key in self.node_metrics:
                self._change(rows, "", s + "SP/" + key, val, None, t, 0)
        for role, cmds in (v.get("cmds") or {}).items():
            for pt, val in cmds.items():
                n = s + "OP/%s.%s" % (role, pt)
                if n in self.node_metrics and isinstance(val, (int, float)):
                    self._change(rows, "", n, val, None, t, 0)

    def _change(self, rows, dn, name, val, qual, ts_ms, deadband, report=True):
        if dn == "" and name not in self.node_metrics:
            return
        k = (dn, name)
        self._current[k] = (val, qual, ts_ms)
        if not report:
            return
        last = self._reported.get(k)
        if last is not None and last[1] != qual and last[0] == val:
            ts_ms = _ms()   # the quality changed (e.g. stale), not the sample: now
        if last is not None and last[1] == qual:
            a, b = last[0], val
            if a == b:
                return
            if (isinstance(a, (int, float)) and isinstance(b, (int, float))
                    and not isinstance(a, bool) and math.isfinite(a) and math.isfinite(b)
                    and abs(b - a) <= deadband):
                return
        self._reported[k] = (val, qual)
        rows.append((dn, name, val, qual, ts_ms))

    def _send_live(self, rows):
        by_dev = {}
        for dn, name, val, q, t in rows:
            by_dev.setdefault(dn, []).append((name, val, q, t))
        failed = [(dn, n, v, q, t) for info, dn, items in self._send(by_dev, False)
                  if info.rc != 0 for n, v, q, t in items]
        if failed:   # the link went while we sent: these wait in the buffer
            self._buffer(failed)

    def _buffer(self, rows):
        over = self.buffer.put([(d, n, int(self._dtype(d, n)), _db(v), q, t)
                                for d, n, v, q, t in rows])
        if over and not self._full_warned:
            self._full_warned = True
            self._event("mqtt_buffer_full", "%d rows: the oldest are dropped"
                        % self.buffer.max_rows)

    def _send(self, by_dev, historical):
        """One DDATA per device (NDATA for the node) -> [(paho info, device, items)]."""
        sp = self.sp
        out = []
        for dn, items in by_dev.items():
            if dn and not self._dev_up.get(dn):
                self.unsent += len(items)   # no DBIRTH in this session (down)
                continue
            items = sorted(items, key=lambda it: it[3])   # 3.0: chronological in a message
            metrics = []
            for name, val, q, t in items:
                if dn:
                    dt, unit = self.dev_metrics[dn][name]
                else:
                    dt = self.node_metrics[name]
                metrics.append(make_metric(self.sp, name, dt, val, t, q, None, historical))
            if dn:
                info = self._publish("DDATA", sp.DData(timestamp=_ms(), seq=self._next_seq(),
                                                       metrics=tuple(metrics)), dn)
            else:
                info = self._publish("NDATA", sp.NData(timestamp=_ms(), seq=self._next_seq(),
                                                       metrics=tuple(metrics)))
            self.sent["metrics"] += len(metrics)
            if historical:
                self.sent["historical"] += len(metrics)
            out.append((info, dn, items))
            time.sleep(0)   # the GIL back to the control cycle after each message
        return out

    def _forward(self):
        """One batch of the store-and-forward buffer, oldest first, historical."""
        rows = self.buffer.head(FLUSH_ROWS)
        if not rows:
            return
        by_dev = {}
        for _id, dn, name, _dt, val, q, t in rows:
            if dn and name not in self.dev_metrics.get(dn, {}):
                continue
            if not dn and name not in self.node_metrics:
                continue
            by_dev.setdefault(dn, []).append((name, val, q, t))
        sent = self._send(by_dev, historical=True)
        if not sent:
            self.buffer.delete_upto(rows[-1][0])   # nothing in these rows can be sent
            return
        if any(info.rc != 0 for info, _, _ in sent):
            return   # the link went: the rows stay, the next session sends them
        info = sent[-1][0]
        if info.is_published():   # written at once (paho writes inside publish())
            self.buffer.delete_upto(rows[-1][0])
        else:
            self._inflight[info.mid] = rows[-1][0]

    # ---- commands -------------------------------------------------------------------------
    def _handle_commands(self):
        if not self._cmds:
            return
        with self._lock:
            cmds, self._cmds = self._cmds, []
        for topic, payload in cmds:
            parts = topic.split("/")
            try:
                if parts[2] == "NCMD":
                    msg = self.sp.NCmd.decode(payload)
                    dn = None
                else:
                    msg = self.sp.DCmd.decode(payload)
                    dn = parts[4]
            except Exception as e:   # a payload that is not Sparkplug protobuf
                self._refuse(topic, "?", "not a Sparkplug payload (%s)" % type(e).__name__)
                continue
            for m in msg.metrics:
                self._command(topic, dn, m)
        if self._rebirth and self.live:
            self._births()

    def _command(self, topic, dn, m):
        name = m.name or ""
        if dn is None and name == REBIRTH:
            if m.value is True:
                self._rebirth = True
            return
        full = name if dn is None else "%s/%s" % (dn, name)
        if full not in self.mq["writable"]:
            self._refuse(topic, full, "not a writable metric ([mqtt] writable)")
            return
        who = "mqtt:%s" % (self.mq.get("primary_host_id") or "host")
        role = self.mq["command_role"]
        if dn is None:
            kind, loop, arg = self.loop_cmd[name]
        else:
            loop, r = self.dev_loop[dn]
            kind, arg = "output", (r, name)
        v = m.value
        if kind == "mode":
            args, gk = {"mode": v}, "mode"
        elif kind == "setpoint":
            args, gk = {"key": arg, "value": v}, "setpoint"
        else:
            args, gk = {"mode": "manual", "outputs": {arg[0]: {arg[1]: v}}}, "mode"
        t = self.gate.submit(who, role, gk, loop, **args)
        self.commands["accepted" if t.accepted else "refused"] += 1

    def _refuse(self, topic, metric, why):
        self.commands["refused"] += 1
        self._event("mqtt_command_refused", "%s %s: %s" % (topic, metric, why))

    def _event(self, kind, text):
        self.hub.emit("event", {"t_s": time.time(), "kind": kind, "source": "sparkplug",
                                "text": text})

    def stats(self):
        return {"connected": self.connected, "live": self.live, "bdSeq": self.bd_seq,
                "connects": self.connects, "sent": dict(self.sent),
                "commands": dict(self.commands), "buffer_rows": self.buffer.rows,
                "buffered": self.buffer.stored, "dropped": self.buffer.dropped,
                "unsent": self.unsent,
                "publish_s": self.publish_s}


class _Failed:
    rc, mid = -1, None

    def is_published(self):
        return False


_FAILED = _Failed()


def _ms():
    return int(time.time() * 1000)


def _db(v):
    return int(v) if isinstance(v, bool) else v
