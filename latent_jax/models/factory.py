"""One model for data of a given shape: the size rule (MLP or convolutional) and the factory.

:func:`resolve_architecture` is the one rule that picks a model family for examples of a
shape: feature vectors and small images (less than :data:`CONV_MIN_SIZE` pixels tall or wide:
the 8x8 digits, the 25x25 faces, a few hundred inputs) get an MLP on the flattened pixels,
larger images a convolutional model. :func:`model_for_data` builds the model and says how to
feed it (:meth:`ModelForData.inputs` flattens the examples for an MLP).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import flax.linen as nn

from latent_jax import validation
from latent_jax.models.registry import ModelEntry, model_entry

__all__ = [
    "ARCHITECTURES",
    "CONV_MIN_SIZE",
    "KINDS",
    "ModelForData",
    "default_model",
    "model_for_data",
    "resolve_architecture",
]

# The kinds of model model_for_data builds (a "vq-vae" model is chosen by its name only).
KINDS = ("autoencoder", "vae")
# Images at least this tall and wide get convolutional models with architecture="auto".
CONV_MIN_SIZE = 32
ARCHITECTURES = ("auto", "mlp", "conv")
# The registered model (by name) that model_for_data builds for a kind and an architecture.
DEFAULT_MODELS = {
    ("autoencoder", "mlp"): "ae",
    ("vae", "mlp"): "vae",
    ("autoencoder", "conv"): "conv-ae",
    ("vae", "conv"): "conv-vae",
}


def _feature_shape(feature_shape: Sequence[int]) -> tuple[int, ...]:
    try:
        shape = tuple(int(d) for d in feature_shape)
    except TypeError:
        raise TypeError(
            f"feature_shape must be the shape of one example, a sequence of ints, got "
            f"{feature_shape!r}"
        ) from None
    if not shape or min(shape) < 1:
        raise ValueError(f"feature_shape must hold positive sizes, got {shape}")
    return shape


def resolve_architecture(feature_shape: Sequence[int], architecture: str = "auto") -> str:
    """The model family for examples of ``feature_shape``: the library's one size rule.

    Args:
        feature_shape: the shape of one example: (features,) or (height, width, channels).
        architecture: ``"auto"`` (the rule: ``"conv"`` for images at least
            :data:`CONV_MIN_SIZE` pixels tall and wide, else ``"mlp"``), ``"mlp"`` or
            ``"conv"``.

    Returns:
        ``"mlp"`` or ``"conv"``.

    Raises:
        ValueError: for an unknown architecture, or ``"conv"`` for examples that are not
            images.
    """
    shape = _feature_shape(feature_shape)
    validation.check_choice("architecture", architecture, ARCHITECTURES)
    image = len(shape) == 3
    if architecture == "auto":
        return "conv" if image and min(shape[:2]) >= CONV_MIN_SIZE else "mlp"
    if architecture == "conv" and not image:
        raise ValueError(
            "architecture='conv' needs images (n_samples, height, width[, channels]), got "
            f"examples of shape {shape}"
        )
    return architecture


class ModelForData(NamedTuple):
    """A model built for data of one shape, and how to feed it.

    Attributes:
        model: the linen module.
        architecture: ``"mlp"`` (it sees flattened examples) or ``"conv"`` (images).
        feature_shape: the shape of one example of the data, as given.
    """

    model: nn.Module
    architecture: str
    feature_shape: tuple[int, ...]

    def inputs(self, x: Any) -> Any:
        """``x`` of shape (n, *feature_shape) as the model takes it: (n, features) for an MLP.

        Args:
            x: array of shape (n, *feature_shape).

        Returns:
            The same array, reshaped (a view) for an MLP and unchanged for a conv model.
        """
        return x.reshape(x.shape[0], -1) if self.architecture == "mlp" else x

    def outputs(self, y: Any) -> Any:
        """The model's output for ``n`` examples back in the data's shape (n, *feature_shape).

        Args:
            y: array of shape (n, ...), as many values per row as one example has.

        Returns:
            The array reshaped to (n, *feature_shape).
        """
        return y.reshape(y.shape[0], *self.feature_shape)


def model_for_data(
    feature_shape: Sequence[int],
    *,
    kind: str = "autoencoder",
    architecture: str = "auto",
    latent_dim: int,
    hidden_dims: Sequence[int] | None = None,
    channels: Sequence[int] | None = None,
    conv_options: Mapping[str, Any] | None = None,
) -> ModelForData:
    """The library's autoencoder or VAE for examples of ``feature_shape``.

    An MLP (:class:`~latent_jax.models.mlp.Autoencoder`, :class:`~latent_jax.models.mlp.VAE`)
    on ``prod(feature_shape)`` inputs, or a convolutional model
    (:class:`~latent_jax.models.conv.ConvAutoencoder`, :class:`~latent_jax.models.conv.ConvVAE`)
    for images of shape (height, width, channels); which one, :func:`resolve_architecture`
    decides. Settings left at None keep the model class's defaults.

    Args:
        feature_shape: the shape of one example: (features,) or (height, width, channels).
        kind: ``"autoencoder"`` or ``"vae"``.
        architecture: ``"auto"``, ``"mlp"`` or ``"conv"`` (see :func:`resolve_architecture`).
        latent_dim: the code size, >= 1.
        hidden_dims: the MLP encoder's widths (the decoder mirrors them); unused by conv models.
        channels: the conv autoencoder's stage channels; unused otherwise.
        conv_options: further fields of the conv model (e.g. ``use_switches=False``, or a
            ConvVAE's ``hidden_dim`` and ``encoder_convs``).

    Returns:
        The :class:`ModelForData`.

    Raises:
        TypeError: for arguments of the wrong type.
        ValueError: for an unknown kind or architecture, a conv model for non-images, or a
            non-positive size.
    """
    shape = _feature_shape(feature_shape)
    validation.check_choice("kind", kind, KINDS)
    latent_dim = validation.check_int("latent_dim", latent_dim, 1)
    resolved = resolve_architecture(shape, architecture)
    entry = default_model(kind, resolved)
    model = entry.cls.for_data(
        shape,
        latent_dim=latent_dim,
        hidden_dims=hidden_dims,
        channels=channels,
        conv_options=conv_options,
    )
    return ModelForData(model, resolved, shape)


def default_model(kind: str, architecture: str) -> ModelEntry:
    """The model :func:`model_for_data` builds for a kind and an architecture: the library's
    MLP and convolutional autoencoders and VAEs (:data:`DEFAULT_MODELS`)."""
    return model_entry(DEFAULT_MODELS[kind, architecture])
