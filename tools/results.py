"""Regenerate docs/results.md: every optimised strategy beside its baseline on the
standard and disturbance scenarios (same scenario and seed). ~2 minutes.

    python tools/results.py
"""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hil_tests import sim  # noqa: E402

PLOTS = ROOT / "docs" / "plots"

STANDARD = ("fan_standard", "pump_standard", "compressor_standard", "scr_standard", "fgd_standard")
DISTURBANCES = {
    "fan_disturbances": ("energy_kwh", "demand_met_frac"),
    "compressor_trip": ("energy_kwh", "pressure_min_bar"),
    "compressor_peak": ("energy_kwh", "pressure_min_bar"),
    "scr_disturbances": ("nh3_kg", "nox_exceed_hours", "nox_hourly_max_mg_nm3", "nh3_slip_p95_ppm"),
    "fgd_disturbances": ("recirc_pump_kwh", "so2_exceed_hours", "so2_hourly_max_mg_nm3",
                         "ph_in_band_frac", "gypsum_purity_min_pct", "sulfite_max_pct"),
}
NOTES = """## Notes

- Fan and pump trains start running (a unit in operation) and the loops take
  over from the drive's measured speed; the VSD loop holds its output while
  the flow transmitter is stuck (the same reading 10 times) or broken.
- Pump: with 40 % static head the VSD already runs on the system curve (flow
  exactly the demand, no throttling); what is left between -33 % and -35 % is
  physics (the static head every speed must lift), and delivering less than the
  demand would be the only way to save more. Fan and pump together: see the
  fan + pump row.
- Compressor: the standard day is the station at 80 % / 75 % / 30 % of capacity
  (air demand with leaks). The sequencer stages the fixed machines from a
  flow-balance demand estimate (supply - V/p_atm dp/dt), steps the VSD's PI
  integrator by a machine's flow at each change (bumpless), unloads the VSD in
  the control gap, and holds a surge reserve only when the headroom is short.
  On the peak day (compressor_peak: production alone at 80 %, 95-100 % of
  capacity with the leaks) every strategy runs every machine flat out; the
  sequencer saves what the pressure allows there and holds the minimum.
- SCR: the plant starts as a unit in operation (catalyst NH3 storage settled at
  ANR 0.9; `initial_anr = 0` gives the fresh-catalyst start). The typical PI
  runs at 35 mg, the best-practice ratio feedforward + PI trim at 45 mg (the
  operator's margin for its variability, docs/models.md "Baselines"), the
  strategy aims the hourly mean at 47.5 mg. Against best-practice the NH3 saving
  is what the last 2.5 mg of margin is worth (under 1 % on the standard day).
  On the measured inlets the ratio feedforward still holds outlet NOx steadier
  than the Smith-predictor trim (std rows), so the steadiness aim against
  best-practice is not met. The typical PI at 35 mg has no feedforward; its
  exceedance hours are in the table.
- FGD: the removal correlation counts pumps at the design gas flow (L/G); at
  half load each pump washes twice the gas share, and the optimiser runs two
  pumps at night. A pump that does not run within a minute of being asked
  (tripped, or held by its device) is replaced by the next. The best-practice
  table does not replace a tripped pump (fgd_disturbances). Forced oxidation
  is modelled (docs/models.md section 4): the optimiser's blower holds an O2
  stoichiometric ratio of at least 3 on the measured SO2 load (40 % turndown),
  the baselines run it at 100 %; the gypsum stays in specification for every
  strategy (rows above). The blower's saving is therefore no longer free of
  model cost: it is bounded by the sulphite limit, and what it is worth is the
  "oxidation blower kWh" row. Not modelled: lower removal from incomplete
  oxidation (sulphite scaling, limestone blinding).
- Every strategy reads measured inlets (CEMS dead time, lag, noise, drift,
  blow-back and calibration holds; flow meters with bias; the FGD's pH probe
  with lag, drift and wash holds; docs/models.md section 9).
- Compressor: the best-practice cascade's lowest cut-in (6.9 bar(g)) is the
  lowest that holds 6.0 bar on the peak day; on the standard day it runs the
  header about 0.7 bar above the sequencer.
"""


STRATS = ("typical", "best-practice", "optimized")
# The headline before the measured inlets (68ead65), the FGD pH probe and forced
# oxidation (b0afc80): docs/results.md of 9b48e75, for the closing note.
PREVIOUS = ("Before (9b48e75: exact instantaneous inlets, pH read from the slurry, the oxidation "
            "blower's cut without a model cost): 23.1 % less than best-practice (108085 -> 83114 "
            "kWh), 30.5 % less than typical, cost 12.7 % lower, total CO2 10.7 % lower; compressor "
            "-11 %, SCR NH3 -0.9 %, FGD pumps -21 % against best-practice.")


def pct(new, old):
    return 100.0 * (1 - new / old) if old else 0.0


def main():
    by = {}
    for sc in STANDARD + tuple(DISTURBANCES):
        plant = sc.split("_")[0]
        for s in STRATS:
            r = sim.run(plant, s, sc, plot_dir=PLOTS if sc in STANDARD else None)
            if plant == "fgd":
                r["blower_kwh"] = r["energy_kwh_by_drive"].get("blower", 0.0)
            by[(sc, s)] = r
    out = ["# Results: optimised strategies beside the baselines", "",
           "Model-in-the-loop (`greenedge sim`), same scenario and seed for every strategy,",
           "full scenario length. Two baselines: `typical` (what many plants still run) and",
           "`best-practice` (what well-run plants run; `baseline` is its alias; docs/models.md,",
           "\"Baselines\"). The aims are judged against best-practice. Regenerate with",
           "`python tools/results.py`; reproduce a row with",
           "`greenedge sim --plant P --scenario S --strategy typical|best-practice|optimized --json`.", "",
           "## Standard days (24 h)", "",
           "| plant | KPI | typical | best-practice | optimized | vs typical | vs best-practice "
           "| aim | met |",
           "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- | --- |"]

    def row(plant, label, key, aim, ok, fmt="%.1f", rel=True):
        t, b, o = (by[(plant + "_standard", s)][key] for s in STRATS)
        cht = ("%+.1f %%" % -pct(o, t)) if rel else ""
        ch = ("%+.1f %%" % -pct(o, b)) if rel else ""
        out.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s |"
                   % (plant, label, fmt % t, fmt % b, fmt % o, cht, ch, aim,
                      ("yes" if ok(b, o) else "no") if aim else ""))

    row("fan", "energy kWh", "energy_kwh", ">= 35 % less", lambda b, o: pct(o, b) >= 35)
    row("fan", "demand met", "demand_met_frac", ">= 0.995", lambda b, o: o >= 0.995, "%.4f", False)
    row("pump", "energy kWh", "energy_kwh", ">= 35 % less", lambda b, o: pct(o, b) >= 35)
    row("pump", "demand met", "demand_met_frac", ">= 0.995", lambda b, o: o >= 0.995, "%.4f", False)
    row("compressor", "energy kWh", "energy_kwh", ">= 12 % less", lambda b, o: pct(o, b) >= 12)
    row("compressor", "min pressure bar(g)", "pressure_min_bar", ">= 6.0", lambda b, o: o >= 6.0,
        "%.3f", False)
    row("scr", "NH3 kg", "nh3_kg", ">= 5 % less", lambda b, o: pct(o, b) >= 5)
    row("scr", "NOx exceedance hours", "nox_exceed_hours", "0", lambda b, o: o == 0, "%d", False)
    row("scr", "NOx hourly max mg/Nm3 (6 % O2)", "nox_hourly_max_mg_nm3", "<= 50",
        lambda b, o: o <= 50, "%.1f", False)
    row("scr", "NOx std mg/Nm3", "nox_std_mg_nm3", "<= half of baseline", lambda b, o: o <= b / 2, "%.2f")
    row("scr", "NH3 slip p95 ppm", "nh3_slip_p95_ppm", "<= 2.5", lambda b, o: o <= 2.5, "%.2f", False)
    row("fgd", "recirculation pump kWh", "recirc_pump_kwh", ">= 15 % less", lambda b, o: pct(o, b) >= 15)
    row("fgd", "SO2 exceedance hours", "so2_exceed_hours", "0", lambda b, o: o == 0, "%d", False)
    row("fgd", "SO2 hourly max mg/Nm3 (6 % O2)", "so2_hourly_max_mg_nm3", "<= 35",
        lambda b, o: o <= 35, "%.1f", False)
    row("fgd", "pH in 5.2-5.8", "ph_in_band_frac", ">= 0.99", lambda b, o: o >= 0.99, "%.4f", False)
    row("fgd", "oxidation blower kWh", "blower_kwh", "", lambda b, o: True)
    row("fgd", "sulphite oxidised, min", "oxidation_min_frac", "", lambda b, o: True, "%.4f", False)
    row("fgd", "gypsum purity min %", "gypsum_purity_min_pct", ">= 90", lambda b, o: o >= 90,
        "%.2f", False)
    row("fgd", "sulphite in gypsum max %", "sulfite_max_pct", "<= 0.5", lambda b, o: o <= 0.5,
        "%.3f", False)
    row("fgd", "pumps + blower kWh", "energy_kwh", ">= 15 % less", lambda b, o: pct(o, b) >= 15)
    row("fgd", "limestone kg", "limestone_kg", "", lambda b, o: True)

    def tot(s, key, plants=None):
        return sum(by[(sc, s)][key] for sc in STANDARD if plants is None or sc.split("_")[0] in plants)
    fp = [tot(s, "energy_kwh", ("fan", "pump")) for s in STRATS]
    out.append("| fan + pump | energy kWh | %.1f | %.1f | %.1f | %+.1f %% | %+.1f %% | >= 35 %% less | %s |"
               % (fp[0], fp[1], fp[2], -pct(fp[2], fp[0]), -pct(fp[2], fp[1]),
                  "yes" if pct(fp[2], fp[1]) >= 35 else "no"))
    kwh = [tot(s, "energy_kwh") for s in STRATS]
    cost = [tot(s, "cost") for s in STRATS]
    co2 = [tot(s, "co2_total_kg") for s in STRATS]
    out += ["", "Whole virtual plant (the five standard days added; prices and CO2 factors in",
            "`hil_tests/plants/params/prices.toml`, docs/models.md \"Costs and CO2\"):", "",
            "| | typical | best-practice | optimized | vs typical | vs best-practice |",
            "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for label, v in (("electricity kWh", kwh), ("cost (electricity, NH3, limestone)", cost),
                     ("total CO2 kg (grid, NH3 production, limestone process)", co2)):
        out.append("| %s | %.0f | %.0f | %.0f | %+.1f %% | %+.1f %% |"
                   % (label, v[0], v[1], v[2], -pct(v[2], v[0]), -pct(v[2], v[1])))
    out += ["", "Headline: %.1f %% less electrical energy than best-practice control (%.0f -> %.0f kWh; "
            "%.1f %% less than typical), cost %.1f %% lower, total CO2 %.1f %% lower "
            "(aim >= 25 %% less energy: %s)." % (pct(kwh[2], kwh[1]), kwh[1], kwh[2], pct(kwh[2], kwh[0]),
                                                pct(cost[2], cost[1]), pct(co2[2], co2[1]),
                                                "met" if pct(kwh[2], kwh[1]) >= 25 else "not met"),
            "", PREVIOUS,
            "", "## Disturbance scenarios", "", "| scenario | KPI | typical | best-practice | optimized |",
            "| --- | --- | ---: | ---: | ---: |"]
    for sc, keys in DISTURBANCES.items():
        for k in keys:
            out.append("| %s | %s | %s | %s | %s |" % ((sc, k) + tuple(by[(sc, s)][k] for s in STRATS)))
    out += ["", "## Plots (standard days)", ""]
    for sc in STANDARD:
        plant = sc.split("_")[0]
        out.append("%s: " % plant + " ".join("![%s](plots/%s_%s_%s.png)" % (s, plant, s, sc)
                                              for s in STRATS))
        out.append("")
    out += [NOTES]
    (ROOT / "docs" / "results.md").write_text("\n".join(out))
    print("\n".join(out))


if __name__ == "__main__":
    main()
