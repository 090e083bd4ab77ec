r"""The β-TCVAE (Chen, Li, Grosse & Duvenaud 2018, "Isolating Sources of Disentanglement in
Variational Autoencoders").

The ELBO's KL term, averaged over the data set, splits into three (the paper's eq. 2):

.. math::

    \mathbb{E}_{p(n)}\bigl[D_{KL}(q(z|n)\,\|\,p(z))\bigr]
    = \underbrace{I_q(z; n)}_{\text{index-code MI}}
    + \underbrace{D_{KL}\bigl(q(z)\,\|\,\textstyle\prod_k q(z_k)\bigr)}_{\text{total correlation}}
    + \underbrace{\textstyle\sum_k D_{KL}(q(z_k)\,\|\,p(z_k))}_{\text{dimension-wise KL}},

where :math:`q(z) = \frac1N \sum_n q(z|n)` is the aggregate posterior over the N training
rows. The β-TCVAE weighs them apart, ``rec + α·MI + β·TC + γ·dimKL`` (α = γ = 1 in the
paper's experiments: only the total correlation is penalized more).

:math:`\log q(z)` needs the whole data set; Section 4 of the paper estimates it on a minibatch
of M rows :math:`\{n_1, \dots, n_M\}`, at each row's own draw :math:`z_i \sim q(z|n_i)`:

* **minibatch-weighted sampling** (``"mws"``, eq. 8):
  :math:`\log q(z_i) \approx \log \frac{1}{NM} \sum_j q(z_i|n_j)`;
* **minibatch-stratified sampling** (``"mss"``, the paper's appendix):
  :math:`\log q(z_i) \approx \log \sum_j W_{ij}\, q(z_i|n_j)` with the weights of
  :func:`minibatch_log_weights`;

and :math:`\log \prod_k q(z_{ik})` the same way one dimension at a time. Both need the
training set's size N, which the trainers bind (:func:`latent_jax.objectives.bind_dataset_size`;
:attr:`latent_jax.objectives.Context.n_train`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import Array

from latent_jax import validation
from latent_jax.objectives.base import Batch, Context, Metrics, Objective, context_loss, masked_mean
from latent_jax.objectives.registry import Option, register_objective
from latent_jax.objectives.vae import BINARIZE, LIKELIHOOD, ElboTerms

__all__ = [
    "ESTIMATORS",
    "LatentLogDensities",
    "beta_tcvae_objective",
    "minibatch_log_weights",
    "total_correlation_terms",
]

ESTIMATORS = ("mws", "mss")
_LOG_2PI = math.log(2.0 * math.pi)


class LatentLogDensities(NamedTuple):
    r"""The log-densities of each row's draw :math:`z_i` (:func:`total_correlation_terms`),
    each an array of shape (batch,).

    Attributes:
        log_qz_given_x: :math:`\log q(z_i|x_i)`, the row's own posterior.
        log_qz: :math:`\log q(z_i)`, the aggregate posterior (estimated).
        log_prod_qzk: :math:`\sum_k \log q(z_{ik})`, the product of its marginals (estimated).
        log_pz: :math:`\log \mathcal{N}(z_i; 0, I)`, the prior.
    """

    log_qz_given_x: Array
    log_qz: Array
    log_prod_qzk: Array
    log_pz: Array


def _check_n_train(n_train: Any) -> int:
    if n_train is None:
        raise ValueError(
            "the total correlation's estimators need the training set's size N (n_train), got "
            "None: the trainers bind it (latent_jax.train.fit, fit_stream, fit_many; "
            "latent_jax.train.evaluate(..., n_train=N)), or bind it yourself with "
            "latent_jax.objectives.bind_dataset_size(objective, n)"
        )
    return validation.check_int("n_train", n_train, 1)


def minibatch_log_weights(mask: Array, n_train: int, estimator: str) -> Array:
    r"""The log-weights :math:`\log W_{ij}` of the estimate :math:`q(z_i) \approx \sum_j
    W_{ij}\, q(z_i|x_j)` on a batch whose real rows ``mask`` marks.

    With M real rows, N = ``n_train`` and :math:`M' = M - 1`:

    * ``"mws"``: :math:`W_{ij} = 1/(NM)` (Chen et al. 2018, eq. 8);
    * ``"mss"``: the stratified weights of the paper's appendix, in the layout of the authors'
      code (``vae_quant.py``, ``_log_importance_weight_matrix``): the row's own posterior
      :math:`W_{ii} = 1/N`, the next real row (cyclically) :math:`(N - M')/(NM')`, every other
      real row :math:`1/M'`. Each row sums to 1, the stratified estimator's expectation.
      Two deliberate differences from that code: its strides (``view(-1)[::M+1]``, with its
      ``M`` the batch size less one) fill columns 0 and 1 rather than the diagonal and the
      one above (rtqichen/beta-tcvae pull request 1), and it gives the stratum weight of
      the last row to row :math:`M'-1`, which then has two and the last row none; here the
      weights are the paper's, one stratum weight in every row. A batch of one real row
      has :math:`W_{00} = 1/N` (as MWS); where M' >= N (a batch larger than the training set,
      only when scoring another set) the stratum weight is 0.

    Padding columns (mask 0) weigh 0 (:math:`-\infty`); the ranks of the real rows define
    "next", so real rows need not come first. Safe under ``jax.jit`` (M is traced).

    Args:
        mask: float array of shape (batch,), > 0 for real rows.
        n_train: the training set's size N, >= 1.
        estimator: ``"mws"`` or ``"mss"``.

    Returns:
        Float32 array of shape (batch, batch), :math:`-\infty` where the weight is 0.

    Raises:
        ValueError: for ``n_train`` None or below 1, or an unknown estimator.
    """
    n_train = _check_n_train(n_train)
    estimator = validation.check_choice("estimator", estimator, ESTIMATORS)
    real = jnp.asarray(mask) > 0
    count = jnp.sum(real.astype(jnp.float32))
    # No real row (a batch of padding only): every column counts, so nothing is -inf; the
    # masked means give 0 whatever the values.
    columns = jnp.where(count > 0, real, True)
    count = jnp.maximum(count, 1.0)
    log_n = math.log(n_train)
    if estimator == "mws":
        log_w = jnp.broadcast_to(-(log_n + jnp.log(count)), (real.shape[0],) * 2)
    else:
        others = jnp.maximum(count - 1.0, 1.0)  # M', kept >= 1 (M = 1 has no other rows)
        rank = jnp.cumsum(columns.astype(jnp.int32)) - 1
        m = count.astype(jnp.int32)
        after = (rank[:, None] + 1) % m == rank[None, :]
        own = jnp.eye(real.shape[0], dtype=bool)
        spare = jnp.float32(n_train) - others  # N - M'
        log_stratum = jnp.log(jnp.where(spare > 0, spare, 1.0)) - log_n - jnp.log(others)
        log_stratum = jnp.where(spare > 0, log_stratum, -jnp.inf)
        log_w = jnp.where(after, log_stratum, -jnp.log(others))
        log_w = jnp.where(own, -log_n, log_w)
    return jnp.where(columns[None, :], log_w, -jnp.inf).astype(jnp.float32)


def total_correlation_terms(
    z: Array, mean: Array, logvar: Array, mask: Array, n_train: int, estimator: str = "mws"
) -> LatentLogDensities:
    r"""Each row's :math:`\log q(z_i|x_i)`, :math:`\log q(z_i)`, :math:`\log \prod_k
    q(z_{ik})` and :math:`\log p(z_i)`, with :math:`q(z)` estimated on the batch.

    With :math:`\ell_{ijk} = \log \mathcal{N}(z_{ik}; \mu_{jk}, \sigma_{jk}^2)` for every
    pair of real rows and the log-weights :math:`\log W` of :func:`minibatch_log_weights`:

    .. math::

        \log q(z_i|x_i) = \sum_k \ell_{iik}, \quad
        \log q(z_i) \approx \operatorname{logsumexp}_j \bigl(\log W_{ij} + \textstyle\sum_k
        \ell_{ijk}\bigr), \quad
        \log \prod_k q(z_{ik}) \approx \sum_k \operatorname{logsumexp}_j
        (\log W_{ij} + \ell_{ijk}).

    Then :math:`I = \log q(z|x) - \log q(z)`, :math:`TC = \log q(z) - \log\prod_k q(z_k)` and
    :math:`\log\prod_k q(z_k) - \log p(z)` are the three terms' estimates per row (Chen et
    al. 2018, eq. 2 and Section 4), and they sum to :math:`\log q(z|x) - \log p(z)`.

    Only real rows enter: what padding rows (mask 0) hold changes no real row's values
    nor their gradients (they are replaced by zeros first); their own values are finite and
    mean nothing. Memory: (batch, batch, latent_dim) values.

    Args:
        z: the draws :math:`z_i \sim q(z|x_i)`, array of shape (batch, latent_dim).
        mean: the posterior means, the same shape.
        logvar: the posterior log-variances, the same shape.
        mask: float array of shape (batch,), > 0 for real rows.
        n_train: the training set's size N, >= 1.
        estimator: ``"mws"`` (minibatch-weighted) or ``"mss"`` (minibatch-stratified).

    Returns:
        :class:`LatentLogDensities`, four arrays of shape (batch,).

    Raises:
        ValueError: for ``n_train`` None or below 1, an unknown estimator, or arrays of
            other shapes.
    """
    z, mean, logvar, mask = (jnp.asarray(a) for a in (z, mean, logvar, mask))
    if z.ndim != 2 or mean.shape != z.shape or logvar.shape != z.shape:
        raise ValueError(
            "z, mean and logvar must be arrays of one shape (batch, latent_dim), got "
            f"{z.shape}, {mean.shape} and {logvar.shape}"
        )
    if mask.shape != z.shape[:1]:
        raise ValueError(f"mask must have shape ({z.shape[0]},), got {mask.shape}")
    log_w = minibatch_log_weights(mask, n_train, estimator)
    real = (mask > 0)[:, None]
    z, mean, logvar = (jnp.where(real, a, 0.0) for a in (z, mean, logvar))
    # [i, j, k]: log N(z_ik; mean_jk, exp(logvar_jk)).
    pairs = -0.5 * (
        _LOG_2PI + logvar[None] + jnp.square(z[:, None] - mean[None]) * jnp.exp(-logvar[None])
    )
    joint = jnp.sum(pairs, axis=-1)
    log_qz_given_x = jnp.diagonal(joint)
    log_qz = jax.nn.logsumexp(log_w + joint, axis=1)
    log_prod_qzk = jnp.sum(jax.nn.logsumexp(log_w[:, :, None] + pairs, axis=1), axis=-1)
    log_pz = jnp.sum(-0.5 * (_LOG_2PI + jnp.square(z)), axis=-1)
    return LatentLogDensities(log_qz_given_x, log_qz, log_prod_qzk, log_pz)


def beta_tcvae_objective(
    model: nn.Module,
    *,
    alpha: float = 1.0,
    beta: float = 6.0,
    gamma: float = 1.0,
    estimator: str = "mws",
    likelihood: str = "sse",
    binarize: bool = False,
    obs_logvar: float | str = 0.0,
) -> Objective:
    r"""The β-TCVAE's objective: ``rec + alpha * MI + beta * TC + gamma * dimKL``.

    Per batch, with the reconstruction term of :func:`~latent_jax.objectives.vae_objective`
    (its likelihoods, binarization and key use, :class:`~latent_jax.objectives.vae.ElboTerms`)
    and the per-row log-densities of :func:`total_correlation_terms` at the decoded draw:

    .. math::

        \ell = \overline{\mathrm{rec}}
        + \alpha\, \overline{\log q(z|x) - \log q(z)}
        + \beta\, \overline{\log q(z) - \log\textstyle\prod_k q(z_k)}
        + \gamma\, \overline{\log\textstyle\prod_k q(z_k) - \log p(z)},

    bars the masked means over the real rows (Chen et al. 2018, eq. 2's three terms, estimated
    as in Section 4; the paper's experiments keep α = γ = 1 and vary β). With α = β = γ = 1
    the three terms sum to :math:`\overline{\log q(z|x) - \log p(z)}`, a one-draw estimate
    of the KL term: the loss is then :func:`~latent_jax.objectives.vae_objective`'s (β = 1) with
    the KL term sampled rather than in closed form.

    Defaults: β = 6, the value of the authors' released training command (README of
    github.com/rtqichen/beta-tcvae: ``--beta 6 --tcvae``); α = γ = 1 as in the paper's
    experiments; the minibatch-weighted estimator, the paper's main one (Section 4; the
    reference code's default, ``--mss`` switching to the stratified one).

    The estimators need the training set's size N (``context.n_train``), which the trainers
    bind; calling the loss without it raises ``ValueError``.

    Metrics: ``loss``, ``reconstruction``, ``kl`` (the analytic KL term, for comparison),
    ``mutual_info``, ``tc`` and ``dimwise_kl`` (masked means over the rows);
    ``loss == reconstruction + alpha * mutual_info + beta * tc + gamma * dimwise_kl`` for the
    reported values.

    Args:
        model: a linen VAE, ``model(x, key) -> (reconstruction, mean, logvar)``.
        alpha: α, the weight of the index-code mutual information, >= 0.
        beta: β, the weight of the total correlation, >= 0.
        gamma: γ, the weight of the dimension-wise KL, >= 0.
        estimator: ``"mws"`` (minibatch-weighted sampling) or ``"mss"``
            (minibatch-stratified sampling, :func:`minibatch_log_weights`).
        likelihood: ``"sse"``, ``"gaussian"`` or ``"bernoulli"``.
        binarize: train on dynamically binarized inputs.
        obs_logvar: the Gaussian likelihood's log-variance, or ``"learned"``.

    Returns:
        The :class:`~latent_jax.objectives.Objective` (named ``"beta-tcvae"``).

    Raises:
        ValueError: for a negative or non-finite weight or an unknown estimator or
            likelihood (at once), or, from the loss, a context without ``n_train``.
        TypeError: for a weight that is not a real number, or a model that is not a linen
            Module.
    """
    alpha = validation.check_real("alpha", alpha, nonnegative=True)
    beta = validation.check_real("beta", beta, nonnegative=True)
    gamma = validation.check_real("gamma", gamma, nonnegative=True)
    estimator = validation.check_choice("estimator", estimator, ESTIMATORS)
    terms = ElboTerms(model, likelihood=likelihood, binarize=binarize, obs_logvar=obs_logvar)

    @context_loss
    def loss(
        params: Any, model_state: Mapping[str, Any], batch: Batch, key: Array, context: Context
    ) -> tuple[Array, tuple[Metrics, dict]]:
        n_train = _check_n_train(context.n_train)
        encoded = terms.encoded(params, model_state, batch, key, context.train)
        logs = total_correlation_terms(
            encoded.z, encoded.mean, encoded.logvar, batch.mask, n_train, estimator
        )
        rec = masked_mean(encoded.reconstruction, batch.mask)
        mutual_info = masked_mean(logs.log_qz_given_x - logs.log_qz, batch.mask)
        tc = masked_mean(logs.log_qz - logs.log_prod_qzk, batch.mask)
        dimwise_kl = masked_mean(logs.log_prod_qzk - logs.log_pz, batch.mask)
        value = (
            rec
            + jnp.float32(alpha) * mutual_info
            + jnp.float32(beta) * tc
            + jnp.float32(gamma) * dimwise_kl
        )
        metrics = {
            "loss": value,
            "reconstruction": rec,
            "kl": masked_mean(encoded.kl, batch.mask),
            "mutual_info": mutual_info,
            "tc": tc,
            "dimwise_kl": dimwise_kl,
        }
        return value, (metrics, encoded.model_state)

    spec = {
        "alpha": alpha,
        "beta": beta,
        "gamma": gamma,
        "estimator": estimator,
        "likelihood": likelihood,
        "binarize": terms.binarize,
        "obs_logvar": obs_logvar,
    }
    return Objective(init=terms.init, loss=loss, model=model, name="beta-tcvae", spec=spec)


@register_objective(
    "beta-tcvae",
    trains="vae",
    options=(
        LIKELIHOOD,
        BINARIZE,
        Option("alpha", float, 1.0, "weight of the index-code mutual information (Chen et al.: 1)"),
        Option("beta", float, 6.0, "weight of the total correlation (Chen et al.'s code: 6)"),
        Option("gamma", float, 1.0, "weight of the dimension-wise KL (Chen et al.: 1)"),
        Option(
            "estimator",
            str,
            "mws",
            "log q(z) on a minibatch: minibatch-weighted or minibatch-stratified sampling",
            ESTIMATORS,
        ),
    ),
    help="beta-TCVAE: reconstruction + alpha MI + beta TC + gamma dimension-wise KL "
    "(Chen et al. 2018)",
)
def _beta_tcvae(
    model: nn.Module,
    *,
    likelihood: str,
    binarize: bool,
    alpha: float,
    beta: float,
    gamma: float,
    estimator: str,
) -> Objective:
    return beta_tcvae_objective(
        model,
        alpha=alpha,
        beta=beta,
        gamma=gamma,
        estimator=estimator,
        likelihood=likelihood,
        binarize=binarize,
    )
