r"""Incremental PCA (Ross, Lim, Lin & Yang, 2008), scikit-learn's ``IncrementalPCA`` in
``jax.numpy``: ``partial_fit`` on one batch at a time, in memory that does not grow with the
rows seen.

With Q components kept after :math:`n` rows (singular values :math:`S`, axes :math:`V`, mean
:math:`\bar x`), a batch of :math:`m` rows with mean :math:`\bar x_B` updates them by the thin
SVD of the stacked matrix

.. math::

    \begin{bmatrix} S V^\top \\ X_B - \bar x_B \\
    \sqrt{nm/(n+m)}\,(\bar x - \bar x_B) \end{bmatrix},

truncated to Q rows again (Ross et al.'s sequential Karhunen-Loeve update with the mean
correction of their §3.3, as scikit-learn computes it; the SVD is taken of the triangular
factor of the stacked matrix's QR factorization, which has the same singular values and right
singular vectors); the mean and per-feature variances follow Chan et al.'s merge. Signs follow
:func:`latent_jax.linear.fit_pca`'s rule.

When every component is kept (``n_components_ == n_features``) nothing is truncated and the
update is exact: the batches then go through the covariance accumulator
(:mod:`latent_jax.linear.accumulator`'s merge of each batch's scatter, Chan et al.'s), and
its eigendecomposition gives the same numbers as :func:`~latent_jax.linear.fit_pca` on all
rows seen so far.

``fit`` keeps the running state on the device from batch to batch and copies the fitted
attributes to NumPy once, at the end. Each batch is padded with zero rows to a bucket of
sizes (powers of two up to 128 rows, then multiples of 128) and masked, so batches of many
lengths share a few compiled programs; the padding changes neither the mean nor the SVD.
Streaming a ``.npy`` file through ``partial_fit`` is
:func:`latent_jax.data.streaming.partial_fit_source`.

References:
    D. A. Ross, J. Lim, R.-S. Lin and M.-H. Yang, "Incremental learning for robust visual
    tracking", International Journal of Computer Vision 77, 2008.
    T. F. Chan, G. H. Golub and R. J. LeVeque, "Updating formulae and a pairwise algorithm for
    computing sample variances", 1979.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array
from jax.typing import ArrayLike
from sklearn.utils import gen_batches

from latent_jax import validation
from latent_jax.linear import estimator_support as support
from latent_jax.linear.estimators import _PCAModel
from latent_jax.linear.kernels import (
    _chunk_moments,
    _finalize,
    _flip_rows,
    _merge,
)

__all__ = ["IncrementalPCA"]


@functools.partial(jax.jit, static_argnames=("n_components",))
def _ross_update_kernel(
    n_seen: Array,
    mean: Array,
    sum_squares: Array,
    components: Array,
    singular_values: Array,
    x: Array,
    mask: Array,
    *,
    n_components: int,
) -> tuple[Array, ...]:
    """One truncated update; returns the new per-feature sums of squared deviations and the
    fitted arrays (mean, variances, components, singular values, explained variances and
    ratios, noise variance)."""
    dtype = x.dtype
    n_features = x.shape[1]
    valid = mask[:, None]
    n_rows = jnp.sum(mask)
    n_old = n_seen.astype(dtype)
    n_batch = n_rows.astype(dtype)
    total = n_old + n_batch
    batch_mean = jnp.sum(jnp.where(valid, x, 0.0), axis=0) / n_batch
    centred = jnp.where(valid, x - batch_mean, 0.0)
    delta = batch_mean - mean
    new_mean = mean + delta * (n_batch / total)
    new_sum_squares = (
        sum_squares
        + jnp.sum(jnp.square(centred), axis=0)
        + jnp.square(delta) * (n_old * n_batch / total)
    )
    # On the first batch n_old is 0: the first and last blocks are zero rows.
    correction = jnp.sqrt(n_old / total * n_batch) * (mean - batch_mean)
    stacked = jnp.concatenate(
        [singular_values[:, None] * components, centred, correction[None, :]], axis=0
    )
    # The SVD of the tall stacked matrix through its QR factorization's triangular factor:
    # the same singular values and right singular vectors, in less time.
    _, s, vt = jnp.linalg.svd(jnp.linalg.qr(stacked, mode="r"), full_matrices=False)
    variance = jnp.square(s) / (total - 1.0)
    ratio = jnp.square(s[:n_components]) / jnp.sum(new_sum_squares)
    # scikit-learn's noise variance: the mean of the discarded variances among the singular
    # values of its (unpadded) stacked matrix, zero when Q is the batch's rows (or D, which
    # the exact update handles).
    stacked_rows = jnp.where(n_seen == 0, n_rows, n_rows + n_components + 1)
    index = jnp.arange(s.shape[0])
    discarded = (index >= n_components) & (index < jnp.minimum(stacked_rows, n_features))
    n_discarded = jnp.sum(discarded)
    noise = jnp.where(
        n_rows == n_components,
        0.0,
        jnp.sum(jnp.where(discarded, variance, 0.0)) / jnp.maximum(n_discarded, 1).astype(dtype),
    )
    fitted = (
        new_mean,
        new_sum_squares / total,
        _flip_rows(vt[:n_components]),
        s[:n_components],
        variance[:n_components],
        ratio,
        noise.astype(dtype),
    )
    return new_sum_squares, fitted


@jax.jit
def _accumulate_kernel(
    count: Array, mean: Array, scatter: Array, x: Array, mask: Array
) -> tuple[Array, Array, Array]:
    """The covariance accumulator's merge of the batch's moments (Chan et al.)."""
    return _merge((count, mean, scatter), _chunk_moments(x, mask))


@jax.jit
def _exact_fit_kernel(count: Array, mean: Array, scatter: Array) -> tuple[Array, ...]:
    """Every component of the accumulated moments: the fitted arrays (mean, variances,
    components, singular values, explained variances and ratios, noise variance)."""
    n_features = mean.shape[0]
    mean, components, _, variance, ratio, singular, _ = _finalize(
        count, mean, scatter, n_features, 1
    )
    var = jnp.diag(scatter) / count.astype(mean.dtype)
    noise = jnp.zeros((), mean.dtype)
    return mean, var, components, singular, variance, ratio, noise


class IncrementalPCA(_PCAModel):
    """Incremental PCA with scikit-learn's interface, computed in JAX (module docstring).

    A drop-in for ``sklearn.decomposition.IncrementalPCA``: ``fit`` runs ``partial_fit`` over
    batches of ``batch_size`` rows (scikit-learn's batches), ``partial_fit`` takes one batch;
    ``transform``, ``inverse_transform``, ``get_covariance``, ``get_precision`` and the
    probabilistic PCA ``score_samples``/``score`` are :class:`latent_jax.PCA`'s (so
    ``get_covariance`` does not depend on ``whiten``, unlike scikit-learn's).

    Precision follows the first batch: float32 is computed and returned in float32, float64
    (and integer or bool input) in float64 inside a scoped ``jax.enable_x64(True)``; later
    batches are computed in the dtype of the first. Every returned array and fitted array
    attribute is an ordinary writeable NumPy array. Sparse input is refused.

    Args:
        n_components: components to keep, in ``[1, n_features]`` and at most the rows of the
            first batch; ``None`` keeps ``min(n_features, rows of the first batch)``.
        whiten: scale the codes of ``transform`` to unit variance.
        copy: accepted for scikit-learn's signature; ``X`` is never modified.
        batch_size: rows per batch of ``fit``; ``None`` for ``5 * n_features``.

    Attributes:
        components_: array of shape (n_components_, n_features_in_).
        explained_variance_: array of shape (n_components_,), with ``ddof=1``.
        explained_variance_ratio_: array of shape (n_components_,).
        singular_values_: array of shape (n_components_,).
        mean_: array of shape (n_features_in_,).
        var_: array of shape (n_features_in_,), the per-feature variances (``ddof=0``).
        noise_variance_: NumPy scalar, scikit-learn's probabilistic PCA noise variance.
        n_components_: int.
        n_samples_seen_: int.
        batch_size_: int, the rows per batch of the last ``fit``.
        n_features_in_: int.
        feature_names_in_: array of shape (n_features_in_,), the column names, set only when
            ``X`` has string column names (a data frame).
    """

    def __init__(
        self,
        n_components: int | None = None,
        *,
        whiten: bool = False,
        copy: bool = True,
        batch_size: int | None = None,
    ):
        self.n_components = n_components
        self.whiten = whiten
        self.copy = copy
        self.batch_size = batch_size

    def _check_params(self) -> None:
        validation.check_bool("whiten", self.whiten)
        validation.check_bool("copy", self.copy)
        if self.n_components is not None:
            validation.check_int("n_components", self.n_components, 1)
        if self.batch_size is not None:
            validation.check_int("batch_size", self.batch_size, 1)

    def fit(self, X: ArrayLike, y: Any = None) -> IncrementalPCA:
        """Fits the model to ``X``, array of shape (n_samples, n_features), in batches of
        ``batch_size`` rows; returns ``self``.

        Raises:
            TypeError: a parameter has the wrong type, or ``X`` is sparse or not numeric.
            ValueError: ``X`` is not 2-D, has fewer than 2 samples, holds NaN/Inf;
                ``n_components`` exceeds the features or the first batch's rows.
        """
        self._check_params()
        x = support.validate_data(
            self, X, dtype=[np.float64, np.float32], ensure_min_samples=2, reset=True
        )
        self._reset()
        n_samples, n_features = x.shape
        self.batch_size_ = 5 * n_features if self.batch_size is None else int(self.batch_size)
        batches = gen_batches(n_samples, self.batch_size_, min_batch_size=self.n_components or 0)
        self._fit_batches(x[batch] for batch in batches)
        return self

    def partial_fit(self, X: ArrayLike, y: Any = None, check_input: bool = True) -> IncrementalPCA:
        """Updates the model with the rows of ``X``, array of shape (n_samples, n_features), as
        one batch; returns ``self``.

        Args:
            X: the batch; its features must match the previous batches'.
            y: ignored.
            check_input: validate ``X`` (scikit-learn's ``check_array``); with False, ``X``
                must be a float NumPy array of the fitted width.

        Raises:
            TypeError: a parameter has the wrong type, or ``X`` is sparse or not numeric.
            ValueError: ``X`` is not 2-D, holds NaN/Inf or has another number of features
                than before; ``n_components`` exceeds the features or the first batch's
                rows, or differs from the components fitted.
        """
        first_pass = not hasattr(self, "components_")
        if first_pass:
            self._check_params()
        if check_input:
            x = support.validate_data(
                self,
                X,
                dtype=[np.float64, np.float32],
                ensure_min_samples=2 if first_pass else 1,
                reset=first_pass,
            )
        else:
            x = np.asarray(X)
        if first_pass:
            self._reset()
        self._fit_batches([x])
        return self

    def _reset(self) -> None:
        """Forgets every batch seen."""
        for name in (
            "components_",
            "n_components_",
            "n_samples_seen_",
            "_moments",
            "_sum_squares",
        ):
            self.__dict__.pop(name, None)

    def _resolve_n_components(self, n_rows: int, n_features: int, fitted: int | None) -> int:
        """The components to keep, given a batch of ``n_rows`` rows and the components kept
        so far (``fitted``; None before the first batch)."""
        if self.n_components is None:
            return min(n_rows, n_features) if fitted is None else fitted
        n_components = int(self.n_components)
        if n_components > n_features:
            raise ValueError(
                f"n_components={n_components} invalid for n_features={n_features}, need more "
                "rows than columns for IncrementalPCA processing"
            )
        if fitted is None and n_components > n_rows:
            raise ValueError(
                f"n_components={n_components} must be less or equal to the batch number of "
                f"samples {n_rows} for the first partial_fit call."
            )
        if fitted is not None and fitted != n_components:
            raise ValueError(
                f"n_components={n_components} differs from the {fitted} components fitted by "
                "the previous partial_fit calls; set n_components to a fixed value."
            )
        return n_components

    def _fit_batches(self, batches: Iterable[np.ndarray]) -> None:
        """Updates the model with validated batches, one after the other. The running state
        (:func:`_initial_state`'s) stays on the device until the last batch; then the fitted
        attributes are computed and copied to NumPy once."""
        if hasattr(self, "components_"):
            n_components, n_seen = self.n_components_, self.n_samples_seen_
            dtype = self.mean_.dtype
            exact = n_components == self.components_.shape[1]
            state = (
                self._moments
                if exact
                else (self.mean_, self._sum_squares, self.components_, self.singular_values_)
            )
        else:
            n_components = state = dtype = exact = None
            n_seen = 0
        fitted = None
        for x in batches:
            n_rows, n_features = x.shape
            n_components = self._resolve_n_components(n_rows, n_features, n_components)
            if state is None:
                dtype, exact = x.dtype, n_components == n_features
                state = _initial_state(n_components, n_features, exact, dtype)
            with support.precision_scope(dtype):
                batch, mask = support.padded_rows(x, dtype)
                if exact:
                    state = _accumulate_kernel(*state, batch, mask)
                else:
                    sum_squares, fitted = _ross_update_kernel(
                        np.int32(n_seen), *state, batch, mask, n_components=n_components
                    )
                    state = (fitted[0], sum_squares, fitted[2], fitted[3])
            n_seen += n_rows
        with support.precision_scope(dtype):
            if exact:
                fitted = _exact_fit_kernel(*state)
                self._moments = tuple(np.asarray(a) for a in state)
            else:
                self._sum_squares = support.host(state[1], dtype)
            (
                self.mean_,
                self.var_,
                self.components_,
                self.singular_values_,
                self.explained_variance_,
                self.explained_variance_ratio_,
                noise,
            ) = (support.host(a, dtype) for a in fitted)
        self.noise_variance_ = noise[()]
        self.n_components_, self.n_samples_seen_ = n_components, n_seen


def _initial_state(n_components: int, n_features: int, exact: bool, dtype: np.dtype) -> tuple:
    """The running state before any batch: the accumulated count, mean and scatter (exact), or
    the mean, per-feature sums of squared deviations, components and singular values."""
    if exact:
        return (np.int32(0), np.zeros(n_features, dtype), np.zeros((n_features,) * 2, dtype))
    zeros = np.zeros(n_features, dtype)
    return (
        zeros,
        zeros,
        np.zeros((n_components, n_features), dtype),
        np.zeros(n_components, dtype),
    )
