r"""The VAE with a VampPrior (Tomczak & Welling 2018, "VAE with a VampPrior", AISTATS).

The VAE's bound with the prior :math:`p_\lambda(z) = \frac1K \sum_k q_\phi(z|u_k)`, the mixture
of the encoder's posteriors at K learned pseudo-inputs (the paper's Section 3; the model is
:class:`~latent_jax.models.vampprior.VampPrior`). The KL term has no closed form; as in the
paper, it is estimated with the reparameterized draw :math:`z_i \sim q_\phi(z|x_i)` the decoder
reconstructs from:

.. math::

    \ell_i = \mathrm{rec}_i + \beta\, \bigl[\log q_\phi(z_i|x_i) - \log p_\lambda(z_i)\bigr],

a one-sample Monte Carlo estimate of :math:`D_{KL}(q_\phi(z|x_i) \,\|\, p_\lambda(z))`, whose
gradient reaches the encoder, the decoder and the pseudo-inputs (through the prior's
components). With β = 1 the mean of :math:`\ell_i` is the negative ELBO (with ``"gaussian"``
or ``"bernoulli"``).

The KL warm-up. The paper trains with a deterministic warm-up of the KL term over the first
100 epochs (Bowman et al. 2016, Sønderby et al. 2016): the authors' code sets
:math:`\beta = \min(e / W, 1)` at the 1-based epoch e (their ``--warmup 100``), and pythae's
``VAMP`` does the same (``linear_scheduling_steps``, default 0: none). Both evaluate at β = 1.
Here ``warmup`` W (default 0: none) gives β = min((epoch + 1) / W, 1) in training, at the
engine's 0-based epoch, and β = 1 in evaluation, so the test loss is always the negative bound.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import flax.linen as nn
import jax.numpy as jnp
from jax import Array

from latent_jax import validation
from latent_jax.gaussian import gaussian_log_likelihood
from latent_jax.models.vampprior import VampPrior
from latent_jax.objectives.base import (
    Batch,
    Context,
    Metrics,
    Objective,
    check_model,
    context_loss,
    masked_mean,
)
from latent_jax.objectives.registry import Option, register_objective
from latent_jax.objectives.vae import BINARIZE, LIKELIHOOD, ElboTerms

__all__ = ["vamp_objective", "warmup_beta"]


def warmup_beta(epoch: Array, warmup: int, train: bool) -> Array:
    """The KL term's weight: ``min((epoch + 1) / warmup, 1)`` in training, 1 in evaluation
    or without warm-up (``warmup == 0``).

    Args:
        epoch: the 0-based epoch, an int scalar (traced under ``jit``).
        warmup: epochs of the linear warm-up, >= 0.
        train: training mode (a Python bool).

    Returns:
        A float32 scalar.
    """
    if warmup == 0 or not train:
        return jnp.ones((), jnp.float32)
    return jnp.minimum((jnp.asarray(epoch, jnp.float32) + 1.0) / warmup, 1.0)


def vamp_objective(
    model: nn.Module,
    *,
    n_pseudo_inputs: int = 500,
    likelihood: str = "sse",
    binarize: bool = False,
    obs_logvar: float | str = 0.0,
    warmup: int = 0,
) -> Objective:
    r"""The VAE with a VampPrior: reconstruction plus β times the Monte Carlo KL to the prior.

    Per example, :math:`\ell_i = \mathrm{rec}_i + \beta\,[\log q_\phi(z_i|x_i) - \log
    p_\lambda(z_i)]` at the reparameterized draw :math:`z_i` the model decodes
    (:meth:`~latent_jax.objectives.vae.ElboTerms.encoded`: the likelihoods, binarization and
    keys of :func:`~latent_jax.objectives.vae_objective`), with :math:`\log q_\phi(z_i|x_i)`
    the diagonal Gaussian's log-density and :math:`\log p_\lambda` the VampPrior's
    (:meth:`~latent_jax.models.vampprior.VampPrior.log_prior`, its components encoded in
    inference mode); then the masked mean over examples.

    Metrics: ``loss``, ``reconstruction``, ``kl`` (the Monte Carlo KL estimate, a masked mean
    over examples; unlike a closed form it can be negative for one draw) and, with a warm-up,
    ``beta``; ``loss == reconstruction + beta * kl`` (β = 1 without warm-up).

    Args:
        model: a linen VAE (``model(x, key) -> (reconstruction, mean, logvar)``, registered,
            with ``encode`` and ``decode``), which is wrapped in a
            :class:`~latent_jax.models.vampprior.VampPrior` with ``n_pseudo_inputs``
            pseudo-inputs; or such a wrapper, whose other fields are kept and whose K becomes
            ``n_pseudo_inputs``.
        n_pseudo_inputs: K, the pseudo-inputs, >= 1 (the paper: 500 on MNIST).
        likelihood: ``"sse"``, ``"gaussian"`` or ``"bernoulli"``.
        binarize: train on dynamically binarized inputs.
        obs_logvar: the Gaussian likelihood's log-variance (only for ``"gaussian"``).
        warmup: W, epochs of the linear KL warm-up β = min((epoch + 1) / W, 1) in training,
            >= 0; 0 (the default): none (the paper: 100).

    Returns:
        The :class:`~latent_jax.objectives.Objective` named ``"vamp"``, whose ``model`` is the
        :class:`~latent_jax.models.vampprior.VampPrior`.

    Raises:
        TypeError: for a model that is not a linen VAE, a non-int K or warm-up.
        ValueError: for K below 1 or a negative warm-up.
    """
    check_model(model)
    n_pseudo_inputs = validation.check_int("n_pseudo_inputs", n_pseudo_inputs, 1)
    warmup = validation.check_int("warmup", warmup, 0)
    if isinstance(model, VampPrior):
        model = model.clone(n_pseudo_inputs=n_pseudo_inputs)
    else:
        model = VampPrior(vae=model, n_pseudo_inputs=n_pseudo_inputs)
    terms = ElboTerms(model, likelihood=likelihood, binarize=binarize, obs_logvar=obs_logvar)

    @context_loss
    def loss(
        params: Any, model_state: Mapping[str, Any], batch: Batch, key: Array, context: Context
    ) -> tuple[Array, tuple[Metrics, dict]]:
        encoded = terms.encoded(params, model_state, batch, key, context.train)
        # Padding rows are set to 0 before the densities: whatever they hold (a code far in
        # the tails of every component) cannot reach the gradient as 0 * inf.
        real = (batch.mask > 0)[:, None]
        z, mean, logvar = (
            jnp.where(real, a, 0.0) for a in (encoded.z, encoded.mean, encoded.logvar)
        )
        log_q = gaussian_log_likelihood(z, mean, logvar)
        log_p = model.apply({"params": params, **model_state}, z, method="log_prior")
        rec = masked_mean(encoded.reconstruction, batch.mask)
        kl = masked_mean(log_q - log_p, batch.mask)
        metrics = {"reconstruction": rec, "kl": kl}
        if warmup:
            beta = warmup_beta(context.epoch, warmup, context.train)
            value = rec + beta * kl
            metrics["beta"] = beta
        else:
            value = rec + kl
        metrics["loss"] = value
        return value, (metrics, encoded.model_state)

    spec = {
        "n_pseudo_inputs": n_pseudo_inputs,
        "warmup": warmup,
        "likelihood": likelihood,
        "binarize": terms.binarize,
        "obs_logvar": obs_logvar,
    }
    return Objective(init=terms.init, loss=loss, model=model, name="vamp", spec=spec)


@register_objective(
    "vamp",
    trains="vae",
    options=(
        LIKELIHOOD,
        BINARIZE,
        Option(
            "pseudo_inputs",
            int,
            500,
            "K, the learned pseudo-inputs whose posteriors make the prior (Tomczak & Welling: 500)",
        ),
        Option(
            "warmup",
            int,
            0,
            "epochs of linear KL warm-up, beta = min(epoch / warmup, 1) (Tomczak & Welling: "
            "100; 0: none)",
        ),
    ),
    help="VAE with a VampPrior: the prior a mixture of the posteriors of K learned "
    "pseudo-inputs (Tomczak & Welling)",
)
def _vamp(
    model: nn.Module,
    *,
    likelihood: str,
    binarize: bool,
    pseudo_inputs: int,
    warmup: int,
) -> Objective:
    return vamp_objective(
        model,
        n_pseudo_inputs=pseudo_inputs,
        likelihood=likelihood,
        binarize=binarize,
        warmup=warmup,
    )
