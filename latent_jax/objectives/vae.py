r"""The (β-)VAE's objective, its likelihoods and dynamic binarization.

Per example, ``reconstruction`` is the **sum** over features of the squared error
(``likelihood="sse"``, the tutorial's ``F.mse_loss(..., reduction='sum')``), or the negative
Gaussian or Bernoulli log-likelihood; ``kl`` is the per-example
:math:`D_{KL}(q(z|x)\,\|\,\mathcal{N}(0, I))`. Averaged over examples these are the numbers
the tutorial logs (its batch sums divided by the dataset size).

One deliberate difference from the tutorial: the tutorial's VAE back-propagates the batch **sum**
(the mean times the batch size); here every loss is a mean over examples. With Adam the update
is invariant to a constant factor on the loss except through ``eps``, so the trained models
agree; with SGD the learning rate has to be scaled by the batch size to match.

VAEs are called as ``model.apply(variables, x, key, train=train, mask=mask) ->
(reconstruction, mean, logvar)``, with ``mean`` and ``logvar`` of shape (batch, latent_dim).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import Array

from latent_jax import schedules, validation
from latent_jax.gaussian import (
    bernoulli_log_likelihood,
    gaussian_log_likelihood,
    kl_standard_normal,
    reparameterize,
)
from latent_jax.objectives.base import (
    Batch,
    Context,
    Metrics,
    ModelCaller,
    Objective,
    check_model,
    check_reconstruction,
    context_loss,
    describe_function,
    flatten_examples,
    masked_mean,
    per_example_sse,
)
from latent_jax.objectives.bound import LIKELIHOODS, check_likelihood
from latent_jax.objectives.registry import Option, register_objective

__all__ = [
    "BETA_UNITS",
    "BINARIZE",
    "LIKELIHOOD",
    "LIKELIHOODS",
    "ElboTerms",
    "EncodedBatch",
    "EncoderDecoderTerms",
    "MeanCode",
    "MeanCodeTerms",
    "bernoulli_binarize",
    "check_posterior",
    "reconstruction_term",
    "vae_objective",
]

BETA_UNITS = schedules.UNITS
# The options every VAE objective shares (the flags --likelihood and --binarize).
LIKELIHOOD = Option(
    "likelihood",
    str,
    "sse",
    "reconstruction term: summed squared error, Gaussian, or Bernoulli (logits)",
    LIKELIHOODS,
)
BINARIZE = Option(
    "binarize",
    bool,
    False,
    "dynamic binarization: a fresh Bernoulli draw of the [0, 1] inputs every step",
)


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


def check_noise(model: Any, likelihood: Any, obs_logvar: Any) -> bool:
    """Checks the likelihood and its noise (:func:`~latent_jax.objectives.bound.
    check_likelihood`) and that a model whose noise is learned can say it; returns whether the
    model learns the noise."""
    learned_noise = check_likelihood(likelihood, obs_logvar)
    if learned_noise and not callable(getattr(model, "observation_logvar", None)):
        raise TypeError(
            'obs_logvar="learned" needs a model with an observation_logvar() method, got '
            f"{type(model).__name__}"
        )
    return learned_noise


def noise_logvar(
    model: nn.Module, params: Any, model_state: Mapping[str, Any], learned: bool, obs_logvar: Any
) -> Any:
    """The Gaussian likelihood's log-variance: the model's learned one, or ``obs_logvar``."""
    if learned:
        return model.apply({"params": params, **model_state}, method="observation_logvar")
    return obs_logvar


def reconstruction_term(likelihood: str, output: Array, x: Array, noise_logvar: Any) -> Array:
    """Per example, the reconstruction term (minus the log-likelihood): shape (batch,)."""
    if likelihood == "sse":
        return per_example_sse(output, x)
    if likelihood == "gaussian":
        return -gaussian_log_likelihood(flatten_examples(x), flatten_examples(output), noise_logvar)
    return -bernoulli_log_likelihood(flatten_examples(x), flatten_examples(output))


def binarized(batch: Batch, key: Array, binarize: bool) -> tuple[Batch, Array]:
    """With ``binarize``, the batch's inputs drawn binary with a key split off ``key``."""
    if not binarize:
        return batch, key
    binarize_key, key = jax.random.split(key)
    return batch._replace(x=bernoulli_binarize(binarize_key, batch.x)), key


class ElboTerms:
    r"""The two terms of a VAE's bound on a batch, for every objective built on them.

    Called as ``terms(params, model_state, batch, key, train) -> (reconstruction, kl,
    new_model_state)``: with ``binarize``, the inputs drawn binary with a key split off first
    (:func:`bernoulli_binarize`); then ``sample_key, model_key = split(key)``, the model's
    ``(reconstruction, mean, logvar)`` for the reparameterization draw of ``sample_key``;
    ``reconstruction`` the masked mean of :func:`reconstruction_term` and ``kl`` the masked
    mean of :math:`D_{KL}(q(z|x)\,\|\,\mathcal{N}(0, I))`.

    Args:
        model: a linen VAE, ``model(x, key) -> (reconstruction, mean, logvar)``.
        likelihood: ``"sse"``, ``"gaussian"`` or ``"bernoulli"``.
        binarize: train on dynamically binarized inputs.
        obs_logvar: the Gaussian likelihood's log-variance, or ``"learned"``.
    """

    def __init__(
        self, model: nn.Module, *, likelihood: str, binarize: bool, obs_logvar: float | str
    ):
        check_model(model)
        self.model = model
        self.likelihood = likelihood
        self.learned_noise = check_noise(model, likelihood, obs_logvar)
        self.obs_logvar = obs_logvar
        self.binarize = validation.check_bool("binarize", binarize)
        self.caller = ModelCaller(model)

    def init(self, key: Array, x: Array) -> dict:
        """The VAE's variables for inputs ``x`` (an init key and a draw key split off ``key``)."""
        init_key, sample_key = jax.random.split(key)
        return self.caller.init(init_key, x, sample_key)

    def encoded(
        self, params: Any, model_state: Mapping[str, Any], batch: Batch, key: Array, train: bool
    ) -> EncodedBatch:
        """The batch through the VAE, per example: what objectives that weigh the codes
        themselves need (the draws, the posterior's parameters), besides the two terms.

        ``z`` is ``gaussian.reparameterize(sample_key, mean, logvar)``, the very draw the
        model decodes (every VAE of the library draws with that function and that key; the
        compiled program computes it once).
        """
        batch, key = binarized(batch, key, self.binarize)
        sample_key, model_key = jax.random.split(key)
        out, new_state = self.caller.apply(params, model_state, batch, model_key, train, sample_key)
        if not isinstance(out, tuple | list) or len(out) != 3:
            raise TypeError(
                "a VAE must return (reconstruction, mean, logvar), got "
                f"{type(out).__name__} of length {len(out) if isinstance(out, tuple | list) else 1}"
            )
        output, mean, logvar = out
        check_reconstruction(output, batch.x, "the VAE")
        logvar_x = noise_logvar(
            self.model, params, model_state, self.learned_noise, self.obs_logvar
        )
        mean, logvar = flatten_examples(mean), flatten_examples(logvar)
        return EncodedBatch(
            reconstruction=reconstruction_term(self.likelihood, output, batch.x, logvar_x),
            kl=kl_standard_normal(mean, logvar),
            mean=mean,
            logvar=logvar,
            z=reparameterize(sample_key, mean, logvar),
            model_state=new_state,
        )

    def __call__(
        self, params: Any, model_state: Mapping[str, Any], batch: Batch, key: Array, train: bool
    ) -> tuple[Array, Array, dict]:
        encoded = self.encoded(params, model_state, batch, key, train)
        rec = masked_mean(encoded.reconstruction, batch.mask)
        return rec, masked_mean(encoded.kl, batch.mask), encoded.model_state


class EncodedBatch(NamedTuple):
    r"""A batch through a VAE (:meth:`ElboTerms.encoded`).

    Attributes:
        reconstruction: the reconstruction term of each example, array of shape (batch,).
        kl: :math:`D_{KL}(q(z|x_i)\,\|\,\mathcal{N}(0, I))` of each example, shape (batch,).
        mean: the posterior means, array of shape (batch, latent_dim).
        logvar: the posterior log-variances, shape (batch, latent_dim).
        z: the reparameterized draws the model decoded, shape (batch, latent_dim).
        model_state: the model's collections after the call (BatchNorm statistics).
    """

    reconstruction: Array
    kl: Array
    mean: Array
    logvar: Array
    z: Array
    model_state: dict


def check_posterior(posterior: Any, x: Array) -> tuple[Array, Array]:
    """A VAE's ``encode`` output checked: ``(mean, logvar)``, each of shape (batch,
    latent_dim) for the batch ``x``.

    Raises:
        TypeError: for anything but a pair.
        ValueError: for shapes that do not match each other or the batch.
    """
    if not isinstance(posterior, tuple | list) or len(posterior) != 2:
        raise TypeError(
            f"a VAE's encode must return (mean, logvar), got {type(posterior).__name__}"
        )
    mean, logvar = (flatten_examples(jnp.asarray(a)) for a in posterior)
    if mean.shape != logvar.shape or mean.shape[0] != x.shape[0]:
        raise ValueError(
            f"a VAE's encode returned mean {mean.shape} and logvar {logvar.shape} for "
            f"{x.shape[0]} examples: expected two arrays of shape ({x.shape[0]}, latent_dim)"
        )
    return mean, logvar


class MeanCode(NamedTuple):
    """A batch through a VAE's encoder used deterministically (:meth:`MeanCodeTerms.encode`).

    Attributes:
        batch: the batch the model saw (binarized when the objective binarizes).
        z: the codes, the posterior means, array of shape (batch, latent_dim).
        model_state: the model's collections after the encoder (BatchNorm statistics).
        key: the model's key for the decoder (its ``dropout`` stream).
    """

    batch: Batch
    z: Array
    model_state: dict
    key: Array


class EncoderDecoderTerms:
    """A VAE called through its ``encode`` and ``decode`` (each with ``train`` and ``mask``
    where it declares them), for the objectives that draw or decode the codes themselves
    (:class:`MeanCodeTerms`; the multi-sample bounds of :mod:`latent_jax.objectives.miwae`).

    Args:
        model: a linen VAE with ``encode(x) -> (mean, logvar)``, ``decode(z)`` and
            ``model(x, key)`` (for initialization).
        likelihood: ``"sse"``, ``"gaussian"`` or ``"bernoulli"``.
        binarize: train on dynamically binarized inputs.
        obs_logvar: the Gaussian likelihood's log-variance, or ``"learned"``.

    Raises:
        TypeError: for a model without ``encode`` and ``decode``, or a non-bool ``binarize``.
    """

    def __init__(
        self, model: nn.Module, *, likelihood: str, binarize: bool, obs_logvar: float | str
    ):
        check_model(model)
        for method in ("encode", "decode"):
            if not callable(getattr(model, method, None)):
                raise TypeError(
                    "model must be a VAE with encode and decode methods, got "
                    f"{type(model).__name__}"
                )
        self.model = model
        self.likelihood = likelihood
        self.learned_noise = check_noise(model, likelihood, obs_logvar)
        self.obs_logvar = obs_logvar
        self.binarize = validation.check_bool("binarize", binarize)
        self.caller = ModelCaller(model)
        self.encoder, self.decoder = ModelCaller(model, "encode"), ModelCaller(model, "decode")

    def init(self, key: Array, x: Array) -> dict:
        """The VAE's variables for inputs ``x`` (an init key and a draw key split off ``key``)."""
        init_key, sample_key = jax.random.split(key)
        return self.caller.init(init_key, x, sample_key)

    def reconstruction(
        self, params: Any, model_state: Mapping[str, Any], output: Array, batch: Batch
    ) -> Array:
        """The reconstruction term of each example for the decoder's ``output``, shape
        (batch,)."""
        check_reconstruction(output, batch.x, "the VAE's decode")
        logvar_x = noise_logvar(
            self.model, params, model_state, self.learned_noise, self.obs_logvar
        )
        return reconstruction_term(self.likelihood, output, batch.x, logvar_x)


class MeanCodeTerms(EncoderDecoderTerms):
    r"""A VAE as a deterministic autoencoder, for the objectives that train it so (RAE, WAE):
    the code is the posterior mean :math:`z = \mu(x)`, decoded without noise; the encoder's
    log-variance is not used.

    Keys: with ``binarize`` the inputs are drawn binary with a key split off first (as
    :class:`ElboTerms` does); the rest is the model's key for ``encode`` and ``decode``.
    In training mode BatchNorm uses the real rows' statistics and the encoder's and the
    decoder's updates both come back. Arguments as :class:`EncoderDecoderTerms`.
    """

    def encode(
        self, params: Any, model_state: Mapping[str, Any], batch: Batch, key: Array, train: bool
    ) -> MeanCode:
        r"""The batch's codes :math:`\mu(x)`."""
        batch, key = binarized(batch, key, self.binarize)
        posterior, state = self.encoder.apply(params, model_state, batch, key, train)
        mean, _ = check_posterior(posterior, batch.x)
        return MeanCode(batch, mean, state, key)

    def decoding(
        self, params: Any, code: MeanCode, train: bool
    ) -> Callable[[Array], tuple[Array, dict]]:
        """``decode(z) -> (output, model_state)`` after :meth:`encode` (a function of the
        codes alone, for a gradient with respect to them)."""

        def decode(z: Array) -> tuple[Array, dict]:
            rows = code.batch._replace(x=z)
            return self.decoder.apply(params, code.model_state, rows, code.key, train)

        return decode


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
    check_model(model)
    if beta_schedule is None:
        beta_schedule = schedules.constant(1.0)
    if not callable(beta_schedule):
        raise TypeError(f"beta_schedule must be callable count -> beta, got {beta_schedule!r}")
    if beta_unit not in BETA_UNITS:
        raise ValueError(f"beta_unit must be one of {BETA_UNITS}, got {beta_unit!r}")
    terms = ElboTerms(model, likelihood=likelihood, binarize=binarize, obs_logvar=obs_logvar)

    @context_loss
    def loss(
        params: Any, model_state: Mapping[str, Any], batch: Batch, key: Array, context: Context
    ) -> tuple[Array, tuple[Metrics, dict]]:
        rec, kl, new_state = terms(params, model_state, batch, key, context.train)
        count = context.epoch if beta_unit == "epoch" else context.step
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
    return Objective(init=terms.init, loss=loss, model=model, name="vae", spec=spec)


@register_objective(
    "elbo",
    trains="vae",
    options=(LIKELIHOOD, BINARIZE),
    help="the (beta-)VAE: reconstruction + beta * KL",
)
def _elbo(
    model: nn.Module,
    *,
    likelihood: str,
    binarize: bool,
    beta_schedule: schedules.Schedule | None = None,
    beta_unit: str = "epoch",
) -> Objective:
    return vae_objective(
        model, beta_schedule, likelihood=likelihood, beta_unit=beta_unit, binarize=binarize
    )
