r"""The trained detectors: ``autoencoder`` (the mean squared reconstruction error), ``vae``
(the negative ELBO or the reconstruction probability) and ``deep-svdd`` (the squared distance
to the centre of one-class Deep SVDD). Each trains its network with the library's engine
(:func:`latent_jax.train.fit`), so it checkpoints, resumes and reports a history.

See :mod:`latent_jax.anomaly` for the statistics and the architectures.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from latent_jax import validation
from latent_jax.detectors.base import DetectorBackend, TrainingRun, register_backend
from latent_jax.models.conv import ConvSpec
from latent_jax.models.factory import model_for_data, resolve_architecture
from latent_jax.models.inference import apply_inference, predict
from latent_jax.models.svdd import DeepSVDDConv, DeepSVDDMLP, initial_center, with_center
from latent_jax.objectives import autoencoder_objective, bound, deep_svdd_objective, vae_objective
from latent_jax.runs import checkpoint as ckpt
from latent_jax.schedules import constant
from latent_jax.train import TrainConfig, fit

VAE_SCORES = ("elbo", "reconstruction_probability")
# deep-svdd: the network's initial variables are drawn with fold_in(key(seed), this).
SVDD_INIT_FOLD = 2
# vae: the scores' shared noise is drawn with fold_in(key(seed), this).
VAE_NOISE_FOLD = 1


def train_config(
    options: Mapping[str, Any],
    checkpoint_dir: str | os.PathLike | None = None,
    checkpoint_every: int = 0,
) -> TrainConfig:
    """The :class:`~latent_jax.train.TrainConfig` a trained detector's options give.

    Args:
        options: the detector's validated options.
        checkpoint_dir: where the training run writes checkpoints, or ``None``.
        checkpoint_every: checkpoint every this many epochs besides the end.
    """
    return TrainConfig(
        learning_rate=options["learning_rate"],
        batch_size=options["batch_size"],
        epochs=options["epochs"],
        seed=options["seed"],
        quiet=options["quiet"],
        log_every=0,
        lr_schedule=options["lr_schedule"],
        clip_norm=options["clip_norm"],
        checkpoint_dir=checkpoint_dir,
        checkpoint_every=checkpoint_every,
    )


@functools.partial(jax.jit, static_argnames=("model",))
def _reconstruction_mse(variables: Any, x: jax.Array, *, model: Any) -> jax.Array:
    reconstruction = apply_inference(model, variables, x)
    error = jnp.square(reconstruction - x).reshape(x.shape[0], -1)
    return jnp.mean(error, axis=-1)


@functools.partial(jax.jit, static_argnames=("model", "kind", "likelihood"))
def _vae_scores(
    variables: Any,
    x: jax.Array,
    eps: jax.Array,
    obs_logvar: jax.Array,
    *,
    model: Any,
    kind: str,
    likelihood: str,
) -> jax.Array:
    """Negative ELBO or negative log reconstruction probability of each row of ``x``.

    ``eps`` of shape (n_samples, latent_dim) is shared by all rows: row ``i``'s draws are
    ``mean_i + exp(logvar_i / 2) * eps``.
    """
    mean, logvar = apply_inference(model, variables, x, method="encode")

    def log_likelihood(noise: jax.Array) -> jax.Array:
        z = bound.draw_latents(mean, logvar, noise[None, :])
        output = apply_inference(model, variables, z, method="decode")
        return bound.log_likelihood(x, output, likelihood, obs_logvar)

    log_p = jax.lax.map(log_likelihood, eps)  # (n_samples, n)
    if kind == "elbo":
        return -bound.elbo(log_p, mean, logvar)
    # An & Cho's reconstruction probability: the mean of p(x|z) over the draws, in logs.
    return -(jax.scipy.special.logsumexp(log_p, axis=0) - jnp.log(eps.shape[0]))


class _NetworkBackend(DetectorBackend):
    """A network trained on the standardized examples (MLP for vectors and small images,
    convolutional for larger ones)."""

    trains = True

    def __init__(self, options: Mapping[str, Any], feature_shape: tuple[int, ...]):
        super().__init__(options, feature_shape)
        self.architecture = resolve_architecture(self.feature_shape, options["architecture"])
        self.model = self.build_model()

    def build_model(self) -> Any:
        """The untrained network for :attr:`feature_shape`."""
        raise NotImplementedError

    def objective(self) -> Any:
        """The training objective."""
        raise NotImplementedError

    def initial_variables(self, objective: Any, inputs: np.ndarray) -> Any:
        """Variables to start training from, or ``None`` for the engine's draw."""
        del objective, inputs
        return None

    def model_input(self, xs: np.ndarray) -> np.ndarray:
        """Examples as the network takes them: flat rows for an MLP."""
        return xs.reshape(len(xs), -1) if self.architecture == "mlp" else xs

    def fit(self, xs: np.ndarray, training: TrainingRun) -> None:
        objective = self.objective()
        inputs = self.model_input(xs)
        config = train_config(self.options, training.checkpoint_dir, training.checkpoint_every)
        resumed = training.resume and ckpt.latest_checkpoint(training.checkpoint_dir) is not None
        state, self.history = fit(
            objective,
            inputs,
            None,
            config,
            jax.random.key(self.options["seed"]),
            callbacks=training.callbacks,
            init_variables=self.initial_variables(objective, inputs),
            resume=training.checkpoint_dir if resumed else None,
            allow_changes=training.allow_changes if resumed else (),
        )
        self.variables = jax.device_get(state.variables)

    def arrays(self) -> dict[str, Any]:
        return {"variables": jax.tree.map(np.asarray, dict(self.variables))}

    def metadata(self) -> dict[str, Any]:
        return {"architecture": self.architecture, "pca": None}

    @classmethod
    def restore(
        cls,
        options: Mapping[str, Any],
        feature_shape: tuple[int, ...],
        meta: Mapping[str, Any],
        tree: Mapping[str, Any],
    ) -> DetectorBackend:
        saved = validation.check_choice("architecture", meta["architecture"], ("mlp", "conv"))
        backend = cls({**options, "architecture": saved}, feature_shape)
        backend.options = dict(options)
        backend.variables = tree["variables"]
        return backend


@register_backend
class AutoencoderBackend(_NetworkBackend):
    """``autoencoder``: the mean squared reconstruction error."""

    method = "autoencoder"

    def build_model(self) -> Any:
        # Fixed unpooling switches: the encoder's recorded maxima would hand the decoder
        # spatial detail of every input, anomalies included.
        return self._model_for_data("autoencoder", {"use_switches": False})

    def _model_for_data(self, kind: str, conv_options: dict[str, Any]) -> Any:
        o = self.options
        return model_for_data(
            self.feature_shape,
            kind=kind,
            architecture=self.architecture,
            latent_dim=o["latent_dim"],
            hidden_dims=o["hidden_dims"],
            channels=o["channels"],
            conv_options=conv_options,
        ).model

    def objective(self) -> Any:
        return autoencoder_objective(self.model)

    def score_block(self, xs: np.ndarray) -> np.ndarray:
        x = jnp.asarray(self.model_input(xs))
        return np.asarray(_reconstruction_mse(self.variables, x, model=self.model))


@register_backend
class VAEBackend(AutoencoderBackend):
    """``vae``: the negative ELBO, or the negative log reconstruction probability (An & Cho,
    2015), over draws that share one noise for every example."""

    method = "vae"
    statistics = VAE_SCORES

    @classmethod
    def scaling(cls, options: Mapping[str, Any], x: np.ndarray) -> str:
        if options["likelihood"] != "bernoulli":
            return super().scaling(options, x)
        scaling = "none" if options["scaling"] == "auto" else options["scaling"]
        if scaling != "none" or x.min() < 0 or x.max() > 1:
            raise ValueError(
                "likelihood='bernoulli' needs data in [0, 1] and scaling='none' (or 'auto'), "
                f"got scaling={scaling!r} and data in [{x.min():.3g}, {x.max():.3g}]"
            )
        return scaling

    def build_model(self) -> Any:
        channels = self.options["channels"]
        # Strided convolutions down, transposed ones (2h + 1 each) up and a crop.
        conv_options = {
            "hidden_dim": self.options["hidden_dims"][0],
            "encoder_convs": tuple(ConvSpec(c, 3, 2, 1) for c in channels),
            "decoder_convs": tuple(ConvSpec(c, 3, 2, 0) for c in channels[::-1][1:]),
            "output_conv": (3, 2, 0),
        }
        return self._model_for_data("vae", conv_options)

    def objective(self) -> Any:
        o = self.options
        return vae_objective(
            self.model, constant(o["beta"]), likelihood=o["likelihood"], obs_logvar=o["obs_logvar"]
        )

    def fit(self, xs: np.ndarray, training: TrainingRun) -> None:
        super().fit(xs, training)
        o = self.options
        key = jax.random.fold_in(jax.random.key(o["seed"]), VAE_NOISE_FOLD)
        self.eps = np.asarray(jax.random.normal(key, (o["n_samples"], o["latent_dim"])))

    def score_block(self, xs: np.ndarray) -> np.ndarray:
        return np.asarray(
            _vae_scores(
                self.variables,
                jnp.asarray(self.model_input(xs)),
                jnp.asarray(self.eps),
                jnp.asarray(self.options["obs_logvar"], jnp.float32),
                model=self.model,
                kind=self.options["statistic"],
                likelihood=self.options["likelihood"],
            )
        )

    def arrays(self) -> dict[str, Any]:
        return {**super().arrays(), "eps": np.asarray(self.eps)}

    @classmethod
    def restore(
        cls,
        options: Mapping[str, Any],
        feature_shape: tuple[int, ...],
        meta: Mapping[str, Any],
        tree: Mapping[str, Any],
    ) -> DetectorBackend:
        backend = super().restore(options, feature_shape, meta, tree)
        backend.eps = np.asarray(tree["eps"])
        return backend


@register_backend
class DeepSVDDBackend(_NetworkBackend):
    """``deep-svdd``: the squared distance to the centre :math:`c` (Ruff et al., 2018)."""

    method = "deep-svdd"
    # The paper's representation size and Adam step (Ruff et al., 2018), and one hidden
    # layer of 64 for feature vectors: chosen across tables and one-class digits
    # (benchmarks/README.md, "Detectors against PyOD").
    defaults: ClassVar[Mapping[str, Any]] = {
        "hidden_dims": (64,),
        "latent_dim": 32,
        "learning_rate": 1e-4,
    }

    def build_model(self) -> Any:
        o = self.options
        if self.architecture == "conv":
            return DeepSVDDConv(
                image_shape=self.feature_shape, channels=o["channels"], rep_dim=o["latent_dim"]
            )
        n_features = int(np.prod(self.feature_shape))
        return DeepSVDDMLP(
            input_dim=n_features, hidden_dims=o["hidden_dims"], rep_dim=o["latent_dim"]
        )

    def objective(self) -> Any:
        return deep_svdd_objective(self.model, weight_decay=self.options["weight_decay"])

    def initial_variables(self, objective: Any, inputs: np.ndarray) -> Any:
        o = self.options
        key = jax.random.fold_in(jax.random.key(o["seed"]), SVDD_INIT_FOLD)
        variables = objective.init(key, inputs[:1])
        center = initial_center(self.model, variables, inputs, eps=o["center_eps"])
        return with_center(variables, center)

    @property
    def center(self) -> np.ndarray:
        """The centre :math:`c` of shape (latent_dim,), fixed before training."""
        return np.asarray(self.variables["center"]["c"])

    def score_block(self, xs: np.ndarray) -> np.ndarray:
        x = jnp.asarray(self.model_input(xs))
        return np.asarray(predict(self.model, self.variables, x))
