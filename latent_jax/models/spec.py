"""Models as data: a module's class and fields as JSON, and the allow-list that rebuilds them.

A run's checkpoint records :func:`module_spec` of its model, e.g.
``{"class": "ConvVAE", "fields": {"latent_dim": 10, "encoder_convs": [{"ConvSpec": {...}}]}}``,
and :func:`build_module` makes the module again. Only the classes in :data:`MODEL_CLASSES`
(latent_jax's own) are ever built, and only from plain values: a file never names an import
path or holds pickled objects, so loading someone else's run cannot run their code.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import flax.linen as nn

from latent_jax.models.conv import ConvAutoencoder, ConvSpec, ConvVAE
from latent_jax.models.gan import DCGAN, MLPGAN
from latent_jax.models.linear import LinearVAE
from latent_jax.models.mlp import VAE, Autoencoder
from latent_jax.models.svdd import DeepSVDDConv, DeepSVDDMLP

__all__ = ["MODEL_CLASSES", "SpecError", "build_module", "module_spec"]

MODEL_CLASSES: dict[str, type[nn.Module]] = {
    cls.__name__: cls
    for cls in (
        Autoencoder,
        VAE,
        ConvAutoencoder,
        ConvVAE,
        LinearVAE,
        DeepSVDDConv,
        DeepSVDDMLP,
        DCGAN,
        MLPGAN,
    )
}
# Field values that are not plain JSON, by the one key that tags them.
_VALUE_TYPES = {"ConvSpec": ConvSpec}
_LINEN_FIELDS = ("parent", "name")


class SpecError(ValueError):
    """A model description that latent_jax cannot (or will not) build."""


def _encode(value: Any, where: str) -> Any:
    if isinstance(value, ConvSpec):
        return {"ConvSpec": {k: _encode(v, where) for k, v in value._asdict().items()}}
    if isinstance(value, tuple | list):
        return [_encode(v, where) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise SpecError(f"{where} holds a {type(value).__name__}, which a run file cannot record")


def _decode(value: Any, where: str) -> Any:
    if isinstance(value, list):
        return tuple(_decode(v, where) for v in value)
    if isinstance(value, Mapping):
        if len(value) != 1 or next(iter(value)) not in _VALUE_TYPES:
            raise SpecError(f"{where}: unknown value {value!r}")
        ((tag, fields),) = value.items()
        try:
            return _VALUE_TYPES[tag](**{k: _decode(v, where) for k, v in fields.items()})
        except TypeError as err:
            raise SpecError(f"{where}: bad {tag} {fields!r}: {err}") from err
    return value


def module_spec(module: Any) -> dict[str, Any] | None:
    """The JSON description of ``module``, or ``None`` for a module latent_jax cannot rebuild.

    Args:
        module: a linen module (or anything else, which gives ``None``).

    Returns:
        ``{"class": name, "fields": {field: JSON value}}`` for the classes of
        :data:`MODEL_CLASSES`, else ``None``.
    """
    cls = type(module)
    if MODEL_CLASSES.get(cls.__name__) is not cls:
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
        SpecError: for a class outside :data:`MODEL_CLASSES`, unknown fields or bad values,
            naming ``where``.
    """
    if not isinstance(spec, Mapping) or not isinstance(spec.get("fields", {}), Mapping):
        raise SpecError(
            f"{where}: a model spec is {{'class': ..., 'fields': {{...}}}}, got {spec!r}"
        )
    name = spec.get("class")
    cls = MODEL_CLASSES.get(name) if isinstance(name, str) else None
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
