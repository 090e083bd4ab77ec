"""Deprecated name of :mod:`latent_jax.experiments.evaluate_vae` (``latent-jax evaluate-vae``)."""

from latent_jax._deprecation import warn_deprecated
from latent_jax.experiments.evaluate_vae import add_arguments as add_arguments
from latent_jax.experiments.evaluate_vae import load_run as load_run
from latent_jax.experiments.evaluate_vae import run as run

warn_deprecated("the module latent_jax.experiments.evaluate", "latent_jax.experiments.evaluate_vae")
