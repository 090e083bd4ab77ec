r"""Ex-post latent samplers: densities fitted to a trained encoder's codes, to generate from.

A VAE's aggregate posterior :math:`q(z) = \frac1N \sum_i q(z|x_i)` is often far from its
prior :math:`\mathcal{N}(0, I)`, and a plain autoencoder has no prior at all; decoding draws
from a density fitted to the codes of the training images instead gives better samples. Two
such densities, both fitted on the codes (the posterior means,
:func:`latent_jax.generate.encode_mean`, array of shape (n_codes, latent_dim)):

* :class:`GaussianMixtureSampler`: a Gaussian mixture (Ghosh et al. 2020, "From Variational to
  Deterministic Autoencoders", Section 4, "ex-post density estimation": 10
  full-covariance components), fitted by scikit-learn's ``GaussianMixture``.
* :class:`TwoStageSampler`: a second VAE trained on the codes (Dai & Wipf 2019, "Diagnosing
  and Enhancing VAE Models", Section 4): a draw :math:`u \sim \mathcal{N}(0, I)` through the
  second VAE's decoder (its mean, plus its learned noise unless ``decoder_noise=False``) is
  the code that the first model then decodes.

The codes are used as they are, not standardized: the samplers model the very codes the
decoder was trained on, in their scale. The mixture is affine-equivariant, so the scale does
not matter to it; the second VAE's prior is :math:`\mathcal{N}(0, I)` and its Gaussian
decoder learns the codes' scale in its weights and its noise variance :math:`\gamma` (a
VAE's codes have roughly unit scale; codes of a very different scale may need more epochs).

Both samplers are frozen: ``Sampler.fit(codes, ..., seed=...)`` returns a fitted one, and
every sampler has ``latent_dim``, ``sample(key, n) -> (n, latent_dim)`` (pure JAX, traceable
under ``jax.jit`` with ``n`` static) and ``to_dict()`` / ``from_dict(data)`` (JSON data that
rebuild a sampler drawing the very same codes for the same key). :func:`save_sampler` and
:func:`load_sampler` keep one in a run folder (:data:`SAMPLER_FILE`); ``latent-jax vae
--sampler gmm|two-stage`` fits one after training. To generate, pass it to
:func:`latent_jax.generate.sample_prior` (``sampler=``)::

    codes = generate.encode_mean(model, variables, x_train)
    sampler = GaussianMixtureSampler.fit(codes, n_components=10, seed=0)
    images = generate.sample_prior(key, model, variables, 16, sampler=sampler)

A VQ-VAE's codes are discrete, a grid of codebook indices per image, and its prior is fitted
to them likewise, by an autoregressive model:

* :class:`PixelCNNPrior`: a PixelCNN over the grids of code indices (van den Oord et al.
  2017, "Neural Discrete Representation Learning", Section 3.1), fitted to
  ``VQVAE.encode_indices`` of the training images. Its ``sample(key, n)`` draws index grids
  of shape (n, h, w), which the model's ``decode_method`` (``"decode_indices"``) decodes;
  :func:`latent_jax.generate.sample_prior` calls that method for a sampler that names one.
  ``latent-jax train --model vq-vae`` fits one after training (:data:`CODE_GRID_SAMPLERS`).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import functools
import json
import logging
import math
import os
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture

from latent_jax import validation
from latent_jax.models.mlp import LearnedNoiseVAE
from latent_jax.models.pixelcnn import PixelCNN
from latent_jax.models.spec import build_module, module_spec
from latent_jax.objectives.vae import vae_objective
from latent_jax.objectives.vqvae import pixelcnn_objective
from latent_jax.runs.checkpoint import atomic_write
from latent_jax.train import TrainConfig, fit

__all__ = [
    "CODE_GRID_SAMPLERS",
    "COVARIANCE_TYPES",
    "SAMPLERS",
    "SAMPLER_FILE",
    "GaussianMixtureSampler",
    "PixelCNNPrior",
    "TwoStageSampler",
    "load_sampler",
    "sampler_from_dict",
    "save_sampler",
]

logger = logging.getLogger(__name__)

# The file a run folder keeps its fitted sampler in.
SAMPLER_FILE = "sampler.json"
COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")
FORMAT_VERSION = 1


def _codes(codes: Any, minimum: int = 2) -> np.ndarray:
    """The codes as a finite float64 (n_codes, latent_dim) array with ``minimum`` rows."""
    codes = np.asarray(
        validation.check_array("codes", codes, ndim=2, axes="(n_codes, latent_dim)"), np.float64
    )
    if len(codes) < minimum:
        raise ValueError(f"codes must have at least {minimum} rows to fit, got {len(codes)}")
    return codes


def _n(n: Any) -> int:
    return validation.check_int("n", n, 1)


def _array(
    data: Mapping[str, Any], name: str, shape: tuple[int | None, ...], kind: str
) -> np.ndarray:
    """``data[name]`` as a read-only finite float64 array of ``shape`` (``None``: any size),
    or a ValueError naming it."""
    if name not in data:
        raise ValueError(f"{kind} sampler data need {name!r}")
    try:
        array = np.array(data[name], np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(
            f"{kind} sampler data {name!r} are not an array of numbers: {err}"
        ) from None
    if array.ndim != len(shape) or any(
        w is not None and w != a for w, a in zip(shape, array.shape, strict=False)
    ):
        want = "(" + ", ".join("n" if w is None else str(w) for w in shape) + ")"
        raise ValueError(f"{kind} sampler data {name!r} must have shape {want}, got {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{kind} sampler data {name!r} hold NaN or infinite values")
    array.setflags(write=False)
    return array


def _check_tag(data: Any, name: str) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise TypeError(f"sampler data must be a mapping (to_dict()), got {type(data).__name__}")
    if data.get("sampler") != name:
        raise ValueError(f"these data describe a {data.get('sampler')!r} sampler, not {name!r}")
    if data.get("format") != FORMAT_VERSION:
        raise ValueError(
            f"sampler data of format {data.get('format')!r}; this version reads {FORMAT_VERSION}"
        )
    return data


# ---------------------------------------------------------------------------- Gaussian mixture


@functools.partial(jax.jit, static_argnums=4)
def _mixture_draw(key: jax.Array, log_weights: Any, means: Any, cholesky: Any, n: int) -> Any:
    component_key, normal_key = jax.random.split(key)
    components = jax.random.categorical(component_key, log_weights, shape=(n,))
    eps = jax.random.normal(normal_key, (n, means.shape[1]), means.dtype)
    return means[components] + jnp.einsum("nij,nj->ni", cholesky[components], eps)


@dataclasses.dataclass(frozen=True, eq=False)
class GaussianMixtureSampler:
    r"""A Gaussian mixture over the codes (Ghosh et al. 2020, Section 4).

    .. math::
        p(z) = \sum_k \pi_k\, \mathcal{N}(z; \mu_k, \Sigma_k)

    Build one with :meth:`fit`. A draw picks the component with
    ``jax.random.categorical(log π)`` and returns :math:`\mu_k + L_k \epsilon`, with
    :math:`L_k` the Cholesky factor of :math:`\Sigma_k` and :math:`\epsilon \sim
    \mathcal{N}(0, I)`, in float32.

    Attributes:
        weights: :math:`\pi`, float64 array of shape (n_components,), summing to 1.
        means: :math:`\mu`, float64 array of shape (n_components, latent_dim).
        covariances: :math:`\Sigma`, float64 array of shape (n_components, latent_dim,
            latent_dim), full matrices whatever the ``covariance_type`` of the fit.
        options: the fit's settings (``n_components``, ``covariance_type``, ``reg_covar``,
            ``seed``).
        info: what the fit reported (``n_codes``, ``converged``, ``n_iter``,
            ``mean_log_likelihood``: the average log-density of the codes).
    """

    weights: np.ndarray
    means: np.ndarray
    covariances: np.ndarray
    options: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    info: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    cholesky: np.ndarray = dataclasses.field(init=False, repr=False)

    name = "gmm"

    def __post_init__(self) -> None:
        data = {"weights": self.weights, "means": self.means, "covariances": self.covariances}
        means = np.asarray(self.means)
        if means.ndim != 2:
            raise ValueError(f"means must have shape (n_components, latent_dim), got {means.shape}")
        k, d = means.shape
        weights = _array(data, "weights", (k,), self.name)
        if np.any(weights < 0) or not math.isclose(float(weights.sum()), 1.0, abs_tol=1e-6):
            raise ValueError(f"weights must be >= 0 and sum to 1, got {weights.tolist()}")
        covariances = _array(data, "covariances", (k, d, d), self.name)
        asymmetry = np.abs(covariances - covariances.swapaxes(1, 2)).max()
        try:
            if asymmetry > 1e-9 * np.abs(covariances).max():  # beyond float64 round-off
                raise np.linalg.LinAlgError
            cholesky = np.linalg.cholesky(covariances)
        except np.linalg.LinAlgError:
            raise ValueError("covariances must be symmetric positive definite") from None
        cholesky.setflags(write=False)
        object.__setattr__(self, "weights", weights)
        object.__setattr__(self, "means", _array(data, "means", (k, d), self.name))
        object.__setattr__(self, "covariances", covariances)
        object.__setattr__(self, "cholesky", cholesky)

    @classmethod
    def fit(
        cls,
        codes: Any,
        *,
        n_components: int = 10,
        covariance_type: str = "full",
        reg_covar: float = 1e-6,
        seed: int = 0,
    ) -> GaussianMixtureSampler:
        """Fits the mixture to the codes by EM (``sklearn.mixture.GaussianMixture``, k-means
        initialization, in float64).

        Args:
            codes: array of shape (n_codes, latent_dim), n_codes >= n_components (and >= 2).
            n_components: the number of Gaussians; Ghosh et al. use 10.
            covariance_type: ``"full"`` (Ghosh et al.'s), ``"tied"``, ``"diag"`` or
                ``"spherical"`` (scikit-learn's meanings).
            reg_covar: added to the covariances' diagonals (scikit-learn's default 1e-6):
                keeps them positive definite when codes are degenerate.
            seed: scikit-learn's ``random_state`` (the k-means initialization).

        Returns:
            The fitted sampler. A fit that did not converge within scikit-learn's 100 EM
            iterations is kept (logged, ``info["converged"]`` False).

        Raises:
            TypeError, ValueError: for codes that are not a finite 2-D array, too few codes,
                or a bad option (naming it).
        """
        n_components = validation.check_int("n_components", n_components, 1)
        validation.check_choice("covariance_type", covariance_type, COVARIANCE_TYPES)
        reg_covar = validation.check_real("reg_covar", reg_covar, nonnegative=True)
        seed = validation.check_int("seed", seed, 0)
        codes = _codes(codes, max(2, n_components))
        mixture = GaussianMixture(
            n_components, covariance_type=covariance_type, reg_covar=reg_covar, random_state=seed
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            mixture.fit(codes)
        if not mixture.converged_:
            logger.warning("the Gaussian mixture did not converge in %d EM steps", mixture.n_iter_)
        k, d = n_components, codes.shape[1]
        covariances = np.asarray(mixture.covariances_, np.float64)
        if covariance_type == "tied":
            covariances = np.broadcast_to(covariances, (k, d, d))
        elif covariance_type == "diag":
            covariances = covariances[:, :, None] * np.eye(d)
        elif covariance_type == "spherical":
            covariances = covariances[:, None, None] * np.eye(d)
        return cls(
            weights=np.asarray(mixture.weights_, np.float64),
            means=np.asarray(mixture.means_, np.float64),
            covariances=np.array(covariances, np.float64),
            options={
                "n_components": n_components,
                "covariance_type": covariance_type,
                "reg_covar": reg_covar,
                "seed": seed,
            },
            info={
                "n_codes": len(codes),
                "converged": bool(mixture.converged_),
                "n_iter": int(mixture.n_iter_),
                "mean_log_likelihood": float(mixture.score(codes)),
            },
        )

    @property
    def latent_dim(self) -> int:
        """The codes' dimension."""
        return int(self.means.shape[1])

    @property
    def n_components(self) -> int:
        return int(self.means.shape[0])

    def sample(self, key: jax.Array, n: int) -> jax.Array:
        """``n`` draws from the mixture.

        Args:
            key: a ``jax.random`` key.
            n: the number of draws, >= 1 (static under ``jax.jit``).

        Returns:
            float32 array of shape (n, latent_dim).
        """
        key = validation.check_key("key", key)
        with np.errstate(divide="ignore"):  # a component of weight 0 is never drawn
            log_weights = np.log(self.weights).astype(np.float32)
        return _mixture_draw(
            key,
            log_weights,
            self.means.astype(np.float32),
            self.cholesky.astype(np.float32),
            _n(n),
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON data that :meth:`from_dict` rebuilds the sampler from (float64 values, exact)."""
        return {
            "sampler": self.name,
            "format": FORMAT_VERSION,
            "latent_dim": self.latent_dim,
            "options": dict(self.options),
            "info": dict(self.info),
            "weights": self.weights.tolist(),
            "means": self.means.tolist(),
            "covariances": self.covariances.tolist(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GaussianMixtureSampler:
        """The sampler :meth:`to_dict` described.

        Raises:
            ValueError: for data of another sampler or format, or arrays of the wrong shape.
        """
        data = _check_tag(data, cls.name)
        latent_dim = validation.check_int("latent_dim", data.get("latent_dim"), 1)
        means = _array(data, "means", (None, latent_dim), cls.name)
        k, d = means.shape
        return cls(
            weights=_array(data, "weights", (k,), cls.name),
            means=means,
            covariances=_array(data, "covariances", (k, d, d), cls.name),
            options=dict(data.get("options", {})),
            info=dict(data.get("info", {})),
        )


# ------------------------------------------------------------------------ the two-stage VAE


@functools.partial(jax.jit, static_argnums=(0, 3, 4))
def _second_stage_draw(
    model: nn.Module, variables: Any, key: jax.Array, n: int, decoder_noise: bool
) -> Any:
    prior_key, noise_key = jax.random.split(key)
    u = jax.random.normal(prior_key, (n, model.latent_dim))
    z = model.apply(variables, u, method="decode")
    if not decoder_noise:
        return z
    std = jnp.exp(0.5 * model.apply(variables, method="observation_logvar"))
    return z + std * jax.random.normal(noise_key, z.shape, z.dtype)


def _encode_tree(tree: Any) -> Any:
    """Arrays as JSON: ``{"shape": [...], "float32": base64 of the little-endian bytes}``
    (exact, and a quarter of the size of decimal lists)."""
    if isinstance(tree, Mapping):
        return {k: _encode_tree(v) for k, v in tree.items()}
    array = np.asarray(tree, "<f4")
    return {"shape": list(array.shape), "float32": base64.b64encode(array.tobytes()).decode()}


def _decode_tree(tree: Any, expected: Any, where: str, kind: str = "two-stage") -> Any:
    """:func:`_encode_tree`'s data as float32 arrays of the structure and shapes of
    ``expected``."""
    if isinstance(expected, Mapping):
        if not isinstance(tree, Mapping) or set(tree) != set(expected):
            got = sorted(tree) if isinstance(tree, Mapping) else type(tree).__name__
            raise ValueError(f"{kind} sampler data {where}: expected {sorted(expected)}, got {got}")
        return {k: _decode_tree(tree[k], expected[k], f"{where}/{k}", kind) for k in expected}
    try:
        array = np.frombuffer(base64.b64decode(tree["float32"], validate=True), "<f4")
        array = array.reshape(tuple(tree["shape"]))
    except (KeyError, TypeError, ValueError, binascii.Error) as err:
        raise ValueError(
            f"{kind} sampler data {where} are not an encoded float32 array: {err}"
        ) from None
    if array.shape != expected.shape:
        raise ValueError(
            f"{kind} sampler data {where} must have shape {expected.shape}, got {array.shape}"
        )
    return jnp.asarray(array.astype(np.float32))


@dataclasses.dataclass(frozen=True, eq=False)
class TwoStageSampler:
    r"""The second stage of Dai & Wipf's two-stage VAE (2019, Section 4): a VAE on the codes.

    The second VAE (:class:`~latent_jax.models.mlp.LearnedNoiseVAE`, latent dimension that of
    the codes as in the paper) has the prior :math:`u \sim \mathcal{N}(0, I)` and the Gaussian
    decoder :math:`p(z|u) = \mathcal{N}(z; f(u), \gamma I)` with :math:`\gamma` learned (the
    paper's point: :math:`\gamma \to 0` lets the second stage match the codes' distribution,
    whose support the first stage leaves off the prior's). A draw is :math:`z = f(u) +
    \sqrt{\gamma}\,\epsilon`, the second stage's own generative model, as the authors' code
    draws it; with ``decoder_noise=False`` it is the decoder's mean :math:`f(u)` alone, which
    the paper's analysis equates with it once :math:`\gamma \to 0`. Before that the noise
    matters: on codes that are already :math:`\mathcal{N}(0, I)` the second VAE may as well
    collapse (:math:`f` constant, :math:`\gamma = 1`, the same ELBO), and its means alone then
    are one point.

    Build one with :meth:`fit`.

    Attributes:
        model: the second-stage VAE, input and latent dimension ``latent_dim``.
        variables: its variables (``{"params": ...}``), float32.
        decoder_noise: whether a draw adds the decoder's noise :math:`\sqrt{\gamma}\,\epsilon`
            to its mean.
        options: the fit's settings (``hidden_dims``, ``epochs``, ``batch_size``,
            ``learning_rate``, ``seed``).
        info: what the fit reported (``n_codes``; per epoch ``train_loss``, the second
            stage's negative ELBO per code; ``obs_logvar``, the final :math:`\log\gamma`).
    """

    model: LearnedNoiseVAE
    variables: Mapping[str, Any]
    decoder_noise: bool = True
    options: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    info: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    name = "two-stage"

    def __post_init__(self) -> None:
        validation.check_bool("decoder_noise", self.decoder_noise)
        if not isinstance(self.model, LearnedNoiseVAE):
            raise TypeError(f"model must be a LearnedNoiseVAE, got {type(self.model).__name__}")
        if self.model.latent_dim != self.model.input_dim:
            raise ValueError(
                "the second stage's latent dimension must be its input's, got "
                f"latent_dim={self.model.latent_dim}, input_dim={self.model.input_dim}"
            )

    @classmethod
    def fit(
        cls,
        codes: Any,
        *,
        hidden_dims: Sequence[int] = (256, 256),
        epochs: int = 100,
        batch_size: int = 64,
        learning_rate: float = 1e-3,
        seed: int = 0,
        decoder_noise: bool = True,
        quiet: bool = True,
    ) -> TwoStageSampler:
        """Trains the second VAE on the codes with the library's engine
        (:func:`latent_jax.train.fit`, Adam) on its negative ELBO
        (``vae_objective(likelihood="gaussian", obs_logvar="learned")``, β = 1).

        The paper's code trains on a fresh draw from each code's posterior every epoch; here
        the codes are whatever the caller passes (the posterior means, for any encoder). Its
        defaults are 800 epochs at a learning rate of 1e-4, batch 64 and three hidden layers
        of 1,024; these defaults are smaller and faster (100 epochs at 1e-3, two layers of
        256), which suffices for codes of a few dimensions.

        Args:
            codes: array of shape (n_codes, latent_dim), n_codes >= 2.
            hidden_dims: the hidden widths of the second VAE's encoder (its decoder's,
                reversed).
            epochs: training epochs, >= 1.
            batch_size: codes per batch, >= 1.
            learning_rate: Adam's step size, > 0.
            seed: the root key of the training (initialization, shuffling, draws).
            decoder_noise: whether draws add the decoder's noise (the class docstring).
            quiet: no progress bar.

        Returns:
            The fitted sampler.

        Raises:
            TypeError, ValueError: for codes that are not a finite 2-D array, too few codes,
                or a bad option (naming it).
            latent_jax.train.NonFiniteLossError: if the training diverges.
        """
        codes = _codes(codes).astype(np.float32)
        epochs = validation.check_int("epochs", epochs, 1)
        batch_size = validation.check_int("batch_size", batch_size, 1)
        learning_rate = validation.check_real("learning_rate", learning_rate, positive=True)
        seed = validation.check_int("seed", seed, 0)
        decoder_noise = validation.check_bool("decoder_noise", decoder_noise)
        quiet = validation.check_bool("quiet", quiet)
        latent_dim = codes.shape[1]
        model = LearnedNoiseVAE(
            input_dim=latent_dim, hidden_dims=hidden_dims, latent_dim=latent_dim
        )
        objective = vae_objective(model, likelihood="gaussian", obs_logvar="learned")
        config = TrainConfig(
            learning_rate=learning_rate,
            batch_size=batch_size,
            epochs=epochs,
            seed=seed,
            quiet=quiet,
            log_every=0,
        )
        state, history = fit(objective, codes, None, config, jax.random.key(seed))
        variables = {"params": state.params}
        obs_logvar = float(model.apply(variables, method="observation_logvar"))
        return cls(
            model=model,
            variables=variables,
            decoder_noise=decoder_noise,
            options={
                "hidden_dims": list(model.hidden_dims),
                "epochs": epochs,
                "batch_size": batch_size,
                "learning_rate": learning_rate,
                "seed": seed,
            },
            info={
                "n_codes": len(codes),
                "train_loss": [float(v) for v in history["train_loss"]],
                "obs_logvar": obs_logvar,
            },
        )

    @property
    def latent_dim(self) -> int:
        """The codes' dimension."""
        return int(self.model.input_dim)

    def sample(self, key: jax.Array, n: int) -> jax.Array:
        """``n`` codes: :math:`u \\sim \\mathcal{N}(0, I)` through the second decoder (its mean,
        plus its noise with ``decoder_noise``).

        Args:
            key: a ``jax.random`` key.
            n: the number of draws, >= 1 (static under ``jax.jit``).

        Returns:
            float32 array of shape (n, latent_dim).
        """
        key = validation.check_key("key", key)
        return _second_stage_draw(self.model, self.variables, key, _n(n), self.decoder_noise)

    def to_dict(self) -> dict[str, Any]:
        """JSON data that :meth:`from_dict` rebuilds the sampler from (the model as its
        :func:`~latent_jax.models.spec.module_spec`, each float32 parameter array as its shape
        and its little-endian bytes in base64: exact)."""
        return {
            "sampler": self.name,
            "format": FORMAT_VERSION,
            "latent_dim": self.latent_dim,
            "decoder_noise": self.decoder_noise,
            "options": dict(self.options),
            "info": dict(self.info),
            "model": module_spec(self.model),
            "variables": _encode_tree(self.variables),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TwoStageSampler:
        """The sampler :meth:`to_dict` described.

        Raises:
            ValueError: for data of another sampler or format, another model, or parameters
                of the wrong structure or shapes.
        """
        data = _check_tag(data, cls.name)
        model = build_module(data.get("model"), "two-stage sampler model")
        if not isinstance(model, LearnedNoiseVAE):
            raise ValueError(f"a two-stage sampler's model is a LearnedNoiseVAE, got {model!r}")
        zeros = jnp.zeros((1, model.input_dim), jnp.float32)
        key = jax.random.key(0)
        expected = jax.eval_shape(lambda: model.init(key, zeros, key))
        variables = _decode_tree(data.get("variables"), expected, "variables")
        return cls(
            model=model,
            variables=variables,
            decoder_noise=data.get("decoder_noise"),
            options=dict(data.get("options", {})),
            info=dict(data.get("info", {})),
        )


# ------------------------------------------------------- the PixelCNN prior of a VQ-VAE's codes


@functools.partial(jax.jit, static_argnums=(0, 3, 4))
def _pixelcnn_draw(
    model: nn.Module, variables: Any, key: jax.Array, n: int, grid_shape: tuple[int, int]
) -> Any:
    height, width = grid_shape
    positions = height * width

    def step(position: Any, grid: Any) -> Any:
        logits = model.apply(variables, grid).reshape(n, positions, -1)
        here = jax.lax.dynamic_index_in_dim(logits, position, axis=1, keepdims=False)
        draw = jax.random.categorical(jax.random.fold_in(key, position), here)
        flat = grid.reshape(n, positions).at[:, position].set(draw.astype(jnp.int32))
        return flat.reshape(n, height, width)

    grid = jnp.zeros((n, height, width), jnp.int32)
    return jax.lax.fori_loop(0, positions, step, grid)


@functools.partial(jax.jit, static_argnums=0)
def _pixelcnn_log_likelihood(model: nn.Module, variables: Any, indices: Any) -> Any:
    log_p = jax.nn.log_softmax(model.apply(variables, indices), axis=-1)
    picked = jnp.take_along_axis(log_p, indices[..., None], axis=-1)[..., 0]
    return picked.reshape(indices.shape[0], -1).sum(axis=-1)


def _index_grids(indices: Any, codebook_size: int) -> np.ndarray:
    """Code grids as an int32 (n, h, w) array of indices in [0, codebook_size)."""
    grids = np.asarray(
        validation.check_array(
            "indices", indices, ndim=3, axes="(n_grids, height, width)", dtype="numeric"
        )
    )
    if grids.dtype.kind not in "iu":
        raise TypeError(f"indices must be integers (code indices), got dtype {grids.dtype}")
    if grids.min() < 0 or grids.max() >= codebook_size:
        raise ValueError(
            f"indices must be in [0, {codebook_size}) (codebook_size={codebook_size}), got "
            f"values from {grids.min()} to {grids.max()}"
        )
    return grids.astype(np.int32)


@dataclasses.dataclass(frozen=True, eq=False)
class PixelCNNPrior:
    r"""An autoregressive prior over a VQ-VAE's grids of code indices (van den Oord et al.
    2017, Section 3.1: the prior, uniform while the VQ-VAE trains, is fitted afterwards to the
    codes of the training set by a PixelCNN).

    A :class:`~latent_jax.models.pixelcnn.PixelCNN` models :math:`p(k) = \prod_i p(k_i \mid
    k_{<i})` over the grid's positions in raster order; :meth:`sample` draws a grid position
    by position (``h * w`` passes of the network, a ``jax.lax.fori_loop``), and the VQ-VAE's
    :meth:`~latent_jax.models.vqvae.VQVAE.decode_indices` (:attr:`decode_method`) decodes it:
    ``generate.sample_prior(key, vqvae, variables, n, sampler=prior)``. Without it the
    VQ-VAE's own prior (each position's code uniform and independent) decodes to patches of
    unrelated codes, not images.

    Build one with :meth:`fit`.

    Attributes:
        model: the PixelCNN.
        variables: its variables (``{"params": ...}``), float32.
        grid_shape: (h, w) of the grids it draws.
        options: the fit's settings (``features``, ``kernel_size``, ``residual_blocks``,
            ``epochs``, ``batch_size``, ``learning_rate``, ``seed``).
        info: what the fit reported (``n_grids``; per epoch ``train_nll``, the mean negative
            log-likelihood of a grid in nats; ``uniform_nll``, that of the uniform prior,
            :math:`h w \log K`).
    """

    model: PixelCNN
    variables: Mapping[str, Any]
    grid_shape: tuple[int, int]
    options: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    info: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    name = "pixelcnn"
    # The model's method that decodes a draw (generate.sample_prior calls it).
    decode_method = "decode_indices"

    def __post_init__(self) -> None:
        if not isinstance(self.model, PixelCNN):
            raise TypeError(f"model must be a PixelCNN, got {type(self.model).__name__}")
        try:
            grid = tuple(int(s) for s in self.grid_shape)
        except (TypeError, ValueError):
            grid = ()
        if len(grid) != 2 or min(grid) < 1:
            raise ValueError(f"grid_shape must be (height, width) >= 1, got {self.grid_shape!r}")
        object.__setattr__(self, "grid_shape", grid)

    @classmethod
    def fit(
        cls,
        indices: Any,
        *,
        codebook_size: int,
        features: int = 64,
        kernel_size: int = 5,
        residual_blocks: int = 4,
        epochs: int = 20,
        batch_size: int = 64,
        learning_rate: float = 1e-3,
        seed: int = 0,
        quiet: bool = True,
    ) -> PixelCNNPrior:
        """Trains the PixelCNN on code grids with the library's engine
        (:func:`latent_jax.train.fit`, Adam) on their negative log-likelihood
        (:func:`latent_jax.objectives.pixelcnn_objective`).

        Args:
            indices: int array of shape (n_grids, h, w), the training set's code indices
                (``VQVAE.encode_indices``), in [0, codebook_size).
            codebook_size: K, the VQ-VAE's codebook size.
            features: the PixelCNN's channels.
            kernel_size: its first (type-A) layer's odd kernel size.
            residual_blocks: its residual blocks.
            epochs: training epochs, >= 1.
            batch_size: grids per batch, >= 1.
            learning_rate: Adam's step size, > 0.
            seed: the root key of the training (initialization, shuffling).
            quiet: no progress bar.

        Returns:
            The fitted prior.

        Raises:
            TypeError, ValueError: for indices that are not an integer (n, h, w) array in
                range, or a bad option (naming it).
            latent_jax.train.NonFiniteLossError: if the training diverges.
        """
        codebook_size = validation.check_int("codebook_size", codebook_size, 1)
        grids = _index_grids(indices, codebook_size)
        epochs = validation.check_int("epochs", epochs, 1)
        batch_size = validation.check_int("batch_size", batch_size, 1)
        learning_rate = validation.check_real("learning_rate", learning_rate, positive=True)
        seed = validation.check_int("seed", seed, 0)
        quiet = validation.check_bool("quiet", quiet)
        model = PixelCNN(
            codebook_size=codebook_size,
            features=features,
            kernel_size=kernel_size,
            residual_blocks=residual_blocks,
        )
        config = TrainConfig(
            learning_rate=learning_rate,
            batch_size=batch_size,
            epochs=epochs,
            seed=seed,
            quiet=quiet,
            log_every=0,
        )
        objective = pixelcnn_objective(model)
        data = grids.astype(np.float32)  # the engine's rows are float32 (exact integers)
        state, history = fit(objective, data, None, config, jax.random.key(seed))
        height, width = grids.shape[1:]
        return cls(
            model=model,
            variables={"params": state.params},
            grid_shape=(height, width),
            options={
                "features": model.features,
                "kernel_size": model.kernel_size,
                "residual_blocks": model.residual_blocks,
                "epochs": epochs,
                "batch_size": batch_size,
                "learning_rate": learning_rate,
                "seed": seed,
            },
            info={
                "n_grids": len(grids),
                "train_nll": [float(v) for v in history["train_loss"]],
                "uniform_nll": height * width * math.log(codebook_size),
            },
        )

    @property
    def codebook_size(self) -> int:
        """K, the number of codes."""
        return int(self.model.codebook_size)

    def check_model(self, model: Any) -> None:
        """Refuses a model whose codebook size or code grid is not the prior's.

        Raises:
            ValueError: naming both.
        """
        size = getattr(model, "codebook_size", None)
        grid = tuple(getattr(model, "grid_shape", ()) or ())
        if size != self.codebook_size or grid != self.grid_shape:
            raise ValueError(
                f"the prior draws {self.grid_shape[0]}x{self.grid_shape[1]} grids of "
                f"{self.codebook_size} codes but {type(model).__name__} has "
                f"codebook_size={size} and grid_shape={grid}: fit the prior on this model's "
                "codes"
            )

    def sample(self, key: jax.Array, n: int) -> jax.Array:
        """``n`` code grids drawn position by position (raster order).

        Args:
            key: a ``jax.random`` key.
            n: the number of draws, >= 1 (static under ``jax.jit``).

        Returns:
            int32 array of shape (n, h, w).
        """
        key = validation.check_key("key", key)
        return _pixelcnn_draw(self.model, self.variables, key, _n(n), self.grid_shape)

    def log_likelihood(self, indices: Any) -> jax.Array:
        """:math:`\\log p(k)` of each grid, in nats.

        Args:
            indices: int array of shape (n_grids, h, w) in [0, codebook_size).

        Returns:
            float32 array of shape (n_grids,).
        """
        grids = _index_grids(indices, self.codebook_size)
        if grids.shape[1:] != self.grid_shape:
            raise ValueError(
                f"indices must be grids of shape {self.grid_shape}, got {grids.shape[1:]}"
            )
        return _pixelcnn_log_likelihood(self.model, self.variables, jnp.asarray(grids))

    def to_dict(self) -> dict[str, Any]:
        """JSON data that :meth:`from_dict` rebuilds the prior from (the model as its
        :func:`~latent_jax.models.spec.module_spec`, its float32 parameters exact)."""
        return {
            "sampler": self.name,
            "format": FORMAT_VERSION,
            "grid_shape": list(self.grid_shape),
            "codebook_size": self.codebook_size,
            "options": dict(self.options),
            "info": dict(self.info),
            "model": module_spec(self.model),
            "variables": _encode_tree(self.variables),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PixelCNNPrior:
        """The prior :meth:`to_dict` described.

        Raises:
            ValueError: for data of another sampler or format, another model, or parameters
                of the wrong structure or shapes.
        """
        data = _check_tag(data, cls.name)
        model = build_module(data.get("model"), "pixelcnn sampler model")
        if not isinstance(model, PixelCNN):
            raise ValueError(f"a pixelcnn sampler's model is a PixelCNN, got {model!r}")
        grid = data.get("grid_shape")
        if not isinstance(grid, list | tuple) or len(grid) != 2:
            raise ValueError(f"pixelcnn sampler data need grid_shape [h, w], got {grid!r}")
        height, width = (validation.check_int("grid_shape", s, 1) for s in grid)
        zeros = jnp.zeros((1, height, width), jnp.int32)
        expected = jax.eval_shape(lambda: model.init(jax.random.key(0), zeros))
        variables = _decode_tree(data.get("variables"), expected, "variables", cls.name)
        return cls(
            model=model,
            variables=variables,
            grid_shape=(height, width),
            options=dict(data.get("options", {})),
            info=dict(data.get("info", {})),
        )


# ------------------------------------------------------------------------------- persistence

# Samplers of a VQ-VAE's code grids (decoded by the model's decode_method, not decode):
# load_sampler reads them too, but they are no choice of the VAE commands' --sampler.
CODE_GRID_SAMPLERS: dict[str, type] = {PixelCNNPrior.name: PixelCNNPrior}

SAMPLERS: dict[str, type] = {
    GaussianMixtureSampler.name: GaussianMixtureSampler,
    TwoStageSampler.name: TwoStageSampler,
}


def sampler_from_dict(data: Mapping[str, Any]) -> Any:
    """The sampler that ``to_dict()`` data describe, whichever its kind (``data["sampler"]``,
    a key of :data:`SAMPLERS` or :data:`CODE_GRID_SAMPLERS`).

    Raises:
        TypeError: for data that are not a mapping.
        ValueError: for an unknown sampler, or data its ``from_dict`` refuses.
    """
    if not isinstance(data, Mapping):
        raise TypeError(f"sampler data must be a mapping (to_dict()), got {type(data).__name__}")
    name = data.get("sampler")
    classes = {**SAMPLERS, **CODE_GRID_SAMPLERS}
    if name not in classes:
        raise ValueError(
            f"sampler must be one of {tuple(SAMPLERS)} (or, of a VQ-VAE's code grids, one of "
            f"{tuple(CODE_GRID_SAMPLERS)}), got sampler={name!r}"
        )
    return classes[name].from_dict(data)


def save_sampler(path: str | os.PathLike, sampler: Any) -> str:
    """Writes ``sampler.to_dict()`` as JSON to ``path``, atomically
    (:func:`latent_jax.runs.checkpoint.atomic_write`); returns the path."""
    if not callable(getattr(sampler, "to_dict", None)):
        raise TypeError(f"sampler must have to_dict(), got {type(sampler).__name__}")
    path = os.fspath(path)
    text = json.dumps(sampler.to_dict(), sort_keys=True) + "\n"
    atomic_write(path, text.encode("utf-8"))
    return path


def load_sampler(path: str | os.PathLike) -> Any:
    """The sampler :func:`save_sampler` wrote to ``path`` (a run folder's
    :data:`SAMPLER_FILE`).

    Raises:
        FileNotFoundError: when there is no such file.
        ValueError: for a file that is not a sampler's JSON.
    """
    path = os.fspath(path)
    with open(path, encoding="utf-8") as handle:
        try:
            data = json.load(handle)
        except json.JSONDecodeError as err:
            raise ValueError(f"{path} is not JSON: {err}") from None
    return sampler_from_dict(data)
