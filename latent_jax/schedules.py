r"""β schedules for β-VAEs, as jit-safe functions of a count (step or epoch).

Each factory validates its arguments in Python and returns ``schedule(count) -> β``, a pure
function built from ``jnp`` operations: it accepts a Python int or a traced integer array, casts
the count to float and returns a float32 scalar (or an array of the count's shape).

Whether the count is an optimizer step or an epoch is the caller's choice; the tutorial's face VAE
counts epochs (``β(epoch) = β_max (1 - e^{-epoch/1000})``), Fu et al. count steps.

Example:
    >>> beta = cyclical(total_steps=100, n_cycles=4, ratio=0.5)
    >>> [round(float(beta(t)), 2) for t in (0, 5, 13, 24, 25)]
    [0.0, 0.4, 1.0, 1.0, 0.0]
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax
import jax.numpy as jnp
from jax import Array
from jax.typing import ArrayLike

from latent_jax import validation

Schedule = Callable[[ArrayLike], Array]

RAMPS = ("linear", "sigmoid", "cosine")
SCHEDULES = ("constant", "linear", "monotonic", "cyclical")
UNITS = ("step", "epoch")


_INT32_LIMIT = 2**31


def _as_float(count: ArrayLike) -> Array:
    return jnp.asarray(count).astype(jnp.float32)


def constant(value: float = 1.0) -> Schedule:
    """β fixed at ``value`` (``value = 1`` is the plain VAE's ELBO).

    Args:
        value: the constant β, finite and >= 0.

    Returns:
        A schedule ``count -> value``.
    """
    value = validation.check_real("value", value, nonnegative=True)

    def schedule(count: ArrayLike) -> Array:
        return jnp.full(jnp.shape(count), value, jnp.float32)

    return schedule


def linear(start: float = 0.0, stop: float = 1.0, num_steps: int = 1000) -> Schedule:
    r"""Linear warm-up from ``start`` to ``stop`` over ``num_steps`` counts, then held.

    .. math:: \beta(t) = \text{start} + (\text{stop} - \text{start})\,\min(t / n, 1)

    Args:
        start: β at count 0, >= 0.
        stop: β from count ``num_steps`` on, >= 0.
        num_steps: length of the ramp, >= 1.

    Returns:
        A schedule ``count -> β``.
    """
    start = validation.check_real("start", start, nonnegative=True)
    stop = validation.check_real("stop", stop, nonnegative=True)
    num_steps = validation.check_int("num_steps", num_steps, 1)

    def schedule(count: ArrayLike) -> Array:
        fraction = jnp.clip(_as_float(count) / num_steps, 0.0, 1.0)
        return start + (stop - start) * fraction

    return schedule


def monotonic(beta_max: float = 1.0 / 30.0, tau: float = 1000.0) -> Schedule:
    r"""The tutorial's monotonic schedule :math:`\beta(t) = \beta_{max}(1 - e^{-t/\tau})`.

    The tutorial's face VAE uses ``beta_max = 1/30`` and ``tau = 1000`` epochs.

    Args:
        beta_max: the limit of β as the count grows, >= 0.
        tau: the time constant, > 0; β reaches 63% of ``beta_max`` at ``count = tau``.

    Returns:
        A schedule ``count -> β``.
    """
    beta_max = validation.check_real("beta_max", beta_max, nonnegative=True)
    tau = validation.check_real("tau", tau, positive=True)

    def schedule(count: ArrayLike) -> Array:
        return beta_max * -jnp.expm1(-_as_float(count) / tau)

    return schedule


def _ramp(fraction: Array, ramp: str) -> Array:
    """Maps a ramp fraction u in [0, 1] to a shape f(u) in [0, 1]."""
    if ramp == "linear":
        return fraction
    if ramp == "sigmoid":
        # Fu et al.'s reference code sweeps the logistic over [-6, 6] across the ramp.
        return jax.nn.sigmoid(12.0 * fraction - 6.0)
    return 0.5 - 0.5 * jnp.cos(jnp.pi * fraction)


def cyclical(
    total_steps: int,
    n_cycles: int = 4,
    ratio: float = 0.5,
    start: float = 0.0,
    stop: float = 1.0,
    ramp: str = "linear",
) -> Schedule:
    r"""Cyclical annealing (Fu et al., NAACL 2019): ``n_cycles`` ramps from ``start`` to ``stop``.

    The ``total_steps`` counts are cut into ``n_cycles`` cycles of length
    :math:`P = T / M`. In each cycle β rises from ``start`` to ``stop`` over the first
    ``ratio`` of the cycle (the ramp, shaped ``linear``, ``sigmoid`` or ``cosine``) and is then
    held at ``stop`` for the rest of it.

    **Paper versus reference code.** The paper writes :math:`\beta_t = f(\tau)` for
    :math:`\tau \le R` and 1 otherwise, with
    :math:`\tau = \mathrm{mod}(t - 1, \lceil T/M \rceil) / (T/M)`: cycles of the integer length
    :math:`\lceil T/M \rceil`, so when M does not divide T the last cycle is cut short and the
    ramps drift against the fractional period. The authors' code (``frange_cycle_linear``)
    instead starts cycle :math:`c` at count :math:`\lfloor cP \rfloor` with the fractional
    period :math:`P = T/M` and increments β by :math:`(\text{stop}-\text{start}) / (PR)` per
    count, so every cycle is a full cycle and all M ramps fit in T counts. We implement the
    **reference code's** convention (counts are 0-based, the code's array index); the two agree
    whenever M divides T. Counts past ``total_steps`` keep cycling with the same period.

    **Exact under jit.** The cycle of count :math:`t` and its offset are computed in integer
    arithmetic (:math:`c = \lfloor ((t+1)M - 1)/T \rfloor`, starting at
    :math:`\lfloor cT/M \rfloor`), so the schedule is the same jitted (int32 counts, float32
    inside XLA) and eager, and equals the reference code at every count; a float32
    :math:`(t+1)/P` put some last counts of a cycle into the next one (T = 500, M = 4 at count
    374). One count is the reference's own coin toss: where the ramp's end falls exactly on a
    count (:math:`PR` an integer), its repeated float64 addition of the step lands just above
    or below ``stop`` and so gives ``stop`` or :math:`f(1)`; we give the exact :math:`f(1)`
    (the same for the linear ramp, :math:`s(6)` for the sigmoid). The other schedules are
    continuous in the count, so float32 rounding moves them by an ulp, never across a jump.

    Args:
        total_steps: T, the number of counts the M cycles span, >= 1.
        n_cycles: M, the number of cycles, between 1 and ``total_steps``.
        ratio: R in (0, 1], the fraction of each cycle spent ramping.
        start: β at the beginning of each cycle, >= 0.
        stop: β at the end of each ramp, >= 0.
        ramp: ``"linear"``, ``"sigmoid"`` or ``"cosine"``, the ramp's shape.

    Returns:
        A schedule ``count -> β``.
    """
    total_steps = validation.check_int("total_steps", total_steps, 1)
    n_cycles = validation.check_int("n_cycles", n_cycles, 1)
    if n_cycles > total_steps:
        raise ValueError(f"n_cycles must be <= total_steps={total_steps}, got n_cycles={n_cycles}")
    ratio = validation.check_fraction("ratio", ratio, closed="right")
    start = validation.check_real("start", start, nonnegative=True)
    stop = validation.check_real("stop", stop, nonnegative=True)
    validation.check_choice("ramp", ramp, RAMPS)
    if total_steps * n_cycles >= _INT32_LIMIT:
        raise ValueError(
            "total_steps * n_cycles must be below 2**31 (the cycle arithmetic is exact in "
            f"int32), got total_steps={total_steps}, n_cycles={n_cycles}"
        )
    ramp_counts = total_steps * ratio  # the ramp is offset * M <= T * R counts long

    def schedule(count: ArrayLike) -> Array:
        return _cyclical_value(count, total_steps, n_cycles, ramp_counts, start, stop, ramp)

    return schedule


def _cyclical_value(
    count: ArrayLike,
    total_steps: ArrayLike,
    n_cycles: ArrayLike,
    ramp_counts: ArrayLike,
    start: ArrayLike,
    stop: ArrayLike,
    ramp: str,
) -> Array:
    """β of :func:`cyclical` at ``count``; every argument but ``ramp`` may be traced."""
    count = jnp.asarray(count)
    whole = jnp.floor(count)
    # Integer arithmetic, exact under jit: cycle c starts at floor(c T / M) = (c T) // M, and
    # count t lies in cycle c = ((t + 1) M - 1) // T, the largest c with (c T) // M <= t.
    # (In float32, (t + 1) / P is rounded and put t in the next cycle one count early.)
    t = whole.astype(jnp.int32) % total_steps  # M cycles every T counts
    cycle = ((t + 1) * n_cycles - 1) // total_steps
    offset = t - (cycle * total_steps) // n_cycles
    # A fractional count (an epoch and a part) sits in the cycle of its whole part.
    within = offset.astype(jnp.float32) + (count - whole).astype(jnp.float32)
    scaled = within * jnp.asarray(n_cycles, jnp.float32)  # offset / P, times T
    ramp_counts = jnp.asarray(ramp_counts, jnp.float32)
    fraction = scaled / ramp_counts
    # Past the ramp β is held at ``stop`` itself (the sigmoid ramp ends at s(6) < 1).
    shape = jnp.where(scaled <= ramp_counts, _ramp(jnp.clip(fraction, 0.0, 1.0), ramp), 1.0)
    return start + (stop - start) * shape


def make_schedule(name: str, **kwargs) -> Schedule:
    """Builds a schedule by name, for configs and command lines.

    Args:
        name: one of ``"constant"``, ``"linear"``, ``"monotonic"``, ``"cyclical"``.
        **kwargs: the keyword arguments of that schedule's factory.

    Returns:
        The schedule.

    Raises:
        ValueError: for an unknown name.
    """
    factories = {
        "constant": constant,
        "linear": linear,
        "monotonic": monotonic,
        "cyclical": cyclical,
    }
    validation.check_choice("name", name, SCHEDULES)
    return factories[name](**kwargs)


@dataclasses.dataclass(frozen=True)
class BetaSchedule:
    """A β schedule as data: what a config file or a command line describes.

    Each schedule reads the fields it needs: ``constant`` β = ``beta_max``; ``linear`` from
    ``start`` to ``beta_max`` over ``warmup`` counts; ``monotonic``
    ``beta_max (1 - exp(-t / tau))``; ``cyclical`` ``cycles`` ramps (``ramp`` shaped, over the
    fraction ``ratio`` of each cycle) from ``start`` to ``beta_max`` over ``total`` counts.

    Attributes:
        name: one of :data:`SCHEDULES`.
        unit: what the count t is, one of :data:`UNITS`.
        beta_max: the final (or constant) β.
        start: the β the linear and cyclical ramps start from.
        warmup: the linear ramp's length in counts.
        tau: the monotonic schedule's time constant in counts.
        cycles: the number of cyclical ramps.
        ratio: the fraction of each cycle spent ramping, in (0, 1].
        ramp: the cyclical ramp's shape, one of :data:`RAMPS`.
        total: the cyclical schedule's span in counts; ``None`` spans the whole run.
    """

    name: str = "constant"
    unit: str = "epoch"
    beta_max: float = 1.0
    start: float = 0.0
    warmup: int = 1000
    tau: float = 1000.0
    cycles: int = 4
    ratio: float = 0.5
    ramp: str = "linear"
    total: int | None = None

    def build(self, *, epochs: int, steps_per_epoch: int) -> Schedule:
        """The schedule ``schedule(t) -> β``.

        Args:
            epochs: the run's epochs (the cyclical schedule's default span).
            steps_per_epoch: optimizer updates per epoch; with ``unit="step"`` the cyclical
                schedule's default span is ``epochs * steps_per_epoch``.

        Returns:
            The schedule.

        Raises:
            ValueError: for an unknown name or unit, or invalid parameters (naming the
                factory's argument).
        """
        validation.check_choice("name", self.name, SCHEDULES)
        validation.check_choice("unit", self.unit, UNITS)
        if self.name == "constant":
            return constant(self.beta_max)
        if self.name == "linear":
            return linear(self.start, self.beta_max, self.warmup)
        if self.name == "monotonic":
            return monotonic(self.beta_max, self.tau)
        total = self.total
        if total is None:
            total = epochs * (steps_per_epoch if self.unit == "step" else 1)
        return cyclical(
            total_steps=total,
            n_cycles=self.cycles,
            ratio=self.ratio,
            start=self.start,
            stop=self.beta_max,
            ramp=self.ramp,
        )
