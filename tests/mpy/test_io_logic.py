"""Analog inputs (NAMUR NE43) and interlocks on the real
MicroPython VM, with an injected clock."""


import regbank
from mpytest import check, finish
from analog import AnalogInput, ne43
from outputs import Outputs


# NE43 at every boundary: <= 3.6 bad, 3.6-3.8 uncertain, 3.8-20.5 good,
# 20.5-21 uncertain, >= 21 bad.
for ma, q in ((0.0, 2), (3.59, 2), (3.6, 2), (3.61, 1), (3.79, 1), (3.8, 0), (4.0, 0), (12.0, 0),
              (20.0, 0), (20.5, 0), (20.51, 1), (20.99, 1), (21.0, 2), (22.0, 2)):
    check("ne43 %.2f mA" % ma, ne43(ma), q)
check("ne43 nan", ne43(float("nan")), 2)

bank = regbank.RegBank("scr")
t_in = AnalogInput(bank, "flue_gas_temp_c", 0.0, 500.0)
check("4 mA -> lo", (t_in.update_ma(4.0, 1.0), round(bank.get("flue_gas_temp_c"), 1)), (0, 0.0))
check("12 mA -> mid", (t_in.update_ma(12.0, 1.0), round(bank.get("flue_gas_temp_c"), 1)), (0, 250.0))
check("blow-back -> uncertain", t_in.update_ma(12.0, 1.0, status_uncertain=True), 1)
check("wire break -> bad, value held", (t_in.update_ma(1.0, 1.0), round(bank.get("flue_gas_temp_c"), 1)), (2, 250.0))
check("quality slot shows bad", bank.get_quality(bank.quality_slot("flue_gas_temp_c")), 2)

# SCR interlock: no NH3 below the minimum catalyst temperature or without flow.
bank = regbank.RegBank("scr")
flow = AnalogInput(bank, "flue_gas_flow_nm3h", 0.0, 2500000.0)
temp = AnalogInput(bank, "flue_gas_temp_c", 0.0, 500.0)
# The NH3 ceiling needs the NH3 flow and the inlet NOx (tests/mpy/test_device_safety.py).
nh3 = AnalogInput(bank, "nh3_flow_kgh", 0.0, 400.0)
nox = AnalogInput(bank, "nox_in_mg_nm3", 0.0, 800.0)
nh3.update_ma(4.0 + 16 * 50 / 400, 1.0)       # 50 kg/h
nox.update_ma(4.0 + 16 * 300 / 800, 1.0)      # 300 mg/Nm3: ceiling 266 kg/h at 2e6 Nm3/h
out = Outputs(bank, "scr", now_ms=0)
bank.set("valve_rate_pct_s", 100.0)
bank.set("valve_cmd_pct", 60.0)
bank.co[0] = 1
bank.hr[0] = 1  # armed
temp.update_ma(4.0 + 16 * 280 / 500, 1.0)   # 280 C < 300 C
flow.update_ma(4.0 + 16 * 0.8, 1.0)          # 2.0e6 Nm3/h
out.update(1000)
check("cold catalyst: valve shut", out.actual[0], 0)
check("cold catalyst: dosing off", out.actual[1], 0)
check("cold catalyst: interlock bit", out.interlocks & 1, 1)
check("dosing_blocked input", bank.get("dosing_blocked"), 1)
temp.update_ma(4.0 + 16 * 350 / 500, 1.0)
out.update(2000)
check("hot catalyst: valve opens", out.actual[0], 6000)
flow.update_ma(1.0, 1.0)                     # flow transmitter wire break
out.update(3000)
check("flow unknown: valve shut", (out.actual[0], out.interlocks & 2), (0, 2))

# Compressor: unloads above max pressure, loads again 0.2 bar below.
bank = regbank.RegBank("compressor")
p_in = AnalogInput(bank, "discharge_pressure_bar", 0.0, 16.0)
out = Outputs(bank, "compressor", now_ms=0)
bank.hr[0] = 1
bank.co[0] = 1
bank.co[1] = 1
for t, bar, loaded in ((1000, 7.5, 1), (2000, 8.6, 0), (3000, 8.4, 0), (4000, 8.2, 1)):
    p_in.update_ma(4.0 + 16 * bar / 16.0, 1.0)
    out.update(t)
    check("compressor %.1f bar loaded" % bar, out.actual[1], loaded)

finish()
