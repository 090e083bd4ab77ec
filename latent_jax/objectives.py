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

A model that declares ``mask`` receives a bool array of shape (batch,), ``True`` for real rows,
and can pass it to :class:`latent_jax.models.layers.BatchNorm` (``mask=...``) so padding rows
do not enter the batch statistics of the last, ragged batch (flax's ``nn.BatchNorm`` takes a
mask too, but only one broadcast to the activation's full shape, which costs a pass over it).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import Array

from latent_jax import schedules, validation
from latent_jax.corruption import CorruptionFn
from latent_jax.gaussian import (
    bernoulli_log_likelihood,
    gaussian_log_likelihood,
    kl_standard_normal,
)

__all__ = [
    "LIKELIHOODS",
    "Batch",
    "Objective",
    "autoencoder_objective",
    "denoising_objective",
    "masked_mean",
    "per_example_mse",
    "per_example_sse",
    "split_variables",
    "vae_objective",
]

LIKELIHOODS = ("sse", "gaussian", "bernoulli")
BETA_UNITS = ("step", "epoch")

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
    """

    init: Callable[[Array, Array], dict]
    loss: LossFn
    model: Any
    name: str


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


def _call_options(model: Any) -> tuple[bool, bool]:
    """Whether the model's ``__call__`` declares ``train`` and ``mask``."""
    try:
        parameters = inspect.signature(type(model).__call__).parameters
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

    def __init__(self, model: nn.Module):
        self.model = model
        self.takes_train, self.takes_mask = _call_options(model)

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

    return Objective(init=init, loss=loss, model=model, name="denoising")


def vae_objective(
    model: nn.Module,
    beta_schedule: schedules.Schedule | None = None,
    *,
    likelihood: str = "sse",
    beta_unit: str = "epoch",
    obs_logvar: float | str = 0.0,
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

    Returns:
        The :class:`Objective`.
    """
    _check_model(model)
    if beta_schedule is None:
        beta_schedule = schedules.constant(1.0)
    if not callable(beta_schedule):
        raise TypeError(f"beta_schedule must be callable count -> beta, got {beta_schedule!r}")
    if likelihood not in LIKELIHOODS:
        raise ValueError(f"likelihood must be one of {LIKELIHOODS}, got {likelihood!r}")
    if beta_unit not in BETA_UNITS:
        raise ValueError(f"beta_unit must be one of {BETA_UNITS}, got {beta_unit!r}")
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
    caller = _Caller(model)

    def init(key: Array, x: Array) -> dict:
        init_key, sample_key = jax.random.split(key)
        return caller.init(init_key, x, sample_key)

    def reconstruction_term(output: Array, x: Array, noise_logvar: Any) -> Array:
        if likelihood == "sse":
            return per_example_sse(output, x)
        if likelihood == "gaussian":
            return -gaussian_log_likelihood(_flatten(x), _flatten(output), noise_logvar)
        return -bernoulli_log_likelihood(_flatten(x), _flatten(output))

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
        sample_key, model_key = jax.random.split(key)
        out, new_state = caller.apply(params, model_state, batch, model_key, train, sample_key)
        if not isinstance(out, tuple | list) or len(out) != 3:
            raise TypeError(
                "a VAE must return (reconstruction, mean, logvar), got "
                f"{type(out).__name__} of length {len(out) if isinstance(out, tuple | list) else 1}"
            )
        output, mean, logvar = out
        _check_reconstruction(output, batch.x, "the VAE")
        noise_logvar = obs_logvar
        if learned_noise:
            variables = {"params": params, **model_state}
            noise_logvar = model.apply(variables, method="observation_logvar")
        rec = masked_mean(reconstruction_term(output, batch.x, noise_logvar), batch.mask)
        kl = masked_mean(kl_standard_normal(_flatten(mean), _flatten(logvar)), batch.mask)
        count = epoch if beta_unit == "epoch" else step
        beta = jnp.asarray(beta_schedule(count), jnp.float32).reshape(())
        value = rec + beta * kl
        metrics = {"loss": value, "reconstruction": rec, "kl": kl, "beta": beta}
        return value, (metrics, new_state)

    return Objective(init=init, loss=loss, model=model, name="vae")
