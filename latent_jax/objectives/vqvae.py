r"""The VQ-VAE's objective (van den Oord, Vinyals & Kavukcuoglu 2017, eq. 3), and the
cross-entropy of its autoregressive prior over the code grids.

.. math::

    L = -\log p(x \mid z_q(x)) + \|\mathrm{sg}[z_e(x)] - e\|_2^2
        + \beta\, \|z_e(x) - \mathrm{sg}[e]\|_2^2

(the paper's eq. 3, as a loss): the reconstruction term through the straight-through codes,
the **codebook** term, which moves the chosen entries :math:`e` towards the encoder's outputs
(no gradient reaches the encoder), and the **commitment** term, which keeps the encoder's
outputs near their entries (no gradient reaches the codebook), weighed by β (the paper: 0.25,
"robust to values of β from 0.1 to 2.0"). The paper writes the terms for one latent vector;
for a grid of h x w vectors they add up over the positions (as the log-likelihood adds up over
pixels), so per example each term is the sum over the grid and the D dimensions. With the
moving-average codebook (``VQVAE(ema=True)``, the paper's Appendix A.1) the codebook term is
left out: the averages move the codebook.

Per batch, each term is the masked mean over the real rows. ``perplexity`` is
:math:`\exp(-\sum_k p_k \log p_k)` of the batch's code usage :math:`p_k` (the fraction of the
real rows' grid positions that chose entry k): 1 when every position uses one entry, K when
they use all K equally; ``codes_used`` is the fraction of the K entries chosen at least once.

:func:`pixelcnn_objective` trains the prior (:class:`latent_jax.models.pixelcnn.PixelCNN`) on
grids of code indices by their negative log-likelihood, the categorical cross-entropy of each
position given the positions before it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import Array

from latent_jax import validation
from latent_jax.models.pixelcnn import PixelCNN
from latent_jax.models.vqvae import VQVAE, VQOutput
from latent_jax.objectives.base import (
    Batch,
    Context,
    Metrics,
    ModelCaller,
    Objective,
    check_model,
    check_reconstruction,
    context_loss,
    flatten_examples,
    masked_mean,
)
from latent_jax.objectives.registry import Option, register_objective
from latent_jax.objectives.vae import (
    BINARIZE,
    LIKELIHOOD,
    binarized,
    check_noise,
    reconstruction_term,
)

__all__ = ["code_usage", "pixelcnn_objective", "vq_vae_objective"]


def code_usage(indices: Array, mask: Array, codebook_size: int) -> tuple[Array, Array]:
    r"""The perplexity and the fraction of entries used of a batch's codes.

    Args:
        indices: int array of shape (batch, ...), the entry of each grid position.
        mask: array of shape (batch,), 1 for real rows and 0 for padding.
        codebook_size: K.

    Returns:
        ``(perplexity, codes_used)``: :math:`\exp(-\sum_k p_k \log p_k)` with :math:`p_k`
        the fraction of the real rows' positions that chose entry k (:math:`0 \log 0 = 0`),
        and the fraction of the K entries chosen at least once; float32 scalars.
    """
    weights = jnp.broadcast_to(
        jnp.reshape(mask.astype(jnp.float32), (-1,) + (1,) * (indices.ndim - 1)), indices.shape
    )
    one_hot = jax.nn.one_hot(jnp.reshape(indices, (-1,)), codebook_size, dtype=jnp.float32)
    counts = jnp.sum(one_hot * jnp.reshape(weights, (-1, 1)), axis=0)
    p = counts / jnp.maximum(jnp.sum(counts), 1.0)
    entropy = -jnp.sum(jnp.where(p > 0, p * jnp.log(jnp.where(p > 0, p, 1.0)), 0.0))
    return jnp.exp(entropy), jnp.mean((counts > 0).astype(jnp.float32))


def vq_vae_objective(
    model: nn.Module,
    *,
    commitment: float = 0.25,
    likelihood: str = "sse",
    binarize: bool = False,
) -> Objective:
    r"""The VQ-VAE's objective: ``rec + codebook + commitment * commit`` (the paper's eq. 3).

    Per example, with ``z_e`` the encoder's output grid and ``e`` its nearest entries:
    ``reconstruction`` is :func:`~latent_jax.objectives.vae.reconstruction_term` of the
    decoder's output for the straight-through codes (``"sse"``: the summed squared error;
    ``"gaussian"`` of variance 1; ``"bernoulli"``: the output as logits), ``codebook`` is
    :math:`\|\mathrm{sg}[z_e] - e\|^2` summed over the grid (0 for a model with
    ``ema=True``, whose codebook the moving averages move) and ``commitment`` is
    :math:`\|z_e - \mathrm{sg}[e]\|^2` summed over the grid. With ``binarize`` the model
    sees (and reconstructs) a fresh binary draw of the inputs at every step.

    Metrics: ``loss``, ``reconstruction``, ``codebook``, ``commitment``, ``perplexity`` and
    ``codes_used`` (see the module docstring); ``loss == reconstruction + codebook +
    commitment_weight * commitment`` for the reported values.

    Args:
        model: a :class:`~latent_jax.models.vqvae.VQVAE` (or a module with
            ``codebook_size``, ``ema`` and ``__call__(x, *, train, mask) ->``
            :class:`~latent_jax.models.vqvae.VQOutput`).
        commitment: β, the commitment term's weight, >= 0 (the paper: 0.25).
        likelihood: ``"sse"``, ``"gaussian"`` or ``"bernoulli"``.
        binarize: train on dynamically binarized inputs.

    Returns:
        The :class:`~latent_jax.objectives.Objective` (named ``"vq-vae"``).

    Raises:
        TypeError: for a model that is not a VQ-VAE, or a non-bool ``binarize``.
        ValueError: for a negative ``commitment`` or an unknown likelihood.
    """
    check_model(model)
    size = getattr(model, "codebook_size", None)
    if not isinstance(model, VQVAE) and not isinstance(size, int):
        raise TypeError(
            f"the vq-vae objective trains a VQVAE (latent_jax.models.vqvae), got "
            f"{type(model).__name__}"
        )
    commitment = validation.check_real("commitment", commitment, nonnegative=True)
    check_noise(model, likelihood, 0.0)
    binarize = validation.check_bool("binarize", binarize)
    ema = bool(getattr(model, "ema", False))
    caller = ModelCaller(model)

    @context_loss
    def loss(
        params: Any, model_state: Mapping[str, Any], batch: Batch, key: Array, context: Context
    ) -> tuple[Array, tuple[Metrics, dict]]:
        batch, key = binarized(batch, key, binarize)
        out, new_state = caller.apply(params, model_state, batch, key, context.train)
        if not isinstance(out, VQOutput):
            raise TypeError(
                "a VQ-VAE must return VQOutput(reconstruction, z_e, z_q, indices), got "
                f"{type(out).__name__}"
            )
        check_reconstruction(out.reconstruction, batch.x, "the VQ-VAE")
        rec = reconstruction_term(likelihood, out.reconstruction, batch.x, 0.0)
        z_e, z_q = flatten_examples(out.z_e), flatten_examples(out.z_q)
        commit = jnp.sum(jnp.square(z_e - jax.lax.stop_gradient(z_q)), axis=-1)
        rec, commit = masked_mean(rec, batch.mask), masked_mean(commit, batch.mask)
        if ema:
            codebook = jnp.zeros((), commit.dtype)
        else:
            codes = jnp.sum(jnp.square(jax.lax.stop_gradient(z_e) - z_q), axis=-1)
            codebook = masked_mean(codes, batch.mask)
        value = rec + codebook + jnp.float32(commitment) * commit
        perplexity, used = code_usage(out.indices, batch.mask, size)
        metrics = {
            "loss": value,
            "reconstruction": rec,
            "codebook": codebook,
            "commitment": commit,
            "perplexity": perplexity,
            "codes_used": used,
        }
        return value, (metrics, new_state)

    spec = {
        "commitment": commitment,
        "likelihood": likelihood,
        "binarize": binarize,
        "codebook_size": size,
        "ema": ema,
    }
    return Objective(init=caller.init, loss=loss, model=model, name="vq-vae", spec=spec)


@register_objective(
    "vq-vae",
    trains="vq-vae",
    options=(
        LIKELIHOOD,
        BINARIZE,
        Option(
            "commitment",
            float,
            0.25,
            "beta, the weight of the commitment term (van den Oord et al.: 0.25)",
        ),
        Option(
            "codebook_size",
            int,
            None,
            "K, the codebook's entries; unset: the model's (64; the paper: 512)",
        ),
        Option(
            "ema",
            bool,
            False,
            "learn the codebook by moving averages instead of its loss term (the paper's "
            "Appendix A.1)",
        ),
        Option("ema_decay", float, None, "gamma of --ema's averages; unset: the model's (0.99)"),
    ),
    help="VQ-VAE: reconstruction + codebook + beta commitment (van den Oord et al. 2017)",
)
def _vq_vae(
    model: nn.Module,
    *,
    likelihood: str,
    binarize: bool,
    commitment: float,
    codebook_size: int | None,
    ema: bool,
    ema_decay: float | None,
) -> Objective:
    # The options a command sets on the model it built (None, and ema False: the model's own
    # field, so a VQVAE(ema=True) built in Python keeps its moving averages).
    fields = {"codebook_size": codebook_size, "ema": ema or None, "ema_decay": ema_decay}
    fields = {name: value for name, value in fields.items() if value is not None}
    if fields:
        if not isinstance(model, VQVAE):
            raise TypeError(
                f"codebook_size, ema and ema_decay set fields of a VQVAE, got "
                f"{type(model).__name__}"
            )
        model = model.clone(**fields)
    return vq_vae_objective(model, commitment=commitment, likelihood=likelihood, binarize=binarize)


def pixelcnn_objective(model: nn.Module) -> Objective:
    r"""The negative log-likelihood of code grids under an autoregressive model.

    Per example (a grid of indices :math:`k` of shape (h, w)):
    :math:`-\sum_i \log p(k_i \mid k_{<i})`, the categorical cross-entropy of each position's
    logits summed over the grid, in nats; per batch, the masked mean. The batch's rows are the
    grids (floats holding integers, as the training engine's float32 arrays, are rounded).

    Metrics: ``loss`` and ``nll`` (the same value).

    Args:
        model: a :class:`~latent_jax.models.pixelcnn.PixelCNN` (``model(indices) -> logits``
            of shape (batch, h, w, codebook_size)).

    Returns:
        The :class:`~latent_jax.objectives.Objective` (named ``"pixelcnn"``).

    Raises:
        TypeError: for a model that is not a PixelCNN.
    """
    check_model(model)
    if not isinstance(model, PixelCNN):
        raise TypeError(f"model must be a PixelCNN, got {type(model).__name__}")
    caller = ModelCaller(model)

    @context_loss
    def loss(
        params: Any, model_state: Mapping[str, Any], batch: Batch, key: Array, context: Context
    ) -> tuple[Array, tuple[Metrics, dict]]:
        logits, new_state = caller.apply(params, model_state, batch, key, context.train)
        targets = jnp.round(batch.x).astype(jnp.int32)
        log_p = jax.nn.log_softmax(logits, axis=-1)
        picked = jnp.take_along_axis(log_p, targets[..., None], axis=-1)[..., 0]
        value = masked_mean(-flatten_examples(picked).sum(axis=-1), batch.mask)
        return value, ({"loss": value, "nll": value}, new_state)

    return Objective(init=caller.init, loss=loss, model=model, name="pixelcnn", spec={})
