"""Prometheus metrics on /metrics (`greenedge run --metrics HOST:PORT`).

A custom Collector builds every metric when Prometheus scrapes, from the data
hub's latest state (device, status, kpi topics) and, for the histograms and the
alarms, from counters the runtime keeps anyway (each line's latency window,
each group's execution-time window, the alarm engine's states): nothing is
added to the control cycle. The HTTP server is prometheus_client's, on its own
daemon thread; the endpoint is read-only.

    greenedge_energy_joules_total{device}                  counter  kWh x 3.6e6
    greenedge_modbus_requests_total{line,result}           counter  ok|exception|timeout|garbled
    greenedge_modbus_request_duration_seconds{line}        histogram
    greenedge_cycle_duration_seconds{group}                histogram (execution of one cycle)
    greenedge_cycle_overruns_total{group}                  counter
    greenedge_device_up{device}                            gauge 0/1
    greenedge_loop_mode{loop,mode}                         gauge, 1 for the loop's mode
    greenedge_alarms_active{priority}                      gauge (unacknowledged + acknowledged)

Histograms: each line keeps its newest 4,096 reply latencies and each group
its newest 20,000 cycle times. At a scrape the collector adds the ones that
arrived since the last scrape to its cumulative buckets; if more arrived than
the window holds (more than 4,096 transactions between two scrapes), the
window's newest ones stand for all of them (weighted), so _count always
equals the number of replies. Labels are bounded by the config (lines,
devices, groups, loops, 4 priorities, 4 modes, 4 results).
"""

import logging
import threading

from controller.north import is_loopback, need

log = logging.getLogger("greenedge.metrics")

MODBUS_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)
CYCLE_BUCKETS = (0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)
MODES = ("auto", "fallback", "manual", "error")
RESULTS = ("ok", "exception", "timeout", "garbled")
PRIORITIES = (1, 2, 3, 4)


class _Accum:
    """Cumulative histogram buckets fed from a runtime's bounded window
    (a deque) and the count of everything ever appended to it."""

    def __init__(self, bounds):
        self.bounds = bounds
        self.counts = [0.0] * (len(bounds) + 1)   # the last is +Inf
        self.sum = 0.0
        self.n = 0.0
        self._window = None
        self._seen = 0

    def feed(self, window, total):
        if window is not self._window or total < self._seen:  # reset (stats.reset())
            self._window, self._seen = window, 0
        new = total - self._seen
        if new <= 0:
            return
        sample = list(window)[-new:]
        self._seen = total
        if not sample:
            return
        w = new / len(sample)
        for x in sample:
            i = 0
            while i < len(self.bounds) and x > self.bounds[i]:
                i += 1
            self.counts[i] += w
            self.sum += x * w
        self.n += new

    def buckets(self):
        out, c = [], 0.0
        for b, k in zip(self.bounds, self.counts):
            c += k
            out.append((_le(b), c))
        out.append(("+Inf", self.n))
        return out


def _le(b):
    return repr(float(b))


class Collector:
    """Reads the hub (and the runtime's windows) at every scrape."""

    def __init__(self, hub, lines=None, groups=None, alarms=None):
        self.hub, self.lines, self.groups, self.alarms = hub, lines or {}, groups or {}, alarms
        self._lock = threading.Lock()       # scrapes may come on parallel threads
        self._modbus = {ln: _Accum(MODBUS_BUCKETS) for ln in self.lines}
        self._cycle = {g: _Accum(CYCLE_BUCKETS) for g in self.groups}

    def describe(self):
        return []   # no registration-time collect (it would read the hub at start)

    def collect(self):
        core = need("prometheus_client.core", "--metrics")
        G, C, H = core.GaugeMetricFamily, core.CounterMetricFamily, core.HistogramMetricFamily
        status = self.hub.latest("status").get("service") or {}
        devices = self.hub.latest("device")
        kpis = self.hub.latest("kpi").get("kpis") or {}

        energy = C("greenedge_energy_joules", "Energy metered per device (its kWh counter)",
                   labels=["device"])
        for k, v in sorted(kpis.items()):
            if k.startswith("energy_kwh.") and v is not None:
                energy.add_metric([k.split(".", 1)[1]], float(v) * 3.6e6)
        yield energy

        req = C("greenedge_modbus_requests", "Modbus transactions per line and result",
                labels=["line", "result"])
        for ln, s in sorted((status.get("lines") or {}).items()):
            n = {"ok": s["tx"] - s["exceptions"], "exception": s["exceptions"],
                 "timeout": s["timeouts"], "garbled": s["garbled"]}
            for r in RESULTS:
                req.add_metric([ln, r], n[r])
        yield req

        with self._lock:
            dur = H("greenedge_modbus_request_duration_seconds",
                    "Time from request to reply of answered Modbus transactions",
                    labels=["line"])
            for ln, line in sorted(self.lines.items()):
                a = self._modbus[ln]
                st = line.stats
                a.feed(st.lat, st.tx)
                dur.add_metric([ln], a.buckets(), a.sum)
            yield dur
            cyc = H("greenedge_cycle_duration_seconds",
                    "Execution time of one control cycle (input, loops, output) per group",
                    labels=["group"])
            for g, gs in sorted(self.groups.items()):
                a = self._cycle[g]
                a.feed(gs.exec_s, gs.cycles)
                cyc.add_metric([g], a.buckets(), a.sum)
            yield cyc

        over = C("greenedge_cycle_overruns", "Cycles that ended after their next start",
                 labels=["group"])
        for g, s in sorted((status.get("groups") or {}).items()):
            over.add_metric([g], s["overruns"])
        yield over

        up = G("greenedge_device_up", "1 while the device answers its polls", labels=["device"])
        for dn, v in sorted(devices.items()):
            up.add_metric([dn], 1.0 if v.get("up") else 0.0)
        yield up

        mode = G("greenedge_loop_mode", "1 for the loop's present mode", labels=["loop", "mode"])
        for n, s in sorted((status.get("loops") or {}).items()):
            for m in MODES:
                mode.add_metric([n, m], 1.0 if s.get("mode") == m else 0.0)
        yield mode

        if self.alarms is not None:
            from controller.alarms.engine import ACKED, UNACK
            act = G("greenedge_alarms_active",
                    "Alarms whose condition is active (unacknowledged or acknowledged)",
                    labels=["priority"])
            n = dict.fromkeys(PRIORITIES, 0)
            for a in list(self.alarms.alarms.values()):
                if a.state in (UNACK, ACKED):
                    n[a.d.priority] = n.get(a.d.priority, 0) + 1
            for p in sorted(n):
                act.add_metric([str(p)], n[p])
            yield act


class MetricsServer:
    """prometheus_client's HTTP server for one Collector, on its own thread."""

    def __init__(self, host, port, hub, lines=None, groups=None, alarms=None):
        self.host, self.port = host, port
        self.collector = Collector(hub, lines, groups, alarms)
        self._httpd = self._thread = None

    def start(self):
        pc = need("prometheus_client", "--metrics")
        registry = pc.CollectorRegistry(auto_describe=False)
        registry.register(self.collector)
        try:
            self._httpd, self._thread = pc.start_http_server(self.port, addr=self.host,
                                                             registry=registry)
        except OSError as e:
            from controller.errors import UserError
            raise UserError("--metrics %s:%d: %s" % (self.host, self.port, e)) from None
        self.port = self._httpd.server_port
        if not is_loopback(self.host):
            log.warning("metrics on %s:%d: reachable from the network (read-only, no "
                        "authentication)", self.host, self.port)
        log.info("metrics on http://%s:%d/metrics", self.host, self.port)
        return self

    @property
    def url(self):
        h = "[%s]" % self.host if ":" in self.host else self.host
        return "http://%s:%d/metrics" % (h, self.port)

    def stop(self):
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._thread.join(5.0)
            self._httpd = None
