"""The process image: what the loops, the accounting and every interface see
of the field, built from the lines' latest polls.

A point reaches a loop as its value, or NaN when it is bad at the device
(NE43 / quality slot), older than stale_s beyond its own poll period (a
setting read back every slow_s or a status word every status_s is not stale
between two of its reads), or its device is down or refused (identity). Each device's image is built once per new poll (and again when it
may have gone stale), so a cycle costs nothing for devices that did not move.
publish() hands every device polled since the last call to the hub as
{point: (value, quality, source time)}: quality Q_GOOD / Q_UNCERTAIN / Q_BAD
(stale and down are Q_BAD), the source time the poll's wall-clock time.
"""

import math
import time

from firmware import regmap


class ProcessImage:
    def __init__(self, devices, protocols, stale_s, hub=None):
        self.devices = devices          # name -> fieldbus Device
        self.protocols = protocols      # name -> DeviceProtocol
        self.stale_s = stale_s
        self.hub = hub
        self._images = {}
        self._published = {}            # name -> (polls, up) last published
        self._max_age = {}              # name -> {point: stale_s + its read's period}

    def max_age(self, dn):
        """{point: the age beyond which it is stale} of one device: stale_s,
        plus status_s or slow_s for points not read every poll."""
        ages = self._max_age.get(dn)
        if ages is None:
            d = self.devices[dn]
            ages = {}
            for reads, extra in ((d.status, d.status_s), (d.slow, d.slow_s)):
                for rd in reads:
                    for pt, _ in rd.points:
                        ages[pt.name] = self.stale_s + extra
            self._max_age[dn] = ages
        return ages

    def usable(self, dn):
        d = self.devices[dn]
        return d.up and self.protocols[dn].check_identity()

    def value(self, dev_name, point, now=None):
        """A value fit for a loop, or None (bad, stale, its device down or refused)."""
        d = self.devices[dev_name]
        if not d.up or point not in d.values or not self.protocols[dev_name].check_identity():
            return None
        now = time.monotonic() if now is None else now
        if now - d.t_value[point] > self.max_age(dev_name).get(point, self.stale_s):
            return None
        if d.point_quality(point) == regmap.Q_BAD:
            return None
        return d.values[point]

    def quality(self, dn, point, now):
        d = self.devices[dn]
        if not d.up or now - d.t_value.get(point, -math.inf) > \
                self.max_age(dn).get(point, self.stale_s):
            return regmap.Q_BAD
        return d.point_quality(point)

    def device_image(self, dn, now):
        """{point: value or NaN} of one device."""
        d = self.devices[dn]
        key = (d.polls, d.up, self.protocols[dn].identity_ok)
        cached = self._images.get(dn)
        if cached is not None and cached[0] == key and now < cached[2]:
            return cached[1]
        img = dict.fromkeys(d.points, math.nan)
        ages = self.max_age(dn)
        expires = math.inf  # the first moment a point in this image goes stale
        for p in d.values:
            v = self.value(dn, p, now)
            if v is not None:
                img[p] = v
                expires = min(expires, d.t_value[p] + ages.get(p, self.stale_s))
        self._images[dn] = (key, img, expires)
        return img

    def snapshot(self, devices, process, now):
        """A loop's frozen inputs {role: device image, "process": {key: value}}
        from its {role: device} and process {key: number or (device, point)}."""
        snap = {role: self.device_image(dn, now) for role, dn in devices.items()}
        proc = {}
        for k, v in process.items():
            if isinstance(v, tuple):
                x = self.value(v[0], v[1], now)
                proc[k] = math.nan if x is None else x
            else:
                proc[k] = v
        snap["process"] = proc
        return snap

    def samples(self, dn, now):
        """{point: (value, quality, source wall time)} of one device's numbers."""
        d = self.devices[dn]
        wall = time.time() - now  # monotonic -> wall offset
        out = {}
        for p, v in d.values.items():
            if isinstance(v, (int, float)):
                out[p] = (float(v), self.quality(dn, p, now), d.t_value[p] + wall)
        return out

    def publish(self, now):
        """Every device whose poll count or health changed, to the hub."""
        if self.hub is None:
            return
        for dn, d in self.devices.items():
            key = (d.polls, d.up)
            if self._published.get(dn) != key:
                self._published[dn] = key
                self.hub.publish("device", dn, {"up": d.up, "points": self.samples(dn, now)})
