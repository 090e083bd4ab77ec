r"""Objectives with several parameter groups, and the GAN's adversarial objective.

An :class:`~latent_jax.objectives.Objective` has one loss, differentiated with respect to all
of the model's parameters by one optimizer. A :class:`GroupedObjective` splits the parameters
into named **groups** (the top-level keys of ``params``, e.g. a GAN's ``"discriminator"`` and
``"generator"``) and gives each group a loss of its own, with the objective's signature

``group_losses[group](params, model_state, batch, key, step, epoch, train) -> (loss, (metrics,
new_model_state))``

where ``params`` holds every group. The training engine (:mod:`latent_jax.train`) updates the
groups in the order of ``groups``, each by the gradient of its own loss with respect to its own
parameters, with its own optax optimizer (``TrainConfig.group_optimizers``), alternating or
simultaneously (``TrainConfig.group_updates``). A GroupedObjective keeps the fields of an
Objective (``init``, ``loss``, ``model``, ``name``), so everything that only scores or shapes a
model (evaluation, the probes of the data's shape, checkpoints) treats both alike; ``loss`` is
:func:`combined_loss`: every group's loss at the same parameters, their metrics merged, and
``loss`` their sum.

The GAN (Goodfellow et al. 2014) with the non-saturating generator loss, as DCGAN (Radford et
al. 2016) trains it. With :math:`D(x) = \sigma(\ell(x))` for the discriminator's logit
:math:`\ell` and fakes :math:`G(z)`, :math:`z \sim \mathcal{N}(0, I)`, per example

.. math::

    L_D = -\log D(x) - \log(1 - D(G(z))) = \mathrm{softplus}(-\ell(x))
        + \mathrm{softplus}(\ell(G(z))),

    L_G = -\log D(G(z)) = \mathrm{softplus}(-\ell(G(z))) \quad \text{(non-saturating)},

    L_G^{\text{minimax}} = \log(1 - D(G(z))) = -\mathrm{softplus}(\ell(G(z))),

each reduced to the masked mean over the batch's real rows (a ragged batch draws as many fakes
as it has real rows). Softplus of the logits is the stable form of the logs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from latent_jax import validation
from latent_jax.objectives import Batch, LossFn, Metrics, masked_mean

__all__ = [
    "GENERATOR_LOSSES",
    "GroupedObjective",
    "combined_loss",
    "discriminator_loss",
    "gan_objective",
    "generator_loss",
    "grouped_objective",
    "mode_coverage",
    "ring_of_gaussians",
]

GENERATOR_LOSSES = ("non-saturating", "minimax")
GAN_GROUPS = ("discriminator", "generator")


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


def discriminator_loss(real_logits: Array, fake_logits: Array, mask: Array) -> Array:
    """The discriminator's loss: ``softplus(-l_real) + softplus(l_fake)``, masked mean.

    Args:
        real_logits: array of shape (batch,), the logits of real samples.
        fake_logits: array of shape (batch,), the logits of generated samples.
        mask: array of shape (batch,), 1.0 for the rows that count.

    Returns:
        A scalar: :math:`-\\log D(x) - \\log(1 - D(G(z)))` averaged over the rows.
    """
    per_example = jax.nn.softplus(-real_logits) + jax.nn.softplus(fake_logits)
    return masked_mean(per_example, mask)


def generator_loss(fake_logits: Array, mask: Array, kind: str = "non-saturating") -> Array:
    """The generator's loss on the logits of its samples, masked mean.

    Args:
        fake_logits: array of shape (batch,).
        mask: array of shape (batch,), 1.0 for the rows that count.
        kind: ``"non-saturating"``, :math:`-\\log D(G(z)) = \\mathrm{softplus}(-\\ell)`
            (Goodfellow et al.'s practical choice, DCGAN's), or ``"minimax"``,
            :math:`\\log(1 - D(G(z))) = -\\mathrm{softplus}(\\ell)`, the game's own value.

    Returns:
        A scalar.
    """
    validation.check_choice("kind", kind, GENERATOR_LOSSES)
    if kind == "non-saturating":
        return masked_mean(jax.nn.softplus(-fake_logits), mask)
    return masked_mean(-jax.nn.softplus(fake_logits), mask)


def _apply(
    model: nn.Module,
    params: Any,
    model_state: Mapping[str, Any],
    part: str,
    inputs: Array,
    train: bool,
    mask: Array,
) -> tuple[Array, dict]:
    """``model.<method>(inputs)`` for ``part`` (generator/discriminator): output, new state.

    In training mode the part's BatchNorm statistics come back updated (only that part's
    entries of ``model_state`` change).
    """
    method = "generate" if part == "generator" else "discriminate"
    variables = {"params": params, **model_state}
    kwargs = {"method": method, "train": train, "mask": mask}
    if not (train and model_state):
        return model.apply(variables, inputs, **kwargs), dict(model_state)
    out, updates = model.apply(variables, inputs, mutable=list(model_state), **kwargs)
    new_state = dict(model_state)
    for collection, values in updates.items():
        if part in values:
            new_state[collection] = {**model_state[collection], part: values[part]}
    return out, new_state


def gan_objective(model: nn.Module, *, generator_kind: str = "non-saturating") -> GroupedObjective:
    """The GAN's objective: the discriminator's and the generator's losses, two groups.

    The groups are ``("discriminator", "generator")``, updated in that order (DCGAN's
    loop: a discriminator step on real and generated samples, then a generator step).
    Each batch draws ``z ~ N(0, I)`` of shape (batch, latent_dim) from its key; both groups'
    losses use the same draw, so the generator step scores the very samples the
    discriminator step just saw (as DCGAN's reference loop does), through the updated
    discriminator when the updates alternate. Generated samples are detached in the
    discriminator's loss. In training mode the generator's BatchNorm statistics update in its
    own step, the discriminator's in both (real and fake batches separately, as DCGAN runs
    them); evaluation uses the running statistics and the evaluation key's draw.

    Metrics: ``discriminator_loss``, ``d_real`` and ``d_fake`` (the mean of
    :math:`D(x)` over real and over generated samples, in the discriminator's step),
    ``generator_loss``, and ``loss`` (their sum; the engine's non-finite check and early
    stopping read it).

    Args:
        model: a GAN module (:class:`latent_jax.models.gan.DCGAN`,
            :class:`~latent_jax.models.gan.MLPGAN`): submodules ``generator`` and
            ``discriminator``, methods ``generate(z, train, mask)`` and
            ``discriminate(x, train, mask)``, and a ``latent_dim``.
        generator_kind: ``"non-saturating"`` (default) or ``"minimax"``, see
            :func:`generator_loss`.

    Returns:
        The :class:`GroupedObjective`, named ``"gan"``.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a flax.linen Module, got {type(model).__name__}")
    for method in ("generate", "discriminate"):
        if not callable(getattr(model, method, None)):
            raise TypeError(f"model must have a {method}() method, got {type(model).__name__}")
    latent_dim = validation.check_int("model.latent_dim", getattr(model, "latent_dim", None), 1)
    validation.check_choice("generator_kind", generator_kind, GENERATOR_LOSSES)

    def init(key: Array, x: Array) -> dict:
        z = jnp.zeros((x.shape[0], latent_dim), jnp.float32)
        return dict(model.init({"params": key}, z, x, train=False))

    def fakes(params: Any, model_state: Any, batch: Batch, key: Array, train: bool) -> Any:
        z = jax.random.normal(key, (batch.x.shape[0], latent_dim), jnp.float32)
        samples, state = _apply(model, params, model_state, "generator", z, train, batch.mask > 0)
        if samples.shape != batch.x.shape:
            raise ValueError(
                f"the generator makes samples of shape {tuple(samples.shape[1:])} for data of "
                f"shape {tuple(batch.x.shape[1:])}"
            )
        return samples.astype(batch.x.dtype), state

    def discriminator_step(
        params: Any,
        model_state: Mapping[str, Any],
        batch: Batch,
        key: Array,
        step: Array,
        epoch: Array,
        train: bool = True,
    ) -> tuple[Array, tuple[Metrics, dict]]:
        del step, epoch
        train = validation.check_bool("train", train)
        samples, _ = fakes(params, model_state, batch, key, train)  # G's statistics: its step
        samples = jax.lax.stop_gradient(samples)
        rows = batch.mask > 0
        real, state = _apply(model, params, model_state, "discriminator", batch.x, train, rows)
        fake, state = _apply(model, params, state, "discriminator", samples, train, rows)
        value = discriminator_loss(real, fake, batch.mask)
        metrics = {
            "discriminator_loss": value,
            "d_real": masked_mean(jax.nn.sigmoid(real), batch.mask),
            "d_fake": masked_mean(jax.nn.sigmoid(fake), batch.mask),
        }
        return value, (metrics, state)

    def generator_step(
        params: Any,
        model_state: Mapping[str, Any],
        batch: Batch,
        key: Array,
        step: Array,
        epoch: Array,
        train: bool = True,
    ) -> tuple[Array, tuple[Metrics, dict]]:
        del step, epoch
        train = validation.check_bool("train", train)
        samples, state = fakes(params, model_state, batch, key, train)
        fake, state = _apply(model, params, state, "discriminator", samples, train, batch.mask > 0)
        value = generator_loss(fake, batch.mask, generator_kind)
        return value, ({"generator_loss": value}, state)

    return grouped_objective(
        init,
        {"discriminator": discriminator_step, "generator": generator_step},
        model=model,
        name="gan",
        spec={"generator_loss": generator_kind},
    )


def ring_of_gaussians(
    n: int, *, n_modes: int = 8, radius: float = 2.0, std: float = 0.05, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """The GAN's usual toy data: ``n`` points from equal Gaussians centred on a circle.

    Args:
        n: points, >= 1.
        n_modes: Gaussians, their centres at angles ``2 pi k / n_modes``, >= 1.
        radius: the circle's radius, > 0.
        std: each Gaussian's standard deviation, > 0.
        seed: the NumPy seed of the draw.

    Returns:
        ``(x, centers)``: float32 arrays of shape (n, 2) and (n_modes, 2).
    """
    n = validation.check_int("n", n, 1)
    n_modes = validation.check_int("n_modes", n_modes, 1)
    radius = validation.check_real("radius", radius, positive=True)
    std = validation.check_real("std", std, positive=True)
    angles = 2.0 * np.pi * np.arange(n_modes) / n_modes
    centers = radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    rng = np.random.default_rng(seed)
    x = centers[rng.integers(0, n_modes, n)] + std * rng.normal(size=(n, 2))
    return x.astype(np.float32), centers.astype(np.float32)


def mode_coverage(samples: Any, centers: Any, radius: float) -> tuple[np.ndarray, float]:
    """How many samples fall near each mode: the mode-collapse check of a GAN on toy data.

    Args:
        samples: array of shape (n, d).
        centers: the modes' centres, array of shape (n_modes, d).
        radius: a sample counts for its nearest centre when closer than this (3 standard
            deviations of the mode, typically), > 0.

    Returns:
        ``(counts, fraction)``: int array of shape (n_modes,), the samples within ``radius``
        of each centre, and the fraction of all samples within ``radius`` of some centre
        (the "high-quality" samples).
    """
    samples = np.asarray(validation.check_array("samples", samples, ndim=2), np.float64)
    centers = np.asarray(validation.check_array("centers", centers, ndim=2), np.float64)
    if samples.shape[1] != centers.shape[1]:
        raise ValueError(f"samples have {samples.shape[1]} features but centers {centers.shape[1]}")
    radius = validation.check_real("radius", radius, positive=True)
    distance = np.linalg.norm(samples[:, None, :] - centers[None, :, :], axis=-1)
    near = distance.min(axis=1) < radius
    counts = np.bincount(distance.argmin(axis=1)[near], minlength=len(centers))
    return counts, float(np.mean(near))
