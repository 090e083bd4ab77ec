r"""FactorVAE's model: a VAE and the discriminator that estimates its total correlation.

Kim & Mnih (2018), "Disentangling by Factorising", train beside the VAE a discriminator
:math:`D(z)` that tells draws of the aggregate posterior :math:`q(z)` from draws of the product
of its marginals :math:`\bar q(z) = \prod_j q(z_j)` (Section 3). :class:`FactorVAE` holds both,
as the two parameter groups the training engine updates in turn: ``params = {"vae": ...,
"discriminator": ...}``. Everything that uses a trained VAE (``encode``, ``decode``, the
prior's ``latent_dim``) reaches the inner VAE, so a reloaded FactorVAE run encodes, decodes
and samples like any VAE run. The objective is
:func:`latent_jax.objectives.factorvae_objective`.
"""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp
from jax import Array

from latent_jax import validation
from latent_jax.models.registry import register_model
from latent_jax.models.wrapping import inner_keywords

__all__ = ["FactorVAE", "TotalCorrelationDiscriminator"]


class TotalCorrelationDiscriminator(nn.Module):
    """The discriminator of Kim & Mnih (2018), Appendix: an MLP of ``depth`` hidden layers of
    ``width`` units with leaky ReLU (slope 0.2) and one logit.

    The paper's two-way softmax is this logit's: with :math:`\\ell(z) = \\log D(z) - \\log(1 -
    D(z))`, :math:`D = \\sigma(\\ell)`.

    Attributes:
        width: units per hidden layer (the paper: 1000).
        depth: hidden layers (the paper: 6).
    """

    width: int = 1000
    depth: int = 6

    @nn.compact
    def __call__(self, z: Array) -> Array:
        """The logits :math:`\\ell(z)`.

        Args:
            z: codes, array of shape (batch, latent_dim).

        Returns:
            Array of shape (batch,).
        """
        h = z
        for i in range(self.depth):
            h = nn.leaky_relu(nn.Dense(self.width, name=f"dense{i}")(h), negative_slope=0.2)
        return nn.Dense(1, name="logit")(h)[:, 0]


@register_model
class FactorVAE(nn.Module):
    """A VAE with FactorVAE's total-correlation discriminator beside it.

    Attributes:
        vae: the VAE, a registered linen module with ``encode(x) -> (mean, logvar)``,
            ``decode(z)`` and ``__call__(x, key) -> (reconstruction, mean, logvar)``.
        discriminator_width: units per hidden layer of the discriminator.
        discriminator_depth: its hidden layers.
    """

    vae: nn.Module
    discriminator_width: int = 1000
    discriminator_depth: int = 6

    def setup(self) -> None:
        validation.check_int("discriminator_width", self.discriminator_width, 1)
        validation.check_int("discriminator_depth", self.discriminator_depth, 1)
        self.discriminator = TotalCorrelationDiscriminator(
            self.discriminator_width, self.discriminator_depth
        )

    @property
    def latent_dim(self) -> int:
        """The inner VAE's code size (the prior's)."""
        return self.vae.latent_dim

    def __call__(
        self, x: Array, key: Array, *, train: bool = False, mask: Array | None = None
    ) -> tuple[Array, Array, Array]:
        """The inner VAE's ``(reconstruction, mean, logvar)``; at initialization the
        discriminator's parameters are made too (from a code of the VAE)."""
        out = self.vae(x, key, **inner_keywords(self.vae, "__call__", train, mask))
        if self.is_initializing():
            self.discriminator(jnp.reshape(out[1], (out[1].shape[0], -1)))
        return out

    def encode(
        self, x: Array, *, train: bool = False, mask: Array | None = None
    ) -> tuple[Array, Array]:
        """The inner VAE's posterior ``(mean, logvar)``, each of shape (batch, latent_dim)."""
        return self.vae.encode(x, **inner_keywords(self.vae, "encode", train, mask))

    def decode(self, z: Array, *, train: bool = False, mask: Array | None = None) -> Array:
        """The inner VAE's decoder output for codes of shape (batch, latent_dim)."""
        return self.vae.decode(z, **inner_keywords(self.vae, "decode", train, mask))

    def discriminate(self, z: Array) -> Array:
        """The discriminator's logits :math:`\\log D(z) - \\log(1 - D(z))`, shape (batch,)."""
        return self.discriminator(z)
