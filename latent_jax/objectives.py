r"""Training objectives: autoencoder, denoising autoencoder and (β-)VAE, as pure functions.

An :class:`Objective` bundles a model with two pure functions, in the style of optax's
``GradientTransformation``:

* ``init(key, x) -> variables``: the model's variables (``{"params": ..., "batch_stats":
  ...}``) for a batch ``x`` of shape (batch, ...features);
* ``loss(params, model_state, batch, key, step, epoch, train) -> (loss, (metrics,
  new_model_state))``.

``model_state`` holds the model's collections other than ``params`` (BatchNorm's
``batch_stats``; an empty dict for models without any). ``batch`` is a :class:`Batch` whose
``mask`` marks the real rows of a padded batch. ``step`` is the number of optimizer updates
done before this one and ``epoch`` the 0-based epoch, both int32 scalars (traced under
``jit``); the (β-)VAE's schedule reads one of them. ``train`` is a Python bool: with
``train=True`` the model runs in training mode (BatchNorm on batch statistics, which come back
updated in ``new_model_state``); with ``train=False`` in inference mode (running statistics)
and ``new_model_state`` is ``model_state``. ``metrics`` maps names to float32 scalars, every
term of the objective reported separately; ``metrics["loss"]`` is ``loss``. The training engine
(:mod:`latent_jax.train`) differentiates ``loss`` and never needs to know which model it trains.

Reductions (explicit, and the same for every objective): each objective first computes one
value per example, then reduces a batch to the **mask-weighted mean over its real rows**,
:math:`\sum_i m_i \ell_i / \sum_i m_i`. Padding rows (``mask == 0``) contribute nothing to the
loss, its gradient or the metrics. The per-example values follow the tutorial:

* autoencoder / denoising: the mean over features of the squared error. For a full batch the
  loss is exactly PyTorch's ``nn.MSELoss()`` (mean over all elements), the tutorial's criterion.
* (β-)VAE: ``reconstruction`` is, per example, the **sum** over features of the squared error
  (``likelihood="sse"``, the tutorial's ``F.mse_loss(..., reduction='sum')``), or the negative
  Gaussian or Bernoulli log-likelihood; ``kl`` is the per-example
  :math:`D_{KL}(q(z|x)\,\|\,\mathcal{N}(0, I))`. Averaged over examples these are the numbers
  the tutorial logs (its batch sums divided by the dataset size).
  ``loss = reconstruction + beta * kl``, computed from the reported terms, so that identity
  holds exactly for the reported values.

One deliberate difference from the tutorial: the tutorial's VAE back-propagates the batch **sum**
(the mean times the batch size); here every loss is a mean over examples. With Adam the update
is invariant to a constant factor on the loss except through ``eps``, so the trained models
agree; with SGD the learning rate has to be scaled by the batch size to match.

Models are called as follows (``train`` and ``mask`` only when the model's ``__call__``
declares them):

* autoencoders: ``model.apply(variables, x, train=train, mask=mask) -> reconstruction`` with
  the shape of ``x``;
* VAEs: ``model.apply(variables, x, key, train=train, mask=mask) -> (reconstruction, mean,
  logvar)``, with ``mean`` and ``logvar`` of shape (batch, latent_dim).
* Deep SVDD networks (:mod:`latent_jax.models.svdd`): ``model.apply(variables, x,
  train=train, mask=mask) -> distances``, the squared distance of each example to the centre
  the variables hold, of shape (batch,).

A model that declares ``mask`` receives a bool array of shape (batch,), ``True`` for real rows,
and can pass it to :class:`latent_jax.models.layers.BatchNorm` (``mask=...``) so padding rows
do not enter the batch statistics of the last, ragged batch (flax's ``nn.BatchNorm`` takes a
mask too, but only one broadcast to the activation's full shape, which costs a pass over it).
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import math
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from latent_jax import schedules, validation
from latent_jax.corruption import CorruptionFn
from latent_jax.gaussian import (
    bernoulli_log_likelihood,
    gaussian_log_likelihood,
    kl_standard_normal,
)

__all__ = [
    "GRADIENT_ESTIMATORS",
    "LIKELIHOODS",
    "Batch",
    "Objective",
    "autoencoder_objective",
    "bernoulli_binarize",
    "denoising_objective",
    "describe_function",
    "iwae_objective",
    "masked_mean",
    "per_example_mse",
    "per_example_sse",
    "split_variables",
    "vae_objective",
]

LIKELIHOODS = ("sse", "gaussian", "bernoulli")
BETA_UNITS = ("step", "epoch")
GRADIENT_ESTIMATORS = ("standard", "dreg")

Metrics = dict[str, Array]
LossFn = Callable[..., tuple[Array, tuple[Metrics, dict]]]


class Batch(NamedTuple):
    """What an objective sees.

    Attributes:
        x: array of shape (batch, ...features), the inputs (clean).
        mask: float array of shape (batch,), 1.0 for real rows and 0.0 for the padding of a
            ragged last batch.
    """

    x: Array
    mask: Array


class Objective(NamedTuple):
    """A model and the pure functions that initialize and score it.

    Attributes:
        init: ``init(key, x) -> variables``, the model's variables for inputs ``x`` of shape
            (batch, ...features).
        loss: ``loss(params, model_state, batch, key, step, epoch, train) -> (loss, (metrics,
            new_model_state))`` (see the module docstring).
        model: the linen module (for encoding, decoding and generation after training).
        name: a short name (``"autoencoder"``, ``"denoising"``, ``"vae"``).
        spec: what the objective computes besides its model, as JSON data (the VAE's
            ``likelihood`` and ``beta_schedule``, the denoising ``corruption``, described by
            :func:`describe_function`); a run's checkpoints store it with ``name``
            (:meth:`describe`), and resuming with another objective is refused, naming the
            field. ``None``: only ``name`` identifies the objective.
    """

    init: Callable[[Array, Array], dict]
    loss: LossFn
    model: Any
    name: str
    spec: Mapping[str, Any] | None = None

    def describe(self) -> dict[str, Any]:
        """The objective's identity as JSON data: ``{"name": ..., **spec}``."""
        return {"name": self.name, **dict(self.spec or {})}

    def __hash__(self) -> int:
        # Hashable despite the spec's dict (as a static argument of jax.jit, a cache key):
        # equal objectives have equal functions, model and name, hence equal hashes.
        return hash((self.init, self.loss, self.model, self.name))


def describe_function(fn: Any) -> Any:
    """A JSON value that stands for a function an objective is built with (schedule, noise).

    A closure made by a factory is described by the factory and the values it captured
    (``schedules.constant(5.0)`` as ``"latent_jax.schedules.constant(value=5.0)"``), a
    ``functools.partial`` by its function and arguments, a dataclass instance (such as
    :class:`latent_jax.corruption.Corruption`) by its ``repr``, another function by its
    dotted name; a resumed run compares these to tell whether it trains the same objective.
    """
    if isinstance(fn, bool | int | float | str) or fn is None:
        return fn
    if isinstance(fn, tuple | list):
        return [describe_function(item) for item in fn]
    if isinstance(fn, functools.partial):
        arguments = [repr(describe_function(a)) for a in fn.args]
        arguments += [f"{k}={describe_function(v)!r}" for k, v in sorted(fn.keywords.items())]
        return f"{describe_function(fn.func)}({', '.join(arguments)})"
    if dataclasses.is_dataclass(fn) and not isinstance(fn, type):
        return repr(fn)
    if hasattr(fn, "shape") and hasattr(fn, "dtype"):
        values = np.asarray(fn)
        return values.tolist() if values.size <= 16 else f"array{values.shape}"
    if not callable(fn):
        return type(fn).__name__
    module = getattr(fn, "__module__", None) or type(fn).__module__
    name = getattr(fn, "__qualname__", None) or type(fn).__qualname__
    code, cells = getattr(fn, "__code__", None), getattr(fn, "__closure__", None)
    if "<locals>" not in name or code is None or not cells:
        return f"{module}.{name}"
    factory = name.split(".<locals>")[0]
    captured = ", ".join(
        f"{var}={describe_function(cell.cell_contents)!r}"
        for var, cell in zip(code.co_freevars, cells, strict=True)
    )
    return f"{module}.{factory}({captured})"


def masked_mean(values: Array, mask: Array) -> Array:
    """The mean of per-example ``values`` over the rows where ``mask`` is 1.

    Args:
        values: array of shape (batch,).
        mask: array of shape (batch,) with 1.0 for real rows and 0.0 for padding.

    Returns:
        A scalar: ``sum(mask * values) / sum(mask)`` (0 when the mask is empty).
    """
    mask = mask.astype(values.dtype)
    # where(), not a product, so a non-finite value in a padding row cannot leak in as NaN.
    total = jnp.sum(jnp.where(mask > 0, mask * values, 0.0))
    return total / jnp.maximum(jnp.sum(mask), 1.0)


def _flatten(x: Array) -> Array:
    return jnp.reshape(x, (x.shape[0], -1))


def per_example_mse(prediction: Array, target: Array) -> Array:
    """Mean over features of the squared error, one value per example.

    Args:
        prediction: array of shape (batch, ...features).
        target: array of the same shape.

    Returns:
        Array of shape (batch,).
    """
    return jnp.mean(jnp.square(_flatten(prediction) - _flatten(target)), axis=-1)


def per_example_sse(prediction: Array, target: Array) -> Array:
    """Sum over features of the squared error, one value per example.

    Args:
        prediction: array of shape (batch, ...features).
        target: array of the same shape.

    Returns:
        Array of shape (batch,).
    """
    return jnp.sum(jnp.square(_flatten(prediction) - _flatten(target)), axis=-1)


def split_variables(variables: Mapping[str, Any]) -> tuple[Any, dict]:
    """Splits linen variables into ``params`` and the other collections (``model_state``)."""
    variables = dict(variables)
    params = variables.pop("params", {})
    return params, variables


def _call_options(model: Any, method: str = "__call__") -> tuple[bool, bool]:
    """Whether the model's ``method`` (``__call__`` by default) declares ``train`` and ``mask``."""
    try:
        parameters = inspect.signature(getattr(type(model), method)).parameters
    except (TypeError, ValueError):
        return False, False
    has_kwargs = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    return ("train" in parameters or has_kwargs), "mask" in parameters


def _check_model(model: Any) -> None:
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a flax.linen Module, got {type(model).__name__}")


class _Caller:
    """Calls a linen model in training or inference mode, threading mutable collections.

    This is the engine's caller, inside the loss: it passes ``train`` and the row ``mask`` and
    returns BatchNorm's updated statistics in training mode. Everything outside a loss runs a
    trained model through :func:`latent_jax.models.inference.apply_inference` instead (which
    objectives, below models in the dependency order, do not import); for the library's
    models both pass ``train=False`` in inference mode.
    """

    def __init__(self, model: nn.Module, method: str = "__call__"):
        self.model = model
        self.method = None if method == "__call__" else method
        self.takes_train, self.takes_mask = _call_options(model, method)

    def init(self, key: Array, x: Array, *extra: Any) -> dict:
        params_key, dropout_key = jax.random.split(key)
        kwargs = {"train": False} if self.takes_train else {}
        variables = self.model.init(
            {"params": params_key, "dropout": dropout_key}, x, *extra, **kwargs
        )
        return dict(variables)

    def apply(
        self,
        params: Any,
        model_state: Mapping[str, Any],
        batch: Batch,
        key: Array,
        train: bool,
        *extra: Any,
    ) -> tuple[Any, dict]:
        kwargs: dict[str, Any] = {}
        if self.takes_train:
            kwargs["train"] = train
        if self.takes_mask:
            kwargs["mask"] = batch.mask > 0
        variables = {"params": params, **model_state}
        rngs = {"dropout": key}
        if self.method is not None:
            kwargs["method"] = self.method
        if train and model_state:
            out, updates = self.model.apply(
                variables, batch.x, *extra, rngs=rngs, mutable=list(model_state), **kwargs
            )
            return out, {**model_state, **updates}
        return self.model.apply(variables, batch.x, *extra, rngs=rngs, **kwargs), dict(model_state)


def _check_reconstruction(reconstruction: Any, x: Array, what: str) -> Array:
    if not hasattr(reconstruction, "shape"):
        raise TypeError(f"{what} must return an array, got {type(reconstruction).__name__}")
    if reconstruction.shape != x.shape:
        raise ValueError(
            f"{what} returned a reconstruction of shape {tuple(reconstruction.shape[1:])} per "
            f"example for inputs of shape {tuple(x.shape[1:])}: the model does not fit data "
            "of this shape"
        )
    return reconstruction


def autoencoder_objective(model: nn.Module) -> Objective:
    """The plain autoencoder's objective: mean squared reconstruction error.

    Per example: the mean over features of :math:`(\\hat x - x)^2`; per batch: the masked mean
    over examples (for a full batch, PyTorch's ``nn.MSELoss()``, the tutorial's criterion).

    Metrics: ``loss`` and ``reconstruction`` (the same value).

    Args:
        model: a linen autoencoder, ``model(x) -> reconstruction`` of the shape of ``x``.

    Returns:
        The :class:`Objective`.
    """
    _check_model(model)
    caller = _Caller(model)

    def init(key: Array, x: Array) -> dict:
        return caller.init(key, x)

    def loss(
        params: Any,
        model_state: Mapping[str, Any],
        batch: Batch,
        key: Array,
        step: Array,
        epoch: Array,
        train: bool = True,
    ) -> tuple[Array, tuple[Metrics, dict]]:
        del step, epoch
        train = validation.check_bool("train", train)
        reconstruction, new_state = caller.apply(params, model_state, batch, key, train)
        _check_reconstruction(reconstruction, batch.x, "the autoencoder")
        value = masked_mean(per_example_mse(reconstruction, batch.x), batch.mask)
        return value, ({"loss": value, "reconstruction": value}, new_state)

    return Objective(init=init, loss=loss, model=model, name="autoencoder")


def denoising_objective(model: nn.Module, corruption: CorruptionFn) -> Objective:
    """The denoising autoencoder's objective: reconstruct the clean input from a corrupted one.

    The model sees ``corruption(key, x)``; the loss compares its output with the **clean**
    ``x`` (per example the mean over features of the squared error, then the masked mean).
    The corruption key is split from the step's key, so every step draws fresh noise and
    evaluation (which uses a fixed key) sees the same noise every epoch.

    Metrics: ``loss`` and ``reconstruction`` (the same value), and ``corrupted_mse``, the
    error of the corrupted input itself against the clean one: the score of a model that
    returns its input, for comparison.

    Args:
        model: a linen autoencoder, ``model(x) -> reconstruction`` of the shape of ``x``.
        corruption: ``corrupt(key, x) -> x_noisy`` (see :mod:`latent_jax.corruption`).

    Returns:
        The :class:`Objective`.
    """
    _check_model(model)
    if not callable(corruption):
        raise TypeError(f"corruption must be callable (key, x) -> x, got {corruption!r}")
    caller = _Caller(model)

    def init(key: Array, x: Array) -> dict:
        return caller.init(key, x)

    def loss(
        params: Any,
        model_state: Mapping[str, Any],
        batch: Batch,
        key: Array,
        step: Array,
        epoch: Array,
        train: bool = True,
    ) -> tuple[Array, tuple[Metrics, dict]]:
        del step, epoch
        train = validation.check_bool("train", train)
        noise_key, model_key = jax.random.split(key)
        noisy = corruption(noise_key, batch.x)
        if noisy.shape != batch.x.shape:
            raise ValueError(
                f"corruption changed the input's shape from {batch.x.shape} to {noisy.shape}"
            )
        noisy = noisy.astype(batch.x.dtype)
        reconstruction, new_state = caller.apply(
            params, model_state, batch._replace(x=noisy), model_key, train
        )
        _check_reconstruction(reconstruction, batch.x, "the denoising autoencoder")
        value = masked_mean(per_example_mse(reconstruction, batch.x), batch.mask)
        baseline = masked_mean(per_example_mse(noisy, batch.x), batch.mask)
        metrics = {"loss": value, "reconstruction": value, "corrupted_mse": baseline}
        return value, (metrics, new_state)

    spec = {"corruption": describe_function(corruption)}
    return Objective(init=init, loss=loss, model=model, name="denoising", spec=spec)


def bernoulli_binarize(key: Array, x: Array) -> Array:
    r"""Dynamic binarization: each value becomes 1 with its own probability, else 0.

    Value :math:`x_j \in [0, 1]` is replaced by a draw :math:`b_j \sim \mathrm{Bernoulli}(x_j)`,
    independently (``jax.random.bernoulli(key, x)``), so :math:`\mathbb{E}[b] = x`. With a fresh
    key at every step a model with a Bernoulli likelihood trains on binary data whose pixel
    means are the grey levels (Burda et al. 2016, Salakhutdinov and Murray 2008). Values below
    0 act as 0 and values above 1 as 1. Safe under ``jax.jit`` (no value checks).

    Args:
        key: a ``jax.random`` key, consumed.
        x: float array of any shape, values in [0, 1].

    Returns:
        Array of the shape and dtype of ``x`` holding 0.0 and 1.0.

    Raises:
        TypeError: for a non-float ``x``.
    """
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise TypeError(f"x must be a float array of probabilities, got dtype {x.dtype}")
    return jax.random.bernoulli(key, x).astype(x.dtype)


def _check_noise(model: Any, likelihood: Any, obs_logvar: Any) -> bool:
    """Checks the likelihood and its noise; returns whether the model learns the noise."""
    if likelihood not in LIKELIHOODS:
        raise ValueError(f"likelihood must be one of {LIKELIHOODS}, got {likelihood!r}")
    learned_noise = isinstance(obs_logvar, str) and obs_logvar == "learned"
    if learned_noise:
        if likelihood != "gaussian":
            raise ValueError(
                f'obs_logvar="learned" needs likelihood="gaussian", got {likelihood!r}'
            )
        if not callable(getattr(model, "observation_logvar", None)):
            raise TypeError(
                'obs_logvar="learned" needs a model with an observation_logvar() method, got '
                f"{type(model).__name__}"
            )
    elif isinstance(obs_logvar, bool) or not isinstance(obs_logvar, int | float):
        raise TypeError(f'obs_logvar must be a real number or "learned", got {obs_logvar!r}')
    elif not math.isfinite(obs_logvar):
        raise ValueError(f"obs_logvar must be finite, got {obs_logvar=}")
    return learned_noise


def _noise_logvar(
    model: nn.Module, params: Any, model_state: Mapping[str, Any], learned: bool, obs_logvar: Any
) -> Any:
    if learned:
        return model.apply({"params": params, **model_state}, method="observation_logvar")
    return obs_logvar


def _reconstruction_term(likelihood: str, output: Array, x: Array, noise_logvar: Any) -> Array:
    """Per example, the reconstruction term (minus the log-likelihood): shape (batch,)."""
    if likelihood == "sse":
        return per_example_sse(output, x)
    if likelihood == "gaussian":
        return -gaussian_log_likelihood(_flatten(x), _flatten(output), noise_logvar)
    return -bernoulli_log_likelihood(_flatten(x), _flatten(output))


def _binarized(batch: Batch, key: Array, binarize: bool) -> tuple[Batch, Array]:
    """With ``binarize``, the batch's inputs drawn binary with a key split off ``key``."""
    if not binarize:
        return batch, key
    binarize_key, key = jax.random.split(key)
    return batch._replace(x=bernoulli_binarize(binarize_key, batch.x)), key


def vae_objective(
    model: nn.Module,
    beta_schedule: schedules.Schedule | None = None,
    *,
    likelihood: str = "sse",
    beta_unit: str = "epoch",
    obs_logvar: float | str = 0.0,
    binarize: bool = False,
) -> Objective:
    r"""The (β-)VAE's objective: reconstruction plus β times the KL term.

    .. math::

        \ell_i = \mathrm{rec}_i + \beta(t)\, D_{KL}(q(z|x_i) \,\|\, \mathcal{N}(0, I)),

    per example, then the masked mean over examples. ``reconstruction`` per example is

    * ``"sse"``: :math:`\sum_j (\hat x_{ij} - x_{ij})^2`, the tutorial's summed MSE;
    * ``"gaussian"``: :math:`-\log \mathcal{N}(x_i; \hat x_i, e^{l} I)` with the fixed
      observation log-variance ``obs_logvar`` (with constants; ``obs_logvar=0`` gives
      :math:`\tfrac12 \mathrm{SSE} + \tfrac D2 \log 2\pi`), or with ``obs_logvar="learned"``
      the log-variance the model learns, read from its ``observation_logvar()`` method (a
      scalar or one value per feature, e.g. :class:`latent_jax.models.linear.LinearVAE`);
    * ``"bernoulli"``: :math:`-\sum_j [x_{ij}\log s(a_{ij}) + (1-x_{ij})\log(1-s(a_{ij}))]`
      with the decoder output :math:`a` read as logits (data in [0, 1]).

    β is ``beta_schedule(count)`` where the count is the 0-based epoch
    (``beta_unit="epoch"``, the tutorial's ``beta(epoch)``: constant within an epoch, and the test
    loss of epoch ``e`` uses ``beta(e)`` like the tutorial) or the optimizer step
    (``beta_unit="step"``; at evaluation, the number of steps done).

    With ``binarize=True`` the inputs are binarized dynamically (:func:`bernoulli_binarize`)
    before the model sees them, and scored against that binary draw: the key of each step is
    first split into a binarization key and the rest (which the model uses as without
    binarization). Training draws a fresh binarization every step; evaluation
    (``train=False``) uses the same rule with the key it is given, which the engine keeps
    fixed, so the test rows are binarized the same way every epoch. Without it the key is
    split as ``sample_key, model_key = split(key)`` (the reparameterization draw and the
    model's other randomness).

    Metrics: ``loss``, ``reconstruction``, ``kl`` (masked means over examples) and ``beta``;
    ``loss == reconstruction + beta * kl`` for the reported values.

    Args:
        model: a linen VAE, ``model(x, key) -> (reconstruction, mean, logvar)``.
        beta_schedule: ``schedule(count) -> beta`` (see :mod:`latent_jax.schedules`); the
            default is the constant 1 (the plain VAE's negative ELBO with ``"gaussian"`` or
            ``"bernoulli"``).
        likelihood: ``"sse"``, ``"gaussian"`` or ``"bernoulli"``.
        beta_unit: ``"epoch"`` or ``"step"``, what the schedule counts.
        obs_logvar: the Gaussian likelihood's log-variance (only for ``"gaussian"``), or
            ``"learned"`` to use the model's ``observation_logvar()``.
        binarize: train on dynamically binarized inputs (values in [0, 1]; usually with
            ``likelihood="bernoulli"``).

    Returns:
        The :class:`Objective`.
    """
    _check_model(model)
    if beta_schedule is None:
        beta_schedule = schedules.constant(1.0)
    if not callable(beta_schedule):
        raise TypeError(f"beta_schedule must be callable count -> beta, got {beta_schedule!r}")
    learned_noise = _check_noise(model, likelihood, obs_logvar)
    if beta_unit not in BETA_UNITS:
        raise ValueError(f"beta_unit must be one of {BETA_UNITS}, got {beta_unit!r}")
    binarize = validation.check_bool("binarize", binarize)
    caller = _Caller(model)

    def init(key: Array, x: Array) -> dict:
        init_key, sample_key = jax.random.split(key)
        return caller.init(init_key, x, sample_key)

    def loss(
        params: Any,
        model_state: Mapping[str, Any],
        batch: Batch,
        key: Array,
        step: Array,
        epoch: Array,
        train: bool = True,
    ) -> tuple[Array, tuple[Metrics, dict]]:
        train = validation.check_bool("train", train)
        batch, key = _binarized(batch, key, binarize)
        sample_key, model_key = jax.random.split(key)
        out, new_state = caller.apply(params, model_state, batch, model_key, train, sample_key)
        if not isinstance(out, tuple | list) or len(out) != 3:
            raise TypeError(
                "a VAE must return (reconstruction, mean, logvar), got "
                f"{type(out).__name__} of length {len(out) if isinstance(out, tuple | list) else 1}"
            )
        output, mean, logvar = out
        _check_reconstruction(output, batch.x, "the VAE")
        noise_logvar = _noise_logvar(model, params, model_state, learned_noise, obs_logvar)
        rec = masked_mean(
            _reconstruction_term(likelihood, output, batch.x, noise_logvar), batch.mask
        )
        kl = masked_mean(kl_standard_normal(_flatten(mean), _flatten(logvar)), batch.mask)
        count = epoch if beta_unit == "epoch" else step
        beta = jnp.asarray(beta_schedule(count), jnp.float32).reshape(())
        value = rec + beta * kl
        metrics = {"loss": value, "reconstruction": rec, "kl": kl, "beta": beta}
        return value, (metrics, new_state)

    spec = {
        "likelihood": likelihood,
        "beta_schedule": describe_function(beta_schedule),
        "beta_unit": beta_unit,
        "obs_logvar": obs_logvar,
        "binarize": binarize,
    }
    return Objective(init=init, loss=loss, model=model, name="vae", spec=spec)


def _check_posterior(posterior: Any, x: Array) -> tuple[Array, Array]:
    if not isinstance(posterior, tuple | list) or len(posterior) != 2:
        raise TypeError(
            f"a VAE's encode must return (mean, logvar), got {type(posterior).__name__}"
        )
    mean, logvar = (_flatten(jnp.asarray(a)) for a in posterior)
    if mean.shape != logvar.shape or mean.shape[0] != x.shape[0]:
        raise ValueError(
            f"a VAE's encode returned mean {mean.shape} and logvar {logvar.shape} for "
            f"{x.shape[0]} examples: expected two arrays of shape ({x.shape[0]}, latent_dim)"
        )
    return mean, logvar


def iwae_objective(
    model: nn.Module,
    k: int,
    *,
    likelihood: str = "bernoulli",
    binarize: bool = False,
    gradient: str = "standard",
    obs_logvar: float | str = 0.0,
) -> Objective:
    r"""The importance-weighted autoencoder's objective (Burda, Grosse & Salakhutdinov 2016).

    Per example, minus the k-sample importance-weighted bound

    .. math::

        \mathcal{L}_k(x) = \log \frac1k \sum_{i=1}^k w_i, \qquad
        w_i = \frac{p(x \mid z_i)\, p(z_i)}{q(z_i \mid x)}, \quad z_i \sim q(z \mid x),

    then the masked mean over the batch. :math:`\mathcal{L}_k` is a lower bound on
    :math:`\log p(x)`, non-decreasing in k in expectation. :math:`\log p(x \mid z)` is minus
    the reconstruction term of :func:`vae_objective` for the same ``likelihood`` (for
    ``"sse"``, minus the summed squared error: a Gaussian of variance 1/2 up to a constant,
    which shifts the bound and leaves its gradient alone). The k latents of an example are
    decoded as one batch of k × batch rows.

    At ``k = 1`` (with ``gradient="standard"``) the bound is the ELBO with the closed-form KL
    term, the VAE's estimator (same expectation as the sampled log-weight, lower variance):
    the loss, its gradient and the new model state are those of ``vae_objective(model,
    likelihood=likelihood, binarize=binarize)`` (β = 1) for the same key, to float32
    round-off. For ``k > 1`` the weights use :math:`\log q(z_i|x)` and :math:`\log p(z_i)`
    sampled.

    ``gradient="dreg"`` is the doubly reparameterized estimator of Tucker et al. (2019): the
    decoder's gradient is the standard one, :math:`\sum_i \tilde w_i \nabla_\theta \log w_i`;
    the encoder's gets only the path through :math:`z_i`, with :math:`\log q` evaluated at
    stopped variational parameters and weighted by the squared normalized weights
    :math:`\tilde w_i^2` (:math:`\tilde w_i = w_i / \sum_j w_j`): unbiased, and of lower
    variance as k grows. Its value is the standard bound's (its sampled form also at k = 1);
    it costs one more decoder pass (to know the weights before the reweighted pass; that
    pass's BatchNorm statistics are discarded).

    Keys, as in :func:`vae_objective`: with ``binarize`` a binarization key is split off first
    (:func:`bernoulli_binarize`, evaluation on the engine's fixed key), then
    ``sample_key, model_key = split(key)``; the k draws are
    ``normal(sample_key, (k, batch, latent_dim))``.

    Metrics (masked means over examples): ``loss`` (:math:`-\mathcal{L}_k`), ``iwae_bound``
    (:math:`\mathcal{L}_k`), ``elbo`` (``-(reconstruction + kl)``, the ELBO estimate from the
    same draws), ``reconstruction`` (the reconstruction term averaged over the k draws),
    ``kl`` (closed form) and ``ess``, the effective sample size of the normalized weights
    :math:`1 / \sum_i \tilde w_i^2`, in [1, k].

    Args:
        model: a linen VAE with ``encode(x) -> (mean, logvar)`` and ``decode(z) -> output``
            (each may declare ``train`` and ``mask``, like :class:`~latent_jax.models.conv.
            ConvVAE`), and ``model(x, key)`` for initialization.
        k: the number of importance samples, >= 1.
        likelihood: ``"sse"``, ``"gaussian"`` or ``"bernoulli"`` (the default, with the
            decoder's output as logits).
        binarize: train on dynamically binarized inputs (see :func:`vae_objective`).
        gradient: ``"standard"`` or ``"dreg"``.
        obs_logvar: the Gaussian likelihood's log-variance, or ``"learned"``.

    Returns:
        The :class:`Objective` (named ``"iwae"``).

    Raises:
        TypeError: for a model without ``encode``/``decode`` or a non-bool ``binarize``.
        ValueError: for ``k < 1`` or an unknown likelihood or gradient estimator.
    """
    _check_model(model)
    for method in ("encode", "decode"):
        if not callable(getattr(model, method, None)):
            raise TypeError(
                f"model must be a VAE with encode and decode methods, got {type(model).__name__}"
            )
    k = validation.check_int("k", k, 1)
    learned_noise = _check_noise(model, likelihood, obs_logvar)
    binarize = validation.check_bool("binarize", binarize)
    gradient = validation.check_choice("gradient", gradient, GRADIENT_ESTIMATORS)
    closed_form_kl = k == 1 and gradient == "standard"
    caller, encoder, decoder = _Caller(model), _Caller(model, "encode"), _Caller(model, "decode")

    def init(key: Array, x: Array) -> dict:
        init_key, sample_key = jax.random.split(key)
        return caller.init(init_key, x, sample_key)

    def loss(
        params: Any,
        model_state: Mapping[str, Any],
        batch: Batch,
        key: Array,
        step: Array,
        epoch: Array,
        train: bool = True,
    ) -> tuple[Array, tuple[Metrics, dict]]:
        del step, epoch
        train = validation.check_bool("train", train)
        batch, key = _binarized(batch, key, binarize)
        sample_key, model_key = jax.random.split(key)
        posterior, state = encoder.apply(params, model_state, batch, model_key, train)
        mean, logvar = _check_posterior(posterior, batch.x)
        n = batch.x.shape[0]
        eps = jax.random.normal(sample_key, (k, *mean.shape), mean.dtype)
        z = mean + jnp.exp(0.5 * logvar) * eps
        x_rep = jnp.broadcast_to(batch.x, (k, *batch.x.shape)).reshape((k * n, *batch.x.shape[1:]))
        rows = Batch(x_rep, jnp.tile(batch.mask, k))
        noise_logvar = _noise_logvar(model, params, model_state, learned_noise, obs_logvar)

        def log_likelihood(z: Array, state: dict) -> tuple[Array, dict]:
            """log p(x | z_i), shape (k, batch), and the model state after decoding."""
            output, state = decoder.apply(
                params, state, rows._replace(x=z.reshape((k * n, -1))), model_key, train
            )
            _check_reconstruction(output, x_rep, "the VAE's decode")
            rec = _reconstruction_term(likelihood, output, x_rep, noise_logvar)
            return -rec.reshape((k, n)), state

        def log_weights(log_px: Array, z: Array, z_mean: Array, z_logvar: Array) -> Array:
            log_qz = gaussian_log_likelihood(z, z_mean, z_logvar)
            return log_px + gaussian_log_likelihood(z, 0.0, 0.0) - log_qz

        kl_i = kl_standard_normal(mean, logvar)
        kl = masked_mean(kl_i, batch.mask)
        if gradient == "dreg":
            # The normalized weights first (no gradient, BatchNorm updates dropped), then the
            # bound again at a z whose gradient to the encoder is scaled by them: the
            # encoder's path gradient w_i * d/dz log w_i becomes w_i^2 * d/dz log w_i.
            frozen = jax.lax.stop_gradient
            log_px, _ = log_likelihood(frozen(z), state)
            weights = jax.nn.softmax(
                frozen(log_weights(log_px, frozen(z), frozen(mean), frozen(logvar))), axis=0
            )
            z = frozen(z) + weights[..., None] * (z - frozen(z))
            log_px, state = log_likelihood(z, state)
            log_w = log_weights(log_px, z, frozen(mean), frozen(logvar))
        else:
            log_px, state = log_likelihood(z, state)
            # log q(z_i | x) from eps itself: exact, no cancellation of (z - mean) / sigma.
            log_qz = -0.5 * jnp.sum(math.log(2 * math.pi) + logvar + jnp.square(eps), axis=-1)
            log_w = log_px + gaussian_log_likelihood(z, 0.0, 0.0) - log_qz
        rec = masked_mean(-jnp.mean(log_px, axis=0), batch.mask)
        if closed_form_kl:
            value = rec + kl
            ess = jnp.ones((), jnp.float32)
        else:
            bound = jax.nn.logsumexp(log_w, axis=0) - math.log(k)
            value = masked_mean(-bound, batch.mask)
            normalized = jax.nn.softmax(log_w, axis=0)
            ess = masked_mean(1.0 / jnp.sum(jnp.square(normalized), axis=0), batch.mask)
        metrics = {
            "loss": value,
            "iwae_bound": -value,
            "elbo": -(rec + kl),
            "reconstruction": rec,
            "kl": kl,
            "ess": ess,
        }
        return value, (metrics, state)

    spec = {
        "k": k,
        "likelihood": likelihood,
        "binarize": binarize,
        "gradient": gradient,
        "obs_logvar": obs_logvar,
    }
    return Objective(init=init, loss=loss, model=model, name="iwae", spec=spec)


def deep_svdd_objective(model: nn.Module, *, weight_decay: float = 1e-6) -> Objective:
    r"""One-class Deep SVDD's objective (Ruff et al., 2018): pull the data to the centre.

    .. math::

        \frac{1}{n}\sum_i \lVert \phi(x_i; W) - c \rVert^2
        + \frac{\lambda}{2} \sum_l \lVert W^l \rVert_F^2,

    the first term the masked mean over examples of the model's output (the squared distance
    to the centre :math:`c`, which the model keeps in its variables and training never
    changes), the second the weight decay over every parameter (the paper's networks have
    weights only). The decay is the paper's L2 term inside the loss (PyTorch Adam's
    ``weight_decay``), not AdamW's decoupled decay.

    Metrics: ``loss``, ``distance`` (the mean squared distance) and ``weight_decay`` (the
    penalty term); ``loss == distance + weight_decay``.

    Args:
        model: a network whose ``__call__(x) -> (batch,)`` is the squared distance to its
            centre, such as :class:`latent_jax.models.svdd.DeepSVDDConv`.
        weight_decay: :math:`\lambda`, >= 0 (the paper's: 1e-6).

    Returns:
        The :class:`Objective`.
    """
    _check_model(model)
    decay = validation.check_real("weight_decay", weight_decay, nonnegative=True)
    caller = _Caller(model)

    def init(key: Array, x: Array) -> dict:
        return caller.init(key, x)

    def loss(
        params: Any,
        model_state: Mapping[str, Any],
        batch: Batch,
        key: Array,
        step: Array,
        epoch: Array,
        train: bool = True,
    ) -> tuple[Array, tuple[Metrics, dict]]:
        del step, epoch
        train = validation.check_bool("train", train)
        distances, new_state = caller.apply(params, model_state, batch, key, train)
        if not hasattr(distances, "shape") or distances.shape != batch.mask.shape:
            raise ValueError(
                "a Deep SVDD model must return one squared distance per example, shape "
                f"{tuple(batch.mask.shape)}, got {getattr(distances, 'shape', distances)!r}"
            )
        distance = masked_mean(distances, batch.mask)
        squares = sum(jnp.sum(jnp.square(w)) for w in jax.tree.leaves(params))
        penalty = 0.5 * decay * jnp.asarray(squares, jnp.float32)
        value = distance + penalty
        return value, ({"loss": value, "distance": distance, "weight_decay": penalty}, new_state)

    return Objective(
        init=init, loss=loss, model=model, name="deep-svdd", spec={"weight_decay": decay}
    )
