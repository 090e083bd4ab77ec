r"""Objectives that match the aggregate posterior to the prior by the maximum mean discrepancy.

* **InfoVAE-MMD** (Zhao, Song & Ermon 2019, "InfoVAE: Balancing Learning and Inference in
  Variational Autoencoders", eq. 6 with the divergence :math:`D = \mathrm{MMD}`): as a loss,

  .. math::

      \ell = \mathrm{rec} + (1 - \alpha)\, D_{KL}(q(z|x)\,\|\,p(z))
          + (\alpha + \lambda - 1)\, \mathrm{MMD}^2(q(z), p(z)),

  where :math:`\alpha` weighs the mutual information between x and z (α = 0 keeps the ELBO's
  KL term, α = 1 drops it) and :math:`\lambda` the divergence between the aggregate posterior
  :math:`q(z)` and the prior. α = 0, λ = 1 is the VAE. The defaults, α = 0 and λ = 1000, are
  pythae's InfoVAE-MMD settings for MNIST and CelebA (benchmark_VAE's
  ``examples/scripts/configs/{mnist,celeba}/info_vae_config.json``): the paper's large λ
  with the ELBO's KL weight, since an MMD² estimate is small and needs a large weight to
  count.
* **WAE-MMD** (Tolstikhin, Bousquet, Gelly & Schölkopf 2018, "Wasserstein Auto-Encoders",
  Algorithm 2): a deterministic encoder, the code :math:`z = \mu(x)` (the posterior mean,
  decoded without noise), and

  .. math::

      \ell = c(x, G(\mu(x))) + \lambda\, \mathrm{MMD}^2(q(z), p(z)),

  with λ = 10 by default (the paper's MNIST setting, Section 4; pythae's MNIST config too).

:math:`\mathrm{MMD}^2` is :func:`mmd_u_statistic` between the codes of the batch's M real rows
and M draws from the prior :math:`\mathcal{N}(0, I)`, with the kernels of Tolstikhin et al.
(Section 4): RBF :math:`k(x, y) = e^{-\|x - y\|^2 / C}` or inverse multiquadratics (IMQ)
:math:`k(x, y) = C / (C + \|x - y\|^2)`, :math:`C = 2 d \sigma^2` (d the latent dimension, σ
the bandwidth; the paper's :math:`\sigma_z^2` is the prior's variance, 1 here). One kernel,
one scale: Tolstikhin et al.'s released code and pythae sum the IMQ kernel over the scales
0.1 to 10 of C, which is not done here.
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
    check_model,
    context_loss,
    masked_mean,
)
from latent_jax.objectives.registry import Option, register_objective
from latent_jax.objectives.vae import (
    BINARIZE,
    LIKELIHOOD,
    ElboTerms,
    MeanCodeTerms,
)

__all__ = ["KERNELS", "MMD_KINDS", "mmd_kernel", "mmd_objective", "mmd_u_statistic"]

KERNELS = ("rbf", "imq")
MMD_KINDS = ("infovae", "wae")
# λ when not given: InfoVAE (pythae's MNIST/CelebA configs), WAE (Tolstikhin et al., MNIST).
_LAMBDA = {"infovae": 1000.0, "wae": 10.0}
# The prior's draws use the key jax.random.fold_in(key, _PRIOR_STREAM): a stream of its own,
# apart from the keys the model's terms split off the same key (split(key)[i] is
# fold_in(key, i) for small i), so the terms draw exactly as the VAE's objective draws.
_PRIOR_STREAM = 0x6D6D64  # "mmd"


def mmd_kernel(x: Array, y: Array, kernel: str, bandwidth: float) -> Array:
    r"""The kernel matrix :math:`k(x_i, y_j)` of two sets of codes.

    RBF :math:`e^{-\|x - y\|^2 / C}` or IMQ :math:`C / (C + \|x - y\|^2)` with :math:`C = 2 d
    \sigma^2` (Tolstikhin et al. 2018, Section 4), d the codes' dimension and σ ``bandwidth``.

    Args:
        x: array of shape (n, d).
        y: array of shape (m, d).
        kernel: ``"rbf"`` or ``"imq"``.
        bandwidth: σ, > 0.

    Returns:
        Array of shape (n, m).

    Raises:
        ValueError: for an unknown kernel, a bandwidth that is not positive, or shapes that do
            not fit.
    """
    kernel = validation.check_choice("kernel", kernel, KERNELS)
    bandwidth = validation.check_real("kernel_bandwidth", bandwidth, positive=True)
    x, y = jnp.asarray(x), jnp.asarray(y)
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise ValueError(f"x and y must have shapes (n, d) and (m, d), got {x.shape} and {y.shape}")
    scale = 2.0 * x.shape[1] * bandwidth**2
    # Differences, not |x|^2 + |y|^2 - 2 x.y: no cancellation for nearby codes.
    distances = jnp.sum(jnp.square(x[:, None, :] - y[None, :, :]), axis=-1)
    if kernel == "rbf":
        return jnp.exp(-distances / scale)
    return scale / (scale + distances)


def mmd_u_statistic(x: Array, y: Array, mask: Array, kernel: str, bandwidth: float) -> Array:
    r"""The unbiased estimate of :math:`\mathrm{MMD}^2` between two samples of M rows each.

    The U-statistic of Tolstikhin et al. (2018, Algorithm 2) over the rows where ``mask`` is
    set (the same rows of ``x`` and ``y``; M of them):

    .. math::

        \frac{1}{M(M-1)} \sum_{i \ne j} k(x_i, x_j)
        + \frac{1}{M(M-1)} \sum_{i \ne j} k(y_i, y_j)
        - \frac{2}{M^2} \sum_{i, j} k(x_i, y_j),

    with :func:`mmd_kernel`. Its expectation is :math:`\mathrm{MMD}^2` of the two
    distributions (0 when they are the same), so a single estimate may be negative. Rows
    where ``mask`` is 0 do not enter, whatever they hold. With fewer than two real rows there
    is no pair to estimate from, and the result is 0.

    Args:
        x: the first sample (the codes), array of shape (batch, d).
        y: the second sample (the prior's draws), shape (batch, d).
        mask: shape (batch,), 1.0 for the rows that enter and 0.0 for padding.
        kernel: ``"rbf"`` or ``"imq"``.
        bandwidth: σ, > 0.

    Returns:
        A scalar.

    Raises:
        ValueError: for an unknown kernel, a bandwidth that is not positive, or shapes that do
            not fit.
    """
    x, y, mask = jnp.asarray(x), jnp.asarray(y), jnp.asarray(mask)
    if x.ndim != 2 or y.shape != x.shape:
        raise ValueError(f"x and y must have one shape (batch, d), got {x.shape} and {y.shape}")
    if mask.shape != x.shape[:1]:
        raise ValueError(f"mask must have shape ({x.shape[0]},), got shape {mask.shape}")
    real = mask > 0
    pairs = real[:, None] & real[None, :]
    distinct = pairs & ~jnp.eye(x.shape[0], dtype=bool)
    count = jnp.sum(real.astype(x.dtype))

    def total(k: Array, where: Array) -> Array:
        return jnp.sum(jnp.where(where, k, 0.0))

    within = total(mmd_kernel(x, x, kernel, bandwidth), distinct) + total(
        mmd_kernel(y, y, kernel, bandwidth), distinct
    )
    across = total(mmd_kernel(x, y, kernel, bandwidth), pairs)
    estimate = within / jnp.maximum(count * (count - 1.0), 1.0) - 2.0 * across / jnp.maximum(
        count * count, 1.0
    )
    return jnp.where(count >= 2, estimate, 0.0)


def _check_weights(kind: str, alpha: Any, lambda_mmd: Any) -> tuple[float | None, float]:
    if lambda_mmd is None:
        lambda_mmd = _LAMBDA[kind]
    if kind == "wae":
        if alpha is not None:
            raise ValueError(
                f"alpha is InfoVAE's weight of the KL term; WAE-MMD has none, got alpha={alpha!r}"
            )
        return None, validation.check_real("lambda_mmd", lambda_mmd, nonnegative=True)
    alpha = validation.check_real("alpha", 0.0 if alpha is None else alpha)
    lambda_mmd = validation.check_real("lambda_mmd", lambda_mmd, positive=True)
    if alpha > 1.0:
        raise ValueError(
            f"alpha must be <= 1 (the KL term's weight 1 - alpha must not be negative), got "
            f"alpha={alpha!r}"
        )
    if alpha + lambda_mmd < 1.0:
        raise ValueError(
            "alpha + lambda_mmd must be >= 1 (the MMD term's weight alpha + lambda_mmd - 1 must "
            f"not be negative), got alpha={alpha!r} and lambda_mmd={lambda_mmd!r}"
        )
    return alpha, lambda_mmd


def mmd_objective(
    model: nn.Module,
    *,
    kind: str = "infovae",
    alpha: float | None = None,
    lambda_mmd: float | None = None,
    kernel: str = "imq",
    kernel_bandwidth: float = 1.0,
    likelihood: str = "sse",
    binarize: bool = False,
    obs_logvar: float | str = 0.0,
) -> Objective:
    r"""InfoVAE-MMD's or WAE-MMD's objective: reconstruction plus a weighted MMD² to the prior.

    ``kind="infovae"`` (Zhao et al. 2019, eq. 6 with D = MMD):

    .. math::

        \ell = \mathrm{rec} + (1 - \alpha)\,\mathrm{KL} + (\alpha + \lambda - 1)\,
            \mathrm{MMD}^2(\{z_i\}, \{\tilde z_i\}),

    with ``reconstruction`` and ``kl`` the masked means of :func:`~latent_jax.objectives.
    vae_objective`'s terms (its likelihoods, binarization and key use: the draws are the
    VAE's) and :math:`z_i` the reparameterized draws the model decodes. With α = 0 and λ = 1
    (MMD weight 0) the loss is the VAE's negative ELBO, draw for draw.

    ``kind="wae"`` (Tolstikhin et al. 2018, Algorithm 2): the deterministic encoder's code
    :math:`z_i = \mu(x_i)` (the model's ``encode`` mean; its log-variance is not used), the
    reconstruction term of ``decode(mu)`` (no noise) and

    .. math::

        \ell = \mathrm{rec} + \lambda\,\mathrm{MMD}^2(\{\mu(x_i)\}, \{\tilde z_i\}).

    In both, :math:`\mathrm{MMD}^2` is :func:`mmd_u_statistic` between the codes of the batch's
    M real rows and M prior draws :math:`\tilde z_i \sim \mathcal{N}(0, I)` (the draws of the
    padding rows do not enter): a statistic of the batch, as in the papers' minibatch
    estimates. The draws use the key ``jax.random.fold_in(key, 0x6D6D64)``, a stream apart
    from the model's keys (which are split off ``key`` as in :func:`vae_objective`); at
    evaluation the engine's fixed key gives the same draws every epoch.

    Metrics: ``loss``, ``reconstruction``, ``kl`` (InfoVAE only) and ``mmd`` (the MMD²
    estimate, which may be slightly negative); ``loss == reconstruction + (1 - alpha) * kl +
    (alpha + lambda_mmd - 1) * mmd`` (InfoVAE) or ``reconstruction + lambda_mmd * mmd`` (WAE)
    for the reported values.

    Args:
        model: a linen VAE, ``model(x, key) -> (reconstruction, mean, logvar)``; for
            ``"wae"`` also ``encode(x) -> (mean, logvar)`` and ``decode(z)`` (each may declare
            ``train`` and ``mask``).
        kind: ``"infovae"`` or ``"wae"``.
        alpha: InfoVAE's α, <= 1 (default 0); must be ``None`` for WAE.
        lambda_mmd: λ; InfoVAE: > 0 with α + λ >= 1 (default 1000), WAE: >= 0 (default 10).
        kernel: ``"rbf"`` or ``"imq"``.
        kernel_bandwidth: σ in :math:`C = 2 d \sigma^2`, > 0.
        likelihood: ``"sse"``, ``"gaussian"`` or ``"bernoulli"`` (the reconstruction cost;
            WAE's :math:`c(x, y) = \|x - y\|^2` is ``"sse"``).
        binarize: train on dynamically binarized inputs.
        obs_logvar: the Gaussian likelihood's log-variance, or ``"learned"``.

    Returns:
        The :class:`~latent_jax.objectives.Objective`, named ``"infovae-mmd"`` or
        ``"wae-mmd"``.

    Raises:
        TypeError: for a WAE model without ``encode``/``decode``.
        ValueError: for an unknown kind or kernel, a negative weight, ``alpha`` with WAE, or
            a bandwidth that is not positive.
    """
    check_model(model)
    kind = validation.check_choice("kind", kind, MMD_KINDS)
    alpha, lambda_mmd = _check_weights(kind, alpha, lambda_mmd)
    kernel = validation.check_choice("kernel", kernel, KERNELS)
    kernel_bandwidth = validation.check_real("kernel_bandwidth", kernel_bandwidth, positive=True)
    terms = ElboTerms(model, likelihood=likelihood, binarize=binarize, obs_logvar=obs_logvar)

    def mmd(codes: Array, mask: Array, key: Array) -> Array:
        prior = jax.random.normal(jax.random.fold_in(key, _PRIOR_STREAM), codes.shape, codes.dtype)
        return mmd_u_statistic(codes, prior, mask, kernel, kernel_bandwidth)

    if kind == "infovae":
        kl_weight, mmd_weight = 1.0 - alpha, alpha + lambda_mmd - 1.0

        @context_loss
        def loss(
            params: Any,
            model_state: Mapping[str, Any],
            batch: Batch,
            key: Array,
            context: Context,
        ) -> tuple[Array, tuple[Metrics, dict]]:
            encoded = terms.encoded(params, model_state, batch, key, context.train)
            rec = masked_mean(encoded.reconstruction, batch.mask)
            kl = masked_mean(encoded.kl, batch.mask)
            divergence = mmd(encoded.z, batch.mask, key)
            value = rec + jnp.float32(kl_weight) * kl + jnp.float32(mmd_weight) * divergence
            metrics = {"loss": value, "reconstruction": rec, "kl": kl, "mmd": divergence}
            return value, (metrics, encoded.model_state)

    else:
        deterministic = MeanCodeTerms(
            model, likelihood=likelihood, binarize=binarize, obs_logvar=obs_logvar
        )

        @context_loss
        def loss(
            params: Any,
            model_state: Mapping[str, Any],
            batch: Batch,
            key: Array,
            context: Context,
        ) -> tuple[Array, tuple[Metrics, dict]]:
            code = deterministic.encode(params, model_state, batch, key, context.train)
            codes = code.z
            output, state = deterministic.decoding(params, code, context.train)(codes)
            values = deterministic.reconstruction(params, model_state, output, code.batch)
            rec = masked_mean(values, batch.mask)
            divergence = mmd(codes, batch.mask, key)
            value = rec + jnp.float32(lambda_mmd) * divergence
            metrics = {"loss": value, "reconstruction": rec, "mmd": divergence}
            return value, (metrics, state)

    spec = {
        "kind": kind,
        **({} if alpha is None else {"alpha": alpha}),
        "lambda_mmd": lambda_mmd,
        "kernel": kernel,
        "kernel_bandwidth": kernel_bandwidth,
        "likelihood": likelihood,
        "binarize": terms.binarize,
        "obs_logvar": obs_logvar,
    }
    name = "infovae-mmd" if kind == "infovae" else "wae-mmd"
    return Objective(init=terms.init, loss=loss, model=model, name=name, spec=spec)


_KERNEL = Option("kernel", str, "imq", "MMD kernel: rbf, or imq (inverse multiquadratics)", KERNELS)
_BANDWIDTH = Option("kernel_bandwidth", float, 1.0, "MMD kernel bandwidth sigma, C = 2 d sigma^2")


@register_objective(
    "infovae-mmd",
    trains="vae",
    options=(
        LIKELIHOOD,
        BINARIZE,
        Option("alpha", float, 0.0, "InfoVAE's alpha: the KL term's weight is 1 - alpha"),
        Option(
            "lambda_mmd",
            float,
            _LAMBDA["infovae"],
            "weight of the MMD term (InfoVAE: alpha + lambda - 1; WAE: lambda)",
        ),
        _KERNEL,
        _BANDWIDTH,
    ),
    help="InfoVAE-MMD: reconstruction + (1 - alpha) KL + (alpha + lambda - 1) MMD^2 "
    "(Zhao et al. 2019)",
)
def _infovae_mmd(
    model: nn.Module,
    *,
    likelihood: str,
    binarize: bool,
    alpha: float,
    lambda_mmd: float,
    kernel: str,
    kernel_bandwidth: float,
) -> Objective:
    return mmd_objective(
        model,
        kind="infovae",
        alpha=alpha,
        lambda_mmd=lambda_mmd,
        kernel=kernel,
        kernel_bandwidth=kernel_bandwidth,
        likelihood=likelihood,
        binarize=binarize,
    )


@register_objective(
    "wae-mmd",
    trains="vae",
    options=(
        LIKELIHOOD,
        BINARIZE,
        Option(
            "lambda_mmd",
            float,
            _LAMBDA["wae"],
            "weight of the MMD term (InfoVAE: alpha + lambda - 1; WAE: lambda)",
        ),
        _KERNEL,
        _BANDWIDTH,
    ),
    help="WAE-MMD: reconstruction of decode(mu) + lambda MMD^2, a deterministic encoder "
    "(Tolstikhin et al. 2018)",
)
def _wae_mmd(
    model: nn.Module,
    *,
    likelihood: str,
    binarize: bool,
    lambda_mmd: float,
    kernel: str,
    kernel_bandwidth: float,
) -> Objective:
    return mmd_objective(
        model,
        kind="wae",
        lambda_mmd=lambda_mmd,
        kernel=kernel,
        kernel_bandwidth=kernel_bandwidth,
        likelihood=likelihood,
        binarize=binarize,
    )
