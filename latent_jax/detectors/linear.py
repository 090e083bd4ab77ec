r"""The linear detectors: ``pca`` (the reconstruction error or Hotelling's :math:`T^2`),
``ppca`` (the negative log-likelihood of probabilistic PCA) and ``robust-pca`` (the ``pca``
statistics on the low-rank part of principal component pursuit), fitted in closed form, and
``fa`` (the negative log-likelihood of factor analysis, fitted by EM).

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

PCA_SCORES = ("reconstruction", "hotelling")
# n_components="auto": the variance fraction to keep, below the cap that leaves a residual.
AUTO_VARIANCE = 0.9
# Eigenvalues below this fraction of the largest are round-off (the data's numerical rank).
RANK_RTOL = 1e-5


class NoResidualWarning(UserWarning):
    """The PCA detector keeps every direction the training data vary in: no residual."""


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


class _LinearBackend(DetectorBackend):
    """A PCA of the training data (or of their low-rank part), scored by :meth:`score_block`."""

    # Whether the statistic needs discarded directions (PPCA's noise variance always does).
    residual_name = "reconstruction error"

    def uses_residual(self) -> bool:
        """Whether the score lives in the discarded directions."""
        return self.options["statistic"] == "reconstruction"

    def fitted_rows(self, flat: np.ndarray) -> np.ndarray:
        """The rows the PCA is fitted on."""
        return flat

    def fit_state(self, flat: np.ndarray, q: int, eigenvalues: np.ndarray) -> Any:
        """The fitted :class:`~latent_jax.linear.PCAState` with ``q`` components."""
        del eigenvalues
        return linear.fit_pca(flat, q)

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
        eigenvalues = np.asarray(linear.fit_pca(flat, 1).eigenvalues, np.float64)
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
        self.state = self.fit_state(flat, q, eigenvalues)
        self.n_components = q

    def score_block(self, xs: np.ndarray) -> np.ndarray:
        flat = xs.reshape(len(xs), -1)
        if self.options["statistic"] == "hotelling":
            whitened = linear.encode(self.state, flat, whiten=True)
            return np.sum(np.square(np.asarray(whitened, np.float64)), axis=1)
        return np.asarray(linear.reconstruction_error(self.state, flat))

    def arrays(self) -> dict[str, Any]:
        fields = (f for f in self.state._fields if f not in ("n_samples", "ddof"))
        return {"pca": {name: np.asarray(getattr(self.state, name)) for name in fields}}

    def metadata(self) -> dict[str, Any]:
        counts = {"n_samples": int(self.state.n_samples), "ddof": int(self.state.ddof)}
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
        arrays = {k: jnp.asarray(v) for k, v in tree["pca"].items()}
        backend.state = linear.PCAState(**arrays, **meta["pca"])
        backend.n_components = meta["n_components"]
        return backend


@register_backend
class PCABackend(_LinearBackend):
    """``pca``: the reconstruction error (Q, SPE) or Hotelling's :math:`T^2`."""

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

    def fit_state(self, flat: np.ndarray, q: int, eigenvalues: np.ndarray) -> Any:
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
    statistics = PCA_SCORES

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

    def fit_state(self, flat: np.ndarray, q: int, eigenvalues: np.ndarray) -> Any:
        del eigenvalues
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
