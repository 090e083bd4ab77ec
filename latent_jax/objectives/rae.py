r"""Regularized autoencoders (Ghosh, Sajjadi, Vergari, Black & Schölkopf 2020, "From
Variational to Deterministic Autoencoders", ICLR).

A VAE's noise on the decoder's input is replaced by an explicit regularizer of the decoder
(the paper's eq. 11):

.. math::

    \mathcal{L}_{RAE} = \mathcal{L}_{REC} + \beta\, \mathcal{L}_Z + \lambda\, \mathcal{L}_{REG},
    \qquad \mathcal{L}_Z = \tfrac12 \|z\|_2^2, \quad z = E_\phi(x),

with :math:`\mathcal{L}_{REC}` the reconstruction of the deterministic decode
:math:`D_\theta(z)` and, from Section 3 (eq. 12-13), :math:`\mathcal{L}_{REG}` either

* ``"rae-l2"``: :math:`\|\theta\|_2^2`, Tikhonov regularization (weight decay) of the
  decoder's parameters, or
* ``"rae-gp"``: :math:`\|\nabla D_\theta(E_\phi(x))\|_2^2`, a gradient penalty on the decoder
  at the codes (the quantity computed is stated exactly in :func:`rae_objective`).

The library's VAEs are trained as RAEs: the code is the encoder's mean :math:`\mu(x)`, decoded
without noise; the encoder's log-variance head is not used (it gets no gradient). An RAE has no
prior: :func:`latent_jax.generate.sample_prior` still decodes :math:`\mathcal{N}(0, I)` draws
(the naive sampler); the paper samples from a density fitted to the training codes after
training (ex-post density estimation).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import Array

from latent_jax import validation
from latent_jax.objectives.base import (
    Batch,
    Context,
    Metrics,
    Objective,
    check_reconstruction,
    context_loss,
    masked_mean,
)
from latent_jax.objectives.registry import Option, register_objective
from latent_jax.objectives.vae import (
    BINARIZE,
    LIKELIHOOD,
    MeanCodeTerms,
)

__all__ = ["REGULARIZERS", "decoder_l2", "rae_objective"]

# L_REG of the paper's Section 3: "l2", the decoder's parameters; "gp", the gradient penalty.
REGULARIZERS = ("l2", "gp")
# The weights of pythae's MNIST configurations (examples/scripts/configs/mnist/
# rae_{l2,gp}_config.json: embedding_weight 1e-2, reg_weight 1e-4), whose loss has this
# module's scale (summed squared error, 1/2 ||z||^2). See rae_objective for the authors'.
DEFAULT_BETA = 1e-2
DEFAULT_LAMBDA = 1e-4
# The parameter subtree the L2 penalty weighs (every VAE of the library names it so).
DECODER = "decoder"


def decoder_l2(params: Mapping[str, Any], model: Any = None) -> Array:
    r""":math:`\|\theta_{dec}\|_2^2`: the sum of squares of every parameter under
    ``params["decoder"]`` (kernels, biases, and BatchNorm scales and offsets alike).

    Args:
        params: the model's parameters (``variables["params"]``).
        model: the model, to name it in the error message.

    Returns:
        A float32 scalar.

    Raises:
        ValueError: for parameters without a ``"decoder"`` subtree, naming the model and
            suggesting ``rae-gp`` (which needs no parameter names).
    """
    if not isinstance(params, Mapping) or DECODER not in params:
        name = type(model).__name__ if model is not None else "the model"
        found = sorted(params) if isinstance(params, Mapping) else type(params).__name__
        raise ValueError(
            f"rae-l2 weighs the decoder's parameters, params[{DECODER!r}], and {name} has "
            f"none (its parameters: {found}); use the gradient penalty (rae-gp, "
            'regularizer="gp") for this model'
        )
    total = jnp.zeros((), jnp.float32)
    for leaf in jax.tree.leaves(params[DECODER]):
        total = total + jnp.sum(jnp.square(jnp.asarray(leaf, jnp.float32)))
    return total


def rae_objective(
    model: nn.Module,
    *,
    regularizer: str = "l2",
    beta: float = DEFAULT_BETA,
    lambda_reg: float = DEFAULT_LAMBDA,
    likelihood: str = "sse",
    binarize: bool = False,
    obs_logvar: float | str = 0.0,
) -> Objective:
    r"""A regularized autoencoder's objective (Ghosh et al. 2020, eq. 11), on a VAE.

    Per example :math:`x_i` (rows of shape (batch, ...features)), the code is the encoder's
    mean :math:`z_i = \mu(x_i)`, of shape (latent_dim,), decoded without noise; then

    .. math::

        \ell_i = \mathrm{rec}(x_i, D(z_i)) + \beta\, \tfrac12 \|z_i\|^2 + \lambda\, R_i,

    and the masked mean over the batch, where ``rec`` is the reconstruction term of
    :func:`~latent_jax.objectives.vae_objective` for ``likelihood`` (``"sse"``, the summed
    squared error, is the paper's and pythae's :math:`\|x - D(z)\|_2^2`) and :math:`R` is
    :math:`\mathcal{L}_{REG}` (Section 3, eq. 12-13):

    * ``regularizer="l2"`` (``rae-l2``): :math:`R = \|\theta_{dec}\|_2^2`, the sum of squares of
      every parameter under ``params["decoder"]`` (:func:`decoder_l2`; the same for every
      example). The paper's :math:`\|\theta\|_2^2`; the authors' code weighs only the
      decoder's transposed-convolution kernels (Keras ``kernel_regularizer=l2(λ)``), pythae
      every decoder parameter through Adam's ``weight_decay`` (the gradient of
      :math:`\tfrac{wd}{2}\|\theta\|^2`).
    * ``regularizer="gp"`` (``rae-gp``): with :math:`Z` the batch of codes and the decoder's
      outputs :math:`D(Z)` flattened to (batch, F),

      .. math::

          g = \nabla_Z \sum_{i} m_i \sum_{j=1}^{F} D(Z)_{ij}, \qquad R_i = \|g_i\|_2^2,

      (:math:`m` the row mask), the gradient of the **summed decoder output** (logits for
      ``"bernoulli"``) with respect to the codes, one vector-Jacobian product. Where the
      decoder maps each row on its own (no BatchNorm in training mode, e.g.
      :class:`~latent_jax.models.mlp.VAE`, and every model in inference mode),
      :math:`g_i = J_D(z_i)^\top \mathbf{1} = \sum_j \nabla_z D_j(z_i)`, so
      :math:`R_i = \|\sum_j \nabla_z D_j(z_i)\|^2`; this is not the Frobenius norm
      :math:`\|J_D(z_i)\|_F^2 = \sum_j \|\nabla_z D_j(z_i)\|^2`. Under BatchNorm in training
      mode (:class:`~latent_jax.models.conv.ConvVAE`) the batch statistics couple the rows,
      and :math:`g_i` also carries the effect of :math:`z_i` on the other rows' outputs
      through them, as in the implementations that differentiate a batch sum. The penalty
      is differentiated through (double back-propagation), so it trains the decoder and,
      through :math:`z = \mu(x)`, the encoder. pythae (``RAE_GP._compute_gp``) takes the
      gradient of the same summed output with respect to the input :math:`x` (through the
      encoder) instead of the code; the authors' Keras code
      (``models/rae/loss_functions.py``) the gradient of :math:`\sum_j D_j(z)^2` with respect
      to :math:`z`, squared and averaged over the latent dimensions and the batch.

    Defaults: β = 1e-2 and λ = 1e-4, pythae's MNIST settings for both regularizers
    (``examples/scripts/configs/mnist/rae_{l2,gp}_config.json``), on this loss's scale. The
    authors' MNIST settings (``configurations/config.py`` of the paper's code: β = 1e-4,
    λ = 1e-7 for RAE-L2 and 0.5e-7 for RAE-GP) go with a per-pixel mean of the squared error
    on 32×32 images and the mean of :math:`z^2` over 16 latent dimensions; rescaled by the
    1024 pixels to this loss they are β = 2 · 1024 · 1e-4 / 16 ≈ 1.3e-2 and, for RAE-L2,
    λ ≈ 1.0e-4 (their gradient penalty is another quantity, see above).

    Keys: with ``binarize`` the inputs are drawn binary with a key split off first (as
    :func:`~latent_jax.objectives.vae_objective` does; evaluation on the engine's fixed key);
    the rest is the model's key (its ``dropout`` stream). Nothing else is drawn.

    Models are called through ``encode`` and ``decode`` (each with ``train`` and ``mask``
    where it declares them): in training mode BatchNorm uses the batch's statistics of real
    rows and the encoder's and the decoder's updates both come back in the new model state.

    Metrics (masked means over examples, float32): ``loss``, ``reconstruction``,
    ``code_norm`` (:math:`\tfrac12 \|z\|^2`) and ``decoder_l2`` (``"l2"``) or
    ``gradient_penalty`` (``"gp"``); ``loss == reconstruction + beta * code_norm +
    lambda_reg * decoder_l2`` (or ``gradient_penalty``) for the reported values.

    Args:
        model: a linen VAE with ``encode(x) -> (mean, logvar)``, ``decode(z)`` and
            ``model(x, key)`` (for initialization); ``"l2"`` needs its parameters under
            ``params["decoder"]`` (every VAE of the library but
            :class:`~latent_jax.models.benchmark_nets.PythaeMNISTVAE`).
        regularizer: ``"l2"`` or ``"gp"``.
        beta: β, the weight of :math:`\tfrac12 \|z\|^2`, >= 0.
        lambda_reg: λ, the weight of the decoder's regularizer, >= 0.
        likelihood: ``"sse"``, ``"gaussian"`` or ``"bernoulli"``.
        binarize: train on dynamically binarized inputs (values in [0, 1]).
        obs_logvar: the Gaussian likelihood's log-variance, or ``"learned"``.

    Returns:
        The :class:`Objective`, named ``"rae-l2"`` or ``"rae-gp"``.

    Raises:
        TypeError: for a model without ``encode``/``decode``, or a non-bool ``binarize``.
        ValueError: for an unknown regularizer or likelihood, or a negative or non-finite
            weight; with ``"l2"``, at ``init`` or in the loss, for a model without a
            ``"decoder"`` parameter subtree.
    """
    regularizer = validation.check_choice("regularizer", regularizer, REGULARIZERS)
    beta = validation.check_real("beta", beta, nonnegative=True)
    lambda_reg = validation.check_real("lambda_reg", lambda_reg, nonnegative=True)
    terms = MeanCodeTerms(model, likelihood=likelihood, binarize=binarize, obs_logvar=obs_logvar)
    binarize = terms.binarize
    penalty_name = "decoder_l2" if regularizer == "l2" else "gradient_penalty"

    def init(key: Array, x: Array) -> dict:
        variables = terms.init(key, x)
        if regularizer == "l2":
            decoder_l2(variables.get("params", {}), model)
        return variables

    @context_loss
    def loss(
        params: Any, model_state: Mapping[str, Any], batch: Batch, key: Array, context: Context
    ) -> tuple[Array, tuple[Metrics, dict]]:
        code = terms.encode(params, model_state, batch, key, context.train)
        batch, z = code.batch, code.z
        decode = terms.decoding(params, code, context.train)
        if regularizer == "gp":
            output, pullback, state = jax.vjp(decode, z, has_aux=True)
            check_reconstruction(output, batch.x, "the VAE's decode")
            rows = batch.mask.reshape((-1,) + (1,) * (output.ndim - 1))
            (gradient,) = pullback(jnp.broadcast_to(rows, output.shape).astype(output.dtype))
            penalty = masked_mean(jnp.sum(jnp.square(gradient), axis=-1), batch.mask)
        else:
            output, state = decode(z)
            penalty = decoder_l2(params, model)
        rec = masked_mean(terms.reconstruction(params, model_state, output, batch), batch.mask)
        code_norm = masked_mean(0.5 * jnp.sum(jnp.square(z), axis=-1), batch.mask)
        rec, code_norm, penalty = (jnp.asarray(v, jnp.float32) for v in (rec, code_norm, penalty))
        value = rec + jnp.float32(beta) * code_norm + jnp.float32(lambda_reg) * penalty
        metrics = {
            "loss": value,
            "reconstruction": rec,
            "code_norm": code_norm,
            penalty_name: penalty,
        }
        return value, (metrics, state)

    spec = {
        "regularizer": regularizer,
        "beta": beta,
        "lambda_reg": lambda_reg,
        "likelihood": likelihood,
        "binarize": binarize,
        "obs_logvar": obs_logvar,
    }
    return Objective(init=init, loss=loss, model=model, name=f"rae-{regularizer}", spec=spec)


# The options of both RAEs (the flags --beta and --lambda-reg).
RAE_OPTIONS = (
    LIKELIHOOD,
    BINARIZE,
    Option(
        "beta",
        float,
        DEFAULT_BETA,
        "weight of the code penalty 1/2 ||mu(x)||^2 (pythae's MNIST setting: 1e-2)",
    ),
    Option(
        "lambda_reg",
        float,
        DEFAULT_LAMBDA,
        "weight of the decoder's regularizer: ||theta_decoder||^2 (rae-l2) or the gradient "
        "penalty (rae-gp) (pythae's MNIST setting: 1e-4)",
    ),
)


@register_objective(
    "rae-l2",
    trains="vae",
    options=RAE_OPTIONS,
    help="regularized autoencoder: rec(x, D(mu(x))) + beta 1/2 ||mu||^2 + lambda "
    "||theta_decoder||^2 (Ghosh et al. 2020)",
)
def _rae_l2(
    model: nn.Module, *, likelihood: str, binarize: bool, beta: float, lambda_reg: float
) -> Objective:
    return rae_objective(
        model,
        regularizer="l2",
        beta=beta,
        lambda_reg=lambda_reg,
        likelihood=likelihood,
        binarize=binarize,
    )


@register_objective(
    "rae-gp",
    trains="vae",
    options=RAE_OPTIONS,
    help="regularized autoencoder: rec(x, D(mu(x))) + beta 1/2 ||mu||^2 + lambda "
    "||grad_z sum D(z)||^2 at z = mu(x) (Ghosh et al. 2020)",
)
def _rae_gp(
    model: nn.Module, *, likelihood: str, binarize: bool, beta: float, lambda_reg: float
) -> Objective:
    return rae_objective(
        model,
        regularizer="gp",
        beta=beta,
        lambda_reg=lambda_reg,
        likelihood=likelihood,
        binarize=binarize,
    )
