r"""Anomaly detection with latent-variable models: fit on normal data, score, threshold.

:class:`AnomalyDetector` is a scikit-learn estimator (``get_params``/``set_params``,
``clone``, pipelines, ``GridSearchCV``, ``cross_val_score``) with PyOD's detector API.
``fit(X)`` on (mostly) normal data, then

* ``decision_function(X)``: PyOD's raw anomaly score, **higher means more anomalous**;
  ``decision_scores_`` holds the training data's scores;
* ``score_samples(X)``: scikit-learn's convention, **higher means more normal**: the negated
  anomaly score, so code written for scikit-learn's detectors (``-score_samples`` as the
  anomaly score) gives the same orientation with this detector;
* ``predict(X)``: PyOD's labels, 1 for an anomaly (``decision_function(X) > threshold_``),
  0 for a normal example; ``labels_`` are the training data's labels;
* ``predict_proba(X, method="linear" | "unify")``: PyOD's outlier probabilities, columns
  (normal, anomaly);
* ``threshold_``: the ``1 - contamination`` quantile of ``decision_scores_`` (PyOD's rule:
  ``predict`` flags the ``contamination`` fraction of the training data), or the explicit
  ``threshold`` when one is given.

The labels follow PyOD (1 = anomaly, 0 = normal), not scikit-learn's outlier detectors
(-1 = outlier, 1 = inlier), and ``decision_function`` follows PyOD (higher = more anomalous),
not scikit-learn (where it is higher for inliers).

Backends (``method``) and their anomaly scores:

* ``"pca"``: with ``statistic="mahalanobis"`` (the default) the squared Mahalanobis distance
  :math:`(x - \bar x)^\top \hat\Sigma^{-1} (x - \bar x)` under Ledoit & Wolf's shrunk
  covariance :math:`\hat\Sigma = (1-\alpha) S + \alpha \mu I` (:math:`\alpha` their
  analytic shrinkage, :math:`\mu` the mean variance): every principal direction weighted by
  the inverse of its shrunk variance, so an example is flagged whether it is unusual inside
  the normal data's main directions or off them, and no direction's round-off variance can
  dominate; it equals scikit-learn's ``LedoitWolf().fit(X).mahalanobis(X)`` on the
  standardized data, and ``n_components`` does not enter it. With
  ``statistic="reconstruction"`` the squared reconstruction error
  :math:`\lVert x - \hat x\rVert^2` after projecting onto the first ``n_components``
  principal axes (the Q or SPE statistic); with ``statistic="hotelling"`` Hotelling's
  :math:`T^2 = \sum_k z_k^2 / \lambda_k`, the Mahalanobis distance inside that subspace
  (:math:`z_k` the principal coordinates, :math:`\lambda_k` their variances), which flags
  examples that are unusual *within* the normal data's main directions. The two are the
  classical pair of PCA monitoring statistics (Jackson & Mudholkar, 1979); the default
  weighs both parts, which is what a table with unknown anomalies needs
  (``benchmarks/README.md``, "Detectors against PyOD"). PyOD's ``PCA`` sums the distances
  between the standardized example and each principal axis, divided by the axis's variance
  ratio, which ranks examples nearly as their standardized norm does;
* ``"ppca"``: negative log-likelihood :math:`-\log \mathcal{N}(x; \bar x, WW^\top +
  \sigma^2 I)` under the closed-form probabilistic PCA (:math:`\sigma^2` floored at
  :data:`RANK_RTOL` times the largest eigenvalue, so that ``n_components`` at the data's
  numerical rank, a constant feature say, still gives finite scores and threshold);
* ``"fa"``: negative log-likelihood :math:`-\log \mathcal{N}(x; \bar x, W^\top W + \Psi)`
  under factor analysis (:class:`~latent_jax.linear.FactorAnalysis`, fitted by EM): one noise
  variance per feature where ``"ppca"`` has one for all, so a feature that is noisy in the
  normal data does not dominate the score;
* ``"robust-pca"``: the ``"pca"`` statistics against the principal subspace of the low-rank
  part :math:`L` of the training data, from principal component pursuit
  (:class:`~latent_jax.linear.RobustPCA`: :math:`X = L + S`, :math:`S` sparse, default
  :math:`\lambda`), so training data with gross outliers can be used as they are. With
  ``statistic="reconstruction"`` the score is :math:`\lVert (x - \bar l) - V_Q V_Q^\top
  (x - \bar l)\rVert^2`, :math:`\bar l` the mean of the rows of :math:`L` and :math:`V_Q` the
  first ``n_components`` principal axes of :math:`L` centred on it (``n_components`` resolved
  on :math:`L`'s spectrum); ``"hotelling"`` is :math:`T^2` in that subspace;
* ``"autoencoder"``: mean squared reconstruction error of an autoencoder (MLP, or
  convolutional for images);
* ``"deep-svdd"``: the squared distance :math:`\lVert \phi(x; W) - c \rVert^2` of one-class
  Deep SVDD (Ruff et al., 2018): a bias-free network (:mod:`latent_jax.models.svdd`; the
  paper's LeNet-type convolutional net for images with ``architecture="conv"``, else an MLP)
  trained to pull the training data to the centre :math:`c`, the mean of its initial forward
  pass over the training data (coordinates within ``center_eps`` of zero pushed to
  :math:`\pm` ``center_eps``), with weight decay ``weight_decay``;
* ``"vae"``: with ``statistic="elbo"`` the negative ELBO :math:`-\mathbb{E}_q[\log p(x|z)] +
  D_{KL}(q(z|x)\,\|\,p(z))` (the KL in closed form, the expectation over ``n_samples``
  draws); with ``statistic="reconstruction_probability"`` (An & Cho, 2015) the negative log of
  the reconstruction probability :math:`\frac1L\sum_l p(x|z_l)`, :math:`z_l \sim q(z|x)`.
  The draws use the same standard-normal noise for every example (fixed by ``seed``), so an
  example's score does not depend on the other rows of ``X``.

The default ``n_components="auto"`` of pca/ppca/fa keeps the fewest components that explain
90% of the variance, but at most ``r - 1`` of the ``r`` directions in which the training data
vary (eigenvalues above round-off, at most ``min(n_samples - 1, n_features)``): a residual
subspace with real variance always remains, so the reconstruction error is never round-off.
When the data vary in one direction only, or an explicit ``n_components`` keeps all ``r``,
``fit`` warns (:class:`NoResidualWarning`).

``X`` is an array of shape (n_samples, n_features) or of images, (n_samples, height, width)
or (n_samples, height, width, channels). Neural backends use MLP models for feature vectors
and images smaller than 32x32 pixels (digits, the 25x25 faces: a few hundred inputs) and
convolutional models for larger images (``architecture="auto"``). Inputs are standardized
with statistics of the training data (per feature for tables, one mean and standard deviation
for images).

A fitted detector saves as a run folder (``config.json``, ``normalizer.json`` and
``checkpoints/``: arrays and JSON, no pickle) and loads back with identical scores; detectors
saved by the previous versions (a checkpoint directory) load too.

Example:
    >>> import numpy as np
    >>> x = np.random.default_rng(0).normal(size=(200, 5))
    >>> detector = AnomalyDetector("pca", contamination=0.1, n_components=2).fit(x)
    >>> int(detector.predict(x).sum())
    20
"""

from __future__ import annotations

import inspect
import json
import numbers
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy.special import erf
from sklearn.base import BaseEstimator, OutlierMixin
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_array, validate_data

from latent_jax import detectors, persistent_cache, runs, validation
from latent_jax._deprecation import warn_deprecated
from latent_jax.data import Standardizer
from latent_jax.detectors import TrainingRun
from latent_jax.detectors.linear import AUTO_VARIANCE as AUTO_VARIANCE
from latent_jax.detectors.linear import PCA_SCORES as PCA_SCORES
from latent_jax.detectors.linear import RANK_RTOL as RANK_RTOL
from latent_jax.detectors.linear import NoResidualWarning as NoResidualWarning
from latent_jax.detectors.networks import VAE_SCORES as VAE_SCORES
from latent_jax.detectors.networks import train_config
from latent_jax.models.factory import ARCHITECTURES as ARCHITECTURES
from latent_jax.models.factory import CONV_MIN_SIZE as CONV_MIN_SIZE
from latent_jax.runs import checkpoint as ckpt
from latent_jax.train import TrainConfig
from latent_jax.train.config import LR_SCHEDULES

__all__ = [
    "ARCHITECTURES",
    "METHODS",
    "PCA_SCORES",
    "VAE_SCORES",
    "AnomalyDetector",
    "NoResidualWarning",
]

# The library's backends, by ``method`` (:mod:`latent_jax.detectors`; a backend registered
# later is taken too).
METHODS = detectors.methods()
SCALINGS = ("auto", "feature", "global", "none")
VAE_LIKELIHOODS = ("gaussian", "bernoulli")
PROBA_METHODS = ("linear", "unify")
# Rows scored per call (bounds memory; the result does not depend on it).
SCORE_BATCH = 1024
# Trained methods score blocks of exactly this many rows (the last one padded): one compiled
# program, so an example's score does not depend on how many rows it came with (XLA's
# round-off can change with the batch's shape).
NETWORK_SCORE_ROWS = 256
CHECKPOINT_KIND = runs.DETECTOR_KIND
# 1: the first format ("options": every option resolved); 2: "params" (get_params()).
CHECKPOINT_VERSION = 2

# The constructor's parameters after method, contamination and threshold, with their defaults
# (``options_`` after fit: every one resolved).
DEFAULT_OPTIONS: dict[str, Any] = {
    "n_components": "auto",
    "statistic": None,
    "architecture": "auto",
    "hidden_dims": "auto",
    "channels": (16, 32),
    "latent_dim": "auto",
    "epochs": 100,
    "batch_size": 32,
    "learning_rate": "auto",
    "lr_schedule": "constant",
    "clip_norm": None,
    "likelihood": "gaussian",
    "obs_logvar": 0.0,
    "beta": 1.0,
    "n_samples": 16,
    "weight_decay": 1e-6,
    "center_eps": 0.1,
    "scaling": "auto",
    "seed": 0,
    "quiet": True,
}


def _check_widths(name: str, value: Any) -> tuple[int, ...]:
    try:
        widths = tuple(value)
    except TypeError:
        widths = (None,)
    if not widths or not all(
        isinstance(w, numbers.Integral) and not isinstance(w, bool) and w >= 1 for w in widths
    ):
        raise ValueError(f"{name} must be a non-empty sequence of ints >= 1, got {name}={value!r}")
    return tuple(int(w) for w in widths)


def _check_n_components(n: Any) -> int | float | str:
    if isinstance(n, str):
        return validation.check_choice("n_components", n, ("auto", "kaiser"))
    if isinstance(n, numbers.Integral) and not isinstance(n, bool):
        return validation.check_int("n_components", n, 1)
    value = validation.check_real("n_components", n, positive=True)
    if value >= 1.0:
        raise ValueError(
            f"n_components must be an int >= 1, a variance fraction in (0, 1), 'auto' or "
            f"'kaiser', got n_components={n}"
        )
    return value


def _check_options(method: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """Every option validated, in the form the backends use (``"auto"`` resolved to the
    method's default, :attr:`~latent_jax.detectors.DetectorBackend.defaults`)."""
    out = dict(options)
    for name, value in detectors.backend_class(method).defaults.items():
        if isinstance(out[name], str) and out[name] == "auto":
            out[name] = value
    out["n_components"] = _check_n_components(out["n_components"])
    out["statistic"] = _check_statistic(method, out["statistic"])
    validation.check_choice("architecture", out["architecture"], ARCHITECTURES)
    out["hidden_dims"] = _check_widths("hidden_dims", out["hidden_dims"])
    out["channels"] = _check_widths("channels", out["channels"])
    for name in ("latent_dim", "epochs", "batch_size", "n_samples"):
        out[name] = validation.check_int(name, out[name], 1)
    out["seed"] = validation.check_int("seed", out["seed"], 0)
    out["learning_rate"] = validation.check_real(
        "learning_rate", out["learning_rate"], positive=True
    )
    validation.check_choice("lr_schedule", out["lr_schedule"], LR_SCHEDULES)
    if out["clip_norm"] is not None:
        validation.check_real("clip_norm", out["clip_norm"], positive=True)
    out["beta"] = validation.check_real("beta", out["beta"], positive=True)
    out["obs_logvar"] = validation.check_real("obs_logvar", out["obs_logvar"])
    for name in ("weight_decay", "center_eps"):
        out[name] = validation.check_real(name, out[name], nonnegative=True)
    validation.check_choice("likelihood", out["likelihood"], VAE_LIKELIHOODS)
    validation.check_choice("scaling", out["scaling"], SCALINGS)
    if not isinstance(out["quiet"], bool):
        raise TypeError(f"quiet must be a bool, got {out['quiet']!r}")
    return out


def _check_statistic(method: str, statistic: Any) -> str | None:
    """The method's statistic: ``statistic`` checked against its choices, or its default."""
    return detectors.backend_class(method).check_statistic(statistic)


def _check_contamination(contamination: Any, threshold: Any) -> None:
    if contamination is None:
        if threshold is None:
            raise ValueError("contamination=None needs an explicit threshold")
        return
    value = validation.check_real("contamination", contamination)
    if not 0.0 < value <= 0.5:
        raise ValueError(f"contamination must be in (0, 0.5], got contamination={contamination}")


class _RenamedKeywords(type):
    """Serves the constructor's old keyword ``score`` as ``statistic``, with a warning.

    A parameter named ``score`` would hide scikit-learn's ``score`` method; the signature
    stays explicit (no ``**kwargs``), so ``get_params`` and ``clone`` see only ``statistic``.
    """

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        if "score" in kwargs:
            if "statistic" in kwargs:
                raise TypeError("AnomalyDetector got both statistic and its old name score")
            warn_deprecated("AnomalyDetector(score=...)", "AnomalyDetector(statistic=...)")
            kwargs["statistic"] = kwargs.pop("score")
        return super().__call__(*args, **kwargs)


class AnomalyDetector(OutlierMixin, BaseEstimator, metaclass=_RenamedKeywords):
    """Reconstruction- and likelihood-based anomaly detector (see the module docstring).

    The constructor stores its arguments as given; ``fit`` validates them.

    Args:
        method: ``"pca"``, ``"ppca"``, ``"fa"``, ``"robust-pca"``, ``"autoencoder"``,
            ``"vae"`` or ``"deep-svdd"``.
        contamination: the expected fraction of anomalies in the training data, in (0, 0.5];
            sets ``threshold_`` to the ``1 - contamination`` quantile of the training scores.
            May be ``None`` when ``threshold`` is given.
        threshold: an explicit anomaly-score threshold; overrides ``contamination``.
        n_components: pca/ppca/fa/robust-pca: an int, a variance fraction in (0, 1) (the fewest
            components that explain at least that much), ``"kaiser"`` (the eigenvalues above
            their mean, over the ``min(n - 1, d)`` a sample of n rows can make non-zero) or
            ``"auto"`` (90% of the variance, at most one fewer than the directions the data
            vary in; see the module docstring).
        statistic: the anomaly score: pca: ``"mahalanobis"``, ``"reconstruction"`` or
            ``"hotelling"``; robust-pca: ``"reconstruction"`` or ``"hotelling"``; vae:
            ``"elbo"`` or
            ``"reconstruction_probability"``; ``None``: the method's default.
        architecture: autoencoder/vae/deep-svdd: ``"auto"``, ``"mlp"`` or ``"conv"``.
        hidden_dims: MLP widths (the conv VAE's dense width is the first); ``"auto"``:
            (128, 64), deep-svdd (64,).
        channels: the convolutional stages' channels (deep-svdd: the paper's MNIST network
            has (8, 4), with 5x5 kernels).
        latent_dim: autoencoder/vae code size; deep-svdd: the representation's size;
            ``"auto"``: 8, deep-svdd the paper's 32.
        epochs: training epochs.
        batch_size: training rows per step.
        learning_rate: Adam's step size; ``"auto"``: 1e-3, deep-svdd the paper's 1e-4 (a
            larger step collapses more of the data onto the centre in 100 epochs).
        lr_schedule: the learning rate over the run (:class:`~latent_jax.train.TrainConfig`).
        clip_norm: gradient clipping norm, or ``None``.
        likelihood: vae: ``"gaussian"`` with fixed log-variance ``obs_logvar``, or
            ``"bernoulli"`` for data in [0, 1] with ``scaling="none"``.
        obs_logvar: vae: the Gaussian likelihood's log-variance.
        beta: vae: the KL weight in training.
        n_samples: vae: draws per score.
        weight_decay: deep-svdd: lambda of the loss's weight decay ``lambda / 2 * sum_l
            ||W_l||^2`` (the paper's 1e-6).
        center_eps: deep-svdd: the centre's coordinates are at least this far from zero.
        scaling: ``"auto"``, ``"feature"``, ``"global"`` or ``"none"``.
        seed: seed of the network's initialization, training and the VAE's draws.
        quiet: no progress bar.

    ``fit`` sets the attributes.

    Attributes:
        decision_scores_: array of shape (n_samples,), the training data's anomaly scores.
        labels_: int array of shape (n_samples,), the training data's labels (1 = anomaly).
        threshold_: float, the anomaly score above which ``predict`` flags an example.
        n_features_in_: int, the number of features per example (pixels times channels).
        feature_names_in_: the column names of a DataFrame ``X``, when it had string names.
        feature_shape_: tuple, the shape of one example as stored ((features,) or
            (height, width, channels)).
        n_components_: int, the principal components (or factors) used
            (pca/ppca/fa/robust-pca), else ``None``.
        options_: dict, every parameter after ``method``, ``contamination`` and
            ``threshold``, validated and resolved.
        history_: the training :class:`~latent_jax.train.History` (autoencoder/vae/
            deep-svdd), else ``None``.
        center_: deep-svdd: float array of shape (latent_dim,), the centre :math:`c`.
        backend_: the fitted :class:`~latent_jax.detectors.DetectorBackend` of ``method``
            (its model, e.g. ``backend_.state`` of pca/ppca/robust-pca or ``backend_.model``
            and ``backend_.variables`` of the trained methods).
    """

    def __init__(
        self,
        method: str = "pca",
        contamination: float | None = 0.1,
        *,
        threshold: float | None = None,
        n_components: int | float | str = "auto",
        statistic: str | None = None,
        architecture: str = "auto",
        hidden_dims: Sequence[int] | str = "auto",
        channels: Sequence[int] = (16, 32),
        latent_dim: int | str = "auto",
        epochs: int = 100,
        batch_size: int = 32,
        learning_rate: float | str = "auto",
        lr_schedule: str = "constant",
        clip_norm: float | None = None,
        likelihood: str = "gaussian",
        obs_logvar: float = 0.0,
        beta: float = 1.0,
        n_samples: int = 16,
        weight_decay: float = 1e-6,
        center_eps: float = 0.1,
        scaling: str = "auto",
        seed: int = 0,
        quiet: bool = True,
    ):
        self.method = method
        self.contamination = contamination
        self.threshold = threshold
        self.n_components = n_components
        self.statistic = statistic
        self.architecture = architecture
        self.hidden_dims = hidden_dims
        self.channels = channels
        self.latent_dim = latent_dim
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.lr_schedule = lr_schedule
        self.clip_norm = clip_norm
        self.likelihood = likelihood
        self.obs_logvar = obs_logvar
        self.beta = beta
        self.n_samples = n_samples
        self.weight_decay = weight_decay
        self.center_eps = center_eps
        self.scaling = scaling
        self.seed = seed
        self.quiet = quiet

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.estimator_type = "outlier_detector"
        tags.input_tags.allow_nan = False
        tags.input_tags.sparse = False
        return tags

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "threshold_")

    # ------------------------------------------------------------------ parameters

    def _validate_params(self) -> dict[str, Any]:
        """The parameters checked; ``method``, ``threshold`` and the resolved options."""
        validation.check_choice("method", self.method, detectors.methods())
        if self.threshold is not None:
            validation.check_real("threshold", self.threshold)
        _check_contamination(self.contamination, self.threshold)
        return _check_options(self.method, {k: getattr(self, k) for k in DEFAULT_OPTIONS})

    @property
    def options(self) -> dict[str, Any]:
        """Deprecated: every option resolved; use ``options_`` or ``get_params()``."""
        warn_deprecated("AnomalyDetector.options", "AnomalyDetector.options_ or get_params()")
        return dict(self.options_) if hasattr(self, "options_") else self._validate_params()

    @property
    def training_scores_(self) -> np.ndarray:
        """Deprecated: the training data's anomaly scores; use ``decision_scores_``."""
        warn_deprecated("AnomalyDetector.training_scores_", "AnomalyDetector.decision_scores_")
        self._check_fitted("training_scores_")
        return self.decision_scores_

    # ------------------------------------------------------------------ input

    def _validate_X(self, X: Any, *, reset: bool) -> np.ndarray:
        """``X`` validated (scikit-learn's rules and messages): float32 of shape (n, features)
        or (n, height, width, channels); ``reset`` records its shape and feature names."""
        kwargs: dict[str, Any] = {
            "dtype": (np.float64, np.float32),
            "ensure_min_samples": 2 if reset else 1,
        }
        array = check_array(X, allow_nd=True, input_name="X", estimator=self, **kwargs)
        if array.ndim == 2:
            # Feature names and the feature count, with scikit-learn's messages.
            array = validate_data(self, X, reset=reset, **kwargs)
        elif array.ndim > 4:
            raise ValueError(
                f"X must have shape (n_samples, n_features), (n_samples, height, width) or "
                f"(n_samples, height, width, channels), got shape {array.shape}"
            )
        elif reset and hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        given = tuple(int(d) for d in array.shape[1:])
        if array.ndim == 3:
            array = array[..., None]
        shape = tuple(int(d) for d in array.shape[1:])
        if reset:
            self.feature_shape_ = shape
            self.n_features_in_ = int(np.prod(shape))
        elif shape != self.feature_shape_:
            raise ValueError(
                f"X has examples of shape {given} ({int(np.prod(given))} features) but the "
                f"detector was fitted on examples of shape {self.feature_shape_} "
                f"({self.n_features_in_} features)"
            )
        return np.asarray(array, np.float32)

    # ------------------------------------------------------------------ fitting

    def fit(
        self,
        X: Any,
        y: Any = None,
        *,
        checkpoint_dir: str | os.PathLike | None = None,
        callbacks: Sequence[Any] = (),
        checkpoint_every: int = 0,
        resume: bool = False,
        allow_changes: Sequence[str] = (),
    ) -> AnomalyDetector:
        """Fits the backend on ``X`` (mostly normal data) and sets ``threshold_``.

        Args:
            X: array of shape (n_samples, n_features), (n_samples, height, width) or
                (n_samples, height, width, channels); finite, at least 2 rows.
            y: ignored (scikit-learn convention).
            checkpoint_dir: trained methods only: where the training run writes its
                checkpoints (:func:`latent_jax.train.fit`'s format, which
                :func:`latent_jax.load_run` reloads as the network alone).
            callbacks: trained methods only: per-epoch callbacks of the training run (e.g.
                :class:`~latent_jax.train.callbacks.HistoryCSV`).
            checkpoint_every: with ``checkpoint_dir``, also checkpoint every this many epochs
                (0: only at the end).
            resume: with ``checkpoint_dir``, continue the training run from its last
                checkpoint there (:func:`latent_jax.train.fit`'s ``resume``), when it has one.
            allow_changes: with ``resume``, :func:`latent_jax.train.fit`'s ``allow_changes``.

        Returns:
            ``self``.

        Raises:
            ValueError: for invalid parameters, NaN/Inf, empty or badly shaped ``X``,
                parameters that do not fit the data, or training arguments for pca/ppca.

        Warns:
            NoResidualWarning: pca/ppca, when the components kept leave no direction in which
                the training data vary (the reconstruction error would be round-off).

        Note:
            Turns on JAX's persistent compilation cache unless JAX has one or
            ``LATENT_JAX_NO_COMPILE_CACHE`` is set
            (:func:`latent_jax.persistent_cache.enable_default`): a second fit on data of the
            same shape loads its compiled programs instead of compiling them again.
        """
        del y
        options = self._validate_params()
        backend_type = detectors.backend_class(self.method)
        if resume and checkpoint_dir is None:
            raise ValueError("resume=True needs the checkpoint_dir to resume from")
        if not backend_type.trains and (checkpoint_dir is not None or callbacks):
            raise ValueError(
                "checkpoint_dir and callbacks are for the trained methods (autoencoder, vae, "
                f"deep-svdd), not method={self.method!r}"
            )
        x = self._validate_X(X, reset=True)
        persistent_cache.enable_default()
        self.options_ = options
        self._scaling = backend_type.scaling(options, x)
        self._scaler = self._fit_scaler(x)
        xs = self._transform(x)
        backend = backend_type(options, self.feature_shape_)
        training = TrainingRun(checkpoint_dir, callbacks, checkpoint_every, resume, allow_changes)
        backend.fit(xs, training)
        self.backend_ = backend
        self.n_components_ = backend.n_components
        self.history_ = backend.history
        self._training_inputs = xs  # kept for rescored(); not saved
        self._set_threshold(self._score(xs))
        return self

    def fit_predict(self, X: Any, y: Any = None, **fit_params: Any) -> np.ndarray:
        """``fit(X)``, then the training data's labels ``labels_`` (1 = anomaly).

        Args:
            X: as for :meth:`fit`.
            y: ignored.
            **fit_params: :meth:`fit`'s keyword arguments (``checkpoint_dir``, ``callbacks``).

        Returns:
            int64 array of shape (n_samples,).
        """
        return self.fit(X, y, **fit_params).labels_.copy()

    def _fit_scaler(self, x: np.ndarray) -> Standardizer | None:
        if self._scaling == "none":
            return None
        return Standardizer.fit(x, per_feature=self._scaling == "feature")

    def _transform(self, x: np.ndarray) -> np.ndarray:
        return x if self._scaler is None else self._scaler.transform(x)

    def train_config(
        self, checkpoint_dir: str | os.PathLike | None = None, checkpoint_every: int = 0
    ) -> TrainConfig:
        """The :class:`~latent_jax.train.TrainConfig` that ``fit`` trains the network with.

        Args:
            checkpoint_dir: as for :meth:`fit`.
            checkpoint_every: as for :meth:`fit`.

        Raises:
            ValueError: for pca/ppca, which train nothing.
        """
        if not detectors.backend_class(self.method).trains:
            raise ValueError(f"method={self.method!r} trains no network")
        return train_config(self._validate_params(), checkpoint_dir, checkpoint_every)

    @property
    def center_(self) -> np.ndarray:
        """deep-svdd: the centre :math:`c` of shape (latent_dim,), fixed before training."""
        self._check_fitted("center_")
        if self.method != "deep-svdd":
            raise AttributeError(f"center_ is deep-svdd's, not method={self.method!r}'s")
        return self.backend_.center

    @property
    def normalizer_(self) -> Standardizer | None:
        """The standardization fitted on the training data (``None`` for ``scaling="none"``)."""
        self._check_fitted("normalizer_")
        return self._scaler

    def _set_threshold(self, training_scores: np.ndarray) -> None:
        self.decision_scores_ = training_scores
        if self.threshold is not None:
            self.threshold_ = float(self.threshold)
        else:
            self.threshold_ = float(np.quantile(training_scores, 1.0 - self.contamination))
        self.labels_ = (training_scores > self.threshold_).astype(np.int64)

    # ------------------------------------------------------------------ scoring

    def _check_fitted(self, what: str) -> None:
        if not self.__sklearn_is_fitted__():
            raise NotFittedError(
                f"this AnomalyDetector is not fitted yet: call fit(X) before {what}()"
            )

    def _score(self, xs: np.ndarray) -> np.ndarray:
        """Scores of standardized examples, computed in blocks of :data:`SCORE_BATCH` rows
        (trained methods: :data:`NETWORK_SCORE_ROWS`, the last block padded with zeros)."""
        score = self.backend_.score_block
        rows = NETWORK_SCORE_ROWS if self.backend_.trains else SCORE_BATCH
        blocks = []
        for start in range(0, len(xs), rows):
            block = xs[start : start + rows]
            if self.backend_.trains and len(block) < rows:  # only the last block is padded
                padding = np.zeros((rows - len(block), *xs.shape[1:]), xs.dtype)
                block = np.concatenate([block, padding])
            blocks.append(score(block))
        return np.concatenate(blocks)[: len(xs)].astype(np.float64)

    def decision_function(self, X: Any) -> np.ndarray:
        """PyOD's anomaly scores: higher = more anomalous.

        The opposite sign of scikit-learn's ``decision_function`` (PyOD's convention); code
        written for scikit-learn's detectors should use :meth:`score_samples`.

        Args:
            X: array of the fitted example shape, (n_samples, ...).

        Returns:
            float64 array of shape (n_samples,); ``predict`` flags the rows above
            ``threshold_``.

        Raises:
            sklearn.exceptions.NotFittedError: before ``fit``.
            ValueError: for NaN/Inf or a different example shape than ``fit`` saw.
        """
        self._check_fitted("decision_function")
        return self._score(self._transform(self._validate_X(X, reset=False)))

    def score_samples(self, X: Any) -> np.ndarray:
        """scikit-learn's normality scores: higher = more normal, ``-decision_function(X)``.

        Args:
            X: array of the fitted example shape, (n_samples, ...).

        Returns:
            float64 array of shape (n_samples,).
        """
        self._check_fitted("score_samples")
        return -self.decision_function(X)

    def predict(self, X: Any) -> np.ndarray:
        """PyOD's labels: 1 for an anomaly (``decision_function(X) > threshold_``), else 0.

        Returns:
            int64 array of shape (n_samples,).
        """
        self._check_fitted("predict")
        return (self.decision_function(X) > self.threshold_).astype(np.int64)

    def predict_proba(self, X: Any, method: str = "linear") -> np.ndarray:
        """PyOD's outlier probabilities, from the anomaly scores and ``decision_scores_``.

        Args:
            X: array of the fitted example shape, (n_samples, ...).
            method: ``"linear"``: the score min-max scaled by the training scores' range and
                clipped to [0, 1]; ``"unify"`` (Kriegel et al., 2011): ``erf((s - mu) /
                (sigma * sqrt(2)))`` clipped to [0, 1], with ``mu`` and ``sigma`` the
                training scores' mean and standard deviation.

        Returns:
            float64 array of shape (n_samples, 2): columns P(normal), P(anomaly), summing to 1.
        """
        self._check_fitted("predict_proba")
        validation.check_choice("method", method, PROBA_METHODS)
        train = self.decision_scores_
        scores = self.decision_function(X)
        if method == "linear":
            low, span = train.min(), np.ptp(train)
            anomaly = (scores - low) / (span if span > 0 else 1.0)
        else:
            sigma = train.std()
            anomaly = erf((scores - train.mean()) / ((sigma if sigma > 0 else 1.0) * np.sqrt(2)))
        anomaly = np.clip(anomaly, 0.0, 1.0)
        return np.column_stack([1.0 - anomaly, anomaly])

    def rescored(self, statistic: str) -> AnomalyDetector:
        """The same fitted PCA or VAE with another ``statistic``; ``threshold_`` recomputed.

        The fitted model is shared, not copied; nothing is refitted.

        Args:
            statistic: one of :data:`PCA_SCORES` (pca) or :data:`VAE_SCORES` (vae).

        Returns:
            A new fitted :class:`AnomalyDetector` whose ``statistic`` parameter is ``statistic``.
        """
        self._check_fitted("rescored")
        statistics = detectors.backend_class(self.method).statistics
        if not statistics:
            with_choice = [m for m in detectors.methods() if detectors.backend_class(m).statistics]
            raise ValueError(
                f"rescored() applies to the methods with a choice of statistic ({with_choice}), "
                f"not {self.method!r}"
            )
        statistic = _check_statistic(self.method, statistic)
        if getattr(self, "_training_inputs", None) is None:
            raise ValueError("rescored() needs the training data, which a loaded detector lacks")
        other = type(self).__new__(type(self))
        other.__dict__.update(self.__dict__)
        other.statistic = statistic
        other.options_ = {**self.options_, "statistic": statistic}
        other.backend_ = self.backend_.with_statistic(statistic)
        other._set_threshold(other._score(self._training_inputs))
        return other

    # ------------------------------------------------------------------ persistence

    def save(self, directory: str | os.PathLike) -> str:
        """Writes the fitted detector as a run folder (arrays and JSON, no pickle).

        The folder has the layout of every run (:mod:`latent_jax.runs.folder`):
        ``config.json`` (``"command": "detector"``: the method, parameters, resolved options
        and threshold), ``normalizer.json`` (the standardization, when there is one) and
        ``checkpoints/`` (the arrays, with everything :meth:`load` needs in the checkpoint's
        own metadata).

        Args:
            directory: created if needed; a previous detector there is replaced.

        Returns:
            The checkpoint manifest's path.
        """
        self._check_fitted("save")
        tree: dict[str, Any] = {"training_scores": np.asarray(self.decision_scores_)}
        if self._scaler is not None:
            tree["scaler"] = {
                "mean": np.asarray(self._scaler.mean),
                "std": np.asarray(self._scaler.std),
            }
        tree.update(self.backend_.arrays())
        metadata = {
            "kind": CHECKPOINT_KIND,
            "version": CHECKPOINT_VERSION,
            "method": self.method,
            "params": {k: _jsonable(v) for k, v in self.get_params().items()},
            "options": {k: _jsonable(v) for k, v in self.options_.items()},
            "threshold_": self.threshold_,
            "feature_shape": list(self.feature_shape_),
            "feature_names_in": (
                [str(n) for n in self.feature_names_in_]
                if hasattr(self, "feature_names_in_")
                else None
            ),
            "scaling": self._scaling,
            "n_components": self.n_components_,
            **self.backend_.metadata(),
        }
        directory = os.fspath(directory)
        os.makedirs(directory, exist_ok=True)
        manifest = ckpt.save_checkpoint(
            os.path.join(directory, runs.CHECKPOINTS), tree, epoch=0, metadata=metadata, keep=1
        )
        described = {k: v for k, v in metadata.items() if k not in ("kind", "version")}
        runs.write_config(
            directory,
            command="detector",
            data={
                "feature_shape": described.pop("feature_shape"),
                "feature_names_in": described.pop("feature_names_in"),
                "scaling": described.pop("scaling"),
            },
            model={"method": described.pop("method"), **described.pop("params")},
            training=None,
            seed=int(self.options_["seed"]),
            detector=described,
        )
        normalizer = os.path.join(directory, runs.NORMALIZER)
        if self._scaler is not None:
            text = json.dumps(self._scaler.to_dict(), indent=2)
            ckpt.atomic_write(normalizer, text.encode("utf-8"))
        elif os.path.exists(normalizer):  # a replaced detector's
            os.remove(normalizer)
        return manifest

    @classmethod
    def load(cls, path: str | os.PathLike) -> AnomalyDetector:
        """Loads a detector written by :meth:`save` (this version's or the previous one's).

        Args:
            path: the detector's folder (:meth:`save`), or a checkpoint directory or
                manifest (what :meth:`save` wrote in the previous version).

        Returns:
            The fitted detector; its scores equal the saved detector's.

        Raises:
            FileNotFoundError: if there is no checkpoint at ``path``.
            latent_jax.runs.checkpoint.CheckpointError: for a corrupt checkpoint, one that does not
                hold a detector (a file from elsewhere) or one of a newer format, naming the
                file.
        """
        folder = os.path.join(os.fspath(path), runs.CHECKPOINTS)
        loaded = ckpt.load_checkpoint(folder if os.path.isdir(folder) else path)
        meta = loaded.metadata
        if meta.get("kind") != CHECKPOINT_KIND:
            hint = (
                ": it is a training run's checkpoint; reload it with latent_jax.load_run"
                if meta.get("kind") == "latent_jax.train"
                else ""
            )
            raise ckpt.CheckpointError(
                f"checkpoint {loaded.path} does not hold an AnomalyDetector{hint}"
            )
        version = meta.get("version", 1)
        if not isinstance(version, int) or not 1 <= version <= CHECKPOINT_VERSION:
            raise ckpt.CheckpointError(
                f"checkpoint {loaded.path} holds an AnomalyDetector of format version "
                f"{version!r}; this version of latent_jax reads versions 1 to "
                f"{CHECKPOINT_VERSION} (upgrade latent_jax to load it)"
            )
        try:
            return cls._from_checkpoint(meta, loaded.tree, version)
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise ckpt.CheckpointError(
                f"checkpoint {loaded.path} holds no AnomalyDetector this version can read: "
                f"{type(err).__name__}: {err}"
            ) from err

    @classmethod
    def _from_checkpoint(
        cls, meta: Mapping[str, Any], tree: Mapping[str, Any], version: int
    ) -> AnomalyDetector:
        """The detector that a checkpoint's metadata and arrays describe (see :meth:`load`)."""
        if version == 1:
            # Every option resolved under "options"; the old n_components default was 0.9.
            options = dict(meta["options"])
            params = {
                "method": meta["method"],
                "contamination": meta["contamination"],
                "threshold": meta["threshold"],
                "statistic": options.pop("score"),
                **options,
            }
        else:
            params = dict(meta["params"])
        saved_before_mahalanobis = "shrinkage" not in (meta.get("pca") or {})
        if (
            params["method"] == "pca"
            and params.get("statistic") is None
            and saved_before_mahalanobis
        ):
            # Saved when the reconstruction error was pca's default statistic.
            params["statistic"] = "reconstruction"
        for name in ("hidden_dims", "channels"):
            if isinstance(params.get(name), list):
                params[name] = tuple(params[name])
        detector = cls(**params)
        detector.options_ = detector._validate_params()
        detector.feature_shape_ = tuple(int(d) for d in meta["feature_shape"])
        detector.n_features_in_ = int(np.prod(detector.feature_shape_))
        if meta.get("feature_names_in") is not None:
            detector.feature_names_in_ = np.asarray(meta["feature_names_in"], dtype=object)
        detector._scaling = validation.check_choice("scaling", meta["scaling"], SCALINGS)
        detector._scaler = (
            Standardizer(np.asarray(tree["scaler"]["mean"]), np.asarray(tree["scaler"]["std"]))
            if "scaler" in tree
            else None
        )
        backend_type = detectors.backend_class(detector.method)
        detector.backend_ = backend_type.restore(
            detector.options_, detector.feature_shape_, meta, tree
        )
        detector.n_components_ = meta["n_components"]
        detector.history_ = None
        detector._training_inputs = None
        scores = np.asarray(tree["training_scores"], np.float64)
        detector.decision_scores_ = scores
        detector.threshold_ = float(meta["threshold_"])
        detector.labels_ = (scores > detector.threshold_).astype(np.int64)
        return detector


# inspect.signature(AnomalyDetector), which scikit-learn's checks read, is __init__'s (without
# self), not _RenamedKeywords.__call__'s (*args, **kwargs).
AnomalyDetector.__signature__ = inspect.signature(AnomalyDetector.__init__).replace(
    parameters=list(inspect.signature(AnomalyDetector.__init__).parameters.values())[1:]
)


def _jsonable(value: Any) -> Any:
    """A parameter as JSON: tuples as lists, NumPy scalars as Python numbers."""
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value
