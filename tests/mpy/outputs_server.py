"""Line server for property tests: drives firmware Outputs (motor profile) on the
real MicroPython VM. Each input line: JSON list of [dt_ms, speed_raw, arm];
each output line: JSON list of the driven speed (raw 0.01 %) after each step.
Settings come from the first line: {"ramp": raw/s, "min": raw, "max": raw,
"skip": [lo, hi]}."""

import json
import sys

import regbank
from outputs import Outputs

bank = regbank.RegBank("motor")
while True:
    line = sys.stdin.readline()
    if not line:
        break
    req = json.loads(line)
    s = req["settings"]
    bank.hr[48] = s["ramp"]
    bank.hr[49] = s["ramp"]
    bank.hr[50] = s["min"]
    bank.hr[51] = s["max"]
    bank.hr[52] = s["skip"][0]
    bank.hr[53] = s["skip"][1]
    bank.hr[0] = 0
    out = Outputs(bank, "motor", now_ms=0)
    t = 0
    res = []
    for dt, speed, arm in req["steps"]:
        t += dt
        bank.hr[32] = speed
        bank.hr[0] = arm
        out.update(t)
        res.append(out.actual[0])
    print(json.dumps(res))
