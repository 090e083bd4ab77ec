r"""Deep SVDD networks (Ruff et al., ICML 2018): bias-free maps into a space with a centre.

One-class Deep SVDD trains a network :math:`\phi(\cdot; W)` to map the normal data close to a
fixed centre :math:`c`,

.. math::

    \min_W \frac1n \sum_i \lVert \phi(x_i; W) - c \rVert^2 + \frac\lambda2 \sum_l
    \lVert W^l \rVert_F^2,

and scores an example by its squared distance :math:`\lVert \phi(x; W) - c \rVert^2` (see
:func:`latent_jax.objectives.deep_svdd_objective`). A network that could output a constant
would reach the minimum, zero, for every input; the paper rules that out by the network's
form: no bias terms anywhere, no bounded activations, and a centre that is not all zeros.
Hence both networks here have

* convolutions and dense layers without biases;
* BatchNorm without affine parameters (no learned scale or shift; ``epsilon=1e-4`` as the
  paper's code), on the rows of the batch the ``mask`` marks;
* LeakyReLU (slope 0.01, PyTorch's default), max pooling, and a final bias-free dense layer.

:class:`DeepSVDDConv` with its defaults is the paper's LeNet-type network for 28x28 MNIST:
``Conv(8, 5x5) -> BN -> LeakyReLU -> MaxPool(2)``, ``Conv(4, 5x5) -> BN -> LeakyReLU ->
MaxPool(2)``, ``Dense(32)`` (convolutions with "same" padding, 28 -> 14 -> 7 pixels).
:class:`DeepSVDDMLP` is the variant for feature vectors: ``Dense -> BN -> LeakyReLU`` per
hidden width, then ``Dense(rep_dim)``.

The centre lives in the variables, in the collection :data:`CENTER_COLLECTION` (``{"center":
{"c": (rep_dim,)}}``), so it is saved, restored and sharded with the rest of the model and
is data, not a constant compiled into the training program. ``represent(x)`` is
:math:`\phi(x)`, of shape (batch, rep_dim); ``__call__(x)`` is the squared distance to the
centre, of shape (batch,). :func:`initial_center` computes the paper's centre: the mean of
an initial forward pass over the training data (inference mode), with coordinates closer to
zero than ``eps`` pushed to :math:`\pm` ``eps`` (a zero coordinate could be matched by zero
weights); :func:`with_center` puts it into the variables.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import flax.linen as nn
import jax.numpy as jnp
import numpy as np
from jax import Array

from latent_jax import validation
from latent_jax.models.inference import predict
from latent_jax.models.layers import FastConv
from latent_jax.models.registry import register_model

__all__ = [
    "CENTER_COLLECTION",
    "DeepSVDDConv",
    "DeepSVDDMLP",
    "initial_center",
    "with_center",
]

CENTER_COLLECTION = "center"
# The paper's code: BatchNorm eps=1e-4 (affine=False), LeakyReLU's default slope, c's eps.
BN_EPSILON = 1e-4
NEGATIVE_SLOPE = 0.01
CENTER_EPS = 0.1
# Rows per compiled call of the initial forward pass.
_CENTER_BATCH = 1024


def _positive_ints(name: str, value: Any) -> tuple[int, ...]:
    try:
        values = tuple(value)
    except TypeError:
        values = (None,)
    if not values or not all(
        isinstance(v, int | np.integer) and not isinstance(v, bool) and v >= 1 for v in values
    ):
        raise ValueError(f"{name} must be a non-empty sequence of ints >= 1, got {value!r}")
    return tuple(int(v) for v in values)


def _batch_norm(name: str) -> nn.BatchNorm:
    """BatchNorm without affine parameters (PyTorch's ``affine=False``, momentum 0.1)."""
    return nn.BatchNorm(
        momentum=0.9, epsilon=BN_EPSILON, use_bias=False, use_scale=False, name=name
    )


def _normalize(bn: nn.BatchNorm, x: Array, train: bool, mask: Array | None) -> Array:
    """``bn(x)`` on batch statistics of the ``mask`` rows (training) or running ones."""
    row_mask = None if mask is None else jnp.reshape(mask, (-1,) + (1,) * (x.ndim - 1))
    return bn(x, use_running_average=not train, mask=row_mask)


class _CenteredNet(nn.Module):
    """The centre variable and the squared distance to it, shared by both networks."""

    def _declare_center(self) -> None:
        """Declares the centre (zeros until :func:`with_center`); called by ``represent``."""
        dim = self.rep_dim  # type: ignore[attr-defined]
        self.variable(CENTER_COLLECTION, "c", lambda: jnp.zeros((dim,), jnp.float32))

    def __call__(self, x: Array, *, train: bool = False, mask: Array | None = None) -> Array:
        """Squared distances :math:`\\lVert \\phi(x) - c \\rVert^2`, of shape (batch,).

        Args:
            x: the inputs (see :meth:`represent`).
            train: BatchNorm on batch statistics (updated; needs ``mutable=["batch_stats"]``)
                instead of the running ones.
            mask: bool array of shape (batch,), the rows that enter the batch statistics.
        """
        z = self.represent(x, train=train, mask=mask)  # type: ignore[attr-defined]
        return jnp.sum(jnp.square(z - self.get_variable(CENTER_COLLECTION, "c")), axis=-1)


@register_model
class DeepSVDDConv(_CenteredNet):
    """The paper's LeNet-type Deep SVDD network for images (see the module docstring).

    Per stage ``i``: a bias-free ``Conv(channels[i], kernel_size, "same")``, BatchNorm
    without affine parameters, LeakyReLU, ``MaxPool(pool)``; then flatten and a bias-free
    ``Dense(rep_dim)``.

    Attributes:
        image_shape: (height, width, channels) of the inputs, channels last.
        channels: output channels of each stage (the paper's MNIST network: (8, 4)).
        rep_dim: size of the representation (the paper's: 32).
        kernel_size: odd kernel size of every convolution (the paper's: 5).
        pool: max-pooling window and stride.
    """

    image_shape: tuple[int, int, int] = (28, 28, 1)
    channels: Sequence[int] = (8, 4)
    rep_dim: int = 32
    kernel_size: int = 5
    pool: int = 2

    def __post_init__(self) -> None:
        self.image_shape = _positive_ints("image_shape", self.image_shape)
        if len(self.image_shape) != 3:
            raise ValueError(
                f"image_shape must be (height, width, channels), got {self.image_shape!r}"
            )
        self.channels = _positive_ints("channels", self.channels)
        validation.check_int("rep_dim", self.rep_dim, 1)
        validation.check_int("pool", self.pool, 1)
        validation.check_int("kernel_size", self.kernel_size, 1)
        if self.kernel_size % 2 != 1:
            raise ValueError(
                f"kernel_size must be odd so convolutions keep the size, got {self.kernel_size}"
            )
        height, width = self.image_shape[:2]
        smallest = self.pool ** len(self.channels)
        if height < smallest or width < smallest:
            raise ValueError(
                f"image_shape={self.image_shape} is too small for {len(self.channels)} stages "
                f"of {self.pool}x{self.pool} pooling (needs at least {smallest}x{smallest})"
            )
        super().__post_init__()

    @nn.compact
    def represent(self, x: Array, *, train: bool = False, mask: Array | None = None) -> Array:
        """:math:`\\phi(x)` of images ``x`` of shape (batch, *image_shape): (batch, rep_dim).

        Raises:
            ValueError: for inputs of another example shape.
        """
        if tuple(x.shape[1:]) != self.image_shape:
            raise ValueError(
                f"x must have shape (batch, {', '.join(map(str, self.image_shape))}), "
                f"got shape {tuple(x.shape)}"
            )
        self._declare_center()
        pad = self.kernel_size // 2
        for i, width in enumerate(self.channels):
            x = nn.Conv(
                width,
                (self.kernel_size, self.kernel_size),
                padding=((pad, pad), (pad, pad)),
                use_bias=False,
                conv_general_dilated_cls=FastConv,
                name=f"conv{i}",
            )(x)
            x = nn.leaky_relu(_normalize(_batch_norm(f"bn{i}"), x, train, mask), NEGATIVE_SLOPE)
            x = nn.max_pool(x, (self.pool, self.pool), strides=(self.pool, self.pool))
        return nn.Dense(self.rep_dim, use_bias=False, name="dense")(x.reshape(x.shape[0], -1))


@register_model
class DeepSVDDMLP(_CenteredNet):
    """The Deep SVDD network for feature vectors (see the module docstring).

    Per hidden width: a bias-free ``Dense``, BatchNorm without affine parameters, LeakyReLU;
    then a bias-free ``Dense(rep_dim)``.

    Attributes:
        input_dim: features per example.
        hidden_dims: widths of the hidden layers (may be empty: one linear map).
        rep_dim: size of the representation.
    """

    input_dim: int = 784
    hidden_dims: Sequence[int] = (128, 64)
    rep_dim: int = 32

    def __post_init__(self) -> None:
        validation.check_int("input_dim", self.input_dim, 1)
        self.hidden_dims = (
            _positive_ints("hidden_dims", self.hidden_dims) if len(self.hidden_dims) else ()
        )
        validation.check_int("rep_dim", self.rep_dim, 1)
        super().__post_init__()

    @nn.compact
    def represent(self, x: Array, *, train: bool = False, mask: Array | None = None) -> Array:
        """:math:`\\phi(x)` of rows ``x`` of shape (batch, input_dim): (batch, rep_dim).

        Raises:
            ValueError: for inputs of another shape.
        """
        if x.ndim != 2 or x.shape[1] != self.input_dim:
            raise ValueError(
                f"x must have shape (batch, {self.input_dim}), got shape {tuple(x.shape)}"
            )
        self._declare_center()
        for i, width in enumerate(self.hidden_dims):
            x = nn.Dense(width, use_bias=False, name=f"dense{i}")(x)
            x = nn.leaky_relu(_normalize(_batch_norm(f"bn{i}"), x, train, mask), NEGATIVE_SLOPE)
        return nn.Dense(self.rep_dim, use_bias=False, name="out")(x)


def initial_center(
    model: nn.Module, variables: Mapping[str, Any], x: Any, *, eps: float = CENTER_EPS
) -> np.ndarray:
    """The paper's centre: the mean of ``model.represent`` over ``x``, kept away from zero.

    The forward pass runs in inference mode (BatchNorm on its running statistics, as the
    paper's ``net.eval()``); the mean is accumulated in float64; coordinates with
    ``|c_j| < eps`` become ``-eps`` if negative and ``+eps`` otherwise.

    Args:
        model: a :class:`DeepSVDDConv` or :class:`DeepSVDDMLP` (any module with
            ``represent``).
        variables: its variables (the initial ones).
        x: the training inputs, array of shape (n, ...features) the model takes; n >= 1.
        eps: the smallest magnitude of a coordinate, >= 0.

    Returns:
        float32 array of shape (rep_dim,).

    Raises:
        ValueError: for empty or non-finite ``x`` or a negative ``eps``.
    """
    eps = validation.check_real("eps", eps, nonnegative=True)
    x = validation.check_array("x", x, min_ndim=2, dtype=np.float32)
    z = predict(model, variables, x, method="represent", batch_size=_CENTER_BATCH)
    c = np.mean(np.asarray(z, np.float64), axis=0)
    c = np.where(np.abs(c) < eps, np.where(c < 0, -eps, eps), c)
    return c.astype(np.float32)


def with_center(variables: Mapping[str, Any], center: Any) -> dict[str, Any]:
    """``variables`` with the centre replaced by ``center`` (a new dict; nothing mutated).

    Args:
        variables: a Deep SVDD network's variables, with a ``"center"`` collection.
        center: array of shape (rep_dim,).

    Returns:
        The variables with ``variables["center"]["c"] = center`` (float32).

    Raises:
        ValueError: if the variables hold no centre or ``center`` has another shape.
    """
    current = dict(variables).get(CENTER_COLLECTION, {}).get("c")
    if current is None:
        raise ValueError(
            f"variables hold no {CENTER_COLLECTION!r} collection: they are not a Deep SVDD "
            f"network's (collections: {sorted(dict(variables))})"
        )
    center = jnp.asarray(center, jnp.float32)
    if center.shape != tuple(current.shape):
        raise ValueError(
            f"center must have shape {tuple(current.shape)}, got shape {tuple(center.shape)}"
        )
    return {**dict(variables), CENTER_COLLECTION: {"c": center}}
