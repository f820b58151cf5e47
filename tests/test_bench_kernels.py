"""The kernels benchmark's numpy peer computes the PID bank's law: the same
outputs over the same steps (auto, manual, held, a gain change), and the
check that says so catches a peer that differs."""

import pytest

from bench import kernels_bench
from bench.peers import numpy_pid


def test_numpy_peer_matches_the_bank():
    assert kernels_bench.agreement(n=16, steps=200) <= 1e-9


def test_agreement_check_catches_a_different_law(monkeypatch):
    configure = numpy_pid.NumpyPid.configure

    def slower_rate_limit(self, **g):
        configure(self, **g)
        self.rdt = self.rdt * 0.5

    monkeypatch.setattr(numpy_pid.NumpyPid, "configure", slower_rate_limit)
    with pytest.raises(AssertionError, match="outputs differ"):
        kernels_bench.agreement(n=16, steps=200)
