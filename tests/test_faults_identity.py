"""What the fault campaign found on the host (docs/safety.md, "Fault campaign",
finding 2): a device swapped for one of another profile at the same unit id is
armed. The campaign saw it on the HIL bench (a motor device at the SCR's
address armed with the SCR's writes); this is the same fault on the in-process
fake line (tests/test_runtime_tables.py's rig). Fixed in
controller/runtime/protocol.py: check_identity judged a new contact on the
previous contact's map_version/profile_id; it now waits for this contact's full read)."""

import math

from tests.test_runtime_tables import Rig


def test_a_device_swapped_while_it_was_down_is_refused_and_never_armed(tmp_path):
    r = Rig(tmp_path)
    try:
        dev = r.bus.devices[1]
        r.step(n=3)
        assert dev.armed()
        dev.silent = True                    # the fan's device goes off the line ...
        r.step(dt_s=4.0, n=9)
        assert not r.svc.status()["devices"]["fan1"]["up"] and not dev.armed()
        dev.set("profile_id", 3)             # ... and an SCR controller answers in its place
        dev.writes.clear()
        dev.silent = False
        r.step(n=6)
        assert not r.svc.status()["devices"]["fan1"]["identity_ok"]
        assert dev.writes == [] and not dev.armed()
    finally:
        r.close()


def test_a_restart_between_two_polls_is_a_new_contact(tmp_path):
    """The device restarts faster than the host can see it down (its uptime
    goes back between two polls): the host reports it, sends its settings
    again and re-arms it, and it is judged on this contact's identity."""
    r = Rig(tmp_path)
    try:
        dev = r.bus.devices[1]
        r.step(n=20)
        assert dev.armed() and dev.get("uptime_s") >= 19
        r.drain("event")
        dev.boot()                           # power blip: defaults, disarmed
        dev.writes.clear()
        r.step(n=8)
        kinds = [e["kind"] for e in r.drain("event")]
        assert "device_restarted" in kinds and "device_down" not in kinds
        assert dev.armed()                   # re-armed ...
        assert ("arm", 1) in dev.writes      # ... by the host's arm write
        assert r.svc.status()["devices"]["fan1"]["identity_ok"]
    finally:
        r.close()


def test_a_device_swapped_between_two_polls_is_refused_and_never_armed(tmp_path):
    r = Rig(tmp_path)
    try:
        dev = r.bus.devices[1]
        r.step(n=20)
        assert dev.armed()
        dev.boot("scr")                      # an SCR controller answers at once in its place
        r.step(n=8)
        assert not r.svc.status()["devices"]["fan1"]["identity_ok"]
        assert dev.writes == [] and not dev.armed()
    finally:
        r.close()


def test_a_device_swapped_seconds_after_its_boot_is_refused(tmp_path):
    """The campaign's "at once" swap came seconds after the SCR had booted:
    its uptime (whole seconds) read the same on the device in its place, so
    "uptime went back" missed it. The identity read in the status block is
    compared with the one held, and the uptime with the host's clock."""
    r = Rig(tmp_path)
    try:
        dev = r.bus.devices[1]
        r.step(n=2)
        assert dev.armed() and dev.get("uptime_s") <= 2
        dev.boot("scr")
        dev.advance(2.0)                     # the new one's uptime reads what the old one's did
        r.step(n=8)
        assert not r.svc.status()["devices"]["fan1"]["identity_ok"]
        assert dev.writes == [] and not dev.armed()
    finally:
        r.close()


def test_a_reply_shorter_than_asked_is_not_stored(tmp_path):
    """A reply one register short (a broken gateway) raised IndexError in the
    line's poll; it is now a garbled reply: counted, the block keeps its
    values (they age), the line goes on."""
    r = Rig(tmp_path)
    try:
        dev = r.bus.devices[1]
        r.step(n=3)
        line = next(iter(r.svc.lines.values()))
        g0 = line.stats.garbled
        dev.short_replies = True
        r.step(n=3)
        assert line.stats.garbled > g0
        assert not [e for e in r.drain("event") if e["kind"] == "line_error"]
        dev.short_replies = False
        r.step(n=3)
        assert r.svc.status()["devices"]["fan1"]["up"] and dev.armed()
    finally:
        r.close()


def test_a_slow_point_is_not_stale_between_two_of_its_reads(tmp_path):
    """Settings read back every slow_s (5 s) against stale_s 3 s: 4 s after
    its read a setting is good (it read bad between reads, on the OPC UA
    server and the HMI too); past stale_s + slow_s it is bad, and a fast
    point still goes bad past stale_s alone."""
    from firmware import regmap
    r = Rig(tmp_path)
    try:
        r.step(n=3)
        img, d = r.svc.image, r.svc.devices["fan1"]
        slow = next(pt.name for rd in d.slow for pt, _ in rd.points)
        fast = next(pt.name for rd in d.fast for pt, _ in rd.points if pt.name in d.values)
        t_read = d.t_value[slow]
        assert img.quality("fan1", slow, t_read + 4.0) != regmap.Q_BAD
        assert img.quality("fan1", slow, t_read + r.cfg.stale_s + d.slow_s + 0.1) == regmap.Q_BAD
        assert img.quality("fan1", fast, d.t_value[fast] + r.cfg.stale_s + 0.1) == regmap.Q_BAD
    finally:
        r.close()


def test_a_cached_image_goes_stale_with_its_slowest_points(tmp_path):
    """The loops' image of a device is cached per poll; a device still up
    but no longer polled (a stalled line task) must not keep its status and
    slow points in it past their age (the cache was keyed on the fast
    points' staleness alone, and kept dosing_enable-like points for ever)."""
    r = Rig(tmp_path)
    try:
        r.step(n=3)
        img, d = r.svc.image, r.svc.devices["fan1"]
        slow = next(pt.name for rd in d.slow for pt, _ in rd.points if pt.name in d.values)
        t = max(d.t_value.values())
        mid = img.device_image("fan1", t + r.cfg.stale_s + 0.5)   # fast points stale, slow not
        assert mid[slow] == d.values[slow]
        late = t + r.cfg.stale_s + d.slow_s + d.status_s + 1.0
        im = img.device_image("fan1", late)
        assert all(math.isnan(v) for v in im.values())
    finally:
        r.close()


def test_uptime_running_ahead_is_another_device_and_a_host_stall_no_restart(tmp_path):
    """A device of the same profile with a longer uptime answering at this
    unit id (an address clash) is a new contact; the host's own stall
    between request and reply is no restart."""
    r = Rig(tmp_path)
    try:
        dev = r.bus.devices[1]
        r.step(n=10)
        assert dev.armed()
        r.drain("event")
        dev.uptime += 3600.0                 # another fan device, up for an hour longer
        r.step(n=2)
        ev = [e for e in r.drain("event") if e["kind"] == "device_restarted"]
        assert ev and "another device" in ev[0]["text"]
        r.step(n=6)
        r.drain("event")
        r.clock.t += 30.0                    # the host stalls 30 s; the device's clock moves too
        dev.advance(30.0)
        r.step(n=3)
        assert not [e for e in r.drain("event") if e["kind"] == "device_restarted"]
    finally:
        r.close()


def test_a_refused_slow_block_is_reported_once(tmp_path):
    r = Rig(tmp_path)
    try:
        dev = r.bus.devices[1]
        r.step(n=3)
        r.drain("event")
        dev.boot()
        dev.refuse_reads = True
        r.step(n=8)
        kinds = [e["kind"] for e in r.drain("event")]
        assert kinds.count("slow_read_refused") == 1
        assert not dev.armed()
    finally:
        r.close()
