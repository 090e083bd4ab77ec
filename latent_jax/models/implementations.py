"""Which implementation of a convolution's gradients each backend runs: latent_jax's own or
JAX's stock one.

:func:`latent_jax.models.layers.conv_general_dilated` (``FastConv``) and
:func:`latent_jax.models.layers.conv_transpose` compute their gradients themselves, because
XLA's CPU backend ran JAX's own gradients of channels-last and zero-dilated convolutions on
slow loop nests inside ``lax.scan`` (10x and 3x slower training steps). Both give the values
and gradients of the stock formulation, so the choice changes speed, not results beyond
round-off. :data:`STOCK` holds, per JAX backend, the components whose stock form runs
instead; ``benchmarks/gpu_suite.py``'s A/B measures each component on a backend, and an
entry belongs here only where that measurement shows stock winning.

Components: ``"conv_gradient"`` (the gradients of :class:`~latent_jax.models.layers.FastConv`)
and ``"conv_transpose"`` (the transposed convolution and its gradients).

``LATENT_JAX_STOCK_KERNELS`` overrides the table for A/B measurements: ``"all"``, ``"none"``
or a comma-separated list of components. The choice is read when JAX traces a model, so it is
fixed in each compiled program.
"""

from __future__ import annotations

import os

import jax

__all__ = ["COMPONENTS", "ENV_VARIABLE", "STOCK", "stock_components", "use_stock"]

COMPONENTS = ("conv_gradient", "conv_transpose")
ENV_VARIABLE = "LATENT_JAX_STOCK_KERNELS"
# Measured choices per backend. CPU: latent_jax's own everywhere (the reasons above). GPU and
# TPU: not measured yet, so the same programs as the CPU's (the H200 runs of
# benchmarks/README.md used them) until the suite's A/B shows stock ahead.
STOCK: dict[str, frozenset[str]] = {
    "cpu": frozenset(),
    "gpu": frozenset(),
    "tpu": frozenset(),
}


def stock_components(backend: str | None = None) -> frozenset[str]:
    """The components that run JAX's stock form on ``backend`` (default: JAX's default).

    Raises:
        ValueError: for a ``LATENT_JAX_STOCK_KERNELS`` naming an unknown component.
    """
    override = os.environ.get(ENV_VARIABLE, "").strip()
    if override:
        if override == "all":
            return frozenset(COMPONENTS)
        if override == "none":
            return frozenset()
        names = frozenset(name.strip() for name in override.split(",") if name.strip())
        unknown = sorted(names - set(COMPONENTS))
        if unknown:
            raise ValueError(
                f"{ENV_VARIABLE} must be 'all', 'none' or a comma-separated list of "
                f"{list(COMPONENTS)}, got {override!r} (unknown: {unknown})"
            )
        return names
    return STOCK.get(backend or jax.default_backend(), frozenset())


def use_stock(component: str) -> bool:
    """Whether ``component`` runs JAX's stock form on the default backend."""
    return component in stock_components()
