"""Online identification for strategies that carry a plant model (docs/models.md,
"Model mismatch"): what the measured plant does against what the host's model
says, learned slowly, bounded, so a strategy adapts to a plant that differs from
its nominal constants instead of reading the plant's own."""

import math

from controller.loops.base import good


class RemovalGain:
    """The absorber's transfer units as measured over the host's correlation's:
    gain = NTU_measured / NTU_model, NTU_measured = ln(SO2_in / SO2_out) from the
    inlet and outlet analyzers (same O2 basis), NTU_model what the strategy's
    correlation gives for the pumps running, the measured pH and gas flow.

    - A sample counts only with both analyzers good, the outlet above OUT_MIN_MG
      and below the inlet, and the running pumps unchanged for SETTLE_S (the
      analyzers' dead time and lag and the tank's pH have settled).
    - Learned as a first-order filter with TAU_S over the samples (each sample's
      ratio bounded to [RATIO_LO, RATIO_HI] against outliers): `estimate`.
    - What the strategy uses, `gain`, is the estimate bounded to [USE_LO, USE_HI]
      = [1, 1.15]: a plant that removes more than the model lets the strategy run
      the pumps a correlation at most 15 % better allows (the outlet trim adds a
      pump if that was too few); a plant that removes less is left to the outlet
      trim, which holds the limit there (docs/results.md, the family): starting
      pumps on a pessimistic estimate costs energy the family showed no need for.
    - Starts at 1 (the nominal correlation) and holds its value while no sample
      counts (an analyzer fault, blow-back, a pump change)."""

    TAU_S = 3600.0
    SETTLE_S = 600.0
    OUT_MIN_MG = 1.0
    RATIO_LO, RATIO_HI = 0.5, 1.5
    USE_LO, USE_HI = 1.0, 1.15

    def __init__(self):
        self.estimate = 1.0
        self.n_last = None
        self.since = None
        self.t_last = None
        self.samples = 0

    def update(self, t_s, so2_in, so2_out, n_running, ntu_model):
        """One cycle: returns the gain (updated if this cycle's sample counts)."""
        dt = 0.0 if self.t_last is None else max(t_s - self.t_last, 0.0)
        self.t_last = t_s
        if n_running != self.n_last:
            self.n_last, self.since = n_running, t_s
            return self.gain
        if not (good(so2_in) and good(so2_out) and good(ntu_model) and ntu_model > 0
                and n_running > 0 and self.OUT_MIN_MG < so2_out < so2_in
                and t_s - self.since >= self.SETTLE_S):
            return self.gain
        r = min(max(math.log(so2_in / so2_out) / ntu_model, self.RATIO_LO), self.RATIO_HI)
        self.estimate += min(1.0, dt / self.TAU_S) * (r - self.estimate)
        self.samples += 1
        return self.gain

    @property
    def gain(self):
        return min(max(self.estimate, self.USE_LO), self.USE_HI)
