"""Generation from a learned latent space: prior samples, reconstructions, interpolations and
latent traversals; and the generation score of generated images (:class:`GenerationScorer`).

Every function is pure: it takes a linen model with ``encode`` and ``decode`` methods and its
variables (``{"params": ..., "batch_stats": ...}``), and randomness only through an explicit
key. They trace under ``jax.jit`` with the model and the integer arguments static, e.g.
``jax.jit(sample_prior, static_argnums=(1, 3, 4))``.

Model contract:
    * ``encode(x)`` returns the posterior ``(mean, logvar)`` of a VAE (any tuple whose first
      item is the mean) or the code of a plain autoencoder; the code/mean has shape
      (batch, latent_dim).
    * ``decode(z)`` maps (batch, latent_dim) to (batch, *image_shape).
    * Inference mode: each method runs through :func:`latent_jax.models.inference.predict`,
      which passes ``train=False`` (or ``deterministic=True``, ... see
      :data:`~latent_jax.models.inference.INFERENCE_FLAGS`) when its signature has that
      parameter, so models with BatchNorm use their running statistics and models without it
      need nothing. ``apply_kwargs`` adds or overrides keyword arguments of both calls.

Outputs are in the model's (normalized) units; ``Standardizer.inverse_transform`` gives pixel
values for display, as the tutorial's ``sample * std + mean``.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier
from threadpoolctl import threadpool_limits

from latent_jax import validation
from latent_jax.models.inference import INFERENCE_FLAGS as INFERENCE_FLAGS
from latent_jax.models.inference import inference_kwargs as inference_kwargs
from latent_jax.models.inference import predict
from latent_jax.xla_options import at_top_level, default_options

Array = jax.Array

INTERPOLATIONS = ("linear", "slerp")
# Above this |cos(angle)| (angles under ~0.08 degrees) slerp falls back to a straight line; the
# two paths differ there by a relative ~angle**2 / 8 < 3e-7.
_PARALLEL_COSINE = 1.0 - 1e-6


def encode_mean(
    model: Any,
    variables: Any,
    x: Array,
    *,
    apply_kwargs: Mapping[str, Any] | None = None,
    repeated: bool | None = None,
) -> Array:
    """The posterior mean (or the autoencoder's code) of a batch.

    Args:
        model: a linen module with ``encode``.
        variables: its variables.
        x: array of shape (batch, *image_shape).
        apply_kwargs: extra keyword arguments of ``encode`` (see the module docstring).
        repeated: True when the call is one of many of the same shape (a metric's batches):
            compiled to run fast rather than to compile fast (see ``inference.predict``).

    Returns:
        Array of shape (batch, latent_dim).
    """
    out = predict(
        model, variables, x, method="encode", apply_kwargs=apply_kwargs, repeated=repeated
    )
    return out[0] if isinstance(out, tuple | list) else out


def decode(
    model: Any, variables: Any, z: Array, *, apply_kwargs: Mapping[str, Any] | None = None
) -> Array:
    """Decodes latent codes.

    Args:
        model: a linen module with ``decode``.
        variables: its variables.
        z: array of shape (batch, latent_dim).
        apply_kwargs: extra keyword arguments of ``decode`` (see the module docstring).

    Returns:
        Array of shape (batch, *image_shape).
    """
    return predict(model, variables, z, method="decode", apply_kwargs=apply_kwargs)


PRIOR_METHOD = "sample_latents"


def sample_prior(
    key: Array,
    model: Any,
    variables: Any,
    n: int,
    latent_dim: int | None = None,
    *,
    apply_kwargs: Mapping[str, Any] | None = None,
    sampler: Any = None,
) -> Array:
    """Decodes ``n`` draws from the model's prior (the tutorial's ``generate_images``), or from
    an ex-post ``sampler`` of its latent space.

    The prior belongs to the model: a model with a ``sample_latents(key, n)`` method
    (:data:`PRIOR_METHOD`, called through ``model.apply`` so it may use the model's
    parameters, as a learned prior does) draws its own latents; any other model's prior is
    the standard normal ``z = jax.random.normal(key, (n, latent_dim))``. A ``sampler``
    replaces either: ``z = sampler.sample(key, n)`` (a density fitted to the codes, such as
    :class:`latent_jax.samplers.GaussianMixtureSampler`). A sampler with a ``decode_method``
    other than ``"decode"`` draws what that method of the model decodes instead: a VQ-VAE's
    grids of code indices (:class:`latent_jax.samplers.PixelCNNPrior`, decoded by
    ``VQVAE.decode_indices``), checked against the model by the sampler's ``check_model``.

    Args:
        key: PRNG key of the draw.
        model: a linen module with ``decode``.
        variables: its variables.
        n: number of images.
        latent_dim: size of the latent space; default the model's ``latent_dim`` field.
        apply_kwargs: extra keyword arguments of ``decode``.
        sampler: an object with ``latent_dim`` and ``sample(key, n) -> (n, latent_dim)``
            (:mod:`latent_jax.samplers`), or ``None`` for the prior; or one with
            ``decode_method`` and ``sample(key, n)`` (whose draws that method decodes).

    Returns:
        Array of shape (n, *image_shape), in the model's units.

    Raises:
        ValueError: for ``n`` below 1, no ``latent_dim`` to draw in, or a sampler whose
            ``latent_dim`` is not the model's (or ``latent_dim``'s).
        TypeError: for a sampler without ``sample`` and ``latent_dim``.
    """
    n = validation.check_int("n", n, 1)
    if sampler is not None and getattr(sampler, "decode_method", "decode") != "decode":
        codes = _code_grid_draw(key, model, n, sampler)
        return predict(
            model, variables, codes, method=sampler.decode_method, apply_kwargs=apply_kwargs
        )
    if sampler is not None:
        z = _sampler_draw(key, model, n, latent_dim, sampler)
        return decode(model, variables, z, apply_kwargs=apply_kwargs)
    if callable(getattr(type(model), PRIOR_METHOD, None)):
        z = model.apply(variables, key, n, method=PRIOR_METHOD)
        return decode(model, variables, z, apply_kwargs=apply_kwargs)
    if latent_dim is None:
        latent_dim = getattr(model, "latent_dim", None)
        if latent_dim is None:
            raise ValueError(
                f"latent_dim is needed: {type(model).__name__} has no latent_dim field and no "
                f"{PRIOR_METHOD} method"
            )
    latent_dim = validation.check_int("latent_dim", latent_dim, 1)
    draw = _standard_normal() if at_top_level() else jax.random.normal
    z = draw(key, (n, latent_dim))
    return decode(model, variables, z, apply_kwargs=apply_kwargs)


def _sampler_draw(key: Array, model: Any, n: int, latent_dim: int | None, sampler: Any) -> Array:
    """``sampler.sample(key, n)``, its latent dimension checked against the model's."""
    if not callable(getattr(sampler, "sample", None)) or not hasattr(sampler, "latent_dim"):
        raise TypeError(
            "sampler must have latent_dim and sample(key, n) (latent_jax.samplers), got "
            f"{type(sampler).__name__}"
        )
    if latent_dim is None:
        latent_dim = getattr(model, "latent_dim", None)
    else:
        latent_dim = validation.check_int("latent_dim", latent_dim, 1)
    if latent_dim is not None and sampler.latent_dim != latent_dim:
        raise ValueError(
            f"the sampler draws codes of latent_dim {sampler.latent_dim} but "
            f"{type(model).__name__} decodes latent_dim {latent_dim}: fit the sampler on this "
            "model's codes"
        )
    z = sampler.sample(key, n)
    if tuple(jnp.shape(z)) != (n, sampler.latent_dim):
        raise ValueError(
            f"sampler.sample(key, {n}) must return shape ({n}, {sampler.latent_dim}), got "
            f"{tuple(jnp.shape(z))}"
        )
    return z


def _code_grid_draw(key: Array, model: Any, n: int, sampler: Any) -> Array:
    """``sampler.sample(key, n)`` for a sampler whose draws the model's
    ``sampler.decode_method`` decodes (a VQ-VAE's code grids), checked against the model."""
    method = sampler.decode_method
    if not callable(getattr(sampler, "sample", None)):
        raise TypeError(f"sampler must have sample(key, n), got {type(sampler).__name__}")
    if not isinstance(method, str) or not callable(getattr(type(model), method, None)):
        raise TypeError(
            f"the sampler's draws are decoded by {method!r}, which {type(model).__name__} "
            "does not have"
        )
    check = getattr(sampler, "check_model", None)
    if callable(check):
        check(model)
    codes = sampler.sample(key, n)
    if jnp.ndim(codes) < 1 or jnp.shape(codes)[0] != n:
        raise ValueError(
            f"sampler.sample(key, {n}) must return {n} rows, got shape {tuple(jnp.shape(codes))}"
        )
    return codes


@functools.cache
def _standard_normal() -> Callable[[Array, tuple[int, ...]], Array]:
    """``jax.random.normal`` compiled as a one-off program (its default -O3 costs 0.3-0.5 s)."""
    return jax.jit(
        jax.random.normal, static_argnums=1, compiler_options=default_options(once=True) or None
    )


def reconstruct(
    model: Any, variables: Any, x: Array, *, apply_kwargs: Mapping[str, Any] | None = None
) -> Array:
    """Deterministic reconstructions: decodes the posterior mean of each input.

    Args:
        model: a linen module with ``encode`` and ``decode``.
        variables: its variables.
        x: array of shape (batch, *image_shape).
        apply_kwargs: extra keyword arguments of both calls.

    Returns:
        Array of shape (batch, *image_shape).
    """
    z = encode_mean(model, variables, x, apply_kwargs=apply_kwargs)
    return decode(model, variables, z, apply_kwargs=apply_kwargs)


@jax.jit
def lerp(z0: Array, z1: Array, t: Array) -> Array:
    """Linear interpolation ``(1 - t) z0 + t z1``, exact at ``t = 0`` and ``t = 1``.

    Args:
        z0: array of shape (..., latent_dim).
        z1: array of the shape of ``z0``.
        t: scalar or array of fractions, broadcast against ``z0.shape[:-1]``; a (steps,)
            array with (latent_dim,) codes gives (steps, latent_dim).

    Returns:
        Array of shape ``broadcast(t.shape + (1,), z0.shape)``.
    """
    t = jnp.asarray(t, jnp.result_type(z0, float))[..., None]
    return (1.0 - t) * z0 + t * z1


@jax.jit
def slerp(z0: Array, z1: Array, t: Array) -> Array:
    r"""Spherical linear interpolation between two codes (Shoemake 1985; White 2016).

    .. math::
        \mathrm{slerp}(z_0, z_1; t) = \frac{\sin((1 - t)\Omega)}{\sin\Omega} z_0
            + \frac{\sin(t\Omega)}{\sin\Omega} z_1,
        \quad \cos\Omega = \frac{z_0 \cdot z_1}{\|z_0\| \|z_1\|}

    For unit vectors the path stays on the unit sphere at constant angular speed. When the
    codes are (nearly) parallel or anti-parallel, or one is zero, ``sin Ω`` vanishes and the
    result falls back to :func:`lerp` (through the origin for anti-parallel codes).

    Args:
        z0: array of shape (..., latent_dim).
        z1: array of the shape of ``z0``.
        t: scalar or array of fractions, as in :func:`lerp`.

    Returns:
        Array of shape ``broadcast(t.shape + (1,), z0.shape)``.
    """
    z0 = jnp.asarray(z0)
    z1 = jnp.asarray(z1)
    t = jnp.asarray(t, jnp.result_type(z0, float))[..., None]
    norms = jnp.linalg.norm(z0, axis=-1, keepdims=True) * jnp.linalg.norm(
        z1, axis=-1, keepdims=True
    )
    safe_norms = jnp.where(norms > 0, norms, 1.0)
    cosine = jnp.clip(jnp.sum(z0 * z1, axis=-1, keepdims=True) / safe_norms, -1.0, 1.0)
    spherical = (norms > 0) & (jnp.abs(cosine) < _PARALLEL_COSINE)
    # The unused branch is kept finite so that gradients through jnp.where stay finite.
    omega = jnp.arccos(jnp.where(spherical, cosine, 0.0))
    curved = (jnp.sin((1.0 - t) * omega) * z0 + jnp.sin(t * omega) * z1) / jnp.sin(omega)
    return jnp.where(spherical, curved, (1.0 - t) * z0 + t * z1)


def interpolate(
    model: Any,
    variables: Any,
    x_start: Array,
    x_end: Array,
    steps: int = 10,
    method: str = "linear",
    *,
    apply_kwargs: Mapping[str, Any] | None = None,
) -> Array:
    """Decodes a path between the latent means of two images (the tutorial's
    ``interpolate_latent``).

    The path has ``steps`` points at ``t = 0, 1/(steps-1), ..., 1``; its first and last points
    are exactly the two means, so the ends decode the two means.

    Args:
        model: a linen module with ``encode`` and ``decode``.
        variables: its variables.
        x_start: one image, array of shape image_shape.
        x_end: one image of the same shape.
        steps: number of images on the path, at least 2.
        method: ``"linear"`` or ``"slerp"`` (:func:`slerp`).
        apply_kwargs: extra keyword arguments of both calls.

    Returns:
        Array of shape (steps, *image_shape).
    """
    steps = validation.check_int("steps", steps, 1)
    if steps < 2:
        raise ValueError(f"steps must be at least 2 to include both ends, got {steps=}")
    if method not in INTERPOLATIONS:
        raise ValueError(f"method must be one of {INTERPOLATIONS}, got {method!r}")
    if jnp.shape(x_start) != jnp.shape(x_end):
        raise ValueError(
            f"x_start and x_end must have one shape, got {jnp.shape(x_start)} and "
            f"{jnp.shape(x_end)}"
        )
    means = encode_mean(model, variables, jnp.stack([x_start, x_end]), apply_kwargs=apply_kwargs)
    t = jnp.linspace(0.0, 1.0, steps)
    path = (lerp if method == "linear" else slerp)(means[0], means[1], t)
    path = path.at[0].set(means[0]).at[-1].set(means[1])
    return decode(model, variables, path, apply_kwargs=apply_kwargs)


def latent_traversal(
    model: Any,
    variables: Any,
    z: Array | None = None,
    *,
    x: Array | None = None,
    values: Array | Sequence[float] | None = None,
    dims: Sequence[int] | None = None,
    apply_kwargs: Mapping[str, Any] | None = None,
) -> Array:
    """Sweeps each latent dimension with the others fixed (the tutorial's "tuning latent
    components").

    Row ``i`` sets coordinate ``dims[i]`` of the base code to each of ``values`` in turn.

    Args:
        model: a linen module with ``decode`` (and ``encode`` when ``x`` is given).
        variables: its variables.
        z: the base code, array of shape (latent_dim,); the prior's mean is ``zeros``.
        x: instead of ``z``, one image of shape image_shape whose latent mean is the base.
        values: the values, array of shape (n_values,); default ``linspace(-3, 3, 10)``.
        dims: the dimensions to sweep; default all of them.
        apply_kwargs: extra keyword arguments of the calls.

    Returns:
        Array of shape (len(dims), n_values, *image_shape).
    """
    if (z is None) == (x is None):
        raise ValueError("pass exactly one of z (a latent code) and x (an image)")
    if x is not None:
        z = encode_mean(model, variables, jnp.asarray(x)[None], apply_kwargs=apply_kwargs)[0]
    z = jnp.asarray(z)
    if z.ndim != 1:
        raise ValueError(f"z must have shape (latent_dim,), got {z.shape}")
    latent_dim = z.shape[0]
    values = jnp.linspace(-3.0, 3.0, 10) if values is None else jnp.asarray(values)
    if values.ndim != 1 or values.shape[0] == 0:
        raise ValueError(f"values must have shape (n_values,), got {values.shape}")
    dims = tuple(range(latent_dim)) if dims is None else tuple(int(d) for d in dims)
    if not dims or not all(0 <= d < latent_dim for d in dims):
        raise ValueError(
            f"dims must be a non-empty list of indices in [0, {latent_dim}), got {dims}"
        )
    rows = jnp.asarray(dims)
    # codes[i, j] = z with coordinate dims[i] replaced by values[j]
    codes = jnp.broadcast_to(z, (len(dims), values.shape[0], latent_dim))
    codes = codes.at[jnp.arange(len(dims)), :, rows].set(values.astype(z.dtype))
    images = decode(model, variables, codes.reshape(-1, latent_dim), apply_kwargs=apply_kwargs)
    return images.reshape(len(dims), values.shape[0], *images.shape[1:])


# The generation score's classifier: one hidden layer of rectified units, trained briefly
# (a few seconds on 4,000 28x28 digits); its hidden layer is the feature space of the
# Fréchet distance.
SCORER_HIDDEN_UNITS = 128
SCORER_EPOCHS = 30
SCORER_LEARNING_RATE = 3e-3
SCORER_BATCH_SIZE = 100
CONFIDENCE_THRESHOLD = 0.9


def frechet_distance(
    mean1: np.ndarray, cov1: np.ndarray, mean2: np.ndarray, cov2: np.ndarray
) -> float:
    r"""The Fréchet (2-Wasserstein) distance between two Gaussians, squared.

    .. math::
        d^2 = \|\mu_1 - \mu_2\|^2 + \operatorname{tr}\Big(\Sigma_1 + \Sigma_2
            - 2 \big(\Sigma_1^{1/2} \Sigma_2 \Sigma_1^{1/2}\big)^{1/2}\Big)

    (Dowson and Landau 1982; Heusel et al. 2017's FID in another feature space). Computed in
    float64 with symmetric square roots: :math:`\Sigma_1^{1/2}` from the eigendecomposition of
    the symmetrized :math:`\Sigma_1`, and the trace of the second root as the sum of the square
    roots of the eigenvalues of the symmetric :math:`\Sigma_1^{1/2} \Sigma_2 \Sigma_1^{1/2}`;
    eigenvalues that rounding makes slightly negative count as 0, so the result is real, and
    it is clipped at 0.

    Args:
        mean1: array of shape (d,).
        cov1: covariance, array of shape (d, d), symmetric positive semi-definite.
        mean2: array of shape (d,).
        cov2: array of shape (d, d).

    Returns:
        The squared distance, a float >= 0 (0 for identical Gaussians, up to rounding).

    Raises:
        ValueError: for shapes that do not match (d,) and (d, d), or NaN/Inf values.
    """
    mean1 = np.asarray(validation.check_array("mean1", mean1, ndim=1), np.float64)
    d = mean1.shape[0]
    arrays = {"cov1": cov1, "mean2": mean2, "cov2": cov2}
    checked = {}
    for name, value in arrays.items():
        shape = (d,) if name.startswith("mean") else (d, d)
        array = np.asarray(validation.check_array(name, value), np.float64)
        if array.shape != shape:
            raise ValueError(f"{name} must have shape {shape} to match mean1, got {array.shape}")
        checked[name] = array
    cov1 = (checked["cov1"] + checked["cov1"].T) / 2.0
    cov2 = (checked["cov2"] + checked["cov2"].T) / 2.0
    values, vectors = np.linalg.eigh(cov1)
    root1 = (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T
    middle = root1 @ cov2 @ root1
    cross = np.sum(np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2.0), 0.0, None)))
    squared = np.sum(np.square(mean1 - checked["mean2"]))
    return max(float(squared + np.trace(cov1) + np.trace(cov2) - 2.0 * cross), 0.0)


class GenerationScorer:
    """Scores generated images with a small classifier trained on real labelled images.

    The classifier is scikit-learn's ``MLPClassifier`` with one hidden layer of
    :data:`SCORER_HIDDEN_UNITS` rectified units, trained with Adam for
    :data:`SCORER_EPOCHS` epochs on one thread (seconds on 4,000 28×28 digits). For a set of
    generated images, :meth:`score` reports:

    * ``confident_fraction``: the fraction the classifier labels with a top probability of at
      least :data:`CONFIDENCE_THRESHOLD` (0.9): images that look like one class;
    * ``label_entropy``: the entropy (natural log) of the histogram of predicted labels,
      ``log(n_classes)`` (``log 10 = 2.303`` for digits) when every class is generated as
      often, 0 when one class only (mode collapse);
    * ``frechet_distance``: :func:`frechet_distance` between the Gaussian fits (mean and
      covariance, ddof 1) of the hidden-layer features of real images and of the generated
      ones; 0 for sets with the same statistics, larger the further apart.

    Together they resemble the Inception Score's two halves (confident and diverse labels) and
    the FID, with a classifier of the data's own kind instead of an ImageNet network, so the
    numbers compare runs on the same data, not across data sets or with published FIDs.

    Build one with :meth:`fit`. Attributes: ``classifier_`` (the fitted ``MLPClassifier``),
    ``n_features_in_`` (pixels per image), ``classes_`` and ``train_accuracy_``.
    """

    def __init__(self, classifier: MLPClassifier) -> None:
        if not hasattr(classifier, "coefs_"):
            raise TypeError("classifier must be a fitted MLPClassifier; use GenerationScorer.fit")
        self.classifier_ = classifier
        self.n_features_in_ = int(classifier.n_features_in_)
        self.classes_ = np.asarray(classifier.classes_)
        self.train_accuracy_: float | None = None

    @classmethod
    def fit(cls, x_train: Any, y_train: Any, *, random_state: int = 0) -> GenerationScorer:
        """Trains the classifier on real labelled images.

        Args:
            x_train: images in [0, 1], array of shape (n, height, width, channels) or
                (n, n_pixels).
            y_train: int labels of shape (n,), at least two classes.
            random_state: the seed of the classifier's initialization and batches.

        Returns:
            The fitted scorer.

        Raises:
            ValueError: for images outside [0, 1], NaN/Inf, labels of another length, or a
                single class.
        """
        random_state = validation.check_int("random_state", random_state, 0)
        x = _pixel_rows("x_train", x_train)
        y = np.asarray(validation.check_array("y_train", y_train, ndim=1, dtype="numeric"))
        if y.shape != (len(x),):
            raise ValueError(f"y_train must have shape ({len(x)},) like x_train, got {y.shape}")
        if len(np.unique(y)) < 2:
            raise ValueError(f"y_train must hold at least 2 classes, got {np.unique(y)}")
        classifier = MLPClassifier(
            (SCORER_HIDDEN_UNITS,),
            learning_rate_init=SCORER_LEARNING_RATE,
            batch_size=min(SCORER_BATCH_SIZE, len(x)),
            max_iter=SCORER_EPOCHS,
            random_state=random_state,
        )
        # A fixed, short training on purpose: the scorer needs features, not the last digit of
        # accuracy. One thread: BLAS threads only contend on small matrices like these.
        with warnings.catch_warnings(), threadpool_limits(1):
            warnings.simplefilter("ignore", ConvergenceWarning)
            classifier.fit(x, y)
        scorer = cls(classifier)
        scorer.train_accuracy_ = float(classifier.score(x, y))
        return scorer

    def _rows(self, name: str, images: Any) -> np.ndarray:
        x = _pixel_rows(name, images)
        if x.shape[1] != self.n_features_in_:
            raise ValueError(
                f"{name} has images of {x.shape[1]} pixels but the scorer was fitted on "
                f"{self.n_features_in_}; resize them to the training images' size"
            )
        return x

    def features(self, images: Any) -> np.ndarray:
        """The classifier's hidden-layer activations.

        Args:
            images: in [0, 1], array of shape (n, height, width, channels) or (n, n_pixels).

        Returns:
            float64 array of shape (n, :data:`SCORER_HIDDEN_UNITS`).
        """
        x = self._rows("images", images).astype(np.float64)
        weights, bias = self.classifier_.coefs_[0], self.classifier_.intercepts_[0]
        return np.maximum(x @ weights + bias, 0.0)

    def predict_proba(self, images: Any) -> np.ndarray:
        """Class probabilities, array of shape (n, n_classes), columns in ``classes_`` order."""
        return self.classifier_.predict_proba(self._rows("images", images))

    def score(self, generated: Any, x_real: Any) -> dict[str, float | int]:
        """Scores generated images against real ones (see the class docstring).

        Args:
            generated: images in [0, 1] (clip decoded images first), array of shape (n, ...)
                with the training images' pixels, n >= 2.
            x_real: real images of the same kind (held-out test images), n >= 2.

        Returns:
            ``{"confident_fraction", "label_entropy", "frechet_distance", "n_generated"}``.

        Raises:
            ValueError: for values outside [0, 1], NaN/Inf, another image size than the
                training images', or fewer than 2 images in either set.
        """
        generated = self._rows("generated", generated)
        x_real = self._rows("x_real", x_real)
        for name, rows in (("generated", generated), ("x_real", x_real)):
            if len(rows) < 2:
                raise ValueError(f"{name} needs at least 2 images for a covariance, got 1")
        probabilities = self.classifier_.predict_proba(generated)
        counts = np.bincount(np.argmax(probabilities, axis=1), minlength=len(self.classes_))
        share = counts[counts > 0] / len(generated)
        fake, real = self.features(generated), self.features(x_real)
        distance = frechet_distance(
            real.mean(axis=0),
            np.cov(real, rowvar=False),
            fake.mean(axis=0),
            np.cov(fake, rowvar=False),
        )
        return {
            "confident_fraction": float(np.mean(probabilities.max(axis=1) >= CONFIDENCE_THRESHOLD)),
            "label_entropy": float(np.sum(share * np.log(1.0 / share))),
            "frechet_distance": distance,
            "n_generated": len(generated),
        }


def _pixel_rows(name: str, images: Any) -> np.ndarray:
    """Images as float32 rows of pixels, (n, n_pixels), checked to be finite and in [0, 1]."""
    x = np.asarray(validation.check_array(name, images, min_ndim=2, dtype=np.float32))
    x = x.reshape(len(x), -1)
    low, high = float(x.min()), float(x.max())
    if low < 0.0 or high > 1.0:
        raise ValueError(
            f"{name} must hold pixel values in [0, 1] (clip decoded images), got values from "
            f"{low:.4g} to {high:.4g}"
        )
    return x


def generation_score(
    generated: Any, *, x_train: Any, y_train: Any, x_real: Any, random_state: int = 0
) -> dict[str, float | int]:
    """Fits a :class:`GenerationScorer` on real labelled images and scores generated ones.

    Args:
        generated: generated images in [0, 1], array of shape (n, height, width, channels)
            or (n, n_pixels).
        x_train: real training images of that size, in [0, 1].
        y_train: their int labels, shape (n_train,).
        x_real: real held-out images to compare with, in [0, 1].
        random_state: the classifier's seed.

    Returns:
        ``{"confident_fraction", "label_entropy", "frechet_distance", "n_generated"}``
        (:meth:`GenerationScorer.score`).
    """
    scorer = GenerationScorer.fit(x_train, y_train, random_state=random_state)
    return scorer.score(generated, x_real)


N_GENERATED = 1000


def decoder_mean(outputs: Any, likelihood: str) -> Any:
    """A VAE decoder's outputs as images: a Bernoulli decoder's logits through the sigmoid (its
    mean); the other likelihoods' decoders output their mean already.

    Args:
        outputs: decoder outputs of shape (n, *image_shape).
        likelihood: the objective's likelihood (:data:`latent_jax.objectives.LIKELIHOODS`).

    Returns:
        The mean images, of the same shape.
    """
    return jax.nn.sigmoid(outputs) if likelihood == "bernoulli" else outputs


def generation_metrics(
    model: Any,
    variables: Mapping[str, Any],
    dataset: Any,
    *,
    seed: int,
    likelihood: str = "sse",
    n_generated: int = N_GENERATED,
    sampler: Any = None,
) -> dict[str, Any]:
    """The generation score of ``n_generated`` images decoded from a trained model's prior (or
    from an ex-post ``sampler`` of its latent space).

    The samples (:func:`sample_prior`, through :func:`decoder_mean`) are mapped back to pixel
    units with the data set's normalizer and clipped to [0, 1], then scored by a
    :class:`GenerationScorer` fitted on the training images and labels, against the test images
    (de-normalized the same way). The scorer's own numbers come beside them for scale: its test
    accuracy, and the score of one half of the test images against the other half (what real
    images get).

    Args:
        model: the trained generative model (``decode``, and ``sample_latents`` or a
            ``latent_dim`` attribute).
        variables: its variables.
        dataset: a :class:`latent_jax.data.Dataset` of labelled images in [0, 1] before its
            normalization.
        seed: the samples' key (``fold_in(key(seed), 2)``) and the classifier's seed.
        likelihood: the objective's likelihood (:func:`decoder_mean`).
        n_generated: how many prior samples.
        sampler: draws the codes instead of the prior (:func:`sample_prior`'s ``sampler``).

    Returns:
        ``{"confident_fraction", "label_entropy", "frechet_distance", "n_generated",
        "scorer_test_accuracy", "real_test_halves": {...the same three, n_generated}}``.

    Raises:
        ValueError: for a data set without labels.
    """
    if dataset.y_train is None or dataset.y_test is None:
        raise ValueError(f"dataset {dataset.name!r} has no labels: the generation score needs them")
    normalizer = dataset.normalizer

    def pixels(images: Any) -> np.ndarray:
        images = np.asarray(images, np.float32)
        images = normalizer.inverse_transform(images) if normalizer is not None else images
        return np.clip(images, 0.0, 1.0)  # rounding of the inversion, and samples' excursions

    key = jax.random.fold_in(jax.random.key(seed), 2)
    decoded = sample_prior(key, model, variables, n_generated, sampler=sampler)
    samples = pixels(decoder_mean(decoded, likelihood))
    x_test = pixels(dataset.x_test)
    scorer = GenerationScorer.fit(pixels(dataset.x_train), dataset.y_train, random_state=seed)
    half = len(x_test) // 2
    predicted = scorer.classes_[np.argmax(scorer.predict_proba(x_test), axis=1)]
    accuracy = float(np.mean(predicted == dataset.y_test))
    return {
        **scorer.score(samples, x_test),
        "scorer_test_accuracy": accuracy,
        "real_test_halves": scorer.score(x_test[:half], x_test[half:]),
    }
