"""Ground-truth data and a representation: the interface the metrics sample from, and codes.

A metric needs a source of labelled observations and a representation to score. The source is
any object of disentanglement_lib's ground-truth interface (:class:`GroundTruthData`, a duck
type, with JAX keys in place of NumPy random states):

* ``factors_num_values``: the number of values of each factor of variation, a sequence of ints
  (each at least 2: a factor with one value carries no information and leaves MIG, SAP and the
  classifiers undefined; leave it out, as disentanglement_lib's dSprites leaves out colour);
* ``num_factors``: their number;
* ``sample_factors(key, n)``: factors drawn from the data's distribution, an int array of shape
  (n, num_factors) with factor ``k`` in ``[0, factors_num_values[k])``;
* ``sample_observations_from_factors(factors, key)``: observations of those factors, an array
  of shape (n, ...).

The representation is any function of observations of shape (batch, ...) to codes of shape
(batch, num_codes) (NumPy or JAX output): a trained encoder's posterior mean, or the factors
themselves in tests. :class:`CodeSampler` draws factors, makes their observations and encodes
them ``batch_size`` rows at a time, checking what each call returns; chunk ``i`` of a call
gets the key ``fold_in(key, i)``, so the same key gives the same codes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

import jax
import numpy as np

from latent_jax import validation

__all__ = ["CodeSampler", "GroundTruthData", "check_ground_truth_data"]

_INTERFACE = (
    "factors_num_values",
    "num_factors",
    "sample_factors",
    "sample_observations_from_factors",
)


class GroundTruthData(Protocol):
    """The ground-truth data interface the metrics accept (a duck type; see the module)."""

    @property
    def factors_num_values(self) -> Sequence[int]: ...

    @property
    def num_factors(self) -> int: ...

    def sample_factors(self, key: jax.Array, n: int) -> Any:
        """``n`` draws of the factors: int array of shape (n, num_factors)."""

    def sample_observations_from_factors(self, factors: np.ndarray, key: jax.Array) -> Any:
        """One observation per row of ``factors``: array of shape (n, ...observation)."""


def check_ground_truth_data(ground_truth_data: Any) -> tuple[int, ...]:
    """Checks the ground-truth interface and returns ``factors_num_values`` as a tuple.

    Raises:
        TypeError: if an attribute or method is missing, or is not of its type.
        ValueError: if a factor has fewer than 2 values, or ``num_factors`` disagrees with
            ``factors_num_values``.
    """
    missing = [name for name in _INTERFACE if not hasattr(ground_truth_data, name)]
    if missing:
        raise TypeError(
            "ground_truth_data must have factors_num_values, num_factors, sample_factors(key, "
            "n) and sample_observations_from_factors(factors, key); got a "
            f"{type(ground_truth_data).__name__} without {', '.join(missing)}"
        )
    for method in _INTERFACE[2:]:
        if not callable(getattr(ground_truth_data, method)):
            raise TypeError(f"ground_truth_data.{method} must be callable")
    values = ground_truth_data.factors_num_values
    if isinstance(values, str | bytes) or not isinstance(values, Sequence | np.ndarray):
        raise TypeError(
            "ground_truth_data.factors_num_values must be a sequence of ints, got "
            f"{type(values).__name__}"
        )
    values = tuple(
        validation.check_int(f"ground_truth_data.factors_num_values[{k}]", v, 2)
        for k, v in enumerate(values)
    )
    num_factors = validation.check_int(
        "ground_truth_data.num_factors", ground_truth_data.num_factors
    )
    if num_factors != len(values) or not values:
        raise ValueError(
            "ground_truth_data.num_factors must equal len(factors_num_values) >= 1, got "
            f"num_factors={num_factors} and {len(values)} factors_num_values"
        )
    return values


class CodeSampler:
    """Factors from a ground-truth source, and the codes a representation gives their observations.

    Args:
        representation_fn: observations of shape (batch, ...) -> codes of shape
            (batch, num_codes).
        ground_truth_data: the source (:class:`GroundTruthData`).
        batch_size: observations per call of ``representation_fn`` (and of
            ``sample_observations_from_factors``).

    Attributes:
        num_values: ``factors_num_values`` as a tuple.
        num_codes: the codes' width, set by the first call and checked on every later one.
    """

    def __init__(
        self, representation_fn: Callable[[Any], Any], ground_truth_data: Any, batch_size: int
    ) -> None:
        if not callable(representation_fn):
            raise TypeError(
                "representation_fn must be a function of observations (batch, ...) to codes "
                f"(batch, num_codes), got {type(representation_fn).__name__}"
            )
        self.num_values = check_ground_truth_data(ground_truth_data)
        self.batch_size = validation.check_int("batch_size", batch_size, 1)
        self.representation_fn = representation_fn
        self.data = ground_truth_data
        self.num_codes: int | None = None

    @property
    def num_factors(self) -> int:
        """The number of factors of variation."""
        return len(self.num_values)

    def factors(self, key: jax.Array, n: int) -> np.ndarray:
        """``n`` draws of the factors, checked: int64 array of shape (n, num_factors)."""
        name = f"ground_truth_data.sample_factors(key, {n})"
        drawn = np.asarray(self.data.sample_factors(key, n))
        if drawn.dtype.kind not in "iu":
            raise TypeError(f"{name} must return integers, got dtype {drawn.dtype}")
        if drawn.shape != (n, self.num_factors):
            raise ValueError(
                f"{name} must return shape (n, num_factors) = ({n}, {self.num_factors}), got "
                f"shape {drawn.shape}"
            )
        drawn = drawn.astype(np.int64)
        outside = (drawn < 0) | (drawn >= np.asarray(self.num_values))
        if outside.any():
            k = int(np.flatnonzero(outside.any(axis=0))[0])
            raise ValueError(
                f"{name} must return factor {k} in [0, {self.num_values[k]}) (its "
                f"factors_num_values), got values from {drawn[:, k].min()} to {drawn[:, k].max()}"
            )
        return drawn

    def codes(self, factors: np.ndarray, key: jax.Array) -> np.ndarray:
        """The codes of observations of ``factors``: float64 array of shape (n, num_codes).

        Chunk ``i`` (rows ``i * batch_size`` onwards) is observed with ``fold_in(key, i)``.
        """
        chunks = []
        for i, start in enumerate(range(0, factors.shape[0], self.batch_size)):
            rows = factors[start : start + self.batch_size]
            observations = self.data.sample_observations_from_factors(
                rows, jax.random.fold_in(key, i)
            )
            shape = np.shape(observations)
            if not shape or shape[0] != rows.shape[0]:
                raise ValueError(
                    "ground_truth_data.sample_observations_from_factors(factors, key) must "
                    f"return one observation per row of factors: given {rows.shape[0]} rows it "
                    f"returned shape {shape}"
                )
            chunks.append(self._checked_codes(self.representation_fn(observations), len(rows)))
        return np.concatenate(chunks)

    def sample(self, key: jax.Array, n: int) -> tuple[np.ndarray, np.ndarray]:
        """``n`` draws: codes (n, num_codes) float64 and their factors (n, num_factors) int64."""
        factor_key, observation_key = jax.random.split(key)
        factors = self.factors(factor_key, n)
        return self.codes(factors, observation_key), factors

    def _checked_codes(self, codes: Any, rows: int) -> np.ndarray:
        name = "representation_fn(observations)"
        codes = validation.check_array(
            name, np.asarray(codes), ndim=2, axes="(batch, num_codes)", dtype=np.float64
        )
        if codes.shape[0] != rows:
            raise ValueError(
                f"{name} must return one row of codes per observation: given {rows} "
                f"observations it returned shape {codes.shape}"
            )
        if self.num_codes is None:
            self.num_codes = codes.shape[1]
        elif codes.shape[1] != self.num_codes:
            raise ValueError(
                f"{name} must return the same number of codes for every batch: it returned "
                f"{self.num_codes} before and {codes.shape[1]} now"
            )
        return codes
