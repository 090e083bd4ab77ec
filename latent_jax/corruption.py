r"""Keyed input corruption for denoising autoencoders: Gaussian, masking, salt-and-pepper.

A denoising autoencoder sees a corrupted input :math:`\tilde x = C(x)` and is trained to
reconstruct the clean :math:`x`. Every corruption here is a pure function of an explicit key:

* the same key and input give the same output, bit for bit; different keys give different
  noise;
* the output has the input's shape and (floating) dtype;
* noise is drawn independently for every entry of the array (all axes, batch included).

Three kinds, each as a function and as a factory of ``corrupt(key, x)`` closures:

* **Gaussian** (:func:`gaussian_noise`, :func:`gaussian`): :math:`\tilde x = x + \sigma
  \epsilon`, optionally clipped to a valid range ``clip=(low, high)``.
* **Masking** (:func:`masking_noise`, :func:`masking`): each entry is replaced by ``value``
  (0 by default) with probability ``fraction``; the expected masked fraction is exactly
  ``fraction``.
* **Salt-and-pepper** (:func:`salt_and_pepper_noise`, :func:`salt_and_pepper`): each entry is
  replaced with probability ``fraction``, by ``low`` (pepper) or ``high`` (salt) with equal
  probability.

They combine with :func:`compose` (stage ``i`` draws from ``fold_in(key, i)``), or through the
frozen config :class:`Corruption`, which applies Gaussian noise, then masking, then
salt-and-pepper, so masked and salted entries hold exactly their replacement values.

Example:
    >>> import jax, jax.numpy as jnp
    >>> corrupt = Corruption(gaussian_std=0.1, mask_fraction=0.2)
    >>> x = jnp.zeros((4, 8))
    >>> corrupt(jax.random.key(0), x).shape
    (4, 8)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax
import jax.numpy as jnp
from jax import Array
from jax.typing import ArrayLike

from latent_jax import validation

__all__ = [
    "Corruption",
    "CorruptionFn",
    "compose",
    "gaussian",
    "gaussian_noise",
    "identity",
    "masking",
    "masking_noise",
    "salt_and_pepper",
    "salt_and_pepper_noise",
]

CorruptionFn = Callable[[Array, Array], Array]
"""A corruption: ``corrupt(key, x) -> x_noisy`` with ``x_noisy.shape == x.shape``."""


def _check_range(name: str, low: object, high: object) -> tuple[float, float]:
    low = validation.check_real(f"{name} low", low)
    high = validation.check_real(f"{name} high", high)
    if not low < high:
        raise ValueError(f"{name} must satisfy low < high, got ({low}, {high})")
    return low, high


def _check_clip(clip: object) -> tuple[float, float] | None:
    if clip is None:
        return None
    if not isinstance(clip, tuple | list) or len(clip) != 2:
        raise TypeError(f"clip must be None or a pair (low, high), got {clip!r}")
    return _check_range("clip", clip[0], clip[1])


def _as_float_array(x: ArrayLike) -> Array:
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(jnp.float32)
    return x


def gaussian_noise(
    key: Array, x: ArrayLike, std: float, *, clip: tuple[float, float] | None = None
) -> Array:
    r"""Adds :math:`\sigma\epsilon`, :math:`\epsilon \sim \mathcal{N}(0, I)`, to every entry.

    Args:
        key: a ``jax.random`` key.
        x: array of any shape (batch, ...features); integer input is cast to float32.
        std: the noise standard deviation :math:`\sigma \ge 0`.
        clip: optional valid range ``(low, high)``; the noisy values are clipped into it.

    Returns:
        Array of the shape and floating dtype of ``x``.
    """
    std = validation.check_real("std", std, nonnegative=True)
    clip = _check_clip(clip)
    x = _as_float_array(x)
    noisy = x + std * jax.random.normal(key, x.shape, x.dtype)
    if clip is not None:
        noisy = jnp.clip(noisy, clip[0], clip[1])
    return noisy


def masking_noise(key: Array, x: ArrayLike, fraction: float, *, value: float = 0.0) -> Array:
    """Replaces each entry by ``value`` with probability ``fraction`` (independently).

    Args:
        key: a ``jax.random`` key.
        x: array of any shape; integer input is cast to float32.
        fraction: probability in [0, 1] that an entry is masked.
        value: what a masked entry becomes (0, a blank pixel in [0, 1] data or the mean of
            standardized data).

    Returns:
        Array of the shape and floating dtype of ``x``.
    """
    fraction = validation.check_fraction("fraction", fraction, closed="both")
    value = validation.check_real("value", value)
    x = _as_float_array(x)
    masked = jax.random.bernoulli(key, fraction, x.shape)
    return jnp.where(masked, jnp.asarray(value, x.dtype), x)


def salt_and_pepper_noise(
    key: Array, x: ArrayLike, fraction: float, *, low: float = 0.0, high: float = 1.0
) -> Array:
    """Replaces each entry with probability ``fraction`` by ``low`` or ``high`` (half each).

    One uniform draw ``u`` per entry decides: ``u < fraction / 2`` gives ``low`` (pepper),
    ``fraction / 2 <= u < fraction`` gives ``high`` (salt), anything else keeps the entry.

    Args:
        key: a ``jax.random`` key.
        x: array of any shape; integer input is cast to float32.
        fraction: probability in [0, 1] that an entry is replaced.
        low: the pepper value, the bottom of the valid range (0 for images in [0, 1]).
        high: the salt value, the top of the valid range; ``low < high``.

    Returns:
        Array of the shape and floating dtype of ``x``. When ``x`` lies in ``[low, high]`` so
        does the output.
    """
    fraction = validation.check_fraction("fraction", fraction, closed="both")
    low, high = _check_range("(low, high)", low, high)
    x = _as_float_array(x)
    u = jax.random.uniform(key, x.shape)
    pepper = u < 0.5 * fraction
    salt = (u >= 0.5 * fraction) & (u < fraction)
    out = jnp.where(pepper, jnp.asarray(low, x.dtype), x)
    return jnp.where(salt, jnp.asarray(high, x.dtype), out)


def identity(key: Array, x: ArrayLike) -> Array:
    """No corruption: returns ``x`` unchanged (as a floating array); ignores ``key``."""
    del key
    return _as_float_array(x)


def gaussian(std: float, *, clip: tuple[float, float] | None = None) -> CorruptionFn:
    """A Gaussian corruption with the given ``std`` (see :func:`gaussian_noise`).

    Args:
        std: noise standard deviation, >= 0.
        clip: optional valid range ``(low, high)``.

    Returns:
        ``corrupt(key, x)``.
    """
    std = validation.check_real("std", std, nonnegative=True)
    clip = _check_clip(clip)

    def corrupt(key: Array, x: ArrayLike) -> Array:
        return gaussian_noise(key, x, std, clip=clip)

    return corrupt


def masking(fraction: float, *, value: float = 0.0) -> CorruptionFn:
    """A masking corruption (see :func:`masking_noise`).

    Args:
        fraction: probability in [0, 1] that an entry is masked.
        value: what a masked entry becomes.

    Returns:
        ``corrupt(key, x)``.
    """
    fraction = validation.check_fraction("fraction", fraction, closed="both")
    value = validation.check_real("value", value)

    def corrupt(key: Array, x: ArrayLike) -> Array:
        return masking_noise(key, x, fraction, value=value)

    return corrupt


def salt_and_pepper(fraction: float, *, low: float = 0.0, high: float = 1.0) -> CorruptionFn:
    """A salt-and-pepper corruption (see :func:`salt_and_pepper_noise`).

    Args:
        fraction: probability in [0, 1] that an entry is replaced.
        low: the pepper value.
        high: the salt value, ``> low``.

    Returns:
        ``corrupt(key, x)``.
    """
    fraction = validation.check_fraction("fraction", fraction, closed="both")
    low, high = _check_range("(low, high)", low, high)

    def corrupt(key: Array, x: ArrayLike) -> Array:
        return salt_and_pepper_noise(key, x, fraction, low=low, high=high)

    return corrupt


def compose(*corruptions: CorruptionFn) -> CorruptionFn:
    """Applies corruptions in order; stage ``i`` draws its noise from ``fold_in(key, i)``.

    Args:
        *corruptions: functions ``corrupt(key, x) -> x``; none gives :func:`identity`.

    Returns:
        ``corrupt(key, x)`` applying every stage.

    Raises:
        TypeError: if a stage is not callable.
    """
    for i, stage in enumerate(corruptions):
        if not callable(stage):
            raise TypeError(f"compose() argument {i} must be callable, got {stage!r}")
    if not corruptions:
        return identity

    def corrupt(key: Array, x: ArrayLike) -> Array:
        x = _as_float_array(x)
        for i, stage in enumerate(corruptions):
            x = stage(jax.random.fold_in(key, i), x)
        return x

    return corrupt


@dataclasses.dataclass(frozen=True, kw_only=True)
class Corruption:
    """A combination of the three corruptions, as a frozen config that is also the function.

    Stages with a zero level are skipped; the others run in the order Gaussian, masking,
    salt-and-pepper (so replaced entries keep exactly their replacement value), each with its
    own key derived as in :func:`compose`.

    Attributes:
        gaussian_std: standard deviation of additive Gaussian noise (0: none).
        mask_fraction: probability that an entry is set to ``mask_value`` (0: none).
        salt_pepper_fraction: probability that an entry becomes ``low`` or ``high`` (0: none).
        clip: optional valid range ``(low, high)`` for the Gaussian stage; also the default
            salt-and-pepper range.
        mask_value: the value of masked entries.
        low: pepper value; defaults to ``clip[0]`` or 0.
        high: salt value; defaults to ``clip[1]`` or 1.
    """

    gaussian_std: float = 0.0
    mask_fraction: float = 0.0
    salt_pepper_fraction: float = 0.0
    clip: tuple[float, float] | None = None
    mask_value: float = 0.0
    low: float | None = None
    high: float | None = None

    def __post_init__(self) -> None:
        validation.check_real("gaussian_std", self.gaussian_std, nonnegative=True)
        validation.check_fraction("mask_fraction", self.mask_fraction, closed="both")
        validation.check_fraction("salt_pepper_fraction", self.salt_pepper_fraction, closed="both")
        clip = _check_clip(self.clip)
        if clip is not None:
            object.__setattr__(self, "clip", clip)
        validation.check_real("mask_value", self.mask_value)
        _check_range("(low, high)", *self.salt_range)

    @property
    def salt_range(self) -> tuple[float, float]:
        """The (pepper, salt) values in use."""
        low = self.low if self.low is not None else (self.clip[0] if self.clip else 0.0)
        high = self.high if self.high is not None else (self.clip[1] if self.clip else 1.0)
        return low, high

    def stages(self) -> tuple[CorruptionFn, ...]:
        """The active stages, in application order."""
        stages = []
        if self.gaussian_std > 0:
            stages.append(gaussian(self.gaussian_std, clip=self.clip))
        if self.mask_fraction > 0:
            stages.append(masking(self.mask_fraction, value=self.mask_value))
        if self.salt_pepper_fraction > 0:
            low, high = self.salt_range
            stages.append(salt_and_pepper(self.salt_pepper_fraction, low=low, high=high))
        return tuple(stages)

    def __call__(self, key: Array, x: ArrayLike) -> Array:
        """Corrupts ``x`` (any shape) with ``key``; same shape and floating dtype."""
        return compose(*self.stages())(key, x)
