"""β schedules: hand-computed values, cyclical structure, jit agreement, argument checks."""

import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from absl.testing import parameterized
from numerics import assert_bitwise, assert_close

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


@pytest.mark.numerics
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
        # Fused on an array and op by op on Python ints: at most about 10 ops (the cyclical
        # ramp: a conversion, a sum, a product, a quotient, the shape's 4, start + range x).
        assert_close(self.variant(beta)(counts), eager, ops=10)


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


def _reference_cycles(n_iter, n_cycle, ratio, shape):
    """Fu et al.'s reference loops (frange_cycle_linear / _sigmoid / _cosine, start 0, stop 1),
    written out: β = shape(v) with v accumulated step by step in float64. Also returns the
    counts where that accumulation meets the ramp's end within 1e-9, the one count the
    reference decides by rounding (shape(1) or the initial 1)."""
    values, ambiguous = np.ones(n_iter), np.zeros(n_iter, bool)
    period = n_iter / n_cycle
    step = 1.0 / (period * ratio)
    for c in range(n_cycle):
        v, i = 0.0, 0
        while int(i + c * period) < n_iter:
            index = int(i + c * period)
            if v <= 1.0:
                values[index] = shape(v)
            ambiguous[index] = abs(v - 1.0) < 1e-9
            if v > 1.0:
                break
            v += step
            i += 1
    return values, ambiguous


REFERENCE_SHAPES = {
    "linear": lambda v: v,
    "sigmoid": lambda v: 1.0 / (1.0 + math.exp(-(v * 12.0 - 6.0))),
    "cosine": lambda v: 0.5 - 0.5 * math.cos(v * math.pi),
}


@pytest.mark.parametrize("ramp", ["linear", "sigmoid", "cosine"])
def test_cyclical_is_the_reference_code_jitted_and_eager_over_a_sweep(ramp):
    # Every T in 4..160 with every M up to 9 and ratios that do and do not divide the period,
    # plus T = 500, M = 4 and T = 1000, M = 8 (which float32 arithmetic got wrong at 374).
    # One compiled kernel serves the sweep: the schedule's T, M and R enter it as arguments.
    kernel = jax.jit(
        jax.vmap(schedules._cyclical_value, in_axes=(0, None, None, None, None, None, None)),
        static_argnums=6,
    )
    counts = jnp.arange(1000, dtype=jnp.int32)
    cases = [
        (t, m, r)
        for t in range(4, 161, 3)
        for m in range(1, min(t, 9) + 1)
        for r in (0.5, 0.3, 1.0)
    ] + [(500, 4, 0.5), (1000, 8, 0.5), (1000, 7, 0.77)]
    for total, cycles, ratio in cases:
        jitted = np.asarray(kernel(counts, total, cycles, total * ratio, 0.0, 1.0, ramp))[:total]
        reference, ambiguous = _reference_cycles(total, cycles, ratio, REFERENCE_SHAPES[ramp])
        where = f"T={total} M={cycles} R={ratio}"
        np.testing.assert_allclose(
            jitted[~ambiguous], reference[~ambiguous], atol=2e-6, err_msg=where
        )
        np.testing.assert_allclose(
            jitted[ambiguous], REFERENCE_SHAPES[ramp](1.0), atol=2e-6, err_msg=where
        )
    for total, cycles, ratio in cases[-3:]:  # the public schedule, jitted and eager
        beta = schedules.cyclical(total, cycles, ratio, ramp=ramp)
        jitted = np.asarray(jax.jit(beta)(counts[:total]))
        swept = kernel(counts, total, cycles, total * ratio, 0.0, 1.0, ramp)[:total]
        # Other programs (constants folded, op by op): the ramp's 10 ops, never a jump.
        assert_close(jitted, swept, ops=10)
        assert_close(np.asarray(beta(counts[:total])), jitted, ops=10)
        assert_close(float(beta(374)), jitted[374], ops=10)  # a Python int, as a loop passes


@pytest.mark.numerics
def test_cyclical_counts_past_the_end_keep_cycling_and_huge_runs_are_refused():
    beta = schedules.cyclical(100, 4, 0.5)
    # Bit for bit: the cycle arithmetic is integer, and its one rounded operation (the linear
    # ramp's quotient) is correctly rounded in any program.
    assert_bitwise(beta(jnp.arange(100, 300)), np.tile(beta(jnp.arange(100)), 2))
    with pytest.raises(ValueError, match=r"total_steps \* n_cycles must be below 2\*\*31"):
        schedules.cyclical(2**30, 4)
