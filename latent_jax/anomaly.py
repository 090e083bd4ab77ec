r"""Anomaly detection with latent-variable models: fit on normal data, score, threshold.

:class:`AnomalyDetector` follows the conventions of scikit-learn's outlier detectors and PyOD:
``fit(X)`` on (mostly) normal data, then

* ``score_samples(X)``: one anomaly score per example, **higher means more anomalous**;
* ``decision_function(X)``: ``score_samples(X) - threshold_``, positive for the examples
  ``predict`` flags (so also higher = more anomalous; note that scikit-learn's own
  ``decision_function`` has the opposite sign);
* ``predict(X)``: 1 for an anomaly (``score > threshold_``), 0 for a normal example;
* ``threshold_``: the ``1 - contamination`` quantile of the training scores (PyOD's rule:
  ``predict`` flags the ``contamination`` fraction of the training data), or the explicit
  ``threshold`` when one is given.

Backends (``method``) and their scores:

* ``"pca"``: with ``score="reconstruction"`` (the default) the squared reconstruction error
  :math:`\lVert x - \hat x\rVert^2` after projecting onto the first ``n_components``
  principal axes (the Q or SPE statistic); with ``score="hotelling"`` Hotelling's
  :math:`T^2 = \sum_k z_k^2 / \lambda_k`, the Mahalanobis distance inside that subspace
  (:math:`z_k` the principal coordinates, :math:`\lambda_k` their variances), which flags
  examples that are unusual *within* the normal data's main directions. The two are the
  classical pair of PCA monitoring statistics (Jackson & Mudholkar, 1979);
* ``"ppca"``: negative log-likelihood :math:`-\log \mathcal{N}(x; \bar x, WW^\top +
  \sigma^2 I)` under the closed-form probabilistic PCA;
* ``"autoencoder"``: mean squared reconstruction error of an autoencoder (MLP, or
  convolutional for images);
* ``"vae"``: with ``score="elbo"`` the negative ELBO :math:`-\mathbb{E}_q[\log p(x|z)] +
  D_{KL}(q(z|x)\,\|\,p(z))` (the KL in closed form, the expectation over ``n_samples``
  draws); with ``score="reconstruction_probability"`` (An & Cho, 2015) the negative log of
  the reconstruction probability :math:`\frac1L\sum_l p(x|z_l)`, :math:`z_l \sim q(z|x)`.
  The draws use the same standard-normal noise for every example (fixed by ``seed``), so an
  example's score does not depend on the other rows of ``X``.

``X`` is an array of shape (n_samples, n_features) or of images, (n_samples, height, width)
or (n_samples, height, width, channels). Neural backends use MLP models for feature vectors
and images smaller than 32x32 pixels (digits, the 25x25 faces: a few hundred inputs) and
convolutional models for larger images (``architecture="auto"``). Inputs are standardized
with statistics of the training data (per feature for tables, one mean and standard deviation
for images).

A fitted detector saves to a checkpoint directory (arrays and a JSON config, no pickle) and
loads back with identical scores.

Example:
    >>> import numpy as np
    >>> x = np.random.default_rng(0).normal(size=(200, 5))
    >>> detector = AnomalyDetector("pca", contamination=0.1, n_components=2).fit(x)
    >>> int(detector.predict(x).sum())
    20
"""

from __future__ import annotations

import functools
import numbers
import os
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from sklearn.exceptions import NotFittedError

from latent_jax import checkpoint as ckpt
from latent_jax import metrics, validation
from latent_jax import pca as pca_lib
from latent_jax.data import Standardizer, check_finite_array
from latent_jax.gaussian import kl_standard_normal
from latent_jax.models.conv import ConvSpec
from latent_jax.models.factory import ARCHITECTURES as ARCHITECTURES
from latent_jax.models.factory import CONV_MIN_SIZE as CONV_MIN_SIZE
from latent_jax.models.factory import model_for_data
from latent_jax.models.factory import resolve_architecture as _resolve_architecture
from latent_jax.models.inference import apply_inference
from latent_jax.objectives import autoencoder_objective, vae_objective
from latent_jax.schedules import constant
from latent_jax.train import TrainConfig, fit
from latent_jax.train.config import LR_SCHEDULES

__all__ = ["ARCHITECTURES", "METHODS", "PCA_SCORES", "VAE_SCORES", "AnomalyDetector"]

METHODS = ("pca", "ppca", "autoencoder", "vae")
PCA_SCORES = ("reconstruction", "hotelling")
VAE_SCORES = ("elbo", "reconstruction_probability")
# The score of each method when none is given.
DEFAULT_SCORES = {"pca": "reconstruction", "vae": "elbo"}
SCALINGS = ("auto", "feature", "global", "none")
VAE_LIKELIHOODS = ("gaussian", "bernoulli")
# Rows scored per compiled call (bounds memory; the result does not depend on it).
SCORE_BATCH = 1024
CHECKPOINT_KIND = "latent_jax.anomaly"

DEFAULT_OPTIONS: dict[str, Any] = {
    # pca / ppca: an int, a fraction of the variance to keep (the fewest components that
    # explain at least that much), or "kaiser" (the eigenvalues above their mean, over the
    # min(n - 1, d) a sample of n rows can make non-zero).
    "n_components": 0.9,
    # autoencoder / vae
    "architecture": "auto",
    "hidden_dims": (128, 64),
    "channels": (16, 32),
    "latent_dim": 8,
    "epochs": 100,
    "batch_size": 32,
    "learning_rate": 1e-3,
    # the learning rate over the run (TrainConfig.lr_schedule) and gradient clipping
    "lr_schedule": "constant",
    "clip_norm": None,
    # pca: "reconstruction" | "hotelling"; vae: "elbo" | "reconstruction_probability";
    # None: the method's default.
    "score": None,
    "likelihood": "gaussian",
    "obs_logvar": 0.0,
    "beta": 1.0,
    "n_samples": 16,
    # all
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


def _check_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """Every option validated and filled with its default."""
    unknown = sorted(set(options) - set(DEFAULT_OPTIONS))
    if unknown:
        raise TypeError(
            f"unknown AnomalyDetector option(s) {unknown}; the options are "
            f"{sorted(DEFAULT_OPTIONS)}"
        )
    out = {**DEFAULT_OPTIONS, **options}
    n = out["n_components"]
    if isinstance(n, str):
        validation.check_choice("n_components", n, ("kaiser",))
    elif isinstance(n, numbers.Integral) and not isinstance(n, bool):
        validation.check_int("n_components", n, 1)
    else:
        n = validation.check_real("n_components", n, positive=True)
        if n >= 1.0:
            raise ValueError(
                f"n_components must be an int >= 1, a variance fraction in (0, 1) or "
                f"'kaiser', got n_components={n}"
            )
    validation.check_choice("architecture", out["architecture"], ARCHITECTURES)
    out["hidden_dims"] = _check_widths("hidden_dims", out["hidden_dims"])
    out["channels"] = _check_widths("channels", out["channels"])
    for name in ("latent_dim", "epochs", "batch_size", "n_samples"):
        validation.check_int(name, out[name], 1)
    validation.check_int("seed", out["seed"], 0)
    validation.check_real("learning_rate", out["learning_rate"], positive=True)
    validation.check_choice("lr_schedule", out["lr_schedule"], LR_SCHEDULES)
    if out["clip_norm"] is not None:
        validation.check_real("clip_norm", out["clip_norm"], positive=True)
    validation.check_real("beta", out["beta"], positive=True)
    validation.check_real("obs_logvar", out["obs_logvar"])
    validation.check_choice("likelihood", out["likelihood"], VAE_LIKELIHOODS)
    validation.check_choice("scaling", out["scaling"], SCALINGS)
    if not isinstance(out["quiet"], bool):
        raise TypeError(f"quiet must be a bool, got {out['quiet']!r}")
    return out


def _check_score(method: str, score: Any) -> str | None:
    """The method's score: ``score`` checked against the method's choices, or its default."""
    choices = {"pca": PCA_SCORES, "vae": VAE_SCORES}.get(method)
    if score is None:
        return DEFAULT_SCORES.get(method)
    if choices is None:
        raise ValueError(f"method={method!r} has one score; the score option must be None")
    return validation.check_choice("score", score, choices)


def _check_contamination(contamination: Any, threshold: Any) -> None:
    if contamination is None:
        if threshold is None:
            raise ValueError("contamination=None needs an explicit threshold")
        return
    value = validation.check_real("contamination", contamination)
    if not 0.0 < value <= 0.5:
        raise ValueError(f"contamination must be in (0, 0.5], got contamination={contamination}")


def _as_examples(X: Any, name: str) -> np.ndarray:
    """``X`` validated: float32 of shape (n, features) or (n, height, width, channels)."""
    if X is None:
        raise TypeError(f"{name} must be an array of shape (n_samples, ...), got None")
    array = check_finite_array(X, name, min_ndim=2)
    if array.ndim > 4:
        raise ValueError(
            f"{name} must have shape (n_samples, n_features), (n_samples, height, width) or "
            f"(n_samples, height, width, channels), got shape {array.shape}"
        )
    if array.ndim == 3:
        array = array[..., None]
    return np.asarray(array, np.float32)


@functools.partial(jax.jit, static_argnames=("model",))
def _reconstruction_mse(variables: Any, x: jax.Array, *, model: Any) -> jax.Array:
    reconstruction = apply_inference(model, variables, x)
    error = jnp.square(reconstruction - x).reshape(x.shape[0], -1)
    return jnp.mean(error, axis=-1)


@functools.partial(jax.jit, static_argnames=("model", "kind", "likelihood"))
def _vae_scores(
    variables: Any,
    x: jax.Array,
    eps: jax.Array,
    obs_logvar: jax.Array,
    *,
    model: Any,
    kind: str,
    likelihood: str,
) -> jax.Array:
    """Negative ELBO or negative log reconstruction probability of each row of ``x``.

    ``eps`` of shape (n_samples, latent_dim) is shared by all rows: row ``i``'s draws are
    ``mean_i + exp(logvar_i / 2) * eps``.
    """
    mean, logvar = apply_inference(model, variables, x, method="encode")

    def log_likelihood(noise: jax.Array) -> jax.Array:
        z = mean + jnp.exp(0.5 * logvar) * noise[None, :]
        output = apply_inference(model, variables, z, method="decode")
        return metrics.log_likelihood(x, output, likelihood, obs_logvar)

    log_p = jax.lax.map(log_likelihood, eps)  # (n_samples, n)
    if kind == "elbo":
        return kl_standard_normal(mean, logvar) - jnp.mean(log_p, axis=0)
    return -(jax.scipy.special.logsumexp(log_p, axis=0) - jnp.log(eps.shape[0]))


class AnomalyDetector:
    """Reconstruction- and likelihood-based anomaly detector (see the module docstring).

    Args:
        method: ``"pca"``, ``"ppca"``, ``"autoencoder"`` or ``"vae"``.
        contamination: the expected fraction of anomalies in the training data, in (0, 0.5];
            sets ``threshold_`` to the ``1 - contamination`` quantile of the training scores.
            May be ``None`` when ``threshold`` is given.
        threshold: an explicit score threshold; overrides ``contamination`` for ``predict``.
        **options: backend settings, defaults in :data:`DEFAULT_OPTIONS`:
            ``n_components`` (pca/ppca: int, a variance fraction in (0, 1), default 0.9, or
            ``"kaiser"``); ``score`` (pca: ``"reconstruction"`` or ``"hotelling"``);
            ``architecture`` (``"auto"``, ``"mlp"``, ``"conv"``), ``hidden_dims`` (MLP
            widths; the conv VAE's dense width is the first), ``channels`` (conv stages),
            ``latent_dim``, ``epochs``, ``batch_size``, ``learning_rate``, ``lr_schedule``
            (:class:`~latent_jax.train.TrainConfig`'s names), ``clip_norm`` (autoencoder/vae);
            ``score`` (vae: ``"elbo"`` or ``"reconstruction_probability"``), ``likelihood``
            (``"gaussian"`` with fixed log-variance ``obs_logvar``, or ``"bernoulli"`` for
            data in [0, 1] with ``scaling="none"``), ``beta`` (the KL weight in training),
            ``n_samples`` (draws per score) (vae); ``scaling`` (``"auto"``, ``"feature"``,
            ``"global"``, ``"none"``), ``seed``, ``quiet`` (no progress bar).

    Attributes (after ``fit``):
        threshold_: float, the score above which ``predict`` flags an example.
        training_scores_: array of shape (n_samples,), the scores of the training data.
        n_features_in_: int, the number of features per example (pixels times channels).
        feature_shape_: tuple, the shape of one example as stored ((features,) or
            (height, width, channels)).
        n_components_: int, the principal components used (pca/ppca), else ``None``.
        options_: dict, every option resolved.
        history_: the training :class:`~latent_jax.train.History` (autoencoder/vae), else
            ``None``.
    """

    def __init__(
        self,
        method: str = "pca",
        contamination: float | None = 0.1,
        *,
        threshold: float | None = None,
        **options: Any,
    ):
        self.method = validation.check_choice("method", method, METHODS)
        if threshold is not None:
            threshold = validation.check_real("threshold", threshold)
        _check_contamination(contamination, threshold)
        self.contamination = contamination
        self.threshold = threshold
        self.options = _check_options(options)
        self.options["score"] = _check_score(self.method, self.options["score"])
        self._fitted = False

    def __repr__(self) -> str:
        defaults = {**DEFAULT_OPTIONS, "score": DEFAULT_SCORES.get(self.method)}
        changed = {k: v for k, v in self.options.items() if v != defaults[k]}
        extra = "".join(f", {k}={v!r}" for k, v in changed.items())
        if self.threshold is not None:
            extra = f", threshold={self.threshold!r}{extra}"
        return f"AnomalyDetector({self.method!r}, contamination={self.contamination!r}{extra})"

    # ------------------------------------------------------------------ fitting

    def fit(
        self,
        X: Any,
        y: Any = None,
        *,
        checkpoint_dir: str | os.PathLike | None = None,
        callbacks: Sequence[Any] = (),
    ) -> AnomalyDetector:
        """Fits the backend on ``X`` (mostly normal data) and sets ``threshold_``.

        Args:
            X: array of shape (n_samples, n_features), (n_samples, height, width) or
                (n_samples, height, width, channels); finite, at least 2 rows.
            y: ignored (scikit-learn convention).
            checkpoint_dir: autoencoder/vae only: where the training run writes its
                checkpoints (:func:`latent_jax.train.fit`'s format, which
                :func:`latent_jax.load_run` reloads as the network alone).
            callbacks: autoencoder/vae only: per-epoch callbacks of the training run (e.g.
                :class:`~latent_jax.train.callbacks.HistoryCSV`).

        Returns:
            ``self``.

        Raises:
            ValueError: for NaN/Inf, empty or badly shaped ``X``, options that do not fit the
                data, or training arguments for pca/ppca.
        """
        del y
        if self.method in ("pca", "ppca") and (checkpoint_dir is not None or callbacks):
            raise ValueError(
                f"checkpoint_dir and callbacks are for the trained methods (autoencoder, vae), "
                f"not method={self.method!r}"
            )
        x = _as_examples(X, "X")
        if len(x) < 2:
            raise ValueError(f"X must have at least 2 rows to fit, got {len(x)}")
        options = self.options
        self.feature_shape_ = tuple(int(d) for d in x.shape[1:])
        self.n_features_in_ = int(np.prod(self.feature_shape_))
        self._scaling = self._resolve_scaling(x)
        self._scaler = self._fit_scaler(x)
        xs = self._transform(x)
        self.n_components_ = None
        self.history_ = None
        if self.method in ("pca", "ppca"):
            self._fit_pca(xs.reshape(len(xs), -1))
        else:
            self._architecture = self._resolve_architecture()
            self._model = self._build_model()
            self._fit_network(xs, checkpoint_dir, callbacks)
        if self.method == "vae":
            key = jax.random.fold_in(jax.random.key(options["seed"]), 1)
            self._eps = np.asarray(
                jax.random.normal(key, (options["n_samples"], options["latent_dim"]))
            )
        self._fitted = True
        self._training_inputs = xs  # kept for rescored(); not saved
        self._set_threshold(self._score(xs))
        return self

    def fit_predict(self, X: Any, y: Any = None) -> np.ndarray:
        """``fit(X)`` then the labels of the training data: int array of shape (n_samples,)."""
        return self.fit(X, y).predict(X)

    def _resolve_scaling(self, x: np.ndarray) -> str:
        scaling = self.options["scaling"]
        bernoulli = self.method == "vae" and self.options["likelihood"] == "bernoulli"
        if scaling == "auto":
            scaling = "none" if bernoulli else ("feature" if x.ndim == 2 else "global")
        if bernoulli and (scaling != "none" or x.min() < 0 or x.max() > 1):
            raise ValueError(
                "likelihood='bernoulli' needs data in [0, 1] and scaling='none' (or 'auto'), "
                f"got scaling={scaling!r} and data in [{x.min():.3g}, {x.max():.3g}]"
            )
        return scaling

    def _fit_scaler(self, x: np.ndarray) -> Standardizer | None:
        if self._scaling == "none":
            return None
        return Standardizer.fit(x, per_feature=self._scaling == "feature")

    def _transform(self, x: np.ndarray) -> np.ndarray:
        return x if self._scaler is None else self._scaler.transform(x)

    def _fit_pca(self, flat: np.ndarray) -> None:
        n, d = flat.shape
        # PPCA needs discarded directions for a positive noise variance.
        limit = min(n, d) - (1 if self.method == "ppca" else 0)
        if limit < 1:
            raise ValueError(f"method={self.method!r} needs at least 2 features, got {d}")
        wanted = self.options["n_components"]
        if isinstance(wanted, str | float):
            eigenvalues = np.asarray(pca_lib.fit_pca(flat, 1).eigenvalues, np.float64)
            if wanted == "kaiser":
                # Kaiser's rule: the components with more than the average variance. The
                # average is over the n - 1 eigenvalues a centred sample can make non-zero
                # when n <= d: the d - n + 1 structural zeros say nothing about the data.
                spectrum = eigenvalues[: min(n - 1, d)]
                q = max(1, int(np.sum(spectrum > spectrum.mean())))
            else:
                ratios = np.cumsum(eigenvalues) / max(eigenvalues.sum(), np.finfo(np.float64).tiny)
                q = int(np.searchsorted(ratios, wanted - 1e-12) + 1)
        else:
            q = wanted
            if q > limit:
                raise ValueError(
                    f"n_components={q} must be <= {limit} for method={self.method!r} with "
                    f"{n} samples and {d} features"
                )
        q = min(q, limit)
        fitter = pca_lib.fit_ppca if self.method == "ppca" else pca_lib.fit_pca
        self._pca = fitter(flat, q)
        self.n_components_ = q

    def _resolve_architecture(self) -> str:
        return _resolve_architecture(self.feature_shape_, self.options["architecture"])

    def _build_model(self) -> Any:
        o = self.options
        kind = "vae" if self.method == "vae" else "autoencoder"
        conv_options: dict[str, Any]
        if kind == "autoencoder":
            # Fixed unpooling switches: the encoder's recorded maxima would hand the decoder
            # spatial detail of every input, anomalies included.
            conv_options = {"use_switches": False}
        else:
            # Strided convolutions down, transposed ones (2h + 1 each) up and a crop.
            conv_options = {
                "hidden_dim": o["hidden_dims"][0],
                "encoder_convs": tuple(ConvSpec(c, 3, 2, 1) for c in o["channels"]),
                "decoder_convs": tuple(ConvSpec(c, 3, 2, 0) for c in o["channels"][::-1][1:]),
                "output_conv": (3, 2, 0),
            }
        return model_for_data(
            self.feature_shape_,
            kind=kind,
            architecture=self._architecture,
            latent_dim=o["latent_dim"],
            hidden_dims=o["hidden_dims"],
            channels=o["channels"],
            conv_options=conv_options,
        ).model

    def _model_input(self, xs: np.ndarray) -> np.ndarray:
        return xs.reshape(len(xs), -1) if self._architecture == "mlp" else xs

    def train_config(self, checkpoint_dir: str | os.PathLike | None = None) -> TrainConfig:
        """The :class:`~latent_jax.train.TrainConfig` that ``fit`` trains the network with.

        Args:
            checkpoint_dir: as for :meth:`fit`.

        Raises:
            ValueError: for pca/ppca, which train nothing.
        """
        if self.method in ("pca", "ppca"):
            raise ValueError(f"method={self.method!r} trains no network")
        o = self.options
        return TrainConfig(
            learning_rate=o["learning_rate"],
            batch_size=o["batch_size"],
            epochs=o["epochs"],
            seed=o["seed"],
            quiet=o["quiet"],
            log_every=0,
            lr_schedule=o["lr_schedule"],
            clip_norm=o["clip_norm"],
            checkpoint_dir=checkpoint_dir,
        )

    @property
    def normalizer_(self) -> Standardizer | None:
        """The standardization fitted on the training data (``None`` for ``scaling="none"``)."""
        self._check_fitted("normalizer_")
        return self._scaler

    def _fit_network(
        self, xs: np.ndarray, checkpoint_dir: str | os.PathLike | None, callbacks: Sequence[Any]
    ) -> None:
        o = self.options
        if self.method == "vae":
            objective = vae_objective(
                self._model,
                constant(o["beta"]),
                likelihood=o["likelihood"],
                obs_logvar=o["obs_logvar"],
            )
        else:
            objective = autoencoder_objective(self._model)
        config = self.train_config(checkpoint_dir)
        state, self.history_ = fit(
            objective,
            self._model_input(xs),
            None,
            config,
            jax.random.key(o["seed"]),
            callbacks=callbacks,
        )
        self._variables = jax.device_get(state.variables)

    def _set_threshold(self, training_scores: np.ndarray) -> None:
        self.training_scores_ = training_scores
        if self.threshold is not None:
            self.threshold_ = float(self.threshold)
        else:
            self.threshold_ = float(np.quantile(training_scores, 1.0 - self.contamination))

    # ------------------------------------------------------------------ scoring

    def _check_fitted(self, what: str) -> None:
        if not self._fitted:
            raise NotFittedError(
                f"this AnomalyDetector is not fitted yet: call fit(X) before {what}()"
            )

    def _check_input(self, X: Any) -> np.ndarray:
        x = _as_examples(X, "X")
        if tuple(x.shape[1:]) != self.feature_shape_:
            given = np.shape(X)[1:]
            raise ValueError(
                f"X has examples of shape {given} ({int(np.prod(given))} features) but the "
                f"detector was fitted on examples of shape {self.feature_shape_} "
                f"({self.n_features_in_} features)"
            )
        return x

    def _score(self, xs: np.ndarray) -> np.ndarray:
        """Scores of standardized examples, computed in blocks of :data:`SCORE_BATCH` rows."""
        blocks = [
            self._score_block(xs[i : i + SCORE_BATCH]) for i in range(0, len(xs), SCORE_BATCH)
        ]
        return np.concatenate(blocks).astype(np.float64)

    def _score_block(self, xs: np.ndarray) -> np.ndarray:
        if self.method == "pca":
            flat = xs.reshape(len(xs), -1)
            if self.options["score"] == "hotelling":
                whitened = pca_lib.encode(self._pca, flat, whiten=True)
                return np.sum(np.square(np.asarray(whitened, np.float64)), axis=1)
            return np.asarray(pca_lib.reconstruction_error(self._pca, flat))
        if self.method == "ppca":
            flat = xs.reshape(len(xs), -1)
            return -np.asarray(pca_lib.ppca_log_likelihood(self._pca, flat))
        x = jnp.asarray(self._model_input(xs))
        if self.method == "autoencoder":
            return np.asarray(_reconstruction_mse(self._variables, x, model=self._model))
        return np.asarray(
            _vae_scores(
                self._variables,
                x,
                jnp.asarray(self._eps),
                jnp.asarray(self.options["obs_logvar"], jnp.float32),
                model=self._model,
                kind=self.options["score"],
                likelihood=self.options["likelihood"],
            )
        )

    def score_samples(self, X: Any) -> np.ndarray:
        """Anomaly scores, higher = more anomalous.

        Args:
            X: array of the fitted example shape, (n_samples, ...).

        Returns:
            float64 array of shape (n_samples,).

        Raises:
            sklearn.exceptions.NotFittedError: before ``fit``.
            ValueError: for NaN/Inf or a different example shape than ``fit`` saw.
        """
        self._check_fitted("score_samples")
        return self._score(self._transform(self._check_input(X)))

    def decision_function(self, X: Any) -> np.ndarray:
        """``score_samples(X) - threshold_``: positive for the examples ``predict`` flags.

        Returns:
            float64 array of shape (n_samples,); higher = more anomalous.
        """
        self._check_fitted("decision_function")
        return self.score_samples(X) - self.threshold_

    def predict(self, X: Any) -> np.ndarray:
        """Labels: 1 for an anomaly (``score > threshold_``), 0 for a normal example.

        Returns:
            int64 array of shape (n_samples,).
        """
        self._check_fitted("predict")
        return (self.score_samples(X) > self.threshold_).astype(np.int64)

    def rescored(self, score: str) -> AnomalyDetector:
        """The same fitted PCA or VAE scoring with another ``score``; ``threshold_`` recomputed.

        The fitted model is shared, not copied; nothing is refitted.

        Args:
            score: one of :data:`PCA_SCORES` (pca) or :data:`VAE_SCORES` (vae).

        Returns:
            A new fitted :class:`AnomalyDetector`.
        """
        self._check_fitted("rescored")
        if self.method not in DEFAULT_SCORES:
            raise ValueError(f"rescored() applies to method='pca' or 'vae', not {self.method!r}")
        score = _check_score(self.method, score)
        other = AnomalyDetector.__new__(AnomalyDetector)
        other.__dict__.update(self.__dict__)
        other.options = {**self.options, "score": score}
        other._set_threshold(other._score(self._transform_training()))
        return other

    def _transform_training(self) -> np.ndarray:
        if getattr(self, "_training_inputs", None) is None:
            raise ValueError("rescored() needs the training data, which a loaded detector lacks")
        return self._training_inputs

    # ------------------------------------------------------------------ persistence

    def save(self, directory: str | os.PathLike) -> str:
        """Writes the fitted detector to a checkpoint directory (arrays + JSON, no pickle).

        Args:
            directory: created if needed; a previous detector there is replaced.

        Returns:
            The manifest's path.
        """
        self._check_fitted("save")
        tree: dict[str, Any] = {"training_scores": np.asarray(self.training_scores_)}
        if self._scaler is not None:
            tree["scaler"] = {
                "mean": np.asarray(self._scaler.mean),
                "std": np.asarray(self._scaler.std),
            }
        if self.method in ("pca", "ppca"):
            state = self._pca
            tree["pca"] = {
                name: np.asarray(getattr(state, name))
                for name in state._fields
                if name not in ("n_samples", "ddof")
            }
        else:
            tree["variables"] = jax.tree.map(np.asarray, dict(self._variables))
        if self.method == "vae":
            tree["eps"] = np.asarray(self._eps)
        options = {k: list(v) if isinstance(v, tuple) else v for k, v in self.options.items()}
        metadata = {
            "kind": CHECKPOINT_KIND,
            "method": self.method,
            "contamination": self.contamination,
            "threshold": self.threshold,
            "threshold_": self.threshold_,
            "options": options,
            "feature_shape": list(self.feature_shape_),
            "scaling": self._scaling,
            "architecture": getattr(self, "_architecture", None),
            "n_components": self.n_components_,
            "pca": (
                {"n_samples": int(self._pca.n_samples), "ddof": int(self._pca.ddof)}
                if self.method in ("pca", "ppca")
                else None
            ),
        }
        return ckpt.save_checkpoint(directory, tree, epoch=0, metadata=metadata, keep=1)

    @classmethod
    def load(cls, path: str | os.PathLike) -> AnomalyDetector:
        """Loads a detector written by :meth:`save`.

        Args:
            path: the checkpoint directory (or its manifest).

        Returns:
            The fitted detector; its scores equal the saved detector's.

        Raises:
            FileNotFoundError: if there is no checkpoint at ``path``.
            latent_jax.checkpoint.CheckpointError: for a corrupt checkpoint or one that does
                not hold a detector (a file from elsewhere), naming the file.
        """
        loaded = ckpt.load_checkpoint(path)
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
        try:
            return cls._from_checkpoint(meta, loaded.tree)
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise ckpt.CheckpointError(
                f"checkpoint {loaded.path} holds no AnomalyDetector this version can read: "
                f"{type(err).__name__}: {err}"
            ) from err

    @classmethod
    def _from_checkpoint(cls, meta: Mapping[str, Any], tree: Mapping[str, Any]) -> AnomalyDetector:
        """The detector that a checkpoint's metadata and arrays describe (see :meth:`load`)."""
        detector = cls(
            meta["method"], meta["contamination"], threshold=meta["threshold"], **meta["options"]
        )
        detector.feature_shape_ = tuple(int(d) for d in meta["feature_shape"])
        detector.n_features_in_ = int(np.prod(detector.feature_shape_))
        detector._scaling = validation.check_choice("scaling", meta["scaling"], SCALINGS)
        detector._scaler = (
            Standardizer(np.asarray(tree["scaler"]["mean"]), np.asarray(tree["scaler"]["std"]))
            if "scaler" in tree
            else None
        )
        detector.n_components_ = meta["n_components"]
        detector.history_ = None
        if detector.method in ("pca", "ppca"):
            arrays = {k: jnp.asarray(v) for k, v in tree["pca"].items()}
            detector._pca = pca_lib.PCAState(**arrays, **meta["pca"])
        else:
            detector._architecture = validation.check_choice(
                "architecture", meta["architecture"], ("mlp", "conv")
            )
            detector._model = detector._build_model()
            detector._variables = tree["variables"]
        if detector.method == "vae":
            detector._eps = np.asarray(tree["eps"])
        detector._training_inputs = None
        detector.training_scores_ = np.asarray(tree["training_scores"], np.float64)
        detector.threshold_ = float(meta["threshold_"])
        detector._fitted = True
        return detector
