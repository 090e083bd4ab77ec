r"""The linear detectors: ``pca`` (the Mahalanobis distance under a shrunk covariance, the
reconstruction error or Hotelling's :math:`T^2`), ``ppca`` (the negative log-likelihood of
probabilistic PCA) and ``robust-pca`` (the ``pca`` statistics on the low-rank part of principal
component pursuit), fitted in closed form, and ``fa`` (the negative log-likelihood of factor
analysis, fitted by EM).

The principal axes are computed on the host: LAPACK's eigendecomposition of the
:math:`d \times d` scatter matrix, accumulated in float64 (:func:`host_pca`). A detector is
fitted on host arrays of a few hundred to a few hundred thousand rows, where compiling an XLA
program per data shape (about 0.1 s each on a CPU) costs more than the arithmetic.

See :mod:`latent_jax.anomaly` for the statistics and the ``n_components`` rules.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import jax.numpy as jnp
import numpy as np

from latent_jax import linear
from latent_jax.detectors.base import DetectorBackend, TrainingRun, register_backend

PCA_SCORES = ("mahalanobis", "reconstruction", "hotelling")
# robust-pca's low-rank part has no spectrum beyond its rank to shrink towards: no Mahalanobis.
ROBUST_PCA_SCORES = ("reconstruction", "hotelling")
# n_components="auto": the variance fraction to keep, below the cap that leaves a residual.
AUTO_VARIANCE = 0.9
# Eigenvalues below this fraction of the largest are round-off (the data's numerical rank).
RANK_RTOL = 1e-5
# Rows per block of the host scatter accumulation (bounds the float64 copy).
_HOST_BLOCK_ROWS = 65536


def _centred_blocks(flat: np.ndarray, mean: np.ndarray):
    """The rows of ``flat`` minus ``mean`` in float64, :data:`_HOST_BLOCK_ROWS` at a time
    (no full-size float64 copy)."""
    for start in range(0, len(flat), _HOST_BLOCK_ROWS):
        yield flat[start : start + _HOST_BLOCK_ROWS] - mean


def host_pca(flat: np.ndarray, n_components: int | None = None) -> linear.PCAState:
    """PCA of host rows by LAPACK, without compilation: :func:`latent_jax.linear.fit_pca`'s
    result (``ddof=1``; the components' signs may differ) as float32 NumPy arrays.

    The mean and the centred scatter are accumulated in float64 over blocks of rows, then
    ``numpy.linalg.eigh`` gives the axes.

    Args:
        flat: array of shape (n_samples, n_features), finite, at least 2 rows.
        n_components: the components kept, at most ``min(n_samples, n_features)``; ``None``
            keeps that many.

    Returns:
        A :class:`~latent_jax.linear.PCAState` of NumPy arrays.
    """
    n, d = flat.shape
    m = min(n, d) if n_components is None else n_components
    mean = flat.mean(axis=0, dtype=np.float64)
    scatter = np.zeros((d, d))
    for block in _centred_blocks(flat, mean):
        scatter += block.T @ block
    eigenvalues, vectors = np.linalg.eigh(scatter / (n - 1))
    eigenvalues = np.clip(eigenvalues[::-1], 0.0, None)
    components = vectors[:, ::-1][:, :m].T
    total = max(eigenvalues.sum(), np.finfo(np.float64).tiny)
    kept = eigenvalues[:m]
    discarded = eigenvalues[m : min(n, d)]
    f32 = np.float32
    return linear.PCAState(
        mean=mean.astype(f32),
        components=components.astype(f32),
        eigenvalues=eigenvalues.astype(f32),
        explained_variance=kept.astype(f32),
        explained_variance_ratio=(kept / total).astype(f32),
        singular_values=np.sqrt(kept * (n - 1)).astype(f32),
        noise_variance=np.asarray(discarded.mean() if discarded.size else 0.0, f32),
        n_samples=n,
        ddof=1,
    )


def ledoit_wolf_shrinkage(flat: np.ndarray, eigenvalues: np.ndarray) -> float:
    r"""Ledoit & Wolf's (2004) shrinkage :math:`\alpha` of the covariance of ``flat`` towards
    :math:`\mu I` (:math:`\mu` the mean eigenvalue), as scikit-learn's
    ``ledoit_wolf_shrinkage``, from the spectrum and the rows' norms: O(n d) past the PCA.

    Args:
        flat: array of shape (n_samples, n_features), the rows the PCA was fitted on.
        eigenvalues: array of shape (n_features,), their covariance's spectrum with ``ddof=1``.

    Returns:
        :math:`\alpha` in [0, 1]; the shrunk covariance is :math:`(1-\alpha) S + \alpha \mu I`.
    """
    n, d = flat.shape
    biased = np.asarray(eigenvalues, np.float64) * (n - 1) / n  # S = X^T X / n, centred X
    mu = biased.sum() / d
    mean = flat.mean(axis=0, dtype=np.float64)
    # sum_ij (x_i x_i^T)_jk^2 = sum_i ||x_i||^4, and ||S||_F^2 = sum of squared eigenvalues.
    fourth = sum(
        float(np.sum(np.square(np.einsum("ij,ij->i", block, block))))
        for block in _centred_blocks(flat, mean)
    )
    frobenius = float(np.sum(np.square(biased)))
    beta = (fourth / n - frobenius) / (d * n)
    delta = (frobenius - 2.0 * mu * biased.sum() + d * mu * mu) / d
    if delta <= 0.0:
        return 1.0
    return float(min(max(beta, 0.0), delta) / delta)


def numerical_rank(eigenvalues: np.ndarray, n: int, d: int) -> int:
    """The directions in which ``n`` centred rows of ``d`` features vary above round-off.

    At most ``min(n - 1, d)``; an eigenvalue counts when it exceeds :data:`RANK_RTOL` (or
    ``d`` float32 epsilons, if more) times the largest: the backends compute in float32.
    """
    spectrum = eigenvalues[: min(n - 1, d)]
    if spectrum.size == 0 or spectrum[0] <= 0:
        return 0
    tol = spectrum[0] * max(RANK_RTOL, d * float(np.finfo(np.float32).eps))
    return int(np.sum(spectrum > tol))


def variance_components(eigenvalues: np.ndarray, fraction: float) -> int:
    """The fewest leading components that explain at least ``fraction`` of the variance."""
    ratios = np.cumsum(eigenvalues) / max(eigenvalues.sum(), np.finfo(np.float64).tiny)
    return int(np.searchsorted(ratios, fraction - 1e-12) + 1)


class NoResidualWarning(UserWarning):
    """The PCA detector keeps every direction the training data vary in: no residual."""


class _LinearBackend(DetectorBackend):
    """A PCA of the training data (or of their low-rank part), scored by :meth:`score_block`.

    The fitted ``state`` holds every component (``min(n_samples, n_features)``);
    ``n_components`` of them span the principal subspace of the reconstruction error and of
    :math:`T^2`, and the Mahalanobis distance weighs all of them.
    """

    # Whether the statistic needs discarded directions (PPCA's noise variance always does).
    residual_name = "reconstruction error"

    def uses_residual(self) -> bool:
        """Whether the score lives in the discarded directions."""
        return self.options["statistic"] == "reconstruction"

    def fitted_rows(self, flat: np.ndarray) -> np.ndarray:
        """The rows the PCA is fitted on."""
        return flat

    def fit_state(self, flat: np.ndarray, q: int, full: linear.PCAState) -> Any:
        """The fitted state, given the PCA ``full`` of ``flat`` with every component."""
        del flat, q
        return full

    def fit(self, xs: np.ndarray, training: TrainingRun) -> None:
        del training
        flat = self.fitted_rows(xs.reshape(len(xs), -1))
        n, d = flat.shape
        # PPCA needs discarded directions for a positive noise variance; the reconstruction
        # error needs them to be anything but zero.
        if d < 2 and self.uses_residual():
            raise ValueError(
                f"method={self.method!r} with statistic={self.options['statistic']!r} needs "
                f"at least 2 features, got {d} feature(s)"
            )
        limit = min(n, d) - (1 if self.method == "ppca" else 0)
        wanted = self.options["n_components"]
        full = host_pca(flat)
        eigenvalues = np.asarray(full.eigenvalues, np.float64)
        rank = numerical_rank(eigenvalues, n, d)
        if isinstance(wanted, str):
            if wanted == "kaiser":
                # Kaiser's rule: the components with more than the average variance. The
                # average is over the n - 1 eigenvalues a centred sample can make non-zero
                # when n <= d: the d - n + 1 structural zeros say nothing about the data.
                spectrum = eigenvalues[: min(n - 1, d)]
                q = max(1, int(np.sum(spectrum > spectrum.mean())))
            else:
                # "auto": 90% of the variance, but one direction of real variance left over.
                q = min(variance_components(eigenvalues, AUTO_VARIANCE), max(rank - 1, 1))
        elif isinstance(wanted, float):
            q = variance_components(eigenvalues, wanted)
        else:
            q = wanted
            if q > limit:
                raise ValueError(
                    f"n_components={q} must be <= {limit} for method={self.method!r} with "
                    f"{n} samples and {d} features"
                )
        q = max(1, min(q, limit))
        if q >= rank and self.uses_residual():
            warnings.warn(
                f"n_components={wanted!r} keeps {q} component(s) and the training data vary in "
                f"{rank} direction(s) only ({n} samples, {d} features): no residual subspace "
                f"is left, so the {self.residual_name} is round-off and the threshold is "
                f"noise; use more varied data or fewer components",
                NoResidualWarning,
                stacklevel=3,
            )
        self.state = self.fit_state(flat, q, full)
        # Kept whatever the statistic, so that rescored("mahalanobis") needs no refit.
        has_mahalanobis = "mahalanobis" in self.statistics
        self.shrinkage = ledoit_wolf_shrinkage(flat, eigenvalues) if has_mahalanobis else None
        self.n_components = q

    def score_block(self, xs: np.ndarray) -> np.ndarray:
        state = self.state
        centred = xs.reshape(len(xs), -1).astype(np.float64) - np.asarray(state.mean, np.float64)
        axes = np.asarray(state.components, np.float64)
        statistic = self.options["statistic"]
        if statistic == "mahalanobis":
            return self._mahalanobis(centred, axes)
        q = self.n_components
        codes = centred @ axes[:q].T
        if statistic == "hotelling":
            variances = np.asarray(state.explained_variance, np.float64)[:q]
            # A retained direction without variance (rank-deficient data): clipped, as whiten.
            return np.sum(np.square(codes) / np.maximum(variances, np.finfo(np.float32).tiny), 1)
        return np.sum(np.square(centred - codes @ axes[:q]), axis=1)

    def _mahalanobis(self, centred: np.ndarray, axes: np.ndarray) -> np.ndarray:
        r"""Squared Mahalanobis distances under Ledoit & Wolf's shrunk covariance
        :math:`(1-\alpha) S + \alpha \mu I` (:math:`S` with ``1/n``): every principal
        direction weighted by the inverse of its shrunk variance, the directions the training
        data do not span by :math:`1/(\alpha\mu)`."""
        n = self.state.n_samples
        biased = np.asarray(self.state.eigenvalues, np.float64) * (n - 1) / n
        alpha = self.shrinkage
        floor = max(RANK_RTOL * biased[0], np.finfo(np.float32).tiny)
        shrunk = np.maximum((1 - alpha) * biased + alpha * biased.mean(), floor)
        codes = centred @ axes.T
        inside = np.sum(np.square(codes) / shrunk[: len(axes)], axis=1)
        if len(axes) == centred.shape[1]:
            return inside
        # Outside the span of the components every eigenvalue is 0, shrunk to alpha * mu.
        outside = np.maximum(np.sum(np.square(centred), 1) - np.sum(np.square(codes), 1), 0.0)
        return inside + outside / shrunk[-1]

    def arrays(self) -> dict[str, Any]:
        fields = (f for f in self.state._fields if f not in ("n_samples", "ddof"))
        return {"pca": {name: np.asarray(getattr(self.state, name)) for name in fields}}

    def metadata(self) -> dict[str, Any]:
        counts = {"n_samples": int(self.state.n_samples), "ddof": int(self.state.ddof)}
        if self.shrinkage is not None:
            counts["shrinkage"] = self.shrinkage
        return {"architecture": None, "pca": counts}

    @classmethod
    def restore(
        cls,
        options: Mapping[str, Any],
        feature_shape: tuple[int, ...],
        meta: Mapping[str, Any],
        tree: Mapping[str, Any],
    ) -> DetectorBackend:
        backend = cls(options, feature_shape)
        arrays = {k: np.asarray(v) for k, v in tree["pca"].items()}
        counts = dict(meta["pca"])
        # Detectors saved before the Mahalanobis statistic have no shrinkage (and only their
        # n_components components): they score the statistic they were saved with.
        backend.shrinkage = counts.pop("shrinkage", None)
        backend.state = linear.PCAState(**arrays, **counts)
        backend.n_components = meta["n_components"]
        return backend


@register_backend
class PCABackend(_LinearBackend):
    """``pca``: the Mahalanobis distance under the Ledoit–Wolf shrunk covariance, the
    reconstruction error (Q, SPE) or Hotelling's :math:`T^2`."""

    method = "pca"
    statistics = PCA_SCORES


@register_backend
class PPCABackend(_LinearBackend):
    """``ppca``: the negative log-likelihood under closed-form probabilistic PCA, its noise
    variance floored at :data:`RANK_RTOL` times the largest eigenvalue."""

    method = "ppca"
    residual_name = "noise variance"

    def uses_residual(self) -> bool:
        return True

    def fit_state(self, flat: np.ndarray, q: int, full: linear.PCAState) -> Any:
        eigenvalues = np.asarray(full.eigenvalues, np.float64)
        state = linear.fit_ppca(flat, q)
        # Discarded directions without variance (q at the numerical rank: a constant
        # feature) give sigma^2 = 0 and NaN scores: floor it at the rank's tolerance.
        floor = max(RANK_RTOL * eigenvalues[0], float(np.finfo(np.float32).tiny))
        noise = jnp.maximum(state.noise_variance, floor)
        return state._replace(noise_variance=noise.astype(state.mean.dtype))

    def score_block(self, xs: np.ndarray) -> np.ndarray:
        return -np.asarray(linear.ppca_log_likelihood(self.state, xs.reshape(len(xs), -1)))


@register_backend
class RobustPCABackend(_LinearBackend):
    """``robust-pca``: the ``pca`` statistics in the principal subspace of the low-rank part
    of the training data (principal component pursuit, :class:`~latent_jax.linear.RobustPCA`)."""

    method = "robust-pca"
    statistics = ROBUST_PCA_SCORES

    def fitted_rows(self, flat: np.ndarray) -> np.ndarray:
        # Everything works on the low-rank part: the gross errors removed.
        return linear.RobustPCA().fit(flat).low_rank_


@register_backend
class FABackend(_LinearBackend):
    """``fa``: the negative log-likelihood under factor analysis
    (:class:`~latent_jax.linear.FactorAnalysis`: one noise variance per feature, where
    ``ppca`` has one for all), with ``n_components`` factors chosen by the ``pca`` rules."""

    method = "fa"

    def uses_residual(self) -> bool:
        # Each feature keeps a noise variance of its own: no residual subspace is needed.
        return False

    def fit_state(self, flat: np.ndarray, q: int, full: linear.PCAState) -> Any:
        del full
        return linear.FactorAnalysis(q).fit(flat)

    def score_block(self, xs: np.ndarray) -> np.ndarray:
        return -self.state.score_samples(xs.reshape(len(xs), -1))

    def arrays(self) -> dict[str, Any]:
        names = ("mean_", "components_", "noise_variance_")
        return {"fa": {name.rstrip("_"): getattr(self.state, name) for name in names}}

    def metadata(self) -> dict[str, Any]:
        return {"architecture": None, "pca": None}

    @classmethod
    def restore(
        cls,
        options: Mapping[str, Any],
        feature_shape: tuple[int, ...],
        meta: Mapping[str, Any],
        tree: Mapping[str, Any],
    ) -> DetectorBackend:
        backend = cls(options, feature_shape)
        arrays = {name: np.asarray(value) for name, value in tree["fa"].items()}
        state = linear.FactorAnalysis(meta["n_components"])
        state.mean_ = arrays["mean"]
        state.components_ = arrays["components"]
        state.noise_variance_ = arrays["noise_variance"]
        state.n_features_in_ = arrays["mean"].shape[0]
        backend.state = state
        backend.n_components = meta["n_components"]
        return backend
