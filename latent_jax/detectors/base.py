"""What a detector backend is, and the registry that finds one by its ``method`` name.

A backend fits one kind of model on standardized training examples and scores examples with
it; :class:`latent_jax.AnomalyDetector` does everything around it (scikit-learn's and PyOD's
API, input checks, standardization, the threshold, probabilities, persistence). Adding a
detector is a module with a :class:`DetectorBackend` subclass decorated with
:func:`register_backend`, one import line in :mod:`latent_jax.detectors`, and its tests.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, NamedTuple

import numpy as np

from latent_jax import validation


class TrainingRun(NamedTuple):
    """How a trained backend's training run keeps its work (:meth:`AnomalyDetector.fit`'s
    arguments of the same names).

    Attributes:
        checkpoint_dir: where the run writes checkpoints, or ``None``.
        callbacks: per-epoch callbacks.
        checkpoint_every: checkpoint every this many epochs besides the end (0: the end).
        resume: continue from the last checkpoint in ``checkpoint_dir`` when it has one.
        allow_changes: :func:`latent_jax.train.fit`'s ``allow_changes`` on a resume.
    """

    checkpoint_dir: str | os.PathLike | None = None
    callbacks: Sequence[Any] = ()
    checkpoint_every: int = 0
    resume: bool = False
    allow_changes: Sequence[str] = ()


class DetectorBackend:
    """One kind of anomaly model: fitted on standardized examples, scoring examples.

    Subclasses set the class attributes and implement :meth:`fit`, :meth:`score_block`,
    :meth:`arrays` and :meth:`restore`.

    Attributes:
        method: the ``method`` name that selects the backend.
        statistics: the anomaly statistics it can compute, the default first; empty when it
            has one (its ``statistic`` option is then ``None``).
        trains: whether fitting trains a network (checkpoints, callbacks, history).
        defaults: the values of the estimator's ``"auto"`` options (``hidden_dims``,
            ``latent_dim``, ``learning_rate``) for this method.
        options: every option of the detector, validated.
        feature_shape: the shape of one example.
        n_components: the components kept (linear backends), else ``None``.
        history: the training history (trained backends), else ``None``.
    """

    method: ClassVar[str]
    statistics: ClassVar[tuple[str, ...]] = ()
    # What the estimator's "auto" options resolve to for this method.
    defaults: ClassVar[Mapping[str, Any]] = {
        "hidden_dims": (128, 64),
        "latent_dim": 8,
        "learning_rate": 1e-3,
    }
    trains: ClassVar[bool] = False

    def __init__(self, options: Mapping[str, Any], feature_shape: tuple[int, ...]):
        self.options = dict(options)
        self.feature_shape = tuple(feature_shape)
        self.n_components: int | None = None
        self.history: Any = None

    @classmethod
    def check_statistic(cls, statistic: Any) -> str | None:
        """The backend's statistic: ``statistic`` checked against :attr:`statistics`, or the
        default when ``None``.

        Raises:
            ValueError: for a statistic the backend does not compute.
        """
        if statistic is None:
            return cls.statistics[0] if cls.statistics else None
        if not cls.statistics:
            raise ValueError(
                f"method={cls.method!r} has one statistic; statistic must be None, got "
                f"{statistic!r}"
            )
        return validation.check_choice("statistic", statistic, cls.statistics)

    @classmethod
    def scaling(cls, options: Mapping[str, Any], x: np.ndarray) -> str:
        """The standardization of the data ``x``: the option, with ``"auto"`` resolved (per
        feature for tables, one mean and standard deviation for images).

        Raises:
            ValueError: for a scaling the backend cannot use on ``x``.
        """
        scaling = options["scaling"]
        if scaling == "auto":
            return "feature" if x.ndim == 2 else "global"
        return scaling

    def fit(self, xs: np.ndarray, training: TrainingRun) -> None:
        """Fits the model on standardized examples ``xs`` of shape (n, *feature_shape)."""
        raise NotImplementedError

    def score_block(self, xs: np.ndarray) -> np.ndarray:
        """Anomaly scores (higher: more anomalous) of standardized examples: shape (n,)."""
        raise NotImplementedError

    def with_statistic(self, statistic: str) -> DetectorBackend:
        """The same fitted model (shared, not copied) scoring ``statistic``."""
        other = copy.copy(self)
        other.options = {**self.options, "statistic": self.check_statistic(statistic)}
        return other

    def arrays(self) -> dict[str, Any]:
        """The fitted model's arrays, saved beside the detector's own."""
        raise NotImplementedError

    def metadata(self) -> dict[str, Any]:
        """What the saved detector records of the backend besides its arrays."""
        return {"architecture": None, "pca": None}

    @classmethod
    def restore(
        cls,
        options: Mapping[str, Any],
        feature_shape: tuple[int, ...],
        meta: Mapping[str, Any],
        tree: Mapping[str, Any],
    ) -> DetectorBackend:
        """The fitted backend that a saved detector's metadata and arrays describe."""
        raise NotImplementedError


_BACKENDS: dict[str, type[DetectorBackend]] = {}


def register_backend(cls: type[DetectorBackend]) -> type[DetectorBackend]:
    """Registers a backend class under its :attr:`~DetectorBackend.method` name.

    Raises:
        ValueError: for a name taken by another class.
    """
    name = cls.method
    if _BACKENDS.get(name, cls) is not cls:
        raise ValueError(f"a detector backend named {name!r} is registered already")
    _BACKENDS[name] = cls
    return cls


def methods() -> tuple[str, ...]:
    """Every registered ``method`` name, in registration order."""
    return tuple(_BACKENDS)


def backend_class(method: str) -> type[DetectorBackend]:
    """The backend class of ``method``.

    Raises:
        ValueError: for an unknown method, naming the registered ones.
    """
    validation.check_choice("method", method, methods())
    return _BACKENDS[method]
