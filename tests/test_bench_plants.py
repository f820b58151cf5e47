"""The plants benchmark's scipy peer models the same plants as GreenEdge: over
the first 10 minutes of each standard scenario the two trajectories agree
within the bench's tolerance, the check that says so catches a peer with one
parameter 5 % off, and the SCR's remaining deviation is GreenEdge's 1 s step
(it shrinks with the reactor's sub-step), not a different model."""

import pytest

from bench import plants_bench

N = 600   # 1 s steps
OFF = {"fan": "peak_efficiency", "pump": "peak_efficiency", "compressor": "volume_m3",
       "scr": "Ka", "fgd": "ntu0"}


@pytest.mark.parametrize("plant", plants_bench.PLANTS)
def test_peer_follows_the_greenedge_plant(plant):
    c = plants_bench.compare(plant, N)
    assert c["max_rel_dev"] <= plants_bench.TOLERANCE[plant]
    # The samples move: the span has dynamics to agree on (start-up, loads, noise).
    first, last = c["samples"][0], c["samples"][-1]
    assert any(abs(a - b) > 1e-3 * max(abs(a), abs(b)) for a, b in zip(first, last))


@pytest.mark.parametrize("plant", plants_bench.PLANTS)
def test_agreement_check_catches_a_different_plant(plant):
    key = OFF[plant]
    p = plants_bench.make_plant(plant, N / 3600).p
    with pytest.raises(AssertionError, match="trajectories differ"):
        plants_bench.compare(plant, N, {key: p[key] * 1.05})


def test_scr_deviation_is_greenedge_step_size(monkeypatch):
    at_1s = plants_bench.compare("scr", N)["max_rel_dev"]
    make = plants_bench.make_plant

    def finer(plant, hours):
        pl = make(plant, hours)
        pl.reactor.max_substep_s = 0.1
        return pl
    monkeypatch.setattr(plants_bench, "make_plant", finer)
    assert plants_bench.compare("scr", N)["max_rel_dev"] < at_1s / 5
