"""Models as data: a module's class and fields as JSON, and the module rebuilt from them.

A run's checkpoint records :func:`module_spec` of its model, e.g.
``{"class": "ConvVAE", "fields": {"latent_dim": 10, "encoder_convs": [{"ConvSpec": {...}}]}}``,
and :func:`build_module` makes the module again. A field holding another registered module
(a wrapper around a VAE) is recorded as ``{"Module": <its spec>}``. Only the classes registered with
:func:`latent_jax.models.registry.register_model` (latent_jax's own, and those of code the user
imported) are ever built, and only from plain values and registered value types: a file never
names an import path or holds pickled objects, so loading someone else's run cannot run their
code.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import flax.linen as nn

from latent_jax.models.registry import CLASSES, model_classes, value_types

__all__ = ["MODEL_CLASSES", "SpecError", "build_module", "module_spec"]

# Every registered model class, by name (a read-only view of the registry).
MODEL_CLASSES = CLASSES
_LINEN_FIELDS = ("parent", "name")


class SpecError(ValueError):
    """A model description that latent_jax cannot (or will not) build."""


# A field that holds a registered module (a wrapper's inner model) is recorded as its spec
# under this tag.
MODULE_TAG = "Module"


def _encode(value: Any, where: str) -> Any:
    if isinstance(value, nn.Module):
        spec = module_spec(value)
        if spec is None:
            raise SpecError(
                f"{where} holds a {type(value).__name__}, which is not a registered model class"
            )
        return {MODULE_TAG: spec}
    tag = type(value).__name__
    if value_types().get(tag) is type(value):
        return {tag: {k: _encode(v, where) for k, v in value._asdict().items()}}
    if isinstance(value, tuple | list):
        return [_encode(v, where) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise SpecError(f"{where} holds a {type(value).__name__}, which a run file cannot record")


def _decode(value: Any, where: str) -> Any:
    if isinstance(value, list):
        return tuple(_decode(v, where) for v in value)
    if isinstance(value, Mapping) and len(value) == 1 and MODULE_TAG in value:
        return build_module(value[MODULE_TAG], where)
    if isinstance(value, Mapping):
        types = value_types()
        if len(value) != 1 or next(iter(value)) not in types:
            raise SpecError(f"{where}: unknown value {value!r}")
        ((tag, fields),) = value.items()
        try:
            return types[tag](**{k: _decode(v, where) for k, v in fields.items()})
        except TypeError as err:
            raise SpecError(f"{where}: bad {tag} {fields!r}: {err}") from err
    return value


def module_spec(module: Any) -> dict[str, Any] | None:
    """The JSON description of ``module``, or ``None`` for a module latent_jax cannot rebuild.

    Args:
        module: a linen module (or anything else, which gives ``None``).

    Returns:
        ``{"class": name, "fields": {field: JSON value}}`` for a registered class, else
        ``None``.
    """
    cls = type(module)
    if model_classes().get(cls.__name__) is not cls:
        return None
    fields = {
        f.name: _encode(getattr(module, f.name), f"{cls.__name__}.{f.name}")
        for f in dataclasses.fields(module)
        if f.name not in _LINEN_FIELDS
    }
    return {"class": cls.__name__, "fields": fields}


def build_module(spec: Any, where: str = "model spec") -> nn.Module:
    """The module a :func:`module_spec` describes.

    Args:
        spec: ``{"class": name, "fields": {...}}``.
        where: what holds the spec (a file name), for the error message.

    Returns:
        The linen module.

    Raises:
        SpecError: for a class that is not registered, unknown fields or bad values, naming
            ``where``.
    """
    if not isinstance(spec, Mapping) or not isinstance(spec.get("fields", {}), Mapping):
        raise SpecError(
            f"{where}: a model spec is {{'class': ..., 'fields': {{...}}}}, got {spec!r}"
        )
    name = spec.get("class")
    cls = model_classes().get(name) if isinstance(name, str) else None
    if cls is None:
        raise SpecError(
            f"{where} names the model class {name!r}, which latent_jax does not build "
            f"(it builds only {sorted(MODEL_CLASSES)})"
        )
    known = {f.name for f in dataclasses.fields(cls)} - set(_LINEN_FIELDS)
    fields = dict(spec.get("fields", {}))
    unknown = sorted(set(fields) - known)
    if unknown:
        raise SpecError(f"{where}: {name} has no fields {unknown} (it has {sorted(known)})")
    values = {k: _decode(v, f"{where}: {name}.{k}") for k, v in fields.items()}
    try:
        return cls(**values)
    except (TypeError, ValueError) as err:
        raise SpecError(f"{where}: cannot build {name} from {fields!r}: {err}") from err
