"""The small plant the interface tests share, as plant.toml text: motor
devices fan1..fanN on one line (the fake line replaces it), one loop group,
the fan loop driving fan1; `tail` adds the interface's own tables."""

import textwrap


def fan_plant(name, devices=1, period_ms=500, tail=""):
    devs = "".join('[devices.fan%d]\nline = "l1"\nunit = %d\nprofile = "motor"\n' % (i, i)
                   for i in range(1, devices + 1))
    return ('\n[service]\nname = "%s"\n[lines.l1]\nkind = "rtu"\nport = "/dev/null"\n'
            'baud = 115200\n' % name + devs
            + '[groups.process]\nperiod_ms = %d\n[loops.fan]\nplant = "fan"\n'
              'group = "process"\ndevices = { drive = "fan1" }\n'
              'process = { flow_sp_m3s = 30.0, flow_design_m3s = 50.0 }\n'
              'params = { period_s = %g }\n' % (period_ms, period_ms / 1000.0)
            + textwrap.dedent(tail).lstrip("\n"))
