"""The registry of objectives, by the name commands use (``--objective NAME``).

An objective joins it where it is defined, with the options a command sets as flags::

    @register_objective(
        "annealed-vae",
        trains="vae",
        options=(LIKELIHOOD, BINARIZE, Option("gamma", float, 1000.0, "weight of |KL - C|")),
        help="recon + gamma |KL - C(t)| (Burgess et al. 2018)",
    )
    def _annealed(model, *, likelihood, binarize, gamma, ...) -> Objective: ...

:func:`available` lists the names, :func:`build_objective` makes one from its options as plain
values (a run's ``config.json`` holds them), and the command line registers every option as a
flag (``--gamma``) and refuses an option the chosen objective does not take.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from typing import Any

from latent_jax.objectives.base import Objective

__all__ = [
    "ObjectiveEntry",
    "Option",
    "available",
    "build_objective",
    "objective_entry",
    "register_objective",
]

TRAINS = ("autoencoder", "vae", "vq-vae")


@dataclasses.dataclass(frozen=True)
class Option:
    """A setting of an objective that a command sets with a flag.

    Attributes:
        name: the builder's keyword; the flag is ``--`` and the name with dashes.
        type: converts the flag's text (``int``, ``float``, ``str``; ``bool`` makes a switch).
        default: the value without the flag (``None``: the builder decides).
        help: one line for ``--help``.
        choices: the values it takes, or ``None``.
    """

    name: str
    type: Callable[[str], Any]
    default: Any
    help: str
    choices: tuple[Any, ...] | None = None

    @property
    def flag(self) -> str:
        """The command-line flag, ``--name-with-dashes``."""
        return "--" + self.name.replace("_", "-")


@dataclasses.dataclass(frozen=True)
class ObjectiveEntry:
    """A registered objective.

    Attributes:
        name: its ``--objective`` name.
        build: ``build(model, **options) -> Objective``.
        trains: the kind of model it trains: ``"autoencoder"``, ``"vae"`` or ``"vq-vae"``.
        options: the settings a command sets as flags.
        help: one line for ``--help``.
    """

    name: str
    build: Callable[..., Objective]
    trains: str
    options: tuple[Option, ...]
    help: str

    def accepts(self, keyword: str) -> bool:
        """Whether the builder takes ``keyword`` (an option, or what a command supplies
        itself, such as the ``vae`` command's ``beta_schedule``)."""
        return keyword in inspect.signature(self.build).parameters


_ENTRIES: dict[str, ObjectiveEntry] = {}


def register_objective(
    name: str,
    *,
    trains: str,
    options: tuple[Option, ...] = (),
    help: str = "",
) -> Callable[[Callable[..., Objective]], Callable[..., Objective]]:
    """Registers ``build(model, **options) -> Objective`` under ``name`` (a decorator).

    Args:
        name: the ``--objective`` name.
        trains: ``"autoencoder"``, ``"vae"`` or ``"vq-vae"``, the models it trains (the
            ``kind`` of :func:`latent_jax.models.registry.register_model`).
        options: its settings, each a keyword of ``build``.
        help: one line for ``--help``.

    Returns:
        The decorator, which returns ``build`` unchanged.

    Raises:
        ValueError: for a name taken by another builder, an unknown ``trains``, or an option
            ``build`` does not take.
    """
    if trains not in TRAINS:
        raise ValueError(f"trains must be one of {TRAINS}, got {trains!r}")

    def register(build: Callable[..., Objective]) -> Callable[..., Objective]:
        entry = ObjectiveEntry(name, build, trains, tuple(options), help)
        missing = [option.name for option in options if not entry.accepts(option.name)]
        if missing:
            raise ValueError(f"objective {name!r}: its builder takes no {missing}")
        taken = _ENTRIES.get(name)
        if taken is not None and taken.build is not build:
            raise ValueError(f"the objective name {name!r} is registered already")
        _ENTRIES[name] = entry
        return build

    return register


def _load_library_objectives() -> None:
    # The library's objectives register when their modules are imported.
    import latent_jax.objectives  # noqa: F401


def available(trains: str | tuple[str, ...] | None = None) -> tuple[str, ...]:
    """The registered objectives' names, sorted.

    Args:
        trains: only those for this kind of model (``"autoencoder"``, ``"vae"`` or
            ``"vq-vae"``), or for any of a tuple of kinds.
    """
    _load_library_objectives()
    kinds = (trains,) if isinstance(trains, str) or trains is None else tuple(trains)
    return tuple(sorted(name for name, e in _ENTRIES.items() if None in kinds or e.trains in kinds))


def objective_entry(name: str) -> ObjectiveEntry:
    """The objective registered under ``name``.

    Raises:
        ValueError: naming the objectives there are.
    """
    _load_library_objectives()
    if name not in _ENTRIES:
        raise ValueError(f"objective must be one of {list(_ENTRIES)}, got {name!r}")
    return _ENTRIES[name]


def build_objective(name: str, model: Any, **options: Any) -> Objective:
    """The objective ``name`` for ``model``, its options defaulted where not given.

    Args:
        name: a registered name (:func:`available`).
        model: the linen module it trains.
        **options: its options by name, and what the command supplies (``beta_schedule``).

    Returns:
        The :class:`~latent_jax.objectives.Objective`.

    Raises:
        ValueError: for an unknown name, or a keyword the objective does not take.
    """
    entry = objective_entry(name)
    unknown = sorted(keyword for keyword in options if not entry.accepts(keyword))
    if unknown:
        takes = [option.name for option in entry.options]
        raise ValueError(f"objective {name!r} takes no {unknown} (its options: {takes})")
    values = {option.name: option.default for option in entry.options}
    values.update(options)
    return entry.build(model, **values)
