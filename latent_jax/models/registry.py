"""The one registry of models: a model joins it where it is defined.

A model class registered with :func:`register_model` can be rebuilt from a run file
(:mod:`latent_jax.models.spec`: only registered classes are ever built, from plain values, so
loading someone else's run cannot run their code), and, when it is registered under a
``name`` with a ``for_data`` builder, chosen by that name for data of a shape
(:func:`latent_jax.models.factory.model_for_data`, ``latent-jax train --model NAME``)::

    @register_model(name="my-vae", kind="vae", architecture="mlp")
    class MyVAE(nn.Module):
        latent_dim: int = 2
        ...

        @classmethod
        def for_data(cls, feature_shape, *, latent_dim, **options) -> "MyVAE":
            return cls(input_dim=math.prod(feature_shape), latent_dim=latent_dim, **options)

A class registered without a name is rebuilt from run files only (the GAN networks, the
Deep SVDD networks, the linear VAE).
"""

from __future__ import annotations

import dataclasses
from types import MappingProxyType
from typing import Any

__all__ = [
    "CLASSES",
    "ModelEntry",
    "model_classes",
    "model_entries",
    "model_entry",
    "register_model",
    "register_value_type",
    "value_types",
]

KINDS = ("autoencoder", "vae", "vq-vae")
ARCHITECTURES = ("mlp", "conv")


@dataclasses.dataclass(frozen=True)
class ModelEntry:
    """A model chosen by name for data of a shape.

    Attributes:
        name: the name commands and :func:`~latent_jax.models.factory.model_for_data` use
            (``"vae"``, ``"conv-vae"``).
        cls: the linen module class; ``cls.for_data(feature_shape, latent_dim=..., **options)``
            builds it for examples of ``feature_shape``.
        kind: ``"autoencoder"`` (``model(x) -> reconstruction``), ``"vae"``
            (``model(x, key) -> (reconstruction, mean, logvar)``, with ``encode``/``decode``)
            or ``"vq-vae"`` (``model(x) -> VQOutput``, :mod:`latent_jax.models.vqvae`),
            trained by the objectives registered for that kind.
        architecture: ``"mlp"`` (it sees flattened examples) or ``"conv"`` (images).
        help: one line for ``--help``.
    """

    name: str
    cls: type
    kind: str
    architecture: str
    help: str = ""


_CLASSES: dict[str, type] = {}
_ENTRIES: dict[str, ModelEntry] = {}
_VALUE_TYPES: dict[str, type] = {}


def register_model(
    cls: type | None = None,
    *,
    name: str | None = None,
    kind: str | None = None,
    architecture: str | None = None,
    help: str = "",
) -> Any:
    """Registers a linen module class (a class decorator, with or without arguments).

    Args:
        cls: the class (when used as ``@register_model``).
        name: the name to choose it by for data (needs ``kind``, ``architecture`` and a
            ``for_data`` classmethod); ``None`` registers it for run files only.
        kind: ``"autoencoder"``, ``"vae"`` or ``"vq-vae"``.
        architecture: ``"mlp"`` or ``"conv"``.
        help: one line for ``--help``.

    Returns:
        The class, unchanged (or the decorator).

    Raises:
        ValueError: for a class name or model name registered by another class, or a bad
            kind or architecture.
        TypeError: for a named model without ``for_data``.
    """

    def register(cls: type) -> type:
        existing = _CLASSES.get(cls.__name__)
        if existing is not None and existing is not cls:
            raise ValueError(
                f"a model class named {cls.__name__!r} is registered already "
                f"({existing.__module__}); rename one of them"
            )
        if name is not None:
            if kind not in KINDS or architecture not in ARCHITECTURES:
                raise ValueError(
                    f"model {name!r} needs kind in {KINDS} and architecture in "
                    f"{ARCHITECTURES}, got kind={kind!r}, architecture={architecture!r}"
                )
            if not callable(getattr(cls, "for_data", None)):
                raise TypeError(
                    f"model {name!r} ({cls.__name__}) needs a for_data(feature_shape, *, "
                    "latent_dim, **options) classmethod"
                )
            taken = _ENTRIES.get(name)
            if taken is not None and taken.cls is not cls:
                raise ValueError(f"the model name {name!r} is taken by {taken.cls.__name__}")
            _ENTRIES[name] = ModelEntry(name, cls, kind, architecture, help)
        _CLASSES[cls.__name__] = cls
        return cls

    return register if cls is None else register(cls)


def register_value_type(cls: type) -> type:
    """Registers a NamedTuple that model fields hold (such as ``ConvSpec``), so that run files
    can record it (as ``{"ClassName": {field: value}}``); a class decorator."""
    existing = _VALUE_TYPES.get(cls.__name__)
    if existing is not None and existing is not cls:
        raise ValueError(f"a value type named {cls.__name__!r} is registered already")
    _VALUE_TYPES[cls.__name__] = cls
    return cls


def _load_library_models() -> None:
    # The library's own models register when their modules are imported.
    import latent_jax.models  # noqa: F401


# Read-only views of the registry (they see the classes registered later too).
CLASSES = MappingProxyType(_CLASSES)


def model_classes() -> MappingProxyType:
    """Every registered class, by class name (read-only), the library's own included."""
    _load_library_models()
    return CLASSES


def value_types() -> MappingProxyType:
    """Every registered field value type, by class name (read-only)."""
    _load_library_models()
    return MappingProxyType(_VALUE_TYPES)


def model_entries(
    kind: str | None = None, architecture: str | None = None
) -> dict[str, ModelEntry]:
    """The models chosen by name, in registration order, optionally of one kind/architecture."""
    _load_library_models()
    return {
        name: entry
        for name, entry in _ENTRIES.items()
        if kind in (None, entry.kind) and architecture in (None, entry.architecture)
    }


def model_entry(name: str) -> ModelEntry:
    """The model registered under ``name``.

    Raises:
        ValueError: naming the models there are.
    """
    entries = model_entries()
    if name not in entries:
        raise ValueError(f"model must be one of {sorted(entries)}, got {name!r}")
    return entries[name]
