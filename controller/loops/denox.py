"""SCR denitrification. Baseline: a plain PI from the outlet NOx analyzer to the
NH3 dosing valve (no feedforward, no dead-time compensation), tuned slow enough
to stay stable over the analyzer dead time; dosing enabled above the minimum
catalyst temperature. The analyzer reading is corrected to 6 % O2."""

from cython_ext import load
from controller.loops.base import Strategy, good


class PiBaseline(Strategy):
    SETPOINT_MG_NM3 = 35.0
    MIN_TEMP_C = 300.0

    def __init__(self, params=None):
        super().__init__(params)
        self.pid = load("pid").PidBank(1)
        # Reverse acting: more NH3, less NOx.
        self.pid.configure(kp=-0.15, ti=400.0, umin=0.0, umax=100.0, dt=self.period_s, tt=60.0)
        self.pid.u_man[0] = 20.0

    def run(self, t_s, snap):
        s = snap["scr"]
        nox = s["nox_out_mg_nm3"]
        o2 = s["o2_pct"]
        ok = good(nox) and not s.get("analyzer_fault", 0) and not s.get("analyzer_blowback", 0)
        if ok:
            self.pid.set_mode(0, True)
            self.pid.sp[0] = self.SETPOINT_MG_NM3
            self.pid.pv[0] = nox * 15.0 / (21.0 - o2)
        else:
            self.pid.set_mode(0, False)  # hold the valve until the analyzer is back
        self.pid.step()
        enable = int(s["flue_gas_temp_c"] >= self.MIN_TEMP_C)
        return {"scr": {"dosing_enable": enable, "valve_cmd_pct": float(self.pid.u[0]) if enable else 0.0}}
