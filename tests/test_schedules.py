"""β schedules: hand-computed values, cyclical structure, jit agreement, argument checks."""

import math

import chex
import jax.numpy as jnp
import numpy as np
import pytest
from absl.testing import parameterized

from latent_jax import schedules


def _reference_cyclical(n_iter, start, stop, n_cycle, ratio):
    """Fu et al.'s reference loop (frange_cycle_linear), written out as the oracle."""
    values = np.ones(n_iter) * stop
    period = n_iter / n_cycle
    step = (stop - start) / (period * ratio)
    for c in range(n_cycle):
        v, i = start, 0
        while v <= stop and int(i + c * period) < n_iter:
            values[int(i + c * period)] = v
            v += step
            i += 1
    return values


def test_constant():
    beta = schedules.constant(0.25)
    np.testing.assert_allclose(beta(jnp.arange(5)), 0.25)
    assert beta(7).shape == ()


def test_linear_values_by_hand():
    beta = schedules.linear(start=0.2, stop=1.0, num_steps=8)
    np.testing.assert_allclose(
        [float(beta(t)) for t in (0, 2, 4, 8, 100)], [0.2, 0.4, 0.6, 1.0, 1.0], rtol=1e-6
    )


def test_monotonic_is_the_seed_formula():
    beta = schedules.monotonic(beta_max=1 / 30, tau=1000)
    for epoch in (0, 1, 500, 1000, 9999):
        expected = (1 / 30) * (1 - math.exp(-epoch / 1000))
        np.testing.assert_allclose(float(beta(epoch)), expected, rtol=1e-6, atol=1e-12)
    assert float(beta(0)) == 0.0


def test_cyclical_values_by_hand():
    # T=100, M=4: period 25; R=0.5: ramp of 12.5 counts, then held at stop.
    beta = schedules.cyclical(total_steps=100, n_cycles=4, ratio=0.5)
    expected = {0: 0.0, 5: 0.4, 10: 0.8, 12: 0.96, 13: 1.0, 24: 1.0, 25: 0.0, 30: 0.4, 99: 1.0}
    for t, value in expected.items():
        np.testing.assert_allclose(float(beta(t)), value, atol=1e-6, err_msg=f"t={t}")


def test_cyclical_period_ramp_fraction_and_hold():
    total, cycles, ratio = 120, 3, 0.25
    values = np.asarray(
        schedules.cyclical(total, cycles, ratio, start=0.1, stop=0.9)(jnp.arange(total))
    )
    period = total // cycles
    for c in range(cycles):
        cycle = values[c * period : (c + 1) * period]
        np.testing.assert_allclose(cycle, values[:period], atol=1e-6)  # periodic
        ramp = int(period * ratio)
        assert np.all(np.diff(cycle[: ramp + 1]) > 0)  # strictly rising during the ramp
        np.testing.assert_allclose(cycle[ramp:], 0.9, atol=1e-6)  # held for the rest
        np.testing.assert_allclose(cycle[0], 0.1, atol=1e-6)


@pytest.mark.parametrize(
    ("total", "cycles", "ratio"), [(100, 4, 0.5), (103, 4, 0.5), (10, 3, 0.3), (1000, 7, 0.77)]
)
def test_cyclical_linear_matches_reference_code_when_cycles_do_not_divide(total, cycles, ratio):
    ours = schedules.cyclical(total, cycles, ratio)(jnp.arange(total))
    np.testing.assert_allclose(ours, _reference_cyclical(total, 0.0, 1.0, cycles, ratio), atol=1e-6)


@pytest.mark.parametrize("ramp", ["sigmoid", "cosine"])
def test_cyclical_ramps_are_monotone_and_reach_their_ends(ramp):
    values = np.asarray(schedules.cyclical(40, 2, 0.5, ramp=ramp)(jnp.arange(40)))
    assert np.all(np.diff(values[:11]) > 0)
    np.testing.assert_allclose(values[11:20], 1.0, atol=1e-6)  # held at stop after the ramp
    if ramp == "cosine":
        np.testing.assert_allclose(values[[0, 5]], [0.0, 0.5], atol=1e-6)
    else:
        np.testing.assert_allclose(values[5], 0.5, atol=1e-6)  # logistic midpoint
        assert values[0] < 0.003


class ScheduleJitTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(
        ("constant", "constant", {"value": 0.3}),
        ("linear", "linear", {"start": 0.0, "stop": 2.0, "num_steps": 50}),
        ("monotonic", "monotonic", {"beta_max": 0.5, "tau": 30.0}),
        ("cyclical", "cyclical", {"total_steps": 90, "n_cycles": 4, "ratio": 0.6}),
        ("cosine", "cyclical", {"total_steps": 90, "n_cycles": 4, "ramp": "cosine"}),
    )
    def test_jit_and_eager_agree(self, name, kwargs):
        beta = schedules.make_schedule(name, **kwargs)
        counts = jnp.arange(0, 120, 7)
        eager = np.array([float(beta(int(t))) for t in counts])
        chex.assert_trees_all_close(self.variant(beta)(counts), eager, atol=1e-6)


@pytest.mark.parametrize(
    ("factory", "kwargs", "error", "match"),
    [
        (schedules.constant, {"value": -1.0}, ValueError, "value must be >= 0"),
        (schedules.constant, {"value": float("nan")}, ValueError, "value must be finite"),
        (schedules.constant, {"value": "1"}, TypeError, "value must be a real number"),
        (schedules.linear, {"num_steps": 0}, ValueError, "num_steps must be >= 1"),
        (schedules.linear, {"num_steps": 2.5}, TypeError, "num_steps must be an int"),
        (schedules.linear, {"start": -0.1}, ValueError, "start must be >= 0, got start=-0.1"),
        (schedules.monotonic, {"tau": 0.0}, ValueError, "tau must be > 0"),
        (schedules.monotonic, {"beta_max": -1.0}, ValueError, "beta_max must be >= 0"),
        (schedules.cyclical, {"total_steps": 0}, ValueError, "total_steps must be >= 1"),
        (schedules.cyclical, {"total_steps": 10, "n_cycles": 11}, ValueError, "n_cycles must be"),
        (schedules.cyclical, {"total_steps": 10, "ratio": 0.0}, ValueError, r"ratio must be in"),
        (schedules.cyclical, {"total_steps": 10, "ratio": 1.5}, ValueError, r"ratio must be in"),
        (schedules.cyclical, {"total_steps": 10, "ramp": "step"}, ValueError, "ramp must be one"),
    ],
)
def test_bad_arguments_raise_naming_the_argument(factory, kwargs, error, match):
    with pytest.raises(error, match=match):
        factory(**kwargs)


def test_make_schedule_rejects_unknown_names():
    with pytest.raises(
        ValueError, match=r"name must be one of \('constant', .*got name='exponential'"
    ):
        schedules.make_schedule("exponential")
