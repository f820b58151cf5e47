"""The OPC UA server (`greenedge run --opcua opc.tcp://HOST:PORT`), on asyncua.

Size (763 lines): one concern, the OPC UA mapping (address space, security, writes
through the gate, events); asyncua's session wrappers stay beside the rules they
enforce.

Address space (namespace urn:greenedge:<service name>), built once at start in
one AddNodes batch, never rebuilt:

    Objects/GreenEdge/<area>/<device>/<point>   every numeric point of the device's
        profile (firmware/regmap.py); measured points (input registers from
        MEAS_BASE, the ones with an NE43 quality slot) are AnalogItemType with
        EngineeringUnits (UNECE code, UNITS below) and EURange; the rest (status
        words, settings, coils, discretes) are BaseDataVariables, read-only
    Objects/GreenEdge/Loops/<loop>/Mode          "auto" | "manual"   writable (operator)
                                   /State        auto | fallback | manual | error
                                   /Runs, /Errors
                                   /SP/<key>     set points           writable (operator)
                                   /OP/<role>.<point>  the loop's last command; writing one
                                                 puts the loop in manual with that value
                                                 (the others hold)    writable (operator)
                                   /PV/<role>.<point>  the feedback of each output and the
                                                 drive's process_pv
    Objects/GreenEdge/KPIs/<kpi>                 the live accounting's figures
    Objects/GreenEdge/Energy/<device>            OPC 34100-style energy per metered device
                                                 (kWh, AnalogItemType, docs/integration.md)

<area> is [opcua] area.<device> from the config, else the loop that drives the
device, else "Unassigned".

Values come from the data hub (device, loop, kpi topics): one subscription
drained at the fastest group's cycle rate on the server's own asyncio loop in
its own thread; only values whose value or status changed are written, as one
batch per cycle. A point's status: Good; UncertainSensorNotAccurate (NE43
uncertain); UncertainLastUsableValue (its newest poll is older than stale_s
while the device is up); BadSensorFailure (NE43 bad); BadCommunicationError
(device down). The source timestamp is the poll's wall time.

Writes: asyncua's attribute service is wrapped, so a client's write to a
writable node is a CommandGate.submit() with the role of the session's user
(the users file: controller/north/users.py): a role the gate refuses gets
BadUserAccessDenied, a value it refuses BadOutOfRange (range) or
BadInvalidArgument; an accepted write returns Good and takes effect at the
loop group's next cycle boundary (audited on the hub like every command).
Every other node is read-only (BadUserAccessDenied from asyncua).

Security: endpoints from [opcua] security (default Basic256Sha256 and
Aes256_Sha256_RsaPss, each Sign and SignAndEncrypt) with the configured
certificate; "None" only when listed, and then every session on it is
read-only (writes and method calls refused by a permission ruleset on that
policy). Identity: username/password from the users file; anonymous (role
viewer) only with anonymous = "read". "None" with users but no
SignAndEncrypt policy is refused at start (the password would go in clear).

Alarms: each alarm state change on the hub's alarm stream is an OPC UA event
(BaseEventType) from the Server object with Severity (priority 1..4 ->
900/700/500/300), SourceName = alarm id, Message = "<id>: <old> -> <new>
(<text>)". Objects/GreenEdge/Alarms/Acknowledge(AlarmId, Comment) acknowledges
one: a gate "ack" with the role of the session's user (viewer:
BadUserAccessDenied; no such alarm: BadNotFound; nothing to acknowledge:
BadConditionBranchAlreadyAcked), audited, applied in the alarm engine's next
pass (the acknowledged state arrives as the next event). asyncua has no server
side of Alarms & Conditions (ConditionType instances with their own
Acknowledge), so this is the plain-event form the issue allows.
"""

import asyncio
import logging
import math
import threading
import time
from dataclasses import dataclass

from controller.errors import UserError
from controller.north import need
from controller.registers import point_map
from controller.runtime.gate import NEEDS, ROLES
from firmware import regmap

log = logging.getLogger("greenedge.opcua")

UNECE_NS = "http://www.opcfoundation.org/UA/units/un/cefact"
# register-map unit -> (UNECE Rec 20 common code, display name, description)
UNITS = {
    "V": ("VLT", "V", "volt"), "A": ("AMP", "A", "ampere"), "kW": ("KWT", "kW", "kilowatt"),
    "kVA": ("KVA", "kVA", "kilovolt - ampere"), "kWh": ("KWH", "kWh", "kilowatt hour"),
    "Hz": ("HTZ", "Hz", "hertz"), "%": ("P1", "%", "percent"),
    "C": ("CEL", "\u00b0C", "degree Celsius"), "s": ("SEC", "s", "second"),
    "h": ("HUR", "h", "hour"), "bar": ("BAR", "bar", "bar"), "mV": ("2Z", "mV", "millivolt"),
    "ppm": ("59", "ppm", "part per million"), "kg/h": ("E93", "kg/h", "kilogram per hour"),
    "t/h": ("E18", "t/h", "tonne per hour"),
    "Nm3/h": ("Q40", "Nm\u00b3/h", "normalized cubic metre per hour"),
    "mg/Nm3": ("GP", "mg/Nm\u00b3", "milligram per cubic metre (at normal conditions)"),
    "pH": ("Q30", "pH", "pH (potential of hydrogen)"),
    # no Rec 20 code: UnitId -1 (OPC UA Part 8), the display name says what it is
    "%/s": (None, "%/s", "percent per second"),
    "eng": (None, "", "the process variable's engineering unit (per site)"),
}
SEVERITY = {1: 900, 2: 700, 3: 500, 4: 300}
POLICY_TYPES = {
    "Basic256Sha256_Sign": "Basic256Sha256_Sign",
    "Basic256Sha256_SignAndEncrypt": "Basic256Sha256_SignAndEncrypt",
    "Aes256_Sha256_RsaPss_Sign": "Aes256Sha256RsaPss_Sign",
    "Aes256_Sha256_RsaPss_SignAndEncrypt": "Aes256Sha256RsaPss_SignAndEncrypt",
    "None": "NoSecurity",
}


def unit_id(code):
    """OPC UA Part 8 5.6.3: the UnitId of a UNECE common code."""
    if code is None:
        return -1
    v = 0
    for c in code.upper():
        v = (v << 8) | ord(c)
    return v


def eu_range(p):
    """A point's EURange: its writable range, else what its register can carry."""
    if p.min is not None and p.max is not None:
        return float(p.min), float(p.max)
    bits = regmap.WORDS.get(p.type, 1) * 16
    if p.type.startswith("f"):
        return -3.4e38, 3.4e38
    if p.type.startswith("i"):
        lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    else:
        lo, hi = 0, (1 << bits) - 1
    return lo * p.scale, hi * p.scale


def measured(p):
    return p.table == regmap.INPUT and p.address >= regmap.MEAS_BASE and p.count == 1


def areas(cfg, opc_area):
    out = {}
    for dn in cfg.devices:
        if dn in opc_area:
            out[dn] = opc_area[dn]
            continue
        loops = [ln for ln, lc in cfg.loops.items() if dn in lc.devices.values()]
        out[dn] = loops[0] if loops else "Unassigned"
    return out


def _loop_points(cfg, lc):
    """(set point keys, [(role, cmd point)], [(role, pv point)]) of one loop."""
    from controller.loops import SETPOINTS
    sps = [k for k in SETPOINTS.get(lc.plant, {}) if not isinstance(lc.process.get(k), tuple)]
    ops, pvs = [], []
    for role, dn in lc.devices.items():
        prof = cfg.devices[dn].profile
        pts = point_map(prof)
        for cmd, _safe, fb in regmap.outputs(prof):
            ops.append((role, cmd))
            if fb in pts:
                pvs.append((role, fb))
        if "process_pv" in pts:
            pvs.append((role, "process_pv"))
    return sps, ops, pvs


class OpcUaServer:
    """The server on its own thread and asyncio loop; start() returns once it
    listens (or raises UserError), stop() joins it."""

    def __init__(self, cfg, opc, hub, gate, period_s=0.1, kpi_keys=()):
        self.cfg, self.opc, self.hub, self.gate = cfg, opc, hub, gate
        self.period_s = min(1.0, max(0.02, period_s))
        self.kpi_keys = list(kpi_keys)
        self.url = opc["endpoint"]
        from controller.config.north import parse_endpoint
        _, self.host, self.port = parse_endpoint(self.url)
        self.ua = need("asyncua", "--opcua").ua
        from controller.north.users import Users
        self.users = Users(opc["users"]) if opc.get("users") else Users(None)
        self._thread = None
        self._loop = None
        self._stop = None
        self._ready = threading.Event()
        self._error = None
        self.server = None
        self.nodes = {}          # key -> NodeId
        self.writable = {}       # NodeId -> (kind, loop, args builder)
        self._last = {}          # NodeId -> (value, status code)
        self.updates = 0         # values written
        self.batches = 0
        self.update_s = 0.0      # time spent writing them
        self.events = 0

    # ---- lifecycle -------------------------------------------------------------------
    def start(self, timeout_s=120.0):
        self._thread = threading.Thread(target=self._run, name="greenedge-opcua", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout_s):
            raise UserError("--opcua %s: the server did not start in %g s" % (self.url, timeout_s))
        if self._error is not None:
            raise UserError("--opcua %s: %s" % (self.url, self._error))
        return self

    def stop(self):
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(30.0)

    def _run(self):
        self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._main())
        except Exception as e:  # reported to start(), or logged once it ran
            if not self._ready.is_set():
                self._error = "%s: %s" % (type(e).__name__, e)
                self._ready.set()
            else:
                log.exception("OPC UA server failed")
        finally:
            self._ready.set()
            self._loop.close()

    async def _main(self):
        self._stop = asyncio.Event()
        server = await self._build()
        try:
            await server.start()
        except OSError as e:
            raise UserError(str(e))
        self._read_only_none(server)
        self._wrap_writes(server)
        self._wrap_calls(server)
        if self.port == 0:
            self.port = server.bserver.port
            self.url = "opc.tcp://%s:%d" % (self.host, self.port)
        log.info("OPC UA on %s (%s)", self.url, ", ".join(self.opc["security"]))
        self._ready.set()
        sub = self.hub.subscribe("opcua", ("device", "loop", "kpi", "alarm"), maxlen=10000)
        try:
            await self._update_loop(sub)
        finally:
            sub.close()
            await server.stop()

    # ---- the address space ------------------------------------------------------------
    async def _build(self):
        asyncua = need("asyncua", "--opcua")
        ua = self.ua
        server = asyncua.Server(user_manager=_UserManager(self.users, self.opc["anonymous"],
                                                          ua))
        await server.init()
        server.set_endpoint(self.url)
        server.set_server_name("GreenEdge %s" % self.cfg.name)
        from controller.north.certs import APP_URI
        await server.set_application_uri(APP_URI % self.cfg.name)
        if self.opc.get("certificate"):
            await server.load_certificate(str(self.opc["certificate"]))
            await server.load_private_key(str(self.opc["private_key"]))
        server.set_security_policy([getattr(ua.SecurityPolicyType, POLICY_TYPES[s])
                                    for s in self.opc["security"]])
        sec = self.opc["security"]
        # On a None endpoint asyncua encrypts a password with the first
        # SignAndEncrypt policy's certificate; without one it would go in clear.
        clear = "None" in sec and not any(s.endswith("_SignAndEncrypt") for s in sec)
        if clear and self.opc.get("users"):
            raise UserError("security %s: a password sent on the None endpoint would cross "
                            "the network in clear; add Basic256Sha256_SignAndEncrypt (its "
                            "certificate encrypts it) or drop users (anonymous = \"read\" "
                            "only)" % list(sec))
        tokens = [] if clear else [ua.UserNameIdentityToken]
        if self.opc["anonymous"] == "read":
            tokens.append(ua.AnonymousIdentityToken)
        server.set_identity_tokens(tokens)
        self.idx = idx = await server.register_namespace("urn:greenedge:%s" % self.cfg.name)
        b = _Batch(ua, idx)
        root = b.folder(ua.NodeId(ua.ObjectIds.ObjectsFolder), "GreenEdge", "GreenEdge")
        area_of = areas(self.cfg, self.opc.get("area", {}))
        folders = {}
        for dn, dc in self.cfg.devices.items():
            a = area_of[dn]
            if a not in folders:
                folders[a] = b.folder(root, "GreenEdge.%s" % a, a)
            dev = b.object(folders[a], "GreenEdge.%s.%s" % (a, dn), dn)
            for p in point_map(dc.profile).values():
                if p.count != 1:
                    continue  # arrays (waveforms) stay on the historian
                sid = "GreenEdge.%s.%s.%s" % (a, dn, p.name)
                if measured(p):
                    nid = b.analog(dev, sid, p.name, UNITS.get(p.unit), eu_range(p), p.description)
                else:
                    bit = p.type == "bit"
                    nid = b.variable(dev, sid, p.name, False if bit else 0.0,
                                     ua.VariantType.Boolean if bit else ua.VariantType.Double,
                                     p.description)
                self.nodes[("dev", dn, p.name)] = (nid, p.type == "bit")
        loops = b.folder(root, "GreenEdge.Loops", "Loops")
        for ln, lc in self.cfg.loops.items():
            lo = b.object(loops, "GreenEdge.Loops.%s" % ln, ln)
            s = "GreenEdge.Loops.%s." % ln
            n = b.variable(lo, s + "Mode", "Mode", "auto", ua.VariantType.String,
                           "auto or manual (write: operator)", writable=True)
            self.nodes[("loop", ln, "Mode")] = (n, False)
            self.writable[n] = ("mode", ln, None)
            for key, vt, desc in (("State", ua.VariantType.String,
                                   "auto | fallback | manual | error"),
                                  ("Runs", ua.VariantType.Double, "strategy runs"),
                                  ("Errors", ua.VariantType.Double, "strategy errors")):
                n = b.variable(lo, s + key, key, "" if vt == ua.VariantType.String else 0.0,
                               vt, desc)
                self.nodes[("loop", ln, key)] = (n, False)
            sps, ops, pvs = _loop_points(self.cfg, lc)
            for fname, items in (("SP", sps), ("OP", ops), ("PV", pvs)):
                f = b.object(lo, s + fname, fname)
                for it in items:
                    name = it if fname == "SP" else "%s.%s" % it
                    n = b.variable(f, s + fname + "." + name, name, 0.0, ua.VariantType.Double,
                                   {"SP": "set point (write: operator)",
                                    "OP": "last command (write: operator; puts the loop in "
                                          "manual)", "PV": "process / feedback value"}[fname],
                                   writable=fname != "PV")
                    self.nodes[("loop", ln, fname, it)] = (n, False)
                    if fname == "SP":
                        self.writable[n] = ("setpoint", ln, it)
                    elif fname == "OP":
                        self.writable[n] = ("output", ln, it)
        kf = b.folder(root, "GreenEdge.KPIs", "KPIs")
        for k in self.kpi_keys:
            n = b.variable(kf, "GreenEdge.KPIs.%s" % k, k, 0.0, ua.VariantType.Double, k)
            self.nodes[("kpi", k)] = (n, False)
        self.alarms_obj = b.object(root, "GreenEdge.Alarms", "Alarms")
        ef = b.folder(root, "GreenEdge.Energy", "Energy")
        for dn, dc in self.cfg.devices.items():
            if "energy_kwh" in point_map(dc.profile):
                n = b.analog(ef, "GreenEdge.Energy.%s" % dn, dn, UNITS["kWh"],
                             (0.0, 1e12), "energy metered by %s (its energy_kwh)" % dn)
                self.nodes[("energy", dn)] = (n, False)
        results = await server.iserver.isession.add_nodes(b.items)
        bad = [(it.BrowseName.Name, r.StatusCode) for it, r in zip(b.items, results)
               if not r.StatusCode.is_good()]
        if bad:
            raise RuntimeError("address space: %d nodes not added, first %s" % (len(bad), bad[0]))
        self.n_nodes = len(b.items)
        self.ack_method = await self._ack_method(server, idx)
        self.alarm_events = await server.get_event_generator()
        self.server = server
        return server

    def _read_only_none(self, server):
        """Sessions on the None policy may read, browse and subscribe, never write."""
        from asyncua.crypto.permission_rules import SimpleRoleRuleset
        from asyncua.crypto.security_policies import SecurityPolicyNone
        ua = self.ua

        class ReadOnly(SimpleRoleRuleset):
            DENY = {ua.NodeId(ua.ObjectIds.WriteRequest_Encoding_DefaultBinary),
                    ua.NodeId(ua.ObjectIds.CallRequest_Encoding_DefaultBinary)}

            def check_validity(self, user, action_type_id, body):
                if action_type_id in self.DENY:
                    return False
                return super().check_validity(user, action_type_id, body)

        for f in server._policies:
            if f.cls is SecurityPolicyNone:
                f.permission_ruleset = ReadOnly()

    # ---- writes through the gate -----------------------------------------------------
    def _wrap_writes(self, server):
        svc = server.iserver.attribute_service
        original = svc.write
        ua = self.ua

        async def write(params, user=None):
            out = []
            for wv in params.NodesToWrite:
                if wv.NodeId in self.writable and wv.AttributeId == ua.AttributeIds.Value:
                    out.append(self._gate_write(wv, user))
                else:
                    one = ua.WriteParameters()
                    one.NodesToWrite = [wv]
                    out.extend(await original(one, user=user) if user is not None
                               else await original(one))
            return out
        svc.write = write

    def _gate_write(self, wv, user):
        ua = self.ua
        kind, loop, arg = self.writable[wv.NodeId]
        role = getattr(user, "gate_role", "viewer")
        who = "opcua:%s" % (getattr(user, "name", None) or "anonymous")
        v = wv.Value.Value.Value if wv.Value is not None and wv.Value.Value is not None else None
        if kind == "mode":
            if not isinstance(v, str):
                return ua.StatusCode(ua.StatusCodes.BadTypeMismatch)
            args = {"mode": v}
            gate_kind = "mode"
        else:
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                return ua.StatusCode(ua.StatusCodes.BadTypeMismatch)
            if kind == "setpoint":
                gate_kind, args = "setpoint", {"key": arg, "value": float(v)}
            else:
                gate_kind, args = "mode", {"mode": "manual",
                                           "outputs": {arg[0]: {arg[1]: float(v)}}}
        t = self.gate.submit(who, role, gate_kind, loop, **args)
        if t.accepted:
            return ua.StatusCode(ua.StatusCodes.Good)
        if role not in ROLES or ROLES.index(role) < ROLES.index(NEEDS[gate_kind]):
            return ua.StatusCode(ua.StatusCodes.BadUserAccessDenied)
        if "outside" in (t.reason or ""):
            return ua.StatusCode(ua.StatusCodes.BadOutOfRange)
        return ua.StatusCode(ua.StatusCodes.BadInvalidArgument)

    # ---- alarm acknowledgement through the gate -----------------------------------------
    async def _ack_method(self, server, idx):
        """GreenEdge/Alarms/Acknowledge(AlarmId, Comment): the method node; a
        session's call reaches _gate_ack (_wrap_calls), which knows its user."""
        ua = self.ua

        def arg(name, desc):
            a = ua.Argument()
            a.Name, a.DataType, a.ValueRank = name, ua.NodeId(ua.ObjectIds.String), -1
            a.Description = ua.LocalizedText(desc)
            return a

        async def no_session(parent, *args):   # only a call without a session lands here
            return ua.StatusCode(ua.StatusCodes.BadUserAccessDenied)
        node = await server.get_node(self.alarms_obj).add_method(
            ua.NodeId("GreenEdge.Alarms.Acknowledge", idx), ua.QualifiedName("Acknowledge", idx),
            no_session, [arg("AlarmId", "the alarm's id (the event's SourceName)"),
                         arg("Comment", "why (optional, at most 200 characters)")], [])
        return node.nodeid

    def _wrap_calls(self, server):
        """Each session's Call service: Acknowledge goes to the gate with the
        session user's role; every other method call to asyncua."""
        iserver = server.iserver
        create = iserver.create_session

        def create_session(*a, **kw):
            session = create(*a, **kw)
            original = session.call

            async def call(methods):
                out = []
                for m in methods:
                    if m.MethodId == self.ack_method:
                        out.append(self._gate_ack(m, session.user))
                    else:
                        out.extend(await original([m]))
                return out
            session.call = call
            return session
        iserver.create_session = create_session

    def _gate_ack(self, m, user):
        ua = self.ua
        res = ua.CallMethodResult()
        args = [v.Value if isinstance(v, ua.Variant) else v for v in (m.InputArguments or [])]
        if not 1 <= len(args) <= 2 or any(a is not None and not isinstance(a, str)
                                          for a in args) or not args[0]:
            res.StatusCode = ua.StatusCode(ua.StatusCodes.BadInvalidArgument)
            return res
        res.InputArgumentResults = [ua.StatusCode() for _ in args]
        role = getattr(user, "gate_role", "viewer")
        who = "opcua:%s" % (getattr(user, "name", None) or "anonymous")
        t = self.gate.submit(who, role, "ack", None, alarm=args[0],
                             reason=(args[1] if len(args) > 1 and args[1] else None))
        if t.accepted:
            res.StatusCode = ua.StatusCode(ua.StatusCodes.Good)
        elif role not in ROLES or ROLES.index(role) < ROLES.index(NEEDS["ack"]):
            res.StatusCode = ua.StatusCode(ua.StatusCodes.BadUserAccessDenied)
        elif (t.reason or "").startswith("no alarm"):
            res.StatusCode = ua.StatusCode(ua.StatusCodes.BadNotFound)
        elif "nothing to acknowledge" in (t.reason or ""):
            res.StatusCode = ua.StatusCode(ua.StatusCodes.BadConditionBranchAlreadyAcked)
        else:
            res.StatusCode = ua.StatusCode(ua.StatusCodes.BadInvalidArgument)
        return res

    # ---- values from the hub -----------------------------------------------------------
    async def _update_loop(self, sub):
        devices = {}
        for dn, v in self.hub.latest("device").items():
            devices[dn] = v
        loops = self.hub.latest("loop")
        kpis = self.hub.latest("kpi").get("kpis")
        next_stale = 0.0
        while not self._stop.is_set():
            writes = []
            now = time.time()
            for dn, v in devices.items():
                self._device(writes, dn, v, now)
            for ln, v in loops.items():
                self._loop_state(writes, ln, v, devices)
            if kpis is not None:
                self._kpis(writes, kpis)
            devices, loops, kpis = {}, {}, None
            await self._write(writes)
            if now >= next_stale:   # points gone stale without a new publication
                next_stale = now + 1.0
                writes = []
                for dn, v in self.hub.latest("device").items():
                    self._device(writes, dn, v, now)
                await self._write(writes)
            try:
                await asyncio.wait_for(self._stop.wait(), self.period_s)
            except asyncio.TimeoutError:
                pass
            state, stream = sub.drain()
            for (topic, key), v in state.items():
                if topic == "device":
                    devices[key] = v
                elif topic == "loop":
                    loops[key] = v
                elif topic == "kpi":
                    kpis = v
            for topic, item in stream:
                if topic == "alarm":
                    await self._alarm_event(item)

    def _status(self, up, q, src, now):
        S = self.ua.StatusCodes
        if not up:
            return S.BadCommunicationError
        if now - src > self.cfg.stale_s:
            return S.UncertainLastUsableValue
        if q == regmap.Q_GOOD:
            return S.Good
        if q == regmap.Q_UNCERTAIN:
            return S.UncertainSensorNotAccurate
        return S.BadSensorFailure

    def _device(self, writes, dn, v, now):
        up = v.get("up", False)
        for p, (val, q, src) in v.get("points", {}).items():
            e = self.nodes.get(("dev", dn, p))
            if e is None:
                continue
            code = self._status(up, q, src, now)
            writes.append((e[0], bool(val) if e[1] else val, code, src))
            if p == "energy_kwh" and ("energy", dn) in self.nodes:
                writes.append((self.nodes[("energy", dn)][0], val, code, src))
        if not up:   # a device never polled has no samples: its nodes say why
            for (k, d, p), e in self._dev_nodes(dn):
                if p not in v.get("points", {}):
                    writes.append((e[0], None, self.ua.StatusCodes.BadCommunicationError, now))

    def _dev_nodes(self, dn):
        if not hasattr(self, "_by_dev"):
            self._by_dev = {}
            for k, e in self.nodes.items():
                if k[0] == "dev":
                    self._by_dev.setdefault(k[1], []).append((k, e))
        return self._by_dev.get(dn, [])

    def _loop_state(self, writes, ln, v, devices):
        G = self.ua.StatusCodes.Good
        t = time.time()
        n = self.nodes
        writes.append((n[("loop", ln, "Mode")][0], "manual" if v.get("manual") else "auto", G, t))
        writes.append((n[("loop", ln, "State")][0], str(v.get("mode")), G, t))
        writes.append((n[("loop", ln, "Runs")][0], float(v.get("runs", 0)), G, t))
        writes.append((n[("loop", ln, "Errors")][0], float(v.get("errors", 0)), G, t))
        for key, val in (v.get("process") or {}).items():
            e = n.get(("loop", ln, "SP", key))
            if e is not None:
                writes.append((e[0], float(val), G, t))
        for role, cmds in (v.get("cmds") or {}).items():
            for pt, val in cmds.items():
                e = n.get(("loop", ln, "OP", (role, pt)))
                if e is not None and isinstance(val, (int, float)):
                    writes.append((e[0], float(val), G, t))
        lc = self.cfg.loops[ln]
        for role, dn in lc.devices.items():
            d = devices.get(dn) or self.hub.latest("device").get(dn)
            if not d:
                continue
            for pt, (val, q, src) in d.get("points", {}).items():
                e = n.get(("loop", ln, "PV", (role, pt)))
                if e is not None:
                    writes.append((e[0], val, self._status(d.get("up"), q, src, t), src))

    def _kpis(self, writes, kpis):
        S = self.ua.StatusCodes
        t = time.time()
        for k, val in kpis.items():
            e = self.nodes.get(("kpi", k))
            if e is None:
                continue
            if isinstance(val, (int, float)) and not isinstance(val, bool) and math.isfinite(val):
                writes.append((e[0], float(val), S.Good, t))
            else:
                writes.append((e[0], None, S.BadNoData, t))

    async def _write(self, writes):
        """One batch: only values whose value or status changed."""
        if not writes:
            return
        ua = self.ua
        t0 = time.perf_counter()
        aspace = self.server.iserver.aspace
        n = 0
        for nid, val, code, src in writes:
            key = (val, code)
            if self._last.get(nid) == key:
                continue
            self._last[nid] = key
            if isinstance(val, bool):
                var = ua.Variant(val, ua.VariantType.Boolean)
            elif isinstance(val, str):
                var = ua.Variant(val, ua.VariantType.String)
            elif val is None:
                var = ua.Variant(None, ua.VariantType.Null)
            else:
                var = ua.Variant(float(val), ua.VariantType.Double)
            ts = _dt(src)
            dv = ua.DataValue(var, StatusCode=ua.StatusCode(code), SourceTimestamp=ts,
                              ServerTimestamp=_dt(time.time()))
            await aspace.write_attribute_value(nid, ua.AttributeIds.Value, dv)
            n += 1
        self.updates += n
        self.batches += 1
        self.update_s += time.perf_counter() - t0

    async def _alarm_event(self, rec):
        ev = self.alarm_events.event
        ev.Severity = SEVERITY.get(rec.get("priority"), 500)
        ev.SourceName = str(rec.get("id"))
        text = "%s: %s -> %s" % (rec.get("id"), rec.get("old"), rec.get("new"))
        if rec.get("text"):
            text += " (%s)" % rec["text"]
        ev.Message = self.ua.LocalizedText(text)
        await self.alarm_events.trigger()
        self.events += 1

    def stats(self):
        return {"nodes": getattr(self, "n_nodes", 0), "updates": self.updates,
                "batches": self.batches, "update_s": self.update_s, "events": self.events}


def _dt(wall_s):
    import datetime
    return datetime.datetime.fromtimestamp(wall_s, datetime.timezone.utc)


class _Batch:
    """AddNodesItems for the whole address space, parents first."""

    def __init__(self, ua, idx):
        self.ua, self.idx, self.items = ua, idx, []

    def _nid(self, sid):
        return self.ua.NodeId(sid, self.idx)

    def _item(self, parent, sid, name, cls, ref, typedef, attrs):
        ua = self.ua
        it = ua.AddNodesItem()
        it.RequestedNewNodeId = self._nid(sid)
        it.BrowseName = ua.QualifiedName(name, self.idx if ref != ua.ObjectIds.HasProperty else 0)
        it.NodeClass = cls
        it.ParentNodeId = parent
        it.ReferenceTypeId = ua.NodeId(ref)
        it.TypeDefinition = ua.NodeId(typedef)
        it.NodeAttributes = attrs
        self.items.append(it)
        return it.RequestedNewNodeId

    def folder(self, parent, sid, name):
        return self._obj(parent, sid, name, self.ua.ObjectIds.FolderType)

    def object(self, parent, sid, name):
        return self._obj(parent, sid, name, self.ua.ObjectIds.BaseObjectType)

    def _obj(self, parent, sid, name, typedef):
        ua = self.ua
        a = ua.ObjectAttributes()
        a.DisplayName = ua.LocalizedText(name)
        a.Description = ua.LocalizedText(name)
        a.EventNotifier = 0
        # folders and the objects in them: Organizes (a browse from Objects finds them)
        return self._item(parent, sid, name, ua.NodeClass.Object, ua.ObjectIds.Organizes,
                          typedef, a)

    def _vattrs(self, value, vt, desc, writable=False, datatype=None):
        ua = self.ua
        a = ua.VariableAttributes()
        a.DisplayName = ua.LocalizedText("")
        a.Description = ua.LocalizedText(desc or "")
        a.Value = ua.Variant(value, vt)
        a.DataType = datatype or ua.NodeId({ua.VariantType.Double: ua.ObjectIds.Double,
                                            ua.VariantType.Boolean: ua.ObjectIds.Boolean,
                                            ua.VariantType.String: ua.ObjectIds.String}[vt])
        a.ValueRank = ua.ValueRank.Scalar
        a.ArrayDimensions = None
        a.WriteMask = a.UserWriteMask = 0
        a.Historizing = False
        mask = ua.AccessLevel.CurrentRead.mask
        if writable:
            mask |= ua.AccessLevel.CurrentWrite.mask
        a.AccessLevel = a.UserAccessLevel = mask
        # a.MinimumSamplingInterval: 0 (the server samples on change)
        return a

    def variable(self, parent, sid, name, value, vt, desc="", writable=False):
        ua = self.ua
        a = self._vattrs(value, vt, desc, writable)
        a.DisplayName = ua.LocalizedText(name)
        return self._item(parent, sid, name, ua.NodeClass.Variable, ua.ObjectIds.HasComponent,
                          ua.ObjectIds.BaseDataVariableType, a)

    def analog(self, parent, sid, name, unit, rng, desc=""):
        ua = self.ua
        a = self._vattrs(0.0, ua.VariantType.Double, desc)
        a.DisplayName = ua.LocalizedText(name)
        nid = self._item(parent, sid, name, ua.NodeClass.Variable, ua.ObjectIds.HasComponent,
                         ua.ObjectIds.AnalogItemType, a)
        r = ua.Range(Low=float(rng[0]), High=float(rng[1]))
        pa = self._vattrs(r, ua.VariantType.ExtensionObject, "EURange",
                          datatype=ua.NodeId(ua.ObjectIds.Range))
        pa.DisplayName = ua.LocalizedText("EURange")
        self._item(nid, sid + ".EURange", "EURange", ua.NodeClass.Variable,
                   ua.ObjectIds.HasProperty, ua.ObjectIds.PropertyType, pa)
        if unit is not None:
            code, disp, text = unit
            eu = ua.EUInformation(NamespaceUri=UNECE_NS, UnitId=unit_id(code),
                                  DisplayName=ua.LocalizedText(disp),
                                  Description=ua.LocalizedText(text))
            ea = self._vattrs(eu, ua.VariantType.ExtensionObject, "EngineeringUnits",
                              datatype=ua.NodeId(ua.ObjectIds.EUInformation))
            ea.DisplayName = ua.LocalizedText("EngineeringUnits")
            self._item(nid, sid + ".EngineeringUnits", "EngineeringUnits", ua.NodeClass.Variable,
                       ua.ObjectIds.HasProperty, ua.ObjectIds.PropertyType, ea)
        return nid


def _user_class(ua):
    from asyncua.crypto.permission_rules import User

    @dataclass
    class GateUser(User):
        gate_role: str = "viewer"
    return GateUser


class _UserManager:
    """asyncua's user manager: the users file decides who logs in and the role;
    every session is an asyncua User (reads, writes through our checks)."""

    def __init__(self, users, anonymous, ua):
        from asyncua.crypto.permission_rules import UserRole
        self.users, self.anonymous, self.UserRole = users, anonymous, UserRole
        self.GateUser = _user_class(ua)

    def get_user(self, iserver, username=None, password=None, certificate=None):
        if username:
            role = self.users.role_of(username, password)
            if role is None:
                log.warning("OPC UA login refused for %r", username)
                return None
            return self.GateUser(role=self.UserRole.User, name=username, gate_role=role)
        # certificate: the secure channel's client certificate (b"" on None), not an
        # identity; X509 identity tokens are not offered (set_identity_tokens)
        if self.anonymous == "read":
            return self.GateUser(role=self.UserRole.User, name="anonymous", gate_role="viewer")
        return None
