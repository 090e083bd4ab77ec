r"""The capacity-annealed β-VAE (Burgess et al. 2018, "Understanding disentangling in β-VAE").

.. math::

    \ell = \mathrm{rec} + \gamma\, \bigl|\, D_{KL}(q(z|x)\,\|\,\mathcal{N}(0, I)) - C(t) \bigr|,
    \qquad C(t) = C_{\max} \min(t / T, 1),

(the paper's eq. 8, as a loss), where the KL term is the batch's mean KL, :math:`t` the
0-based epoch and :math:`T` the epochs over which the capacity :math:`C` rises linearly from 0
to :math:`C_{\max}` nats, then stays. A large γ holds the KL at the capacity: the encoding
may carry :math:`C(t)` nats, which the paper raises gradually so that the factors of
variation are learned one at a time. The paper's dSprites setting: γ = 1000, :math:`C_{\max}`
= 25 nats over 100,000 iterations.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import flax.linen as nn
import jax.numpy as jnp
from jax import Array

from latent_jax import validation
from latent_jax.objectives.base import Batch, Context, Metrics, Objective, context_loss
from latent_jax.objectives.registry import Option, register_objective
from latent_jax.objectives.vae import BINARIZE, LIKELIHOOD, ElboTerms

__all__ = ["annealed_vae_objective"]


def annealed_vae_objective(
    model: nn.Module,
    *,
    gamma: float = 1000.0,
    capacity_max: float = 25.0,
    capacity_epochs: int,
    likelihood: str = "sse",
    binarize: bool = False,
    obs_logvar: float | str = 0.0,
) -> Objective:
    r"""The capacity-annealed β-VAE's objective: ``rec + gamma * |KL - C(epoch)|``.

    ``reconstruction`` and ``kl`` are the terms of :func:`~latent_jax.objectives.vae_objective`
    (its likelihoods, binarization and key use); the capacity is
    ``C = capacity_max * min(epoch / capacity_epochs, 1)``, constant within an epoch.

    Metrics: ``loss``, ``reconstruction``, ``kl``, ``capacity`` and ``kl_gap`` (``|kl -
    capacity|``); ``loss == reconstruction + gamma * kl_gap`` for the reported values.

    Args:
        model: a linen VAE, ``model(x, key) -> (reconstruction, mean, logvar)``.
        gamma: γ, the weight of the gap between the KL term and the capacity, > 0.
        capacity_max: :math:`C_{\max}`, the final capacity in nats, >= 0.
        capacity_epochs: epochs over which the capacity rises from 0 to ``capacity_max``,
            >= 1.
        likelihood: ``"sse"``, ``"gaussian"`` or ``"bernoulli"``.
        binarize: train on dynamically binarized inputs.
        obs_logvar: the Gaussian likelihood's log-variance, or ``"learned"``.

    Returns:
        The :class:`~latent_jax.objectives.Objective` (named ``"annealed-vae"``).

    Raises:
        ValueError: for a non-positive ``gamma``, a negative ``capacity_max`` or
            ``capacity_epochs`` below 1.
    """
    gamma = validation.check_real("gamma", gamma, positive=True)
    capacity_max = validation.check_real("capacity_max", capacity_max, nonnegative=True)
    capacity_epochs = validation.check_int("capacity_epochs", capacity_epochs, 1)
    terms = ElboTerms(model, likelihood=likelihood, binarize=binarize, obs_logvar=obs_logvar)

    @context_loss
    def loss(
        params: Any, model_state: Mapping[str, Any], batch: Batch, key: Array, context: Context
    ) -> tuple[Array, tuple[Metrics, dict]]:
        rec, kl, new_state = terms(params, model_state, batch, key, context.train)
        fraction = jnp.minimum(context.epoch.astype(jnp.float32) / capacity_epochs, 1.0)
        capacity = jnp.float32(capacity_max) * fraction
        gap = jnp.abs(kl - capacity)
        value = rec + jnp.float32(gamma) * gap
        metrics = {
            "loss": value,
            "reconstruction": rec,
            "kl": kl,
            "capacity": capacity,
            "kl_gap": gap,
        }
        return value, (metrics, new_state)

    spec = {
        "gamma": gamma,
        "capacity_max": capacity_max,
        "capacity_epochs": capacity_epochs,
        "likelihood": likelihood,
        "binarize": terms.binarize,
        "obs_logvar": obs_logvar,
    }
    return Objective(init=terms.init, loss=loss, model=model, name="annealed-vae", spec=spec)


@register_objective(
    "annealed-vae",
    trains="vae",
    options=(
        LIKELIHOOD,
        BINARIZE,
        Option("gamma", float, 1000.0, "weight of |KL - C| (Burgess et al.: 1000)"),
        Option("capacity_max", float, 25.0, "final capacity C in nats (Burgess et al.: 25)"),
        Option(
            "capacity_epochs",
            int,
            None,
            "epochs over which C rises linearly from 0 to --capacity-max (default: all of "
            "--epochs)",
        ),
    ),
    help="capacity-annealed beta-VAE: reconstruction + gamma |KL - C(epoch)| (Burgess et al.)",
)
def _annealed_vae(
    model: nn.Module,
    *,
    likelihood: str,
    binarize: bool,
    gamma: float,
    capacity_max: float,
    capacity_epochs: int | None,
    epochs: int | None = None,
) -> Objective:
    if capacity_epochs is None:
        if epochs is None:
            raise ValueError("capacity_epochs is needed (or the run's epochs to default to)")
        capacity_epochs = epochs
    return annealed_vae_objective(
        model,
        gamma=gamma,
        capacity_max=capacity_max,
        capacity_epochs=capacity_epochs,
        likelihood=likelihood,
        binarize=binarize,
    )
