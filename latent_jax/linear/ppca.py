r"""Probabilistic PCA (Tipping & Bishop, 1999): :math:`x = W z + \mu + \epsilon` with
:math:`z \sim \mathcal{N}(0, I_Q)` and :math:`\epsilon \sim \mathcal{N}(0, \sigma^2 I_D)`.

Its maximum likelihood is closed form: :math:`\sigma^2` is the mean of the :math:`D - Q`
discarded eigenvalues and :math:`W = V (\Lambda - \sigma^2 I)^{1/2}` (:func:`fit_ppca`,
:func:`ppca_params`); the log-likelihood, the posterior over z and samples follow
(:func:`ppca_log_likelihood`, :func:`ppca_posterior`, :func:`ppca_sample`).

References:
    M. E. Tipping and C. M. Bishop, "Probabilistic principal component analysis", Journal of
    the Royal Statistical Society B 61(3), 1999.
"""

from __future__ import annotations

from jax import Array
from jax.typing import ArrayLike

from latent_jax import validation
from latent_jax.linear.kernels import (
    PCAState,
    PPCAParams,
    _check_last_axis,
    _check_state,
    _log_likelihood_kernel,
    _ml_noise_kernel,
    _posterior_kernel,
    _ppca_covariance_kernel,
    _ppca_params_kernel,
    _sample_kernel,
)
from latent_jax.linear.pca import fit_pca


def fit_ppca(x: ArrayLike, n_components: int) -> PCAState:
    r"""Maximum-likelihood probabilistic PCA (Tipping & Bishop, 1999) in closed form.

    The eigenvalues are those of the biased covariance (``ddof=0``) and the noise variance is
    the mean of all :math:`D - Q` discarded ones, :math:`\sigma^2 = \frac{1}{D-Q}
    \sum_{j>Q}\lambda_j` (zero when ``n_components == n_features``); :func:`ppca_params`
    turns the state into :math:`W` and :math:`\sigma^2`.

    Args:
        x: array of shape (n_samples, n_features), as in :func:`fit_pca`.
        n_components: Q, in ``[1, min(n_samples, n_features)]``.

    Returns:
        A :class:`PCAState` with ``ddof=0`` and the maximum-likelihood ``noise_variance``.
    """
    if n_components is None:
        raise TypeError("n_components must be an int for probabilistic PCA; got None.")
    state = fit_pca(x, n_components, ddof=0)
    return state._replace(noise_variance=_ml_noise_kernel(state.eigenvalues, n_components))


# --------------------------------------------------------------------------------------------
# Probabilistic PCA
# --------------------------------------------------------------------------------------------


def ppca_params(state: PCAState) -> PPCAParams:
    r"""The probabilistic PCA weight :math:`W = V(\Lambda - \sigma^2 I)^{1/2}` and :math:`\sigma^2`.

    Differences :math:`\lambda_j - \sigma^2` below zero (possible only for states not fitted by
    :func:`fit_pca`) are clipped at zero, as scikit-learn does.

    Args:
        state: a fitted :class:`PCAState` (from :func:`fit_ppca` for the maximum likelihood).

    Returns:
        :class:`PPCAParams` with ``weight`` of shape (n_features, n_components).
    """
    state = _check_state(state)
    weight = _ppca_params_kernel(state.components, state.explained_variance, state.noise_variance)
    return PPCAParams(weight=weight, noise_variance=state.noise_variance)


def ppca_covariance(state: PCAState) -> Array:
    r"""The model covariance :math:`W W^\top + \sigma^2 I`.

    Args:
        state: a fitted :class:`PCAState`.

    Returns:
        Array of shape (n_features, n_features).
    """
    state = _check_state(state)
    return _ppca_covariance_kernel(state.components, state.explained_variance, state.noise_variance)


def ppca_log_likelihood(state: PCAState, x: ArrayLike) -> Array:
    r"""Log-density of each example under :math:`\mathcal{N}(\bar x, W W^\top + \sigma^2 I)`.

    The covariance has eigenvalues :math:`\max(\lambda_j, \sigma^2)` on the retained axes and
    :math:`\sigma^2` on the rest, so with :math:`z = V^\top(x - \bar x)` and the residual
    :math:`r = x - \bar x - V z`,

    .. math::

        \log p(x) = -\tfrac12\Big[D \log 2\pi + \sum_{j\le Q}\log\lambda_j + (D-Q)\log\sigma^2
        + \sum_{j\le Q} \frac{z_j^2}{\lambda_j} + \frac{\lVert r\rVert^2}{\sigma^2}\Big].

    With a zero noise variance and ``n_components < n_features`` the density is degenerate and
    the result is not finite.

    Args:
        state: a fitted :class:`PCAState`.
        x: array of shape (..., n_features).

    Returns:
        Array of shape (...), one log-likelihood per example.
    """
    state = _check_state(state)
    x = _check_last_axis(x, state.mean.shape[0], "x", "features")
    return _log_likelihood_kernel(
        state.mean, state.components, state.explained_variance, state.noise_variance, x
    )


def ppca_posterior(state: PCAState, x: ArrayLike) -> tuple[Array, Array]:
    r"""Posterior :math:`p(z \mid x) = \mathcal{N}(M^{-1} W^\top (x - \bar x), \sigma^2 M^{-1})`.

    Here :math:`M = W^\top W + \sigma^2 I`, diagonal with entries :math:`\lambda_j`, so the mean
    is :math:`\sqrt{\lambda_j - \sigma^2}\, z_j / \lambda_j` and the covariance
    :math:`\mathrm{diag}(\sigma^2 / \lambda_j)`, the same for every example.

    Args:
        state: a fitted :class:`PCAState`.
        x: array of shape (..., n_features).

    Returns:
        ``(mean, covariance)``: the posterior means, array of shape (..., n_components), and the
        shared posterior covariance, array of shape (n_components, n_components).
    """
    state = _check_state(state)
    x = _check_last_axis(x, state.mean.shape[0], "x", "features")
    return _posterior_kernel(
        state.mean, state.components, state.explained_variance, state.noise_variance, x
    )


def ppca_sample(key: Array, state: PCAState, n_samples: int) -> Array:
    r"""Draws :math:`x = W z + \bar x + \sigma\epsilon` with :math:`z, \epsilon` standard normal.

    Args:
        key: a ``jax.random`` key, consumed here.
        state: a fitted :class:`PCAState`.
        n_samples: the number of draws, a positive int.

    Returns:
        Array of shape (n_samples, n_features) whose covariance is :func:`ppca_covariance`.
    """
    state = _check_state(state)
    n_samples = validation.check_int("n_samples", n_samples, 1)
    key = validation.check_key("key", key)
    return _sample_kernel(
        key,
        state.mean,
        state.components,
        state.explained_variance,
        state.noise_variance,
        n_samples,
    )
