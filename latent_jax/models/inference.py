"""Applying a model in inference mode: the one way the library runs a trained model.

Inference mode means BatchNorm on its running statistics and no dropout. A linen model says
how to get it through a keyword of the method called: :func:`apply_inference` passes each
flag of :data:`INFERENCE_FLAGS` (``train=False``, ``deterministic=True``, ...) that the
method's signature declares, so library models (``train``) and others (``deterministic``,
``use_running_average``) run the same way, and models without such a flag need nothing.

* :func:`apply_inference`: ``model.apply`` in inference mode, traceable (call it inside a
  jitted function of your own);
* :func:`predict`: the same, compiled once per model, method and input shape, optionally
  over the rows in blocks (bounded memory) with the results concatenated. A call on at most
  1,024 rows (a figure's few images) is compiled for compile speed, a larger one for run
  speed (:mod:`latent_jax.xla_options`).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Mapping
from typing import Any

import jax
import numpy as np

from latent_jax import validation
from latent_jax.xla_options import at_top_level, default_options

__all__ = ["INFERENCE_FLAGS", "apply_inference", "inference_kwargs", "predict"]

# Keyword arguments that put a method in inference mode, passed when its signature names them.
INFERENCE_FLAGS: Mapping[str, bool] = {
    "train": False,
    "training": False,
    "is_training": False,
    "deterministic": True,
    "use_running_average": True,
}


def inference_kwargs(
    model: Any, method: str = "__call__", apply_kwargs: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The keyword arguments that call ``model``'s ``method`` in inference mode.

    Args:
        model: a linen module.
        method: the name of one of its methods (``"__call__"``, ``"encode"``, ``"decode"``).
        apply_kwargs: extra keyword arguments, which override the inference flags.

    Returns:
        The flags of :data:`INFERENCE_FLAGS` that ``method`` declares (e.g. ``train=False``),
        updated with ``apply_kwargs``.

    Raises:
        TypeError: if the model has no such method.
    """
    function = getattr(type(model), method, None)
    if function is None or not callable(function):
        raise TypeError(f"model {type(model).__name__} has no {method}() method")
    parameters = inspect.signature(function).parameters
    kwargs = {name: value for name, value in INFERENCE_FLAGS.items() if name in parameters}
    kwargs.update(apply_kwargs or {})
    return kwargs


def apply_inference(
    model: Any,
    variables: Any,
    *args: Any,
    method: str = "__call__",
    apply_kwargs: Mapping[str, Any] | None = None,
) -> Any:
    """``model.apply(variables, *args)`` in inference mode (see the module docstring).

    Traceable: use it inside ``jax.jit``, ``vmap`` or ``lax.map``. Nothing is mutated, and
    the variables' collections other than ``params`` (``batch_stats``) are read as they are.

    Args:
        model: a linen module.
        variables: its variables, ``{"params": ..., "batch_stats": ...}``.
        *args: the method's positional arguments, e.g. a batch of shape (batch, ...features)
            (and a key for a VAE's ``__call__``).
        method: the method to call: ``"__call__"``, ``"encode"``, ``"decode"``, ...
        apply_kwargs: extra keyword arguments of the call; they override the inference flags.

    Returns:
        What the method returns.
    """
    kwargs = inference_kwargs(model, method, apply_kwargs)
    return model.apply(variables, *args, method=_method(method), **kwargs)


def _method(method: str) -> str | None:
    """What ``model.apply`` takes for ``method``: None for ``__call__``."""
    return None if method == "__call__" else method


# Calls on at most this many rows in all compile for compile speed: they are a figure's few
# images or a handful of examples, run once.
_FEW_ROWS = 1024


def _apply(variables: Any, args: tuple, *, model: Any, method: str, kwargs: tuple) -> Any:
    return model.apply(variables, *args, method=_method(method), **dict(kwargs))


@functools.cache
def _compiled(once: bool | None) -> Any:
    """``_apply`` jitted with the options for one-off (``once``) or repeated programs.

    ``None``: without options, for calls inside another trace (where options are refused).
    """
    options = None if once is None else default_options(once=once) or None
    return jax.jit(_apply, static_argnames=("model", "method", "kwargs"), compiler_options=options)


def _run(
    model: Any, variables: Any, args: tuple, method: str, kwargs: dict[str, Any], once: bool
) -> Any:
    static = tuple(sorted(kwargs.items()))
    try:
        hash((model, static))
    except TypeError:  # unhashable model fields or keyword values: run op by op
        return model.apply(variables, *args, method=_method(method), **kwargs)
    compiled = _compiled(once if at_top_level() else None)
    return compiled(variables, args, model=model, method=method, kwargs=static)


def predict(
    model: Any,
    variables: Any,
    x: Any,
    *extra: Any,
    method: str = "__call__",
    apply_kwargs: Mapping[str, Any] | None = None,
    batch_size: int | None = None,
    repeated: bool | None = None,
) -> Any:
    """:func:`apply_inference` compiled once per model, method and shape, over row blocks.

    Args:
        model: a linen module (hashable, as linen modules are; otherwise it runs uncompiled).
        variables: its variables.
        x: the inputs, array of shape (n, ...features).
        *extra: further positional arguments of the method, the same for every block.
        method: the method to call.
        apply_kwargs: extra keyword arguments (they override the inference flags).
        batch_size: rows per compiled call; None runs all rows at once. Blocks are
            concatenated along the first axis, so the method must return one array (or a
            tuple of arrays) with a row per input.
        repeated: whether the program runs many times, so it is compiled to run fast (a
            metric's encoder called on thousands of small batches), or once, compiled fast;
            None decides by the number of rows (more than 1,024: repeated).

    Returns:
        What the method returns for all ``n`` rows.
    """
    kwargs = inference_kwargs(model, method, apply_kwargs)
    n = int(np.shape(x)[0])
    if repeated is not None and not isinstance(repeated, bool):
        raise TypeError(f"repeated must be True, False or None, got {repeated!r}")
    once = n <= _FEW_ROWS if repeated is None else not repeated
    if batch_size is None:
        return _run(model, variables, (x, *extra), method, kwargs, once)
    batch_size = validation.check_int("batch_size", batch_size, 1)
    blocks = [
        _run(model, variables, (x[i : i + batch_size], *extra), method, kwargs, once)
        for i in range(0, n, batch_size)
    ]
    if len(blocks) == 1:
        return blocks[0]
    return jax.tree.map(lambda *parts: jax.numpy.concatenate(parts), *blocks)
