"""The OPC UA server (asyncua) on the service polling a fake line
(hil_tests/fakeline.py), checked with asyncua's own client over TCP on
127.0.0.1: browse, values with status codes and units, a subscription, writes
through the command gate by role, and the security set-up."""

import asyncio
import textwrap

import pytest

from asyncua import Client, ua  # the test extra installs it: missing, this file fails

from controller.config import load_config  # noqa: E402
from controller.north.certs import make_cert  # noqa: E402
from controller.north.users import add_user  # noqa: E402
from tests.plant_toml import fan_plant  # noqa: E402

PLANT = fan_plant('north', 2, 100, tail="""
    [opcua]
    endpoint = "opc.tcp://127.0.0.1:0"
    certificate = "server.der"
    private_key = "server.pem"
    users = "users.toml"
    security = ["Basic256Sha256_SignAndEncrypt", "Basic256Sha256_Sign",
                "Aes256_Sha256_RsaPss_SignAndEncrypt", "Aes256_Sha256_RsaPss_Sign"]
""")


def client(url, tmp, user=None, pw=None):
    c = Client(url, timeout=20)
    c.application_uri = "urn:greenedge:testclient"
    if user:
        c.set_user(user)
        c.set_password(pw)
    return c


async def secure(c, tmp, policy="Basic256Sha256", mode="SignAndEncrypt"):
    await c.set_security_string("%s,%s,%s,%s" % (policy, mode, tmp / "client.der",
                                                 tmp / "client.pem"))


def test_opcua_against_the_running_service(tmp_path):
    from hil_tests.fakeline import fake_service
    make_cert(tmp_path / "server.der", tmp_path / "server.pem", "urn:greenedge:north",
              hosts=["127.0.0.1", "localhost"])
    make_cert(tmp_path / "client.der", tmp_path / "client.pem", "urn:greenedge:testclient",
              hosts=["127.0.0.1"], common_name="test client")
    add_user(tmp_path / "users.toml", "olga", "operator", "operator-pw")
    add_user(tmp_path / "users.toml", "vic", "viewer", "viewer-pw")
    (tmp_path / "plant.toml").write_text(PLANT)
    cfg = load_config(tmp_path / "plant.toml")
    svc = fake_service(cfg, [1], historian=False)   # fan2 never answers
    audit = svc.hub.subscribe("test", ("audit",))
    got = {}

    async def until(cond, what, n=600):
        for _ in range(n):
            if await cond() if asyncio.iscoroutinefunction(cond) else cond():
                return
            await asyncio.sleep(0.05)
        raise AssertionError(what)

    async def run():
        task = asyncio.create_task(svc.run(120.0))
        try:
            await until(lambda: svc.north, "OPC UA server never started")
            s = svc.north[0]
            url = s.url
            await until(lambda: svc.devices["fan1"].polls > 3 and s.updates > 0, "no updates")
            c = client(url, tmp_path, "olga", "operator-pw")
            await secure(c, tmp_path)
            async with c:
                ns = await c.get_namespace_index("urn:greenedge:north")
                ge = await c.nodes.objects.get_child("%d:GreenEdge" % ns)
                got["top"] = sorted([(await n.read_browse_name()).Name
                                     for n in await ge.get_children()])
                fan = await ge.get_child(["%d:fan" % ns, "%d:fan1" % ns])
                got["fan1"] = {(await n.read_browse_name()).Name for n in await fan.get_children()}
                p = c.get_node(ua.NodeId("GreenEdge.fan.fan1.power_kw", ns))
                got["typedef"] = await p.read_type_definition()
                got["eu"] = await (await p.get_child("0:EngineeringUnits")).read_value()
                got["range"] = await (await p.get_child("0:EURange")).read_value()
                got["p"] = await p.read_data_value()
                got["down"] = await c.get_node(ua.NodeId(
                    "GreenEdge.Unassigned.fan2.power_kw", ns)).read_data_value(
                        raise_on_bad_status=False)
                # a subscription on the speed the fake drive ramps to its reference
                changes = []

                class H:
                    def datachange_notification(self, node, val, data):
                        changes.append(val)
                sub = await c.create_subscription(100, H())
                mode = c.get_node(ua.NodeId("GreenEdge.Loops.fan.Mode", ns))
                await sub.subscribe_data_change(mode)
                await until(lambda: changes, "no initial notification")
                got["mode0"] = changes[-1]
                await mode.write_value(ua.DataValue(ua.Variant("manual", ua.VariantType.String)))
                await until(lambda: "manual" in changes, "mode change never notified")
                got["changes"] = list(changes)
                sp = c.get_node(ua.NodeId("GreenEdge.Loops.fan.SP.flow_sp_m3s", ns))
                with pytest.raises(ua.uaerrors.BadOutOfRange):
                    await sp.write_value(ua.DataValue(ua.Variant(80.0, ua.VariantType.Double)))
                with pytest.raises(ua.uaerrors.BadUserAccessDenied):   # a device point: read-only
                    await p.write_value(ua.DataValue(ua.Variant(1.0, ua.VariantType.Double)))
                await sub.delete()
            v = client(url, tmp_path, "vic", "viewer-pw")
            await secure(v, tmp_path, "Aes256Sha256RsaPss", "Sign")
            async with v:
                m = v.get_node(ua.NodeId("GreenEdge.Loops.fan.Mode", ns))
                with pytest.raises(ua.uaerrors.BadUserAccessDenied):
                    await m.write_value(ua.DataValue(ua.Variant("auto", ua.VariantType.String)))
                got["viewer_reads"] = await m.read_value()
            # no security: no endpoint offers None
            got["modes"] = {e.SecurityMode for e in
                            await client(url, tmp_path).connect_and_get_server_endpoints()}
            with pytest.raises(Exception):
                async with client(url, tmp_path, "olga", "operator-pw"):
                    pass
            # anonymous = "off" (the default): an anonymous session is refused, even encrypted
            anon = client(url, tmp_path)
            await secure(anon, tmp_path)
            with pytest.raises(ua.uaerrors.BadIdentityTokenRejected):
                async with anon:
                    pass
            # a wrong password: refused at activation
            w = client(url, tmp_path, "olga", "wrong-pw")
            await secure(w, tmp_path)
            with pytest.raises(Exception):
                async with w:
                    pass
        finally:
            svc.stop()
            await task
    asyncio.run(run())
    assert got["top"] == ["Alarms", "Energy", "KPIs", "Loops", "Unassigned", "fan"]
    assert got["modes"] == {ua.MessageSecurityMode.Sign, ua.MessageSecurityMode.SignAndEncrypt}
    assert {"power_kw", "energy_kwh", "speed_actual_pct", "status"} <= got["fan1"]
    assert got["typedef"] == ua.NodeId(ua.ObjectIds.AnalogItemType)
    assert got["eu"].DisplayName.Text == "kW" and got["eu"].UnitId == 4937556   # "KWT"
    assert got["eu"].NamespaceUri == "http://www.opcfoundation.org/UA/units/un/cefact"
    assert got["range"].Low < 0 < got["range"].High
    assert got["p"].StatusCode.is_good() and got["p"].SourceTimestamp is not None
    assert got["down"].StatusCode.value == ua.StatusCodes.BadCommunicationError
    assert got["mode0"] == "auto" and got["changes"][-1] == "manual"
    assert got["viewer_reads"] == "manual"
    _, stream = audit.drain()
    recs = [r for t, r in stream]
    mine = [(r["who"], r["role"], r["kind"], r["accepted"]) for r in recs]
    assert ("opcua:olga", "operator", "mode", True) in mine
    assert ("opcua:vic", "viewer", "mode", False) in mine
    assert ("opcua:olga", "operator", "setpoint", False) in mine
    assert svc.loops["fan"].manual is not None


def test_opcua_config_errors(tmp_path):
    from controller.errors import UserError
    (tmp_path / "a.toml").write_text(PLANT.replace('certificate = "server.der"\n', ""))
    with pytest.raises(UserError, match="need certificate and private_key"):
        load_config(tmp_path / "a.toml")
    (tmp_path / "b.toml").write_text(PLANT.replace("opc.tcp://127.0.0.1:0", "http://x:1"))
    with pytest.raises(UserError, match="expected opc.tcp://HOST:PORT"):
        load_config(tmp_path / "b.toml")
    (tmp_path / "c.toml").write_text(PLANT.replace('"Basic256Sha256_Sign",', '"Basic128",'))
    with pytest.raises(UserError, match="security"):
        load_config(tmp_path / "c.toml")


def test_users_file_scrypt(tmp_path):
    from controller.errors import UserError
    from controller.north.users import Users
    add_user(tmp_path / "u.toml", "ann", "engineer", "long-enough")
    text = (tmp_path / "u.toml").read_text()
    assert "long-enough" not in text and "16384:8:1:" in text
    u = Users(tmp_path / "u.toml")
    assert u.role_of("ann", "long-enough") == "engineer"
    assert u.role_of("ann", "wrong") is None and u.role_of("bob", "long-enough") is None
    with pytest.raises(UserError, match="role"):
        add_user(tmp_path / "u.toml", "x", "admin", "long-enough")


ALARM = textwrap.dedent("""
    [[alarms]]
    id = "fan.manual"
    on_delay_s = 1
    priority = 2
    text = "fan loop in manual"
    """)


def _setup(tmp_path, plant):
    make_cert(tmp_path / "server.der", tmp_path / "server.pem", "urn:greenedge:north",
              hosts=["127.0.0.1", "localhost"])
    make_cert(tmp_path / "client.der", tmp_path / "client.pem", "urn:greenedge:testclient",
              hosts=["127.0.0.1"], common_name="test client")
    add_user(tmp_path / "users.toml", "olga", "operator", "operator-pw")
    add_user(tmp_path / "users.toml", "vic", "viewer", "viewer-pw")
    (tmp_path / "plant.toml").write_text(plant)
    return load_config(tmp_path / "plant.toml")


async def _until(cond, what, timeout_s=60.0):
    """Wait on a condition (a loaded machine is slow: no fixed timing)."""
    loop = asyncio.get_running_loop()
    t_end = loop.time() + timeout_s
    while loop.time() < t_end:
        if cond():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("%s (%g s)" % (what, timeout_s))


def test_opcua_alarm_events_and_acknowledge(tmp_path):
    """An alarm raised on the service (the loop put in manual over OPC UA: the
    fan.manual alarm) reaches an event subscription on the Server object with
    its severity, message and source; Acknowledge is refused for a viewer,
    accepted for an operator (the acknowledged state is the next event), and
    both calls are in the audit."""
    from controller.alarms.engine import ACKED
    from hil_tests.fakeline import fake_service
    cfg = _setup(tmp_path, PLANT + ALARM)
    svc = fake_service(cfg, [1], historian=False)
    audit = svc.hub.subscribe("test", ("audit",))
    events, got = [], {}

    class H:
        def event_notification(self, ev):
            events.append(ev)

        def datachange_notification(self, node, val, data):
            pass

    def ev(new):
        return [e for e in events if e.SourceName == "fan.manual"
                and ("-> %s" % new) in e.Message.Text]

    async def run():
        task = asyncio.create_task(svc.run(120.0))
        try:
            await _until(lambda: svc.north and svc.north[0].updates > 0, "no OPC UA server")
            url = svc.north[0].url
            c = client(url, tmp_path, "olga", "operator-pw")
            await secure(c, tmp_path)
            v = client(url, tmp_path, "vic", "viewer-pw")
            await secure(v, tmp_path)
            async with c, v:
                ns = await c.get_namespace_index("urn:greenedge:north")
                sub = await c.create_subscription(100, H())
                await sub.subscribe_events(c.nodes.server)
                mode = c.get_node(ua.NodeId("GreenEdge.Loops.fan.Mode", ns))
                await mode.write_value(ua.DataValue(ua.Variant("manual", ua.VariantType.String)))
                await _until(lambda: ev("unacknowledged"), "no event for fan.manual raised")
                got["raised"] = ev("unacknowledged")[0]
                ack = "%d:Acknowledge" % ns
                alarms = await v.nodes.objects.get_child(["%d:GreenEdge" % ns, "%d:Alarms" % ns])
                with pytest.raises(ua.uaerrors.BadUserAccessDenied):
                    await alarms.call_method(ack, "fan.manual", "viewer tries")
                got["state_after_viewer"] = svc.alarms.alarms["fan.manual"].state
                alarms = c.get_node(alarms.nodeid)
                with pytest.raises(ua.uaerrors.BadNotFound):
                    await alarms.call_method(ack, "fan.nothing", "")
                await alarms.call_method(ack, "fan.manual", "seen, testing")
                await _until(lambda: ev("acknowledged") and
                             svc.alarms.alarms["fan.manual"].state == ACKED,
                             "the acknowledgement never arrived as an event")
                got["acked"] = ev("acknowledged")[0]
                with pytest.raises(ua.uaerrors.BadConditionBranchAlreadyAcked):
                    await alarms.call_method(ack, "fan.manual", "again")
                await sub.delete()
        finally:
            svc.stop()
            await task
    asyncio.run(run())
    r = got["raised"]
    assert r.Severity == 700 and r.SourceName == "fan.manual"
    assert r.Message.Text == "fan.manual: normal -> unacknowledged (fan loop in manual)"
    assert r.SourceNode == ua.NodeId(ua.ObjectIds.Server)
    assert got["state_after_viewer"] == "unacknowledged"
    assert got["acked"].Message.Text.startswith("fan.manual: unacknowledged -> acknowledged")
    assert svc.alarms.alarms["fan.manual"].who == "opcua:olga"
    _, stream = audit.drain()
    mine = [(r["who"], r["role"], r["kind"], r["target"], r["accepted"]) for t, r in stream
            if r["kind"] == "ack"]
    assert ("opcua:vic", "viewer", "ack", None, False) in mine
    assert ("opcua:olga", "operator", "ack", "fan.manual", True) in mine
    assert ("opcua:olga", "operator", "ack", "fan.manual", False) in mine   # already acked


NONE = PLANT.replace('"Aes256_Sha256_RsaPss_SignAndEncrypt", "Aes256_Sha256_RsaPss_Sign"]',
                     '"None"]\n    anonymous = "read"')


def test_opcua_none_endpoint_is_read_only(tmp_path):
    """security with "None" and anonymous = "read": a None endpoint is offered; on it
    an anonymous session and an operator's both browse, read and subscribe, and every
    write and method call is refused (BadUserAccessDenied), the loop untouched and
    nothing reaching the gate; an anonymous session on a signed endpoint reads as a
    viewer (its write refused by the gate, audited)."""
    from hil_tests.fakeline import fake_service
    assert '"None"]' in NONE and 'anonymous = "read"' in NONE
    cfg = _setup(tmp_path, NONE + ALARM)
    svc = fake_service(cfg, [1], historian=False)
    audit = svc.hub.subscribe("test", ("audit",))
    got = {}

    async def run():
        task = asyncio.create_task(svc.run(120.0))
        try:
            await _until(lambda: svc.north and svc.north[0].updates > 0
                         and svc.devices["fan1"].polls > 3, "no OPC UA server")
            url = svc.north[0].url
            probe = client(url, tmp_path)
            got["modes"] = {(e.SecurityPolicyUri.rsplit("#", 1)[-1], e.SecurityMode)
                            for e in await probe.connect_and_get_server_endpoints()}
            for who in ("anonymous", "olga"):
                c = client(url, tmp_path, *(("olga", "operator-pw") if who == "olga" else ()))
                async with c:   # no security string: the None endpoint
                    ns = await c.get_namespace_index("urn:greenedge:north")
                    ge = await c.nodes.objects.get_child("%d:GreenEdge" % ns)
                    got[who, "top"] = sorted([(await n.read_browse_name()).Name
                                              for n in await ge.get_children()])
                    p = c.get_node(ua.NodeId("GreenEdge.fan.fan1.power_kw", ns))
                    for _ in range(600):   # fan1 up and polled (a loaded machine is slow)
                        got[who, "p"] = await p.read_data_value(raise_on_bad_status=False)
                        if got[who, "p"].StatusCode.is_good():
                            break
                        await asyncio.sleep(0.1)
                    seen = []

                    class H:
                        def datachange_notification(self, node, val, data):
                            seen.append(val)
                    sub = await c.create_subscription(100, H())
                    await sub.subscribe_data_change(
                        c.get_node(ua.NodeId("GreenEdge.fan.fan1.speed_actual_pct", ns)))
                    await _until(lambda: seen, "no notification on the None endpoint")
                    mode = c.get_node(ua.NodeId("GreenEdge.Loops.fan.Mode", ns))
                    with pytest.raises(ua.uaerrors.BadUserAccessDenied):
                        await mode.write_value(ua.DataValue(ua.Variant("manual",
                                                                       ua.VariantType.String)))
                    sp = c.get_node(ua.NodeId("GreenEdge.Loops.fan.SP.flow_sp_m3s", ns))
                    with pytest.raises(ua.uaerrors.BadUserAccessDenied):
                        await sp.write_value(ua.DataValue(ua.Variant(20.0, ua.VariantType.Double)))
                    alarms = await ge.get_child("%d:Alarms" % ns)
                    with pytest.raises(ua.uaerrors.BadUserAccessDenied):
                        await alarms.call_method("%d:Acknowledge" % ns, "fan.manual", "")
                    got[who, "mode"] = await mode.read_value()
                    await sub.delete()
            got["manual_after_none"] = svc.loops["fan"].manual
            got["audit_after_none"] = list(audit.drain()[1])
            a = client(url, tmp_path)      # anonymous, signed and encrypted
            await secure(a, tmp_path)
            async with a:
                mode = a.get_node(ua.NodeId("GreenEdge.Loops.fan.Mode", ns))
                got["anon_secure_reads"] = await mode.read_value()
                with pytest.raises(ua.uaerrors.BadUserAccessDenied):
                    await mode.write_value(ua.DataValue(ua.Variant("manual",
                                                                   ua.VariantType.String)))
        finally:
            svc.stop()
            await task
    asyncio.run(run())
    M = ua.MessageSecurityMode
    assert ("None", M.None_) in got["modes"]
    assert ("Basic256Sha256", M.SignAndEncrypt) in got["modes"]
    for who in ("anonymous", "olga"):
        assert got[who, "top"] == ["Alarms", "Energy", "KPIs", "Loops", "Unassigned", "fan"]
        assert got[who, "p"].StatusCode.is_good()
        assert got[who, "mode"] == "auto"
    assert got["manual_after_none"] is None
    assert got["audit_after_none"] == []          # refused before the gate
    assert got["anon_secure_reads"] == "auto"
    _, stream = audit.drain()
    assert [(r["who"], r["role"], r["kind"], r["accepted"]) for t, r in stream] == [
        ("opcua:anonymous", "viewer", "mode", False)]


def test_opcua_none_without_encryption_refuses_passwords(tmp_path):
    """security = ["None"] (or None beside Sign only) with a users file: a password on the
    None endpoint would cross in clear, so the server does not start; without users it
    starts, anonymous only."""
    from controller.errors import UserError
    from controller.north.opcua import OpcUaServer
    from controller.runtime.hub import Hub
    add_user(tmp_path / "users.toml", "olga", "operator", "operator-pw")
    only_none = PLANT.split("[opcua]")[0] + textwrap.dedent("""
        [opcua]
        endpoint = "opc.tcp://127.0.0.1:0"
        security = ["None"]
        anonymous = "read"
        """)
    (tmp_path / "a.toml").write_text(only_none + 'users = "users.toml"\n')
    cfg = load_config(tmp_path / "a.toml")
    with pytest.raises(UserError, match="in clear"):
        OpcUaServer(cfg, cfg.north["opcua"], Hub(), gate=None).start()
    (tmp_path / "b.toml").write_text(only_none)
    cfg = load_config(tmp_path / "b.toml")
    srv = OpcUaServer(cfg, cfg.north["opcua"], Hub(), gate=None).start()
    got = {}

    async def run():
        async with Client(srv.url, timeout=20) as c:
            got["policies"] = {t.TokenType for e in await c.get_endpoints()
                               for t in e.UserIdentityTokens}
            got["mode"] = await c.get_node(ua.NodeId("GreenEdge.Loops.fan.Mode",
                                                     srv.idx)).read_value()
        u = client(srv.url, tmp_path, "olga", "operator-pw")
        with pytest.raises(ua.uaerrors.BadIdentityTokenRejected):
            async with u:
                pass
    try:
        asyncio.run(run())
    finally:
        srv.stop()
    assert got["policies"] == {ua.UserTokenType.Anonymous}
    assert got["mode"] == "auto"
