"""Generation from a learned latent space: prior samples, reconstructions, interpolations and
latent traversals.

Every function is pure: it takes a linen model with ``encode`` and ``decode`` methods and its
variables (``{"params": ..., "batch_stats": ...}``), and randomness only through an explicit
key. They trace under ``jax.jit`` with the model and the integer arguments static, e.g.
``jax.jit(sample_prior, static_argnums=(1, 3, 4))``.

Model contract:
    * ``encode(x)`` returns the posterior ``(mean, logvar)`` of a VAE (any tuple whose first
      item is the mean) or the code of a plain autoencoder; the code/mean has shape
      (batch, latent_dim).
    * ``decode(z)`` maps (batch, latent_dim) to (batch, *image_shape).
    * Inference mode: each method runs through :func:`latent_jax.models.inference.predict`,
      which passes ``train=False`` (or ``deterministic=True``, ... see
      :data:`~latent_jax.models.inference.INFERENCE_FLAGS`) when its signature has that
      parameter, so models with BatchNorm use their running statistics and models without it
      need nothing. ``apply_kwargs`` adds or overrides keyword arguments of both calls.

Outputs are in the model's (normalized) units; ``Standardizer.inverse_transform`` gives pixel
values for display, as the tutorial's ``sample * std + mean``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp

from latent_jax import validation
from latent_jax.models.inference import INFERENCE_FLAGS as INFERENCE_FLAGS
from latent_jax.models.inference import inference_kwargs as inference_kwargs
from latent_jax.models.inference import predict

Array = jax.Array

INTERPOLATIONS = ("linear", "slerp")
# Above this |cos(angle)| (angles under ~0.08 degrees) slerp falls back to a straight line; the
# two paths differ there by a relative ~angle**2 / 8 < 3e-7.
_PARALLEL_COSINE = 1.0 - 1e-6


def encode_mean(
    model: Any, variables: Any, x: Array, *, apply_kwargs: Mapping[str, Any] | None = None
) -> Array:
    """The posterior mean (or the autoencoder's code) of a batch.

    Args:
        model: a linen module with ``encode``.
        variables: its variables.
        x: array of shape (batch, *image_shape).
        apply_kwargs: extra keyword arguments of ``encode`` (see the module docstring).

    Returns:
        Array of shape (batch, latent_dim).
    """
    out = predict(model, variables, x, method="encode", apply_kwargs=apply_kwargs)
    return out[0] if isinstance(out, tuple | list) else out


def decode(
    model: Any, variables: Any, z: Array, *, apply_kwargs: Mapping[str, Any] | None = None
) -> Array:
    """Decodes latent codes.

    Args:
        model: a linen module with ``decode``.
        variables: its variables.
        z: array of shape (batch, latent_dim).
        apply_kwargs: extra keyword arguments of ``decode`` (see the module docstring).

    Returns:
        Array of shape (batch, *image_shape).
    """
    return predict(model, variables, z, method="decode", apply_kwargs=apply_kwargs)


def sample_prior(
    key: Array,
    model: Any,
    variables: Any,
    n: int,
    latent_dim: int,
    *,
    apply_kwargs: Mapping[str, Any] | None = None,
) -> Array:
    """Decodes ``n`` draws ``z ~ N(0, I)`` from the prior (the tutorial's ``generate_images``).

    Args:
        key: PRNG key; ``z = jax.random.normal(key, (n, latent_dim))``.
        model: a linen module with ``decode``.
        variables: its variables.
        n: number of images.
        latent_dim: size of the latent space.
        apply_kwargs: extra keyword arguments of ``decode``.

    Returns:
        Array of shape (n, *image_shape), in the model's units.
    """
    n = validation.check_int("n", n, 1)
    latent_dim = validation.check_int("latent_dim", latent_dim, 1)
    z = jax.random.normal(key, (n, latent_dim))
    return decode(model, variables, z, apply_kwargs=apply_kwargs)


def reconstruct(
    model: Any, variables: Any, x: Array, *, apply_kwargs: Mapping[str, Any] | None = None
) -> Array:
    """Deterministic reconstructions: decodes the posterior mean of each input.

    Args:
        model: a linen module with ``encode`` and ``decode``.
        variables: its variables.
        x: array of shape (batch, *image_shape).
        apply_kwargs: extra keyword arguments of both calls.

    Returns:
        Array of shape (batch, *image_shape).
    """
    z = encode_mean(model, variables, x, apply_kwargs=apply_kwargs)
    return decode(model, variables, z, apply_kwargs=apply_kwargs)


@jax.jit
def lerp(z0: Array, z1: Array, t: Array) -> Array:
    """Linear interpolation ``(1 - t) z0 + t z1``, exact at ``t = 0`` and ``t = 1``.

    Args:
        z0: array of shape (..., latent_dim).
        z1: array of the shape of ``z0``.
        t: scalar or array of fractions, broadcast against ``z0.shape[:-1]``; a (steps,)
            array with (latent_dim,) codes gives (steps, latent_dim).

    Returns:
        Array of shape ``broadcast(t.shape + (1,), z0.shape)``.
    """
    t = jnp.asarray(t, jnp.result_type(z0, float))[..., None]
    return (1.0 - t) * z0 + t * z1


@jax.jit
def slerp(z0: Array, z1: Array, t: Array) -> Array:
    r"""Spherical linear interpolation between two codes (Shoemake 1985; White 2016).

    .. math::
        \mathrm{slerp}(z_0, z_1; t) = \frac{\sin((1 - t)\Omega)}{\sin\Omega} z_0
            + \frac{\sin(t\Omega)}{\sin\Omega} z_1,
        \quad \cos\Omega = \frac{z_0 \cdot z_1}{\|z_0\| \|z_1\|}

    For unit vectors the path stays on the unit sphere at constant angular speed. When the
    codes are (nearly) parallel or anti-parallel, or one is zero, ``sin Ω`` vanishes and the
    result falls back to :func:`lerp` (through the origin for anti-parallel codes).

    Args:
        z0: array of shape (..., latent_dim).
        z1: array of the shape of ``z0``.
        t: scalar or array of fractions, as in :func:`lerp`.

    Returns:
        Array of shape ``broadcast(t.shape + (1,), z0.shape)``.
    """
    z0 = jnp.asarray(z0)
    z1 = jnp.asarray(z1)
    t = jnp.asarray(t, jnp.result_type(z0, float))[..., None]
    norms = jnp.linalg.norm(z0, axis=-1, keepdims=True) * jnp.linalg.norm(
        z1, axis=-1, keepdims=True
    )
    safe_norms = jnp.where(norms > 0, norms, 1.0)
    cosine = jnp.clip(jnp.sum(z0 * z1, axis=-1, keepdims=True) / safe_norms, -1.0, 1.0)
    spherical = (norms > 0) & (jnp.abs(cosine) < _PARALLEL_COSINE)
    # The unused branch is kept finite so that gradients through jnp.where stay finite.
    omega = jnp.arccos(jnp.where(spherical, cosine, 0.0))
    curved = (jnp.sin((1.0 - t) * omega) * z0 + jnp.sin(t * omega) * z1) / jnp.sin(omega)
    return jnp.where(spherical, curved, (1.0 - t) * z0 + t * z1)


def interpolate(
    model: Any,
    variables: Any,
    x_start: Array,
    x_end: Array,
    steps: int = 10,
    method: str = "linear",
    *,
    apply_kwargs: Mapping[str, Any] | None = None,
) -> Array:
    """Decodes a path between the latent means of two images (the tutorial's
    ``interpolate_latent``).

    The path has ``steps`` points at ``t = 0, 1/(steps-1), ..., 1``; its first and last points
    are exactly the two means, so the ends decode the two means.

    Args:
        model: a linen module with ``encode`` and ``decode``.
        variables: its variables.
        x_start: one image, array of shape image_shape.
        x_end: one image of the same shape.
        steps: number of images on the path, at least 2.
        method: ``"linear"`` or ``"slerp"`` (:func:`slerp`).
        apply_kwargs: extra keyword arguments of both calls.

    Returns:
        Array of shape (steps, *image_shape).
    """
    steps = validation.check_int("steps", steps, 1)
    if steps < 2:
        raise ValueError(f"steps must be at least 2 to include both ends, got {steps=}")
    if method not in INTERPOLATIONS:
        raise ValueError(f"method must be one of {INTERPOLATIONS}, got {method!r}")
    if jnp.shape(x_start) != jnp.shape(x_end):
        raise ValueError(
            f"x_start and x_end must have one shape, got {jnp.shape(x_start)} and "
            f"{jnp.shape(x_end)}"
        )
    means = encode_mean(model, variables, jnp.stack([x_start, x_end]), apply_kwargs=apply_kwargs)
    t = jnp.linspace(0.0, 1.0, steps)
    path = (lerp if method == "linear" else slerp)(means[0], means[1], t)
    path = path.at[0].set(means[0]).at[-1].set(means[1])
    return decode(model, variables, path, apply_kwargs=apply_kwargs)


def latent_traversal(
    model: Any,
    variables: Any,
    z: Array | None = None,
    *,
    x: Array | None = None,
    values: Array | Sequence[float] | None = None,
    dims: Sequence[int] | None = None,
    apply_kwargs: Mapping[str, Any] | None = None,
) -> Array:
    """Sweeps each latent dimension with the others fixed (the tutorial's "tuning latent
    components").

    Row ``i`` sets coordinate ``dims[i]`` of the base code to each of ``values`` in turn.

    Args:
        model: a linen module with ``decode`` (and ``encode`` when ``x`` is given).
        variables: its variables.
        z: the base code, array of shape (latent_dim,); the prior's mean is ``zeros``.
        x: instead of ``z``, one image of shape image_shape whose latent mean is the base.
        values: the values, array of shape (n_values,); default ``linspace(-3, 3, 10)``.
        dims: the dimensions to sweep; default all of them.
        apply_kwargs: extra keyword arguments of the calls.

    Returns:
        Array of shape (len(dims), n_values, *image_shape).
    """
    if (z is None) == (x is None):
        raise ValueError("pass exactly one of z (a latent code) and x (an image)")
    if x is not None:
        z = encode_mean(model, variables, jnp.asarray(x)[None], apply_kwargs=apply_kwargs)[0]
    z = jnp.asarray(z)
    if z.ndim != 1:
        raise ValueError(f"z must have shape (latent_dim,), got {z.shape}")
    latent_dim = z.shape[0]
    values = jnp.linspace(-3.0, 3.0, 10) if values is None else jnp.asarray(values)
    if values.ndim != 1 or values.shape[0] == 0:
        raise ValueError(f"values must have shape (n_values,), got {values.shape}")
    dims = tuple(range(latent_dim)) if dims is None else tuple(int(d) for d in dims)
    if not dims or not all(0 <= d < latent_dim for d in dims):
        raise ValueError(
            f"dims must be a non-empty list of indices in [0, {latent_dim}), got {dims}"
        )
    rows = jnp.asarray(dims)
    # codes[i, j] = z with coordinate dims[i] replaced by values[j]
    codes = jnp.broadcast_to(z, (len(dims), values.shape[0], latent_dim))
    codes = codes.at[jnp.arange(len(dims)), :, rows].set(values.astype(z.dtype))
    images = decode(model, variables, codes.reshape(-1, latent_dim), apply_kwargs=apply_kwargs)
    return images.reshape(len(dims), values.shape[0], *images.shape[1:])
