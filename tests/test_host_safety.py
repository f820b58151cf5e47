"""The host's side of the device safety items (issue 14 items 6 and 10) on the
in-process fake line (hil_tests/fakeline.py, which keeps the firmware's
heartbeat and settings-lock rules): only a healthy loop writes its devices'
heartbeat, so a loop that raises or is held leaves them to go safe within
their timeout while polling goes on; the systemd watchdog is fed only while
every loop is healthy; locked settings are unlocked around the host's writes
and relocked, a jumper-locked device is reported and left alone. The HIL
tests (hil_tests/tests/test_comm_loss.py) run the same against the firmware."""

import textwrap

import pytest

from controller.config import load_config
from controller.config.toml import ConfigError
from controller.runtime import protocol
from firmware import regmap
from hil_tests.fakeline import FakeDevice
from tests.test_runtime_tables import PLANT, Rig

TIMEOUT_S = 30.0  # PLANT's comm_loss_timeout_s


def beats(dev):
    return [v for n, v in dev.writes if n == "host_heartbeat"]


def raising(t_s, snap):
    raise RuntimeError("strategy bug")


@pytest.fixture
def rig(tmp_path):
    r = Rig(tmp_path)
    yield r
    r.close()


def test_healthy_loop_keeps_its_device_armed_with_a_changing_heartbeat(rig):
    dev = rig.bus.devices[1]
    line = rig.svc.lines["l1"]
    batches = []
    submit = line.submit

    def record(device, values, **kw):
        batches.append((rig.clock.t, set(values)))
        submit(device, values, **kw)

    line.submit = record
    rig.step(n=120)
    assert dev.armed() and dev.get("comm_loss_trips") == 0
    b = beats(dev)
    # A new value every quarter of the timeout (7.5 s): 15 or 16 in 120 s.
    assert 14 <= len(b) <= 17 and len(set(b)) == len(b)
    assert all((y - x) & 0xFFFF == 1 for x, y in zip(b, b[1:]))
    # Coalesced: one batch (one write slot) per cycle once armed (at device-up
    # the settings go in a batch of their own), the heartbeat in the same batch
    # as the commands whenever both go out.
    times = [t for t, _ in batches if t > 5]
    assert len(times) == len(set(times))
    assert any("host_heartbeat" in v and "speed_ref_pct" in v for _, v in batches)


def test_a_loop_that_raises_leaves_its_device_safe_within_its_timeout(rig):
    dev = rig.bus.devices[1]
    rig.step(n=10)
    assert dev.armed()
    runner = rig.svc.loops["fan"]
    good = runner.strategy.run
    runner.strategy.run = raising
    polls = rig.svc.devices["fan1"].polls
    n_beats = len(beats(dev))
    t_fail = rig.clock.t
    while dev.armed() and rig.clock.t - t_fail < 2 * TIMEOUT_S:
        rig.step()
    assert not dev.armed() and runner.mode == "error"
    # Within its timeout of the last heartbeat, which came at most a quarter
    # of the timeout before the failure.
    assert rig.clock.t - t_fail <= TIMEOUT_S + 1.0
    assert len(beats(dev)) == n_beats                       # no heartbeat from a dead loop
    assert rig.svc.devices["fan1"].polls > polls + 20        # while polling went on
    assert dev.get("comm_loss_trips") == 1
    runner.strategy.run = good
    rig.step(n=3)
    assert dev.armed() and runner.mode == "auto"             # a healthy loop re-arms it


def test_a_held_loop_writes_no_heartbeat(rig):
    """No fresh poll (a stuck line task): the loop is held, so its device goes
    safe although the line still carries writes."""
    dev = rig.bus.devices[1]
    rig.step(n=10)
    line = rig.svc.lines["l1"]

    async def no_poll(d):
        return None

    line._poll_guarded = no_poll
    t0 = rig.clock.t
    while dev.armed() and rig.clock.t - t0 < 2 * TIMEOUT_S:
        rig.step()
    assert not dev.armed() and rig.clock.t - t0 <= TIMEOUT_S + 1.0
    assert rig.svc.loops["fan"].held > 20


def test_watchdog_is_fed_only_while_every_loop_is_healthy(rig):
    sent = []

    class Notify:
        def send(self, msg):
            sent.append(msg)

    hk = rig.svc.housekeeping
    hk.notify = Notify()
    rig.step(n=5)
    hk.feed_watchdog()
    assert sent == ["WATCHDOG=1"] and rig.svc.status()["loops"]["fan"]["healthy"]
    runner = rig.svc.loops["fan"]
    good = runner.strategy.run
    runner.strategy.run = raising
    rig.step(n=4)
    hk.feed_watchdog()
    assert sent == ["WATCHDOG=1"] * 2                       # 5 s of grace (HEALTH_MIN_S)
    rig.step(n=2)
    hk.feed_watchdog()
    hk.feed_watchdog()
    assert sent == ["WATCHDOG=1"] * 2                       # then held
    assert not rig.svc.status()["loops"]["fan"]["healthy"]
    held = [e for e in rig.drain("event") if e["kind"] == "watchdog_held"]
    assert len(held) == 1 and held[0]["source"] == "fan" and "error" in held[0]["text"]
    runner.strategy.run = good
    rig.step()
    hk.feed_watchdog()
    assert sent == ["WATCHDOG=1"] * 3
    assert [e["kind"] for e in rig.drain("event") if e["kind"].startswith("watchdog")] == [
        "watchdog_fed"]


METER_ONLY = PLANT + textwrap.dedent("""
    [devices.meter1]
    line = "l1"
    unit = 2
    profile = "motor"
    settings = { comm_loss_timeout_s = 30 }
    """)


def test_a_device_no_loop_drives_is_kept_alive_by_the_service(tmp_path):
    meter = FakeDevice("motor", 2)
    r = Rig(tmp_path, text=METER_ONLY, devices=[FakeDevice("motor", 1), meter])
    try:
        hk = r.svc.housekeeping
        assert [p.name for p in hk.loopless] == ["meter1"]
        r.step(n=3)
        meter.set("arm", 1)  # armed by someone (commissioning): the service keeps it so
        meter.set("status", regmap.ST_ARMED)
        meter.beat_s = 0.0
        for _ in range(90):
            r.step()
            for p in hk.loopless:
                p.keepalive(1000.0 + r.clock.t)
        assert meter.armed() and len(beats(meter)) >= 10
    finally:
        r.close()


def test_key_locked_device_is_unlocked_around_settings_and_arm_and_relocked(tmp_path):
    dev = FakeDevice("motor", 1)
    dev.key_locked = True
    r = Rig(tmp_path, devices=[dev])
    try:
        r.step(n=4)
        assert dev.armed() and dev.get("min_speed_pct") == 25      # written and armed
        assert dev.locked() == 1                                    # and locked again
        # One write slot: the key, the settings and arm (coalesced), the relock.
        writes = [(fc, start, a) for _, fc, start, a in r.bus.log if fc in (6, 15, 16)]
        key = [(6, 3, regmap.UNLOCK_KEY_1), (6, 3, regmap.UNLOCK_KEY_2)]
        assert writes[:2] == key
        relock = writes.index((6, 3, regmap.LOCK_WORD))
        assert (16, 0, [1]) in writes[2:relock]                    # arm, inside the unlock
        assert [w for w in writes if w[0] == 6] == key + [(6, 3, regmap.LOCK_WORD)]
        assert not [e for e in r.drain("event") if e["kind"] == "write_refused"]
        n = 3
        r.step(n=30)                                                # commands, heartbeats: no key
        assert len([1 for _, fc, _, _ in r.bus.log if fc == 6]) == n and dev.armed()
    finally:
        r.close()


def test_a_wrong_key_is_reported_and_the_device_never_armed(tmp_path):
    dev = FakeDevice("motor", 1)
    dev.key_locked = True
    dev.key = (0x1111, 0x2222)
    r = Rig(tmp_path, devices=[dev])
    try:
        r.step(n=5)
        assert not dev.armed() and dev.get("min_speed_pct") == 20  # the map's default kept
        ev = [e for e in r.drain("event") if e["kind"] == "write_refused"]
        assert ev and "refused the unlock key (0x5AFE, 0xC0DE)" in ev[-1]["text"]
    finally:
        r.close()


def test_the_configured_key_opens_a_device_with_its_own_key(tmp_path):
    dev = FakeDevice("motor", 1)
    dev.key_locked = True
    dev.key = (0x1111, 0x2222)
    text = PLANT.replace('baud = 115200', 'baud = 115200\nsettings_key = [0x1111, 0x2222]')
    r = Rig(tmp_path, text=text, devices=[dev])
    try:
        r.step(n=4)
        assert dev.armed() and dev.locked() == 1
    finally:
        r.close()


def test_a_jumper_locked_device_is_reported_once_and_left_alone(tmp_path):
    dev = FakeDevice("motor", 1)
    dev.lock_jumper = True
    r = Rig(tmp_path, devices=[dev])
    try:
        r.step(n=8)
        assert not dev.armed() and dev.writes == []
        ev = [e for e in r.drain("event") if e["kind"] == "settings_locked"]
        assert len(ev) == 1 and "jumper" in ev[0]["text"]
        assert not [1 for _, fc, _, _ in r.bus.log if fc in (6, 15, 16)]  # nothing sent
        dev.lock_jumper = False                                     # pulled: driven at once
        r.step(n=8)
        assert dev.armed() and dev.get("min_speed_pct") == 25
    finally:
        r.close()


@pytest.mark.parametrize("line,device,error", [
    ("settings_key = [0x5AFE]", "", "two different words"),
    ("settings_key = [1, 2]", "", "two different words"),
    ("", "settings_key = [0x1234, 0x1234]", "two different words"),
    ("", "settings = { host_heartbeat = 3 }", "the host writes it itself"),
    ("", "settings = { arm = 1 }", "the host writes it itself"),
    ("", "settings = { comm_loss_timeout_s = 1.5 }", "less than two runs of loop fan"),
])
def test_config_keys_and_host_owned_points(tmp_path, line, device, error):
    text = PLANT.replace('baud = 115200', 'baud = 115200\n' + line)
    text = text.replace('settings = { min_speed_pct = 25, speed_safe_pct = 30, '
                        'comm_loss_timeout_s = 30 }', device)
    (tmp_path / "plant.toml").write_text(text)
    with pytest.raises(ConfigError, match=error):
        load_config(tmp_path / "plant.toml")


def test_config_key_defaults_to_the_documented_one(tmp_path):
    (tmp_path / "plant.toml").write_text(PLANT)
    cfg = load_config(tmp_path / "plant.toml")
    assert cfg.devices["fan1"].settings_key == protocol.KEY == (0x5AFE, 0xC0DE)
