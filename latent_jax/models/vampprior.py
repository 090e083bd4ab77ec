r"""The VampPrior (Tomczak & Welling 2018, "VAE with a VampPrior", AISTATS): a VAE whose prior
is the mixture of its own posteriors at K learned pseudo-inputs.

.. math::

    p_\lambda(z) = \frac1K \sum_{k=1}^{K} q_\phi(z \mid u_k),

(the paper's Section 3, "The Variational Mixture of Posteriors Prior"), where
:math:`q_\phi(z|x) = \mathcal{N}(\mu(x), \mathrm{diag}\,e^{l(x)})` is the VAE's encoder and the
pseudo-inputs :math:`u_1, \dots, u_K` live in data space and are trained with the rest by
back-propagation. The prior approximates the aggregate posterior :math:`\frac1N \sum_n
q_\phi(z|x_n)`, the prior that maximizes the data's bound, with K components in place of N.

:class:`VampPrior` wraps any registered VAE (as :class:`~latent_jax.models.factorvae.FactorVAE`
does, recorded in run files with its VAE as a nested spec): ``params = {"vae": ...,
"pseudo_inputs": ...}``. Encoding, decoding and ``latent_dim`` are the inner VAE's;
:meth:`VampPrior.log_prior` and :meth:`VampPrior.sample_latents` are the prior's, so
:func:`latent_jax.generate.sample_prior` draws a reloaded run's samples from the mixture. The
objective is :func:`latent_jax.objectives.vamp_objective`.

The pseudo-inputs. The authors' code makes them with a bias-free linear layer applied to the
identity (an "idle" input :math:`I_K`), whose weight matrix is therefore the pseudo-inputs
themselves, clipped to [0, 1] by a hard tanh, initialized from :math:`\mathcal{N}(0.05,
0.01^2)` on MNIST and OMNIGLOT (0.4 or 0.5 on the grey-level sets); pythae's ``VAMP`` does the
same with a biased ``nn.Linear`` of PyTorch's default initialization. Here they are one
parameter of shape (K, ...features), learned directly: the same function and the same
gradients as the bias-free layer on the identity, without a K x K product. Their shape is the
data's, taken from the batch at initialization (the wrapper needs no input shape of its own,
so an objective can wrap any VAE before it sees data; checkpoints record the parameter).
They are initialized from :math:`\mathcal{N}(m, s^2)` with the authors' m = 0.05, s = 0.01,
and left unclipped by default, since this library's data are usually standardized;
``pseudo_input_range=(0.0, 1.0)`` clips them as the authors do, for data in [0, 1].
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import Array

from latent_jax import validation
from latent_jax.gaussian import gaussian_log_likelihood, reparameterize
from latent_jax.models.registry import register_model
from latent_jax.models.wrapping import inner_keywords

__all__ = ["PSEUDO_INPUTS", "VampPrior"]

# The name of the pseudo-inputs among the wrapper's parameters.
PSEUDO_INPUTS = "pseudo_inputs"


def _check_range(value: Any) -> tuple[float, float] | None:
    if value is None:
        return None
    try:
        low, high = value
    except (TypeError, ValueError):
        low = high = None
    reals = all(
        isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v)
        for v in (low, high)
    )
    if not reals or not low < high:
        raise ValueError(
            f"pseudo_input_range must be None or (low, high) with finite low < high, got {value!r}"
        )
    return float(low), float(high)


@register_model
class VampPrior(nn.Module):
    r"""A VAE with the VampPrior: its prior is the mixture of its posteriors at K learned
    pseudo-inputs.

    Attributes:
        vae: the VAE, a registered linen module with ``encode(x) -> (mean, logvar)``,
            ``decode(z)`` and ``__call__(x, key) -> (reconstruction, mean, logvar)``.
        n_pseudo_inputs: K, the number of pseudo-inputs (the paper: 500 on MNIST).
        pseudo_input_mean: the mean of their initial values (the authors' 0.05).
        pseudo_input_std: the standard deviation of their initial values (the authors' 0.01).
        pseudo_input_range: ``(low, high)``: the pseudo-inputs are clipped to this interval
            (the authors' hard tanh, (0, 1)); ``None`` (the default): unclipped.

    Raises:
        TypeError: at construction, for a ``vae`` that is not a linen module with ``encode``
            and ``decode``.
        ValueError: for K below 1, a negative or non-finite standard deviation, or a bad range.
    """

    vae: nn.Module
    n_pseudo_inputs: int = 500
    pseudo_input_mean: float = 0.05
    pseudo_input_std: float = 0.01
    pseudo_input_range: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.vae, nn.Module) or not all(
            callable(getattr(self.vae, method, None)) for method in ("encode", "decode")
        ):
            raise TypeError(
                "vae must be a flax.linen VAE with encode and decode methods, got "
                f"{type(self.vae).__name__}"
            )
        validation.check_int("n_pseudo_inputs", self.n_pseudo_inputs, 1)
        validation.check_real("pseudo_input_mean", self.pseudo_input_mean)
        validation.check_real("pseudo_input_std", self.pseudo_input_std, nonnegative=True)
        # A tuple keeps the module hashable (a static jit argument) and equal to its rebuild.
        self.pseudo_input_range = _check_range(self.pseudo_input_range)
        super().__post_init__()

    @property
    def latent_dim(self) -> int:
        """The inner VAE's code size (the prior's)."""
        return self.vae.latent_dim

    def _initial_pseudo_inputs(self, key: Array, shape: tuple[int, ...]) -> Array:
        noise = jax.random.normal(key, shape, jnp.float32)
        return jnp.float32(self.pseudo_input_mean) + jnp.float32(self.pseudo_input_std) * noise

    @nn.compact
    def __call__(
        self, x: Array, key: Array, *, train: bool = False, mask: Array | None = None
    ) -> tuple[Array, Array, Array]:
        """The inner VAE's ``(reconstruction, mean, logvar)`` for ``x`` of shape (batch,
        ...features); at initialization the pseudo-inputs are made too, of shape
        (n_pseudo_inputs, ...features)."""
        shape = (self.n_pseudo_inputs, *jnp.shape(x)[1:])
        self.param(PSEUDO_INPUTS, self._initial_pseudo_inputs, shape)
        return self.vae(x, key, **inner_keywords(self.vae, "__call__", train, mask))

    def encode(
        self, x: Array, *, train: bool = False, mask: Array | None = None
    ) -> tuple[Array, Array]:
        """The inner VAE's posterior ``(mean, logvar)``, each of shape (batch, latent_dim)."""
        return self.vae.encode(x, **inner_keywords(self.vae, "encode", train, mask))

    def decode(self, z: Array, *, train: bool = False, mask: Array | None = None) -> Array:
        """The inner VAE's decoder output for codes of shape (batch, latent_dim)."""
        return self.vae.decode(z, **inner_keywords(self.vae, "decode", train, mask))

    def pseudo_inputs(self) -> Array:
        """The pseudo-inputs :math:`u_k` (clipped to ``pseudo_input_range`` if set), array of
        shape (n_pseudo_inputs, ...features).

        Raises:
            ValueError: for variables without pseudo-inputs (they are made by ``init``).
        """
        u = self.get_variable("params", PSEUDO_INPUTS)
        if u is None:
            raise ValueError(
                "the VampPrior's variables hold no pseudo-inputs: make them with "
                "model.init(key, x, key) (their shape is the data's)"
            )
        if self.pseudo_input_range is not None:
            u = jnp.clip(u, *self.pseudo_input_range)
        return u

    def components(self) -> tuple[Array, Array]:
        r"""The mixture's components :math:`q_\phi(z|u_k)`: ``(mean, logvar)``, each of shape
        (n_pseudo_inputs, latent_dim).

        The pseudo-inputs are encoded in inference mode (a VAE with BatchNorm uses its running
        statistics and updates none): the prior is a function of the parameters, not of the
        batch being trained on.
        """
        mean, logvar = self.vae.encode(
            self.pseudo_inputs(), **inner_keywords(self.vae, "encode", False, None)
        )
        k = self.n_pseudo_inputs
        return jnp.reshape(mean, (k, -1)), jnp.reshape(logvar, (k, -1))

    def log_prior(self, z: Array) -> Array:
        r""":math:`\log p_\lambda(z) = \log \sum_k \mathcal{N}(z; \mu(u_k),
        \mathrm{diag}\,e^{l(u_k)}) - \log K`.

        Args:
            z: codes, array of shape (..., latent_dim).

        Returns:
            Array of shape (...), in nats.
        """
        mean, logvar = self.components()
        log_components = gaussian_log_likelihood(jnp.expand_dims(z, -2), mean, logvar)
        return jax.nn.logsumexp(log_components, axis=-1) - math.log(self.n_pseudo_inputs)

    def sample_latents(self, key: Array, n: int) -> Array:
        r"""``n`` draws from the prior: a component k uniform over the K pseudo-inputs, then
        :math:`z \sim q_\phi(z|u_k)` (what :func:`latent_jax.generate.sample_prior` decodes).

        Args:
            key: PRNG key of the draws.
            n: the number of draws (a Python int).

        Returns:
            Array of shape (n, latent_dim).
        """
        mean, logvar = self.components()
        component_key, noise_key = jax.random.split(key)
        k = jax.random.randint(component_key, (n,), 0, self.n_pseudo_inputs)
        return reparameterize(noise_key, mean[k], logvar[k])
