r"""The objective protocol, and the pieces every objective is built from.

An :class:`Objective` bundles a model with two pure functions, in the style of optax's
``GradientTransformation``:

* ``init(key, x) -> variables``: the model's variables (``{"params": ..., "batch_stats":
  ...}``) for a batch ``x`` of shape (batch, ...features);
* ``loss(params, model_state, batch, key, step, epoch, train) -> (loss, (metrics,
  new_model_state))``.

``model_state`` holds the model's collections other than ``params`` (BatchNorm's
``batch_stats``; an empty dict for models without any). ``batch`` is a :class:`Batch` whose
``mask`` marks the real rows of a padded batch. ``step`` is the number of optimizer updates
done before this one and ``epoch`` the 0-based epoch, both int32 scalars (traced under
``jit``). ``train`` is a Python bool: with ``train=True`` the model runs in training mode
(BatchNorm on batch statistics, which come back updated in ``new_model_state``); with
``train=False`` in inference mode (running statistics) and ``new_model_state`` is
``model_state``. ``metrics`` maps names to float32 scalars, every term of the objective
reported separately; ``metrics["loss"]`` is ``loss``. The training engine
(:mod:`latent_jax.train`) differentiates ``loss`` and never needs to know which model it trains.

An objective writes its loss once, as a function of what it needs, and :func:`context_loss`
gives it the engine's signature: ``fn(params, model_state, batch, key, context)``, where the
:class:`Context` carries the step, the epoch and the (checked) training flag.

A :class:`GroupedObjective` splits the parameters into named **groups** (the top-level keys of
``params``, e.g. a GAN's ``"discriminator"`` and ``"generator"``) and gives each group a loss
of its own, with the objective's signature, where ``params`` holds every group. The engine
updates the groups in the order of ``groups``, each by the gradient of its own loss with
respect to its own parameters, with its own optax optimizer (``TrainConfig.group_optimizers``),
alternating or simultaneously (``TrainConfig.group_updates``). A GroupedObjective keeps the
fields of an Objective (``init``, ``loss``, ``model``, ``name``), so everything that only
scores or shapes a model (evaluation, the probes of the data's shape, checkpoints) treats both
alike; ``loss`` is :func:`combined_loss`: every group's loss at the same parameters, their
metrics merged, and ``loss`` their sum.

Reductions (explicit, and the same for every objective): each objective first computes one
value per example, then reduces a batch to the **mask-weighted mean over its real rows**,
:math:`\sum_i m_i \ell_i / \sum_i m_i` (:func:`masked_mean`). Padding rows (``mask == 0``)
contribute nothing to the loss, its gradient or the metrics.

Models are called by :class:`ModelCaller` (``train`` and ``mask`` only when the model's method
declares them). A model that declares ``mask`` receives a bool array of shape (batch,),
``True`` for real rows, and can pass it to :class:`latent_jax.models.layers.BatchNorm`
(``mask=...``) so padding rows do not enter the batch statistics of the last, ragged batch.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from latent_jax import precision, validation

Metrics = dict[str, Array]
LossFn = Callable[..., tuple[Array, tuple[Metrics, dict]]]


class Batch(NamedTuple):
    """What an objective sees.

    Attributes:
        x: array of shape (batch, ...features), the inputs (clean).
        mask: float array of shape (batch,), 1.0 for real rows and 0.0 for the padding of a
            ragged last batch.
    """

    x: Array
    mask: Array


class Objective(NamedTuple):
    """A model and the pure functions that initialize and score it.

    Attributes:
        init: ``init(key, x) -> variables``, the model's variables for inputs ``x`` of shape
            (batch, ...features).
        loss: ``loss(params, model_state, batch, key, step, epoch, train) -> (loss, (metrics,
            new_model_state))`` (see the module docstring).
        model: the linen module (for encoding, decoding and generation after training).
        name: a short name (``"autoencoder"``, ``"denoising"``, ``"vae"``).
        spec: what the objective computes besides its model, as JSON data (the VAE's
            ``likelihood`` and ``beta_schedule``, the denoising ``corruption``, described by
            :func:`describe_function`); a run's checkpoints store it with ``name``
            (:meth:`describe`), and resuming with another objective is refused, naming the
            field. ``None``: only ``name`` identifies the objective.
    """

    init: Callable[[Array, Array], dict]
    loss: LossFn
    model: Any
    name: str
    spec: Mapping[str, Any] | None = None

    def describe(self) -> dict[str, Any]:
        """The objective's identity as JSON data: ``{"name": ..., **spec}``."""
        return {"name": self.name, **dict(self.spec or {})}

    def __hash__(self) -> int:
        # Hashable despite the spec's dict (as a static argument of jax.jit, a cache key):
        # equal objectives have equal functions, model and name, hence equal hashes.
        return hash((self.init, self.loss, self.model, self.name))


class Context(NamedTuple):
    """Where training is, as an objective's loss sees it.

    Attributes:
        step: the number of optimizer updates done before this one, an int32 scalar.
        epoch: the 0-based epoch, an int32 scalar.
        train: training mode (a Python bool): BatchNorm on batch statistics, fresh draws.
        n_train: the number of training rows N (a Python int), for estimators that weigh a
            minibatch against the data set (minibatch-weighted sampling of the total
            correlation); the trainers set it (:func:`bind_dataset_size`). ``None`` where no
            data set is bound (a loss called directly, :func:`latent_jax.train.evaluate`
            without ``n_train``).
    """

    step: Array
    epoch: Array
    train: bool
    n_train: int | None = None


ContextLossFn = Callable[..., tuple[Array, tuple[Metrics, dict]]]


def context_loss(fn: ContextLossFn) -> LossFn:
    """The engine's loss signature around ``fn(params, model_state, batch, key, context)``.

    ``loss(params, model_state, batch, key, step, epoch, train=True)`` checks ``train`` (a
    Python bool) and calls ``fn`` with the :class:`Context` of the step, so that an objective
    states only what it computes.

    Args:
        fn: ``fn(params, model_state, batch, key, context) -> (loss, (metrics,
            new_model_state))``.

    Returns:
        The loss, with the signature of :attr:`Objective.loss`.
    """

    return _ContextLoss(fn)


class _ContextLoss:
    """The engine's loss signature around a context function, with the data-set size bound
    (``None`` until :meth:`with_dataset_size`)."""

    def __init__(self, fn: ContextLossFn, n_train: int | None = None):
        self.fn = fn
        self.n_train = n_train
        self._bound: dict[int, _ContextLoss] = {}
        # The wrapped function's name and docs, not its signature: jax.jit and inspect must
        # see the engine's seven arguments (so no __wrapped__).
        functools.update_wrapper(self, fn, updated=())
        del self.__wrapped__

    def __call__(
        self,
        params: Any,
        model_state: Mapping[str, Any],
        batch: Batch,
        key: Array,
        step: Array,
        epoch: Array,
        train: bool = True,
    ) -> tuple[Array, tuple[Metrics, dict]]:
        context = Context(step, epoch, validation.check_bool("train", train), self.n_train)
        return self.fn(params, model_state, batch, key, context)

    def with_dataset_size(self, n_train: int) -> _ContextLoss:
        """This loss with :attr:`Context.n_train` set; the same object for the same N (so
        that what is compiled for it is found again)."""
        if n_train not in self._bound:
            self._bound[n_train] = _ContextLoss(self.fn, n_train)
        return self._bound[n_train]


def _bound_loss(loss: LossFn, n_train: int) -> LossFn:
    bind = getattr(loss, "with_dataset_size", None)
    return bind(n_train) if callable(bind) else loss


def bind_dataset_size(objective: Any, n_train: int) -> Any:
    """The objective with the training set's size N in its losses' :class:`Context`.

    Losses written with :func:`context_loss` see ``context.n_train == n_train``; other
    losses (the engine's seven-argument signature, written by hand) are kept as they are.

    Args:
        objective: an :class:`Objective` or :class:`GroupedObjective`.
        n_train: the number of training rows, >= 1.

    Returns:
        An objective of the same type (``objective`` itself when no loss takes the size).
    """
    n_train = validation.check_int("n_train", n_train, 1)
    if isinstance(objective, GroupedObjective):
        losses = {g: _bound_loss(f, n_train) for g, f in objective.group_losses.items()}
        if all(losses[g] is objective.group_losses[g] for g in losses):
            return objective
        return objective._replace(loss=combined_loss(objective.groups, losses), group_losses=losses)
    loss = _bound_loss(objective.loss, n_train)
    return objective if loss is objective.loss else objective._replace(loss=loss)


def describe_function(fn: Any) -> Any:
    """A JSON value that stands for a function an objective is built with (schedule, noise).

    A closure made by a factory is described by the factory and the values it captured
    (``schedules.constant(5.0)`` as ``"latent_jax.schedules.constant(value=5.0)"``), a
    ``functools.partial`` by its function and arguments, a dataclass instance (such as
    :class:`latent_jax.corruption.Corruption`) by its ``repr``, another function by its
    dotted name; a resumed run compares these to tell whether it trains the same objective.
    """
    if isinstance(fn, bool | int | float | str) or fn is None:
        return fn
    if isinstance(fn, tuple | list):
        return [describe_function(item) for item in fn]
    if isinstance(fn, functools.partial):
        arguments = [repr(describe_function(a)) for a in fn.args]
        arguments += [f"{k}={describe_function(v)!r}" for k, v in sorted(fn.keywords.items())]
        return f"{describe_function(fn.func)}({', '.join(arguments)})"
    if dataclasses.is_dataclass(fn) and not isinstance(fn, type):
        return repr(fn)
    if hasattr(fn, "shape") and hasattr(fn, "dtype"):
        values = np.asarray(fn)
        return values.tolist() if values.size <= 16 else f"array{values.shape}"
    if not callable(fn):
        return type(fn).__name__
    module = getattr(fn, "__module__", None) or type(fn).__module__
    name = getattr(fn, "__qualname__", None) or type(fn).__qualname__
    code, cells = getattr(fn, "__code__", None), getattr(fn, "__closure__", None)
    if "<locals>" not in name or code is None or not cells:
        return f"{module}.{name}"
    factory = name.split(".<locals>")[0]
    captured = ", ".join(
        f"{var}={describe_function(cell.cell_contents)!r}"
        for var, cell in zip(code.co_freevars, cells, strict=True)
    )
    return f"{module}.{factory}({captured})"


def masked_mean(values: Array, mask: Array) -> Array:
    """The mean of per-example ``values`` over the rows where ``mask`` is 1.

    Args:
        values: array of shape (batch,).
        mask: array of shape (batch,) with 1.0 for real rows and 0.0 for padding.

    Returns:
        A scalar: ``sum(mask * values) / sum(mask)`` (0 when the mask is empty).
    """
    mask = mask.astype(values.dtype)
    # where(), not a product, so a non-finite value in a padding row cannot leak in as NaN.
    total = jnp.sum(jnp.where(mask > 0, mask * values, 0.0))
    return total / jnp.maximum(jnp.sum(mask), 1.0)


def flatten_examples(x: Array) -> Array:
    """Array of shape (batch, ...features) as (batch, features)."""
    return jnp.reshape(x, (x.shape[0], -1))


def per_example_mse(prediction: Array, target: Array) -> Array:
    """Mean over features of the squared error, one value per example.

    Args:
        prediction: array of shape (batch, ...features).
        target: array of the same shape.

    Returns:
        Array of shape (batch,).
    """
    return jnp.mean(jnp.square(flatten_examples(prediction) - flatten_examples(target)), axis=-1)


def per_example_sse(prediction: Array, target: Array) -> Array:
    """Sum over features of the squared error, one value per example.

    Args:
        prediction: array of shape (batch, ...features).
        target: array of the same shape.

    Returns:
        Array of shape (batch,).
    """
    return jnp.sum(jnp.square(flatten_examples(prediction) - flatten_examples(target)), axis=-1)


def split_variables(variables: Mapping[str, Any]) -> tuple[Any, dict]:
    """Splits linen variables into ``params`` and the other collections (``model_state``)."""
    variables = dict(variables)
    params = variables.pop("params", {})
    return params, variables


def call_options(model: Any, method: str = "__call__") -> tuple[bool, bool]:
    """Whether the model's ``method`` (``__call__`` by default) declares ``train`` and ``mask``."""
    try:
        parameters = inspect.signature(getattr(type(model), method)).parameters
    except (TypeError, ValueError):
        return False, False
    has_kwargs = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    return ("train" in parameters or has_kwargs), "mask" in parameters


def check_model(model: Any) -> None:
    """Raises TypeError unless ``model`` is a ``flax.linen`` module."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a flax.linen Module, got {type(model).__name__}")


class ModelCaller:
    """Calls a linen model in training or inference mode, threading mutable collections.

    This is the engine's caller, inside the loss: it passes ``train`` and the row ``mask`` and
    returns BatchNorm's updated statistics in training mode. Everything outside a loss runs a
    trained model through :func:`latent_jax.models.inference.apply_inference` instead (which
    objectives, below models in the dependency order, do not import); for the library's
    models both pass ``train=False`` in inference mode.
    """

    def __init__(self, model: nn.Module, method: str = "__call__"):
        self.model = model
        self.method = None if method == "__call__" else method
        self.takes_train, self.takes_mask = call_options(model, method)

    def init(self, key: Array, x: Array, *extra: Any) -> dict:
        """The model's variables for inputs ``x``, initialized in inference mode."""
        params_key, dropout_key = jax.random.split(key)
        kwargs = {"train": False} if self.takes_train else {}
        variables = self.model.init(
            {"params": params_key, "dropout": dropout_key}, x, *extra, **kwargs
        )
        return dict(variables)

    def apply(
        self,
        params: Any,
        model_state: Mapping[str, Any],
        batch: Batch,
        key: Array,
        train: bool,
        *extra: Any,
    ) -> tuple[Any, dict]:
        """``(output, new_model_state)`` of the model on ``batch.x`` (and ``extra``): in
        training mode with BatchNorm's updated statistics, else with ``model_state``.

        Inside a reduced-precision :func:`latent_jax.precision.scope`, the model computes
        in that dtype: its floating parameters and inputs are cast to it, its floating
        outputs back to float32. The model state (BatchNorm's running statistics) stays
        float32: flax's BatchNorm computes its statistics in float32 and casts its output
        to the dtype of its input.
        """
        dtype = precision.compute_dtype()
        if dtype is None:
            return self._apply(params, model_state, batch.x, key, train, batch.mask, extra)
        cast = precision.cast_floating
        out, new_state = self._apply(
            cast(params, dtype),
            model_state,
            cast(batch.x, dtype),
            key,
            train,
            batch.mask,
            cast(extra, dtype),
        )
        return cast(out, jnp.float32), cast(new_state, jnp.float32)

    def _apply(
        self,
        params: Any,
        model_state: Mapping[str, Any],
        x: Array,
        key: Array,
        train: bool,
        mask: Array,
        extra: tuple,
    ) -> tuple[Any, dict]:
        kwargs: dict[str, Any] = {}
        if self.takes_train:
            kwargs["train"] = train
        if self.takes_mask:
            kwargs["mask"] = mask > 0
        variables = {"params": params, **model_state}
        rngs = {"dropout": key}
        if self.method is not None:
            kwargs["method"] = self.method
        if train and model_state:
            out, updates = self.model.apply(
                variables, x, *extra, rngs=rngs, mutable=list(model_state), **kwargs
            )
            return out, {**model_state, **updates}
        return self.model.apply(variables, x, *extra, rngs=rngs, **kwargs), dict(model_state)


def check_reconstruction(reconstruction: Any, x: Array, what: str) -> Array:
    """Raises TypeError or ValueError, naming ``what``, unless the model's output is an array
    of the inputs' shape; returns it."""
    if not hasattr(reconstruction, "shape"):
        raise TypeError(f"{what} must return an array, got {type(reconstruction).__name__}")
    if reconstruction.shape != x.shape:
        raise ValueError(
            f"{what} returned a reconstruction of shape {tuple(reconstruction.shape[1:])} per "
            f"example for inputs of shape {tuple(x.shape[1:])}: the model does not fit data "
            "of this shape"
        )
    return reconstruction


class GroupedObjective(NamedTuple):
    """An objective whose parameters are several groups, each with a loss of its own.

    Attributes:
        init: ``init(key, x) -> variables``, whose ``params`` is a dict keyed by group.
        loss: ``loss(params, model_state, batch, key, step, epoch, train) -> (loss, (metrics,
            new_model_state))``, every group's loss at once (:func:`combined_loss`), for
            evaluation.
        model: the linen module.
        name: a short name (``"gan"``).
        groups: the group names, in the order the engine updates them.
        group_losses: group name -> that group's loss (the signature of ``loss``), which the
            engine differentiates with respect to ``params[group]`` only.
        spec: what the objective computes besides its model, as JSON data (as
            :class:`~latent_jax.objectives.Objective`'s ``spec``); ``None``: nothing.
    """

    init: Callable[[Array, Array], dict]
    loss: LossFn
    model: Any
    name: str
    groups: tuple[str, ...]
    group_losses: Mapping[str, LossFn]
    spec: Mapping[str, Any] | None = None

    def describe(self) -> dict[str, Any]:
        """The objective's identity as JSON data: ``{"name": ..., "groups": [...], **spec}``."""
        return {"name": self.name, "groups": list(self.groups), **dict(self.spec or {})}


def combined_loss(groups: tuple[str, ...], group_losses: Mapping[str, LossFn]) -> LossFn:
    """Every group's loss at the same parameters, in order: merged metrics, summed loss.

    The model state is threaded through the groups' losses in order (in training mode each
    may update BatchNorm statistics). ``metrics["loss"]`` is the sum of the groups' losses,
    the ``loss`` the engine's grouped step reports, so train and test metrics share names.
    """

    def loss(
        params: Any,
        model_state: Mapping[str, Any],
        batch: Batch,
        key: Array,
        step: Array,
        epoch: Array,
        train: bool = True,
    ) -> tuple[Array, tuple[Metrics, dict]]:
        metrics: Metrics = {}
        total = jnp.zeros((), jnp.float32)
        for group in groups:
            value, (group_metrics, model_state) = group_losses[group](
                params, model_state, batch, key, step, epoch, train
            )
            metrics.update(group_metrics)
            total = total + value
        metrics["loss"] = total
        return total, (metrics, dict(model_state))

    return loss


def grouped_objective(
    init: Callable[[Array, Array], dict],
    group_losses: Mapping[str, LossFn],
    *,
    model: Any,
    name: str,
    spec: Mapping[str, Any] | None = None,
) -> GroupedObjective:
    """A :class:`GroupedObjective` from its groups' losses, in the mapping's order.

    Args:
        init: ``init(key, x) -> variables`` with ``params`` keyed by group.
        group_losses: group name -> loss; the engine updates the groups in this order.
        model: the linen module.
        name: the objective's short name.
        spec: what else identifies the objective, as JSON data (see
            :class:`GroupedObjective`).

    Returns:
        The objective, whose ``loss`` is :func:`combined_loss` of the groups.

    Raises:
        TypeError: for a non-callable ``init`` or loss.
        ValueError: for fewer than two groups.
    """
    if not callable(init):
        raise TypeError(f"init must be callable (key, x) -> variables, got {init!r}")
    if not isinstance(group_losses, Mapping) or len(group_losses) < 2:
        raise ValueError(
            "group_losses must map at least two group names to losses (one group is an "
            f"Objective), got {group_losses!r}"
        )
    for group, loss in group_losses.items():
        if not isinstance(group, str) or not callable(loss):
            raise TypeError(
                f"group_losses must map str names to callables, got {group!r}: {loss!r}"
            )
    groups = tuple(group_losses)
    losses = dict(group_losses)
    return GroupedObjective(
        init=init,
        loss=combined_loss(groups, losses),
        model=model,
        name=name,
        groups=groups,
        group_losses=losses,
        spec=None if spec is None else dict(spec),
    )
