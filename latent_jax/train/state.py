"""What training carries and reports: :class:`TrainState`, a fresh one, and the :class:`History`."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import Any

import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import Array

from latent_jax.objectives import Objective, split_variables

# One optax transformation, or one per parameter group of a grouped objective.
Optimizer = optax.GradientTransformation | Mapping[str, optax.GradientTransformation]


def parameter_groups(objective: Any) -> tuple[str, ...]:
    """The objective's parameter groups in update order; ``()`` for a one-group objective.

    A :class:`~latent_jax.objectives.GroupedObjective` declares ``groups``; an
    :class:`~latent_jax.objectives.Objective` has none and trains as one group.
    """
    return tuple(getattr(objective, "groups", ()) or ())


def init_optimizer(tx: Optimizer, params: Any) -> Any:
    """The optimizer state: ``tx.init(params)``, or per group ``{g: tx[g].init(params[g])}``."""
    if isinstance(tx, Mapping):
        missing = [group for group in tx if group not in params]
        if missing:
            raise ValueError(
                f"the model's parameters have no groups {missing} (they have {sorted(params)})"
            )
        return {group: group_tx.init(params[group]) for group, group_tx in tx.items()}
    return tx.init(params)


@flax.struct.dataclass
class TrainState:
    """Everything training carries from one step to the next.

    For :func:`fit_many` every leaf has a leading axis of size K (one entry per run).

    Attributes:
        params: the model's parameters.
        model_state: the model's other variable collections (BatchNorm's ``batch_stats``), a
            dict, empty for models without any.
        opt_state: the optax optimizer state; for an objective with parameter groups a dict
            of one state per group (``params`` is then a dict keyed by group too).
        step: int32 scalar, optimizer updates done.
        epoch: int32 scalar, epochs completed.
        best_loss: float32 scalar, the best monitored loss so far (for early stopping).
        bad_epochs: int32 scalar, epochs since the best monitored loss.
        stopped: bool scalar, whether early stopping ended the run.
    """

    params: Any
    model_state: Any
    opt_state: Any
    step: Array
    epoch: Array
    best_loss: Array
    bad_epochs: Array
    stopped: Array

    @property
    def variables(self) -> dict[str, Any]:
        """``{"params": ..., **model_state}``, what ``model.apply`` takes."""
        return {"params": self.params, **self.model_state}


class History(Mapping):
    """Per-epoch metrics: a read-only mapping from names to NumPy arrays.

    Keys: ``epoch`` (1-based) and ``epoch_time`` of shape (epochs,); ``train_<m>`` and
    ``test_<m>`` for every metric ``m`` of the objective, of shape (epochs,) for :func:`fit`
    and (K, epochs) for :func:`fit_many`.
    """

    def __init__(self, data: Mapping[str, Any] | None = None):
        self._data = {k: np.asarray(v) for k, v in (data or {}).items()}

    def __getitem__(self, key: str) -> np.ndarray:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return f"History(epochs={self.num_epochs}, keys={sorted(self._data)})"

    @property
    def num_epochs(self) -> int:
        """The number of epochs recorded."""
        return int(self._data["epoch"].shape[-1]) if "epoch" in self._data else 0

    def last(self) -> dict[str, Any]:
        """The last epoch's values (floats, or arrays of shape (K,) for several runs)."""
        out = {}
        for name, values in self._data.items():
            value = values[..., -1]
            out[name] = value.item() if value.ndim == 0 else value
        return out

    def head(self, n: int) -> History:
        """The first ``n`` epochs (views of the arrays, no copy)."""
        return History({k: v[..., :n] for k, v in self._data.items()})

    def to_dict(self) -> dict[str, list]:
        """Plain lists (NaN and infinities as ``None``), ready for ``json.dump``."""

        def clean(values: np.ndarray) -> list:
            items = values.tolist()
            if np.issubdtype(values.dtype, np.floating) and not np.all(np.isfinite(values)):
                return jax.tree.map(lambda v: v if math.isfinite(v) else None, items)
            return items

        return {name: clean(values) for name, values in self._data.items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> History:
        """The inverse of :meth:`to_dict` (``None`` becomes NaN)."""
        out = {}
        for name, values in data.items():
            array = np.asarray(values, dtype=object)
            if name == "epoch":
                out[name] = array.astype(np.int64)
            else:
                out[name] = np.where(array == None, np.nan, array).astype(np.float64)  # noqa: E711
        return cls(out)

    def extend(self, rows: Mapping[str, np.ndarray]) -> History:
        """A new history with ``rows`` (arrays of shape (..., epochs)) appended to each key."""
        if not self._data:
            return History(rows)
        if set(rows) != set(self._data):
            raise ValueError(f"history keys changed: {sorted(rows)} vs {sorted(self._data)}")
        return History({k: np.concatenate([self._data[k], rows[k]], axis=-1) for k in self._data})


def init_state(objective: Objective, tx: Optimizer, key: Array, x: Array) -> TrainState:
    """A fresh :class:`TrainState`: the model's variables for inputs like ``x``.

    Args:
        objective: the objective (its ``init`` builds the variables).
        tx: the optimizer (for parameter groups, ``{group: optimizer}``).
        key: the initialization key.
        x: array of shape (batch, ...features), example inputs (only shapes matter).

    Returns:
        The state at step 0, epoch 0.
    """
    return state_from_variables(objective.init(key, x), tx)


def state_from_variables(variables: Mapping[str, Any], tx: Optimizer) -> TrainState:
    """The :class:`TrainState` at step 0 that starts from given model variables (a warm start).

    Args:
        variables: ``{"params": ..., **other_collections}``, as ``model.init`` returns.
        tx: the optimizer (for parameter groups, ``{group: optimizer}``), whose state
            starts fresh.

    Returns:
        The state at step 0, epoch 0.
    """
    params, model_state = split_variables(variables)
    return TrainState(
        params=params,
        model_state=model_state,
        opt_state=init_optimizer(tx, params),
        step=jnp.zeros((), jnp.int32),
        epoch=jnp.zeros((), jnp.int32),
        best_loss=jnp.full((), jnp.inf, jnp.float32),
        bad_epochs=jnp.zeros((), jnp.int32),
        stopped=jnp.zeros((), jnp.bool_),
    )
