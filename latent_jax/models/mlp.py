"""Fully connected autoencoder and VAE for tabular data (feature vectors).

The defaults are the tutorial's dimensionality-reduction autoencoder: 50 features, an encoder
50 -> 30 -> 10 -> 5 with LeakyReLU(0.1) between the layers, and the mirrored decoder
5 -> 10 -> 30 -> 50. The VAE can use tanh between its layers instead (``activation="tanh"``,
the architecture of Burda et al.'s IWAE experiments: 784 -> 200 -> 200 -> 50). The last
layer of each side is linear: codes and reconstructions are unconstrained (the tutorial
trains on standardized data with a mean squared error).

Both models take ``x`` of shape (batch, input_dim) and expose ``encode``, ``decode`` and
``__call__``; the VAE's ``__call__(x, key)`` takes the key of its reparameterization draw.
Every method also accepts ``train`` (ignored: these models have no BatchNorm or dropout) so
that training and generation code can call every model the same way. Initialization is
flax's default (LeCun normal weights, zero biases), not PyTorch's.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import flax.linen as nn
import jax.numpy as jnp
from jax import Array

from latent_jax import validation
from latent_jax.gaussian import reparameterize
from latent_jax.models.registry import register_model

ACTIVATIONS = ("leaky_relu", "tanh")


def _check_dims(input_dim: int, hidden_dims: Sequence[int], latent_dim: int) -> tuple[int, ...]:
    """Validates the widths; returns ``hidden_dims`` as a tuple."""
    validation.check_int("input_dim", input_dim, 1)
    validation.check_int("latent_dim", latent_dim, 1)
    try:
        dims = tuple(hidden_dims)
    except TypeError:
        dims = (None,)
    if not all(isinstance(d, int) and not isinstance(d, bool) and d >= 1 for d in dims):
        raise ValueError(f"hidden_dims must be a sequence of ints >= 1, got {hidden_dims!r}")
    return dims


def _check_features(name: str, x: Array, expected: int) -> Array:
    """``x`` as a real (batch, expected) array; values unchecked (it may be traced)."""
    x = jnp.asarray(
        validation.check_array(name, x, finite=False, allow_empty=True, dtype="numeric")
    )
    if x.ndim != 2 or x.shape[1] != expected:
        raise ValueError(f"{name} must have shape (batch, {expected}), got shape {x.shape}")
    return x


class MLP(nn.Module):
    """Dense layers with LeakyReLU (or tanh) between them.

    Attributes:
        features: output width of each layer, in order.
        negative_slope: slope of LeakyReLU for negative inputs.
        activate_last: whether the last layer is followed by the activation too (a trunk
            that feeds heads) or is linear (an output layer).
        activation: ``"leaky_relu"`` or ``"tanh"``.
    """

    features: Sequence[int]
    negative_slope: float = 0.1
    activate_last: bool = False
    activation: str = "leaky_relu"

    @nn.compact
    def __call__(self, x: Array) -> Array:
        """Maps (batch, in) to (batch, features[-1])."""
        for i, width in enumerate(self.features):
            x = nn.Dense(width, name=f"dense{i}")(x)
            if self.activate_last or i < len(self.features) - 1:
                if self.activation == "tanh":
                    x = jnp.tanh(x)
                else:
                    x = nn.leaky_relu(x, self.negative_slope)
        return x


def _for_flat_data(
    cls: type,
    feature_shape: Sequence[int],
    *,
    latent_dim: int,
    hidden_dims: Sequence[int] | None = None,
    **unused: object,
) -> nn.Module:
    """The model for flattened examples of ``feature_shape``: ``prod(feature_shape)`` inputs
    (the registry's builder, ``for_data``, of both MLP models; options of other
    architectures are ignored)."""
    options = {"input_dim": math.prod(feature_shape), "latent_dim": latent_dim}
    if hidden_dims is not None:
        options["hidden_dims"] = tuple(int(w) for w in hidden_dims)
    return cls(**options)


@register_model(name="ae", kind="autoencoder", architecture="mlp", help="MLP autoencoder")
class Autoencoder(nn.Module):
    """The tutorial's fully connected autoencoder with configurable widths.

    Encoder: ``input_dim -> hidden_dims... -> latent_dim``; decoder: the mirror image,
    ``latent_dim -> reversed(hidden_dims)... -> input_dim``.

    Attributes:
        input_dim: number of input features.
        hidden_dims: widths of the encoder's hidden layers (the decoder's, reversed).
        latent_dim: size of the code.
        negative_slope: LeakyReLU slope (the tutorial uses 0.1).
    """

    input_dim: int = 50
    hidden_dims: Sequence[int] = (30, 10)
    latent_dim: int = 5
    negative_slope: float = 0.1

    def __post_init__(self) -> None:
        # A tuple keeps the module hashable (usable as a static jit argument).
        self.hidden_dims = _check_dims(self.input_dim, self.hidden_dims, self.latent_dim)
        super().__post_init__()

    for_data = classmethod(_for_flat_data)

    def setup(self) -> None:
        hidden = self.hidden_dims
        self.encoder = MLP((*hidden, self.latent_dim), self.negative_slope)
        self.decoder = MLP((*hidden[::-1], self.input_dim), self.negative_slope)

    def encode(self, x: Array, *, train: bool = False) -> Array:
        """Codes of shape (batch, latent_dim) for ``x`` of shape (batch, input_dim)."""
        del train
        return self.encoder(_check_features("x", x, self.input_dim))

    def decode(self, z: Array, *, train: bool = False) -> Array:
        """Reconstructions of shape (batch, input_dim) from codes (batch, latent_dim)."""
        del train
        return self.decoder(_check_features("z", z, self.latent_dim))

    def __call__(self, x: Array, *, train: bool = False) -> Array:
        """Reconstruction of ``x`` (batch, input_dim), same shape."""
        return self.decode(self.encode(x, train=train), train=train)


@register_model(name="vae", kind="vae", architecture="mlp", help="MLP VAE")
class VAE(nn.Module):
    """Fully connected variational autoencoder with Gaussian posterior heads.

    Encoder: ``input_dim -> hidden_dims...`` with LeakyReLU (or tanh) after every layer, then
    two linear heads to the posterior mean and log-variance (latent_dim each). Decoder:
    ``latent_dim -> reversed(hidden_dims)... -> input_dim`` with a linear last layer (the mean
    of a Gaussian likelihood or the logits of a Bernoulli one, as the objective chooses).

    Attributes:
        input_dim: number of input features.
        hidden_dims: widths of the encoder's hidden layers (the decoder's, reversed); at
            least one.
        latent_dim: dimension of the latent space.
        negative_slope: LeakyReLU slope.
        activation: ``"leaky_relu"`` (the default) or ``"tanh"``, between all hidden layers.
    """

    input_dim: int = 50
    hidden_dims: Sequence[int] = (30, 10)
    latent_dim: int = 5
    negative_slope: float = 0.1
    activation: str = "leaky_relu"

    def __post_init__(self) -> None:
        self.hidden_dims = _check_dims(self.input_dim, self.hidden_dims, self.latent_dim)
        if not self.hidden_dims:
            raise ValueError(f"hidden_dims must have at least one width, got {self.hidden_dims!r}")
        validation.check_choice("activation", self.activation, ACTIVATIONS)
        super().__post_init__()

    for_data = classmethod(_for_flat_data)

    def setup(self) -> None:
        hidden, slope, activation = self.hidden_dims, self.negative_slope, self.activation
        self.trunk = MLP(hidden, slope, activate_last=True, activation=activation)
        self.mean_layer = nn.Dense(self.latent_dim)
        self.logvar_layer = nn.Dense(self.latent_dim)
        self.decoder = MLP((*hidden[::-1], self.input_dim), slope, activation=activation)

    def encode(self, x: Array, *, train: bool = False) -> tuple[Array, Array]:
        """Posterior ``(mean, logvar)``, each (batch, latent_dim), for ``x`` (batch, input_dim)."""
        del train
        h = self.trunk(_check_features("x", x, self.input_dim))
        return self.mean_layer(h), self.logvar_layer(h)

    def decode(self, z: Array, *, train: bool = False) -> Array:
        """Decoder output of shape (batch, input_dim) for latents (batch, latent_dim)."""
        del train
        return self.decoder(_check_features("z", z, self.latent_dim))

    def __call__(self, x: Array, key: Array, *, train: bool = False) -> tuple[Array, Array, Array]:
        """Encodes, draws ``z = mean + exp(logvar / 2) * eps`` with ``key``, decodes.

        Args:
            x: array of shape (batch, input_dim).
            key: ``jax.random`` key of the reparameterization draw.
            train: ignored (no BatchNorm); accepted for a uniform interface.

        Returns:
            ``(reconstruction, mean, logvar)`` of shapes (batch, input_dim),
            (batch, latent_dim), (batch, latent_dim).
        """
        mean, logvar = self.encode(x, train=train)
        z = reparameterize(key, mean, logvar)
        return self.decode(z, train=train), mean, logvar


@register_model
class LearnedNoiseVAE(VAE):
    r"""The MLP :class:`VAE` with a learned observation log-variance: a Gaussian decoder
    :math:`p(x|z) = \mathcal{N}(x; \mathrm{decoder}(z), \gamma I)` whose :math:`\log\gamma`, one
    scalar, is a parameter (Dai & Wipf 2019, "Diagnosing and Enhancing VAE Models", Section 4,
    learn :math:`\gamma`). Train it with ``vae_objective(model, likelihood="gaussian",
    obs_logvar="learned")``; everything else is :class:`VAE`'s.

    Attributes:
        init_obs_logvar: the initial :math:`\log\gamma` (the parameter ``obs_logvar``).
    """

    init_obs_logvar: float = 0.0

    def __post_init__(self) -> None:
        validation.check_real("init_obs_logvar", self.init_obs_logvar)
        super().__post_init__()

    def setup(self) -> None:
        super().setup()
        self.obs_logvar = self.param(
            "obs_logvar", nn.initializers.constant(self.init_obs_logvar), ()
        )

    def observation_logvar(self) -> Array:
        """The learned :math:`\\log\\gamma`, a scalar."""
        return self.obs_logvar
