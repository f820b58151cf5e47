"""The Sparkplug B 3.0 primary host application of a site (`greenedge site -c site.toml`).

Size (740 lines): one Sparkplug primary-host session state machine, its writer
thread (batches, back-off, the on-disk spool) and the MQTT thread's fast read
path; the SQL is in store.py, the spool's format in spool.py.

Session: CONNECT with the will spBv1.0/STATE/<host_id> {"online": false,
"timestamp": T} (QoS 1, retained); on CONNACK it subscribes to spBv1.0/# (QoS 1)
and publishes {"online": true, "timestamp": T} on the same topic (QoS 1,
retained), T the time of that CONNECT. Edge nodes wait for it before NBIRTH and
hold store-and-forward while it is away. A clean stop publishes online false
itself, then keeps recording until every edge in session has sent its NDEATH
(at most STOP_DRAIN_S), so nothing an edge sent before it noticed is missed.

Per edge node: bdSeq and online from NBIRTH/NDEATH (an NDEATH whose bdSeq is
not the session's is an older session's will: ignored), every device's
DBIRTH/DDEATH; stale while in session but silent for [site] stale_s (its
link is down, it is not dead: no NDEATH); the seq of every NBIRTH (0) ... DATA/DBIRTH/DDEATH message
checked (+1 mod 256): a gap, or data from a node whose birth this host has not
seen, makes it publish NCMD Node Control/Rebirth = true to that node (at most
once per REBIRTH_EVERY_S until its NBIRTH). Births, deaths, gaps and rebirth
requests are rows of greenedge.events.

Every metric of every BIRTH and DATA message is a row of greenedge.metrics
(controller/site/store.py), with the metric's own timestamp; a writer thread
COPYs them in batches; a batch that fails (the database away) is kept and
tried again, in order; beyond half of [database] queue_max_rows held in
memory the oldest go to the on-disk spool (spool.py; written first when the
database is back, and kept across a restart); only when the spool is full
(spool_max_mb) or off and queue_max_rows wait are new rows dropped, counted
in "dropped", one "queue_full" event per outage.
Rows older than the raw retention are counted
("too_old") and not stored (their day's partition is already rolled up); rows
stamped more than a day ahead likewise ("too_new": a day retention would never
drop). A malformed message never stops the host (paho re-raises a callback's
exception and its thread dies): it is counted ("bad"), one bad_payload event;
a metric with U+0000 in its name or string value (PostgreSQL text cannot hold
it) is not stored ("bad_metrics", a bad_metric event); a batch the database
refuses for its data (DataError, IntegrityError) on a working connection is
split in halves until the refused rows are isolated ("bad_rows", a bad_rows
event), the rest written; only a lost connection keeps the whole batch.
Once an hour (and at start) the writer runs the retention (store.retention):
raw days older than [retention] raw_days rolled up into 1-minute means and
dropped, 1-minute means older than minute_years deleted."""

import datetime as dt
import json
import logging
import struct
import threading
import time

from controller.errors import UserError
from controller.site import store as st

log = logging.getLogger("greenedge.site")

NS = "spBv1.0"
REBIRTH = "Node Control/Rebirth"
REBIRTH_EVERY_S = 5.0
STOP_DRAIN_S = 5.0
FLUSH_S = 0.2             # the longest a row waits for its batch to start (writer idle)
WAKE_SHARE = 8            # ... or until batch_rows / WAKE_SHARE rows wait
QUIET_S = 0.02            # ... or until nothing more has come for this long
READ_BURST = 1000         # MQTT packets read per select() at most
RETENTION_EVERY_S = 3600.0
FUTURE_MS = 86400e3       # a metric stamped more than a day ahead is not stored (too_new)
BAD_ROWS_SHOWN = 5        # rows named in a bad_rows event
QUALITY_SETS = 4096       # distinct property sets whose Quality is kept parsed
_UNSEEN = object()


class PrimaryHost:
    def __init__(self, cfg, store_factory):
        from controller.north import need
        self.cfg, self.mq = cfg, cfg["broker"]
        self.paho = need("paho.mqtt.client", "greenedge site")
        self.sp = need("pysparkplug", "greenedge site")
        from pysparkplug._protobuf import Payload   # pysparkplug's compiled sparkplug_b.proto
        self.Payload = Payload
        self.store_factory = store_factory
        self.state_topic = "%s/STATE/%s" % (NS, cfg["host_id"])
        self.groups = set(cfg["groups"])
        self.raw_days = cfg["retention"]["raw_days"]
        self.stale_s = cfg["stale_s"]
        self.batch_rows = cfg["database"]["batch_rows"]
        self.wake_rows = max(1, self.batch_rows // WAKE_SHARE)
        self.queue_max = cfg["database"]["queue_max_rows"]
        # Beyond half of queue_max_rows held in memory, the oldest go to the
        # on-disk spool (controller/site/spool.py) while the database is away.
        self.spill_at = max(self.queue_max // 2, 1)
        self.spill_wake = max(self.spill_at // 2, 1)   # rows queued that wake the writer
        self.spool = None
        self._pending_n = 0          # rows the writer holds (a failed batch and after)
        self._full_warned = False
        self._stopping = False
        self.nodes = {}           # (group, node) -> state dict
        self._qualities = {}      # a metric's serialized PropertySet -> its Quality
        self._lock = threading.Lock()
        self._rows, self._events = [], []
        self._since = None        # monotonic time the oldest queued row or event came
        self._last_in = 0.0       # ... and the newest
        self._stop = threading.Event()
        self._wake = threading.Event()   # the writer's: a batch is queued, or stop
        self._writer = None
        self.client = None
        self.connected = threading.Event()
        self.stats = {"messages": 0, "rows": 0, "inserted": 0, "too_old": 0, "too_new": 0,
                      "bad": 0, "bad_metrics": 0, "bad_rows": 0, "dropped": 0,
                      "gaps": 0, "rebirths": 0, "batches": 0, "write_s": 0.0,
                      "db_errors": 0, "db_data_errors": 0, "spooled": 0}

    # ---- lifecycle ----------------------------------------------------------------------
    def start(self):
        db = self.cfg["database"]
        if db.get("spool_dir") and self.spool is None:   # an earlier run's rows go first
            from controller.site.spool import Spool
            try:
                self.spool = Spool(db["spool_dir"], db["spool_max_bytes"])
            except OSError as e:
                raise UserError("%s (site.toml [database] spool_dir)" % e) from None
        self._store = self.store_factory()   # a bad DSN or password stops the start here
        m, mq = self.paho, self.mq
        c = self._client_class()(client_id=mq["client_id"], clean_session=True,
                                 protocol=m.MQTTv311)
        if mq["username"]:
            c.username_pw_set(mq["username"], mq["password"])
        if mq["tls"]:
            import ssl
            try:
                ctx = ssl.create_default_context(cafile=str(mq["ca"]) if mq["ca"] else None)
                if mq["client_cert"]:
                    ctx.load_cert_chain(str(mq["client_cert"]), str(mq["client_key"]))
            except (OSError, ssl.SSLError) as e:
                self._store.close()
                raise UserError("site broker: cannot load ca %s / client_cert %s: %s"
                                % (mq["ca"], mq["client_cert"], e)) from None
            c.tls_set_context(ctx)
        c.on_connect, c.on_message, c.on_disconnect = (self._on_connect, self._on_message,
                                                       self._on_disconnect)
        c.on_subscribe = self._on_subscribe
        c.reconnect_delay_set(0.5, 5.0)
        self._set_will(c)
        self.client = c
        # the writer thread last: nothing above may fail while it uses the store
        self._writer = threading.Thread(target=self._write_loop, name="greenedge-site-db",
                                        daemon=True)
        self._writer.start()
        c.connect_async(mq["host"], mq["port"], mq["keepalive_s"])
        c.loop_start()
        return self

    def _client_class(self):
        """paho's Client whose loop_start thread outlives an OSError: paho 1.6
        lets one out of loop_forever (ssl.SSLEOFError writing to a TLS broker
        that has just gone away), and its thread ends with it: no reconnect,
        ever, and this host never sees the site broker again. Here the thread's
        body (paho 1.6's _thread_main; pyproject pins paho < 2) closes the dead
        socket (reconnect(); refused, paho's own loop retries) and goes on.
        It also reads what the socket holds in one go (loop_read)."""
        host = self

        class Client(self.paho.Client):
            def _thread_main(self):
                while True:
                    try:
                        return self.loop_forever(retry_first_connection=True)
                    except OSError as e:
                        log.warning("site broker: %s: %s (reconnecting)",
                                    type(e).__name__, e)
                    if host._stopping:
                        return
                    host._on_disconnect(self, None, 1)
                    try:
                        self.reconnect()
                    except OSError:
                        pass

            def loop_read(self, max_packets=1):
                """Every packet the socket holds (at most READ_BURST), not
                paho 1.6's one per select() (its max_packets counts its own
                outgoing QoS messages: 1 here): a QoS 1 burst cost a
                select(), an SSL pending() and a loop_misc() per message, and
                a PUBACK write each in between; the PUBACKs now go out
                after the burst (the broker's inflight window bounds it)."""
                m = host.paho
                for _ in range(READ_BURST):
                    if self._sock is None:
                        return m.MQTT_ERR_NO_CONN
                    rc = self._packet_read()
                    if rc > 0:
                        return self._loop_rc_handle(rc)
                    if rc == m.MQTT_ERR_AGAIN:
                        break
                return m.MQTT_ERR_SUCCESS
        return Client

    def _set_will(self, c):
        self.state_ts = int(time.time() * 1000)
        c.will_set(self.state_topic, json.dumps({"online": False, "timestamp": self.state_ts}),
                   qos=1, retain=True)

    def stop(self):
        """STATE offline, wait for the edges' NDEATHs, flush, disconnect."""
        c = self.client
        self._stopping = True
        if c is not None and self.connected.is_set():
            info = c.publish(self.state_topic, json.dumps(
                {"online": False, "timestamp": self.state_ts}), qos=1, retain=True)
            try:
                info.wait_for_publish(5.0)
            except (RuntimeError, ValueError) as e:   # paho: not queued (connection gone)
                log.info("STATE offline not sent: %s", e)
            t_end = time.monotonic() + STOP_DRAIN_S
            while time.monotonic() < t_end and any(n["online"] for n in self.nodes.values()):
                time.sleep(0.05)
            c.disconnect()
        if c is not None:
            c.loop_stop()
        self._stop.set()
        self._wake.set()
        if self._writer is not None:
            self._writer.join(60.0)
        self._store.close()

    # ---- MQTT ---------------------------------------------------------------------------
    def _on_connect(self, client, userdata, flags, rc):
        if rc != 0:
            log.warning("site broker refused the connection: %s", self.paho.connack_string(rc))
            return
        client.subscribe([(self.state_topic, 1), (NS + "/#", 1)])
        # The broker takes the SUBSCRIBE before this PUBLISH (one session, in
        # order): no edge sees us online before we receive its messages.
        client.publish(self.state_topic, json.dumps({"online": True, "timestamp": self.state_ts}),
                       qos=1, retain=True)
        log.info("primary host %s online", self.cfg["host_id"])

    def _on_subscribe(self, client, userdata, mid, granted_qos):
        """SUBACK: from here on every edge message reaches us (`connected`
        means subscribed, not merely CONNACK: a caller that publishes right
        after it would otherwise race the SUBSCRIBE)."""
        self.connected.set()

    def _own_state(self, client, payload):
        """Our STATE topic says offline while we are up (an older session's will
        delivered after our online, or another client): say online again, so
        edges that connect later find online retained (3.0: the host watches
        its own STATE)."""
        try:
            online = bool(json.loads(payload.decode())["online"])
        except (ValueError, KeyError, TypeError, UnicodeDecodeError):
            online = False
        if not online and self.connected.is_set() and not self._stopping:
            client.publish(self.state_topic, json.dumps(
                {"online": True, "timestamp": self.state_ts}), qos=1, retain=True)
            self._event("", "", "", "state_republished", "our STATE said offline")

    def _on_disconnect(self, client, userdata, rc):
        self.connected.clear()
        self._set_will(client)   # the next CONNECT: a newer STATE timestamp

    def _on_message(self, client, userdata, msg):
        """Never raises: paho 1.6 re-raises a callback's exception and its network
        thread dies with it (the STATE will would follow). A message this host
        cannot take is counted in "bad", one bad_payload event, and the next one
        is handled as usual."""
        try:
            self._handle(client, msg)
        except Exception as e:   # a malformed message: a bug of its sender, not ours to die of
            self.stats["bad"] += 1
            try:
                topic = msg.topic
            except Exception:    # paho: a topic that is not UTF-8
                topic = repr(getattr(msg, "_topic", b""))
            parts = (topic.split("/") + ["", "", "", "", ""])
            log.warning("site: message on %r not taken: %s: %s", topic, type(e).__name__, e)
            try:
                self._event(parts[1], parts[3], parts[4], "bad_payload",
                            "%s: %s: %s" % (topic, type(e).__name__, e))
            except Exception:
                log.exception("site: bad_payload event not recorded")

    def _handle(self, client, msg):
        if msg.topic == self.state_topic:
            if not msg.retain:   # the retained one at SUBSCRIBE is what we replace anyway
                self._own_state(client, msg.payload)
            return
        parts = msg.topic.split("/")
        if len(parts) < 4 or parts[0] != NS or parts[1] == "STATE":
            return
        group, kind, node = parts[1], parts[2], parts[3]
        device = parts[4] if len(parts) > 4 else ""
        if kind in ("NCMD", "DCMD") or (self.groups and group not in self.groups):
            return
        self.stats["messages"] += 1
        if "\x00" in msg.topic:   # MQTT forbids U+0000 in a topic; PostgreSQL text too
            raise ValueError("NUL in the topic")
        try:
            p = self.Payload.FromString(msg.payload)
        except Exception as e:   # not a Sparkplug payload (google.protobuf DecodeError)
            self.stats["bad"] += 1
            self._event(group, node, device, "bad_payload", "%s: %s" % (msg.topic, e))
            return
        if kind in ("NBIRTH", "NDEATH"):   # before any state changes: a bad one changes none
            bd = _bdseq(next((m for m in p.metrics if m.name == "bdSeq"), None))
        key = (group, node)
        n = self.nodes.get(key)
        if n is None:
            n = self.nodes[key] = {"online": False, "born": False, "bdseq": None, "seq": None,
                                   "devices": {}, "rebirth_at": 0.0, "stale": False}
        n["last_s"] = time.monotonic()
        if kind == "NDEATH":
            if n["bdseq"] is None or bd is None or bd == n["bdseq"]:
                n.update(online=False, born=False, seq=None)
                for dn in n["devices"]:
                    n["devices"][dn] = False
                self._event(group, node, "", "NDEATH", "bdSeq %s" % bd)
            return
        if kind == "NBIRTH":
            n.update(online=True, born=True, bdseq=bd, seq=p.seq, rebirth_at=0.0)
            self._event(group, node, "", "NBIRTH", "bdSeq %s" % bd)
        else:
            if not n["born"]:
                self._rebirth(client, group, node, n, "%s before any NBIRTH" % kind)
            elif p.seq != (n["seq"] + 1) % 256:
                self.stats["gaps"] += 1
                self._event(group, node, device, "seq_gap", "%s seq %d, expected %d"
                            % (kind, p.seq, (n["seq"] + 1) % 256))
                self._rebirth(client, group, node, n, "seq gap")
            n["seq"] = p.seq
        if kind == "DBIRTH":
            n["devices"][device] = True
            self._event(group, node, device, "DBIRTH", "")
        elif kind == "DDEATH":
            n["devices"][device] = False
            self._event(group, node, device, "DDEATH", "")
            return
        if kind not in ("NBIRTH", "DBIRTH", "NDATA", "DDATA"):
            return
        rows, rejected = self._rows_of(p, group, node, device)
        if rejected:
            self._event(group, node, device, "bad_metric", "%s: %d not stored: %s" % (
                kind, len(rejected), "; ".join(rejected[:5])))
        with self._lock:
            room = self.queue_max - len(self._rows) - self._pending_n
            if len(rows) > room:   # the database away too long: the newest are dropped
                self.stats["dropped"] += len(rows) - max(room, 0)
                rows = rows[:max(room, 0)]
                if not self._full_warned:
                    self._full_warned = True
                    self._events.append((dt.datetime.now(dt.timezone.utc), group, node, device,
                                         "queue_full", "%d rows waiting for the database: "
                                         "new rows dropped" % self.queue_max))
            if rows or self._events:
                self._last_in = time.monotonic()
                if self._since is None:
                    self._since = self._last_in
            self._rows.extend(rows)
            if (len(self._rows) + self._pending_n >= self.wake_rows
                    or len(self._rows) >= self.spill_wake):
                self._wake.set()

    def _rows_of(self, p, group, node, device):
        """The rows of a payload's metrics (time: the metric's ms, as it came)
        and the reasons of those not stored. The host's hot loop: each upb
        attribute read costs ~0.1 us, so each is read once, and a metric's
        Quality is parsed once per distinct property set (they repeat: the
        same engUnit and Quality over and over)."""
        now_ms = time.time() * 1000
        horizon = now_ms - self.raw_days * 86400e3
        future = now_ms + FUTURE_MS
        p_ts = p.timestamp
        qualities = self._qualities
        rows, rejected = [], []
        add = rows.append
        for m in p.metrics:
            name = m.name
            if not name:
                continue   # an alias-only metric: this host's edges send names
            ts = m.timestamp or p_ts
            if ts < horizon or ts > future:
                if ts < horizon:
                    self.stats["too_old"] += 1
                else:   # a clock far ahead: a day partition retention would never drop
                    self.stats["too_new"] += 1
                    rejected.append("%r: timestamp %d ms in the future" % (name, ts - now_ms))
                continue
            v = _metric_value(m)
            if type(v) is str:
                num, text = None, v
            else:
                num, text = (None if v is None else float(v)), None
            if "\x00" in name or (text is not None and "\x00" in text):
                # PostgreSQL text cannot hold U+0000 (CharacterNotInRepertoire)
                self.stats["bad_metrics"] += 1
                rejected.append("%r: NUL in the %s" % (name, "name" if "\x00" in name
                                                       else "string value"))
                continue
            q = None
            if m.HasField("properties"):
                props = m.properties.SerializeToString()
                q = qualities.get(props, _UNSEEN)
                if q is _UNSEEN:
                    if len(qualities) >= QUALITY_SETS:
                        qualities.clear()
                    q = qualities[props] = _quality(m)
            add((ts, group, node, device, name, num, text, q, m.is_historical))
        return rows, rejected

    def _rebirth(self, client, group, node, n, why):
        now = time.monotonic()
        if now < n["rebirth_at"]:
            return
        n["rebirth_at"] = now + REBIRTH_EVERY_S
        ms = int(time.time() * 1000)
        cmd = self.sp.NCmd(timestamp=ms, metrics=(self.sp.Metric(
            timestamp=ms, name=REBIRTH, datatype=self.sp.DataType.BOOLEAN, value=True),))
        client.publish("%s/%s/NCMD/%s" % (NS, group, node), cmd.encode(include_dtypes=True),
                       qos=1)
        self.stats["rebirths"] += 1
        self._event(group, node, "", "rebirth_request", why)

    def _event(self, group, node, device, kind, detail):
        with self._lock:
            self._events.append((dt.datetime.now(dt.timezone.utc), group, node, device, kind,
                                 detail.replace("\x00", "\\x00")))
            self._last_in = time.monotonic()
            if self._since is None:
                self._since = self._last_in

    # ---- the writer -------------------------------------------------------------------------
    def _write_loop(self):
        """One batch at a time: written once wake_rows wait (queued or held
        here), or FLUSH_S after the oldest of them came, or when nothing more
        has come for QUIET_S (the end of a burst, of an edge's poll: waiting
        would not make the batch bigger), or at stop; then at once the next
        while that holds. No pause after a write: in a burst the next batch
        goes as soon as the last is committed, while the MQTT thread decodes
        the one after; a steady stream still goes in batches of up to
        FLUSH_S (or wake_rows)."""
        pending, events, backoff = [], [], 0.5
        since = None      # when the oldest row or event of pending/events came
        next_retention = time.monotonic()
        while True:
            stopping = self._stop.is_set()
            if time.monotonic() >= next_retention and not stopping:
                next_retention = time.monotonic() + RETENTION_EVERY_S
                self._retention()
            with self._lock:
                if self._rows or self._events:
                    pending.extend(self._rows)
                    events.extend(self._events)
                    self._rows, self._events = [], []
                    if since is None:
                        since = self._since if self._since is not None else time.monotonic()
                self._since, last_in = None, self._last_in
                self._pending_n = len(pending)
                self._wake.clear()
            self._check_stale()
            now = time.monotonic()
            idle = not (pending or events)
            if idle:
                if stopping:
                    return
                since = None
            seg = self._spool_segment(events)
            if seg is not None:       # older than anything in memory: first
                written = self._write_batch(seg[1], ())
                if written:
                    self.spool.done(seg[0])
            elif not idle and (stopping or len(pending) >= self.wake_rows
                               or now - since >= FLUSH_S or now - last_in >= QUIET_S):
                written = self._write_batch(pending[:self.batch_rows], events)
                if written:
                    pending, events = pending[self.batch_rows:], []
                    since = since if pending else None
                    with self._lock:
                        self._pending_n = len(pending)
                        if not pending:
                            self._full_warned = False   # a new outage may warn again
            else:
                self._wake.wait(FLUSH_S if since is None else
                                max(min(since + FLUSH_S, last_in + QUIET_S) - now, 0.0))
                continue
            if written:
                backoff = 0.5
                continue
            if stopping:
                self._spill(pending, 0)   # the database still away: on disk, not lost
                return
            pending = self._hold(pending, events, backoff)
            backoff = min(backoff * 2, 10.0)
            self._reconnect()

    def _spool_segment(self, events):
        """The spool's oldest segment, (path, rows), to write before what is in
        memory; None when there is no spool, it is empty, or events wait (they
        go with the memory batch)."""
        if self.spool is None or events:
            return None
        return self.spool.oldest()

    def _hold(self, pending, events, seconds):
        """The back-off after a failed write: for seconds, keep taking what
        comes in (the MQTT thread must find room) and send the oldest beyond
        spill_at rows to the spool. Returns the rows still held here."""
        t_end = time.monotonic() + seconds
        while True:
            with self._lock:
                pending.extend(self._rows)
                events.extend(self._events)
                self._rows, self._events = [], []
                self._wake.clear()
            pending = self._spill(pending, self.spill_at)
            with self._lock:
                self._pending_n = len(pending)
            left = t_end - time.monotonic()
            if left <= 0 or self._stop.is_set():
                return pending
            self._wake.wait(left)

    def _spill(self, pending, keep):
        """The oldest of pending beyond keep rows to the spool, in batches;
        what the spool cannot take stays in memory. Returns what stays."""
        if self.spool is None or len(pending) <= keep:
            return pending
        n = 0
        while len(pending) - n > keep:
            chunk = pending[n:n + min(self.batch_rows, len(pending) - n - keep)]
            try:
                if self.spool.put(chunk):
                    break                  # full (spool_max_mb): the rest waits in memory
            except OSError as e:           # a disk error: memory, as without a spool
                log.warning("site spool: %s", e)
                break
            n += len(chunk)
        if n:
            self.stats["spooled"] += n
            log.info("site database away: %d rows to the spool (%d rows, %d bytes there)",
                     n, self.spool.rows, self.spool.bytes)
        return pending[n:]

    def _write_batch(self, batch, events):
        """Store.write, the refused rows isolated: True; False when the
        database is away (the caller keeps the batch)."""
        t0 = time.perf_counter()
        try:
            try:
                n = self._store.write(batch, events)
            except Exception as e:
                if not self._data_error(e):
                    raise
                n = self._isolate(batch, events, e)   # the bad rows out, the rest in
        except Exception as e:   # psycopg.Error: the database away, a restart
            self.stats["db_errors"] += 1
            log.warning("site database: %s (%d rows kept)", e, self._pending_n)
            return False
        self.stats["write_s"] += time.perf_counter() - t0
        self.stats["batches"] += 1
        self.stats["rows"] += len(batch)
        self.stats["inserted"] += n
        return True

    def _data_error(self, e):
        """A batch the database refused for what it holds (a NUL in a text,
        a number out of range: SQLSTATE class 22 DataError, 23 IntegrityError,
        or the client's own dumpers) on a connection that still works, as
        opposed to the database away (OperationalError, a broken connection):
        trying it again would fail forever."""
        from controller.site import need_psycopg
        psycopg = need_psycopg()
        conn = getattr(self._store, "conn", None)
        if conn is None or conn.closed or conn.broken:
            return False
        if isinstance(e, (psycopg.DataError, psycopg.IntegrityError)):
            return True
        return (not isinstance(e, psycopg.Error)
                and isinstance(e, (ValueError, OverflowError, TypeError, struct.error)))

    def _isolate(self, rows, events, err):
        """Write rows + events in halves until each refused row (or event)
        stands alone: those are counted ("bad_rows") and named in one bad_rows
        event, the rest are written. A lost connection on the way raises (the
        whole batch is kept and tried again; the unique keys make the halves
        already committed harmless)."""
        items = [(False, r) for r in rows] + [(True, e) for e in events]
        bad, n = [], 0
        todo = [items[:len(items) // 2], items[len(items) // 2:]] if len(items) > 1 else []
        if len(items) == 1:
            bad.append((items[0], err))
        while todo:
            part = todo.pop(0)
            if not part:
                continue
            try:
                n += self._store.write([x for ev, x in part if not ev],
                                       [x for ev, x in part if ev])
            except Exception as e:
                if not self._data_error(e):
                    raise
                if len(part) == 1:
                    bad.append((part[0], e))
                else:
                    todo[:0] = [part[:len(part) // 2], part[len(part) // 2:]]
        n_rows = sum(1 for (ev, _x), _e in bad if not ev)
        self.stats["bad_rows"] += n_rows
        self.stats["db_data_errors"] += 1
        shown = "; ".join("%s %r: %s" % ("event" if ev else "row", tuple(x[1:5]),
                                          (str(e).splitlines() or [type(e).__name__])[0])
                          for (ev, x), e in bad[:BAD_ROWS_SHOWN])
        log.warning("site database: %d rows and %d events refused (%s); the rest written",
                    n_rows, len(bad) - n_rows, shown)
        if bad:
            self._event("", "", "", "bad_rows", "%d rows, %d events refused by the database: %s"
                        % (n_rows, len(bad) - n_rows, shown))
        return n

    def _check_stale(self):
        """An edge in session that has sent nothing for [site] stale_s is stale
        (its link is down: a bridge, a cable), not dead (no NDEATH); an event
        each way."""
        now = time.monotonic()
        for (group, node), n in list(self.nodes.items()):
            stale = n["online"] and now - n.get("last_s", now) > self.stale_s
            if stale != n["stale"]:
                n["stale"] = stale
                self._event(group, node, "", "stale" if stale else "fresh",
                            "nothing for %.0f s" % self.stale_s if stale else "")

    def _retention(self):
        r = self.cfg["retention"]
        try:
            dropped, written = st.retention(self._store, r["raw_days"], r["minute_years"])
        except Exception as e:   # psycopg.Error: tried again at the next hour
            log.warning("site retention: %s", e)
            return
        if dropped:
            self._event("", "", "", "retention", "%d raw days rolled up into %d 1-min rows"
                        % (dropped, written))

    def _reconnect(self):
        try:
            self._store.close()
        except Exception:   # the connection is broken already
            pass
        try:
            self._store = self.store_factory()
        except Exception as e:
            log.warning("site database: %s", e)

    def status(self):
        with self._lock:
            queued = len(self._rows) + self._pending_n
        sp = self.spool
        return dict(self.stats, queued=queued, connected=self.connected.is_set(),
                    spool_rows=sp.rows if sp else 0, spool_bad=sp.bad if sp else 0,
                    nodes={"%s/%s" % k: {"online": n["online"], "bdSeq": n["bdseq"],
                                         "stale": n["stale"],
                                         "devices": dict(n["devices"])}
                           for k, n in self.nodes.items()})

    def publish_command(self, group, node, device, metric, value, who):
        """One metric as an NCMD to the edge node (device "") or a DCMD to its
        device, QoS 1, not retained, on this host's own session (the site
        user's ACL); a "command" event (who, what). The paho MessageInfo: the
        edge's gate decides, and its answer is the metric's next value."""
        sp = self.sp
        dtype = (sp.DataType.STRING if isinstance(value, str) else sp.DataType.BOOLEAN
                 if isinstance(value, bool) else sp.DataType.DOUBLE)
        ms = int(time.time() * 1000)
        cmd = (sp.DCmd if device else sp.NCmd)(timestamp=ms, metrics=(sp.Metric(
            timestamp=ms, name=metric, datatype=dtype, value=value),))
        topic = "%s/%s/%s/%s%s" % (NS, group, "DCMD" if device else "NCMD", node,
                                   "/" + device if device else "")
        info = self.client.publish(topic, cmd.encode(include_dtypes=True), qos=1)
        self._event(group, node, device, "command", "%s: %s = %r on %s%s" % (
            who, metric, value, topic, "" if info.rc == 0 else " not sent (rc %d)" % info.rc))
        return info


def _metric_value(m):
    """A metric's value: a number, a str or None (the most frequent kinds
    first; the datatype read only for an integer that may be negative)."""
    if m is None or m.is_null:
        return None
    which = m.WhichOneof("value")
    if which == "float_value" or which == "double_value":
        return getattr(m, which)
    if which == "int_value":
        v = m.int_value
        if v >= 2 ** 31 and m.datatype in (1, 2, 3):
            return v - 2 ** 32   # Int8/16/32: two's complement in the uint32 field
        return v
    if which == "long_value":
        v = m.long_value
        if v >= 2 ** 63 and m.datatype == 4:
            return v - 2 ** 64   # Int64 likewise in the uint64 field
        return v
    if which == "boolean_value":
        return 1.0 if m.boolean_value else 0.0
    if which == "string_value":
        return m.string_value
    return None   # no value, bytes, dataset, template: not stored


def _bdseq(m):
    """The bdSeq metric's value as an int (None: no bdSeq); anything else a
    malformed birth or death (ValueError)."""
    v = _metric_value(m)
    if v is None:
        return None
    if isinstance(v, str) or v != v or v in (float("inf"), float("-inf")) or v != int(v):
        raise ValueError("bdSeq %r is not an integer" % (v,))
    return int(v)


def _quality(m):
    props = m.properties
    for k, v in zip(props.keys, props.values):
        if k == "Quality":
            q = int(v.int_value)
            return q if q < 2 ** 31 else None   # int4 column: an OPC DA code is 16 bits
    return None
