"""Training objectives: what the engine minimizes, one module a family, found by name.

* :mod:`~latent_jax.objectives.base`: the protocol (:class:`Objective`, :class:`Batch`,
  :class:`GroupedObjective` for several parameter groups), :func:`context_loss` (an objective
  writes ``fn(params, model_state, batch, key, context)``), the masked mean every objective
  reduces with, and :class:`~latent_jax.objectives.base.ModelCaller`, which calls a model in
  training or inference mode.
* :mod:`~latent_jax.objectives.registry`: :func:`register_objective`, :func:`available`,
  :func:`build_objective`: the ``--objective`` names and their options.
* :mod:`~latent_jax.objectives.bound`: the VAE family's bounds (log-likelihoods, importance
  log-weights, the IWAE bound, the ELBO), which training, :mod:`latent_jax.metrics` and the VAE
  anomaly detector all compute through.
* :mod:`~latent_jax.objectives.autoencoder`: ``autoencoder``, the denoising autoencoder.
* :mod:`~latent_jax.objectives.vae`: ``elbo``, the (β-)VAE, its likelihoods, binarization and
  :class:`~latent_jax.objectives.vae.ElboTerms` (the bound's two terms, which objectives
  built on the ELBO share).
* :mod:`~latent_jax.objectives.iwae`: ``iwae``, the importance-weighted bound.
* :mod:`~latent_jax.objectives.miwae`: ``miwae``, ``piwae`` and ``ciwae``, Rainforth et al.'s
  bounds (the mean of several IWAE bounds; the decoder on IWAE and the encoder on MIWAE; the
  ELBO and the IWAE bound combined).
* :mod:`~latent_jax.objectives.annealed`: ``annealed-vae``, the capacity-annealed β-VAE.
* :mod:`~latent_jax.objectives.factorvae`: ``factorvae``, the VAE and a total-correlation
  discriminator as two parameter groups.
* :mod:`~latent_jax.objectives.rae`: ``rae-l2`` and ``rae-gp``, regularized (deterministic)
  autoencoders trained on a VAE's mean code.
* :mod:`~latent_jax.objectives.tcvae`: ``beta-tcvae``, the β-TCVAE (the KL term split into
  index-code mutual information, total correlation and dimension-wise KL, weighed apart).
* :mod:`~latent_jax.objectives.dip`: ``dip-vae-i`` and ``dip-vae-ii``, DIP-VAE (a penalty on
  the codes' covariance minus the identity).
* :mod:`~latent_jax.objectives.mmd`: ``infovae-mmd`` and ``wae-mmd``, the aggregate posterior
  matched to the prior by the maximum mean discrepancy (InfoVAE, the Wasserstein autoencoder).
* :mod:`~latent_jax.objectives.vamp`: ``vamp``, the VAE with a VampPrior (the prior a mixture
  of the encoder's posteriors at K learned pseudo-inputs).
* :mod:`~latent_jax.objectives.vqvae`: ``vq-vae``, the VQ-VAE (reconstruction, codebook and
  commitment terms; it trains models of kind ``"vq-vae"``), and the cross-entropy of its
  PixelCNN prior over code grids.
* :mod:`~latent_jax.objectives.svdd`: one-class Deep SVDD.

Adding an objective: a module here that defines it and registers a builder
(``@register_objective(name, trains=..., options=...)``), one import line below, and its tests.
Training commands then take ``--objective NAME`` and its options as flags.
"""

# Importing a module registers its objectives; every module of the library's is imported here.
from latent_jax.objectives import annealed as annealed
from latent_jax.objectives import autoencoder as autoencoder
from latent_jax.objectives import bound as bound
from latent_jax.objectives import dip as dip
from latent_jax.objectives import factorvae as factorvae
from latent_jax.objectives import iwae as iwae
from latent_jax.objectives import miwae as miwae
from latent_jax.objectives import mmd as mmd
from latent_jax.objectives import rae as rae
from latent_jax.objectives import svdd as svdd
from latent_jax.objectives import tcvae as tcvae
from latent_jax.objectives import vae as vae
from latent_jax.objectives import vamp as vamp
from latent_jax.objectives import vqvae as vqvae
from latent_jax.objectives.annealed import annealed_vae_objective
from latent_jax.objectives.autoencoder import autoencoder_objective, denoising_objective
from latent_jax.objectives.base import (
    Batch,
    Context,
    GroupedObjective,
    LossFn,
    Metrics,
    Objective,
    bind_dataset_size,
    combined_loss,
    context_loss,
    describe_function,
    grouped_objective,
    masked_mean,
    per_example_mse,
    per_example_sse,
    split_variables,
)
from latent_jax.objectives.dip import dip_vae_objective
from latent_jax.objectives.factorvae import factorvae_objective
from latent_jax.objectives.iwae import GRADIENT_ESTIMATORS, iwae_objective
from latent_jax.objectives.miwae import ciwae_objective, miwae_objective, piwae_objective
from latent_jax.objectives.mmd import mmd_objective
from latent_jax.objectives.rae import rae_objective
from latent_jax.objectives.registry import (
    ObjectiveEntry,
    Option,
    available,
    build_objective,
    objective_entry,
    register_objective,
)
from latent_jax.objectives.svdd import deep_svdd_objective
from latent_jax.objectives.tcvae import beta_tcvae_objective
from latent_jax.objectives.vae import (
    BETA_UNITS,
    LIKELIHOODS,
    bernoulli_binarize,
    vae_objective,
)
from latent_jax.objectives.vamp import vamp_objective
from latent_jax.objectives.vqvae import pixelcnn_objective, vq_vae_objective

__all__ = [
    "BETA_UNITS",
    "GRADIENT_ESTIMATORS",
    "LIKELIHOODS",
    "Batch",
    "Context",
    "GroupedObjective",
    "LossFn",
    "Metrics",
    "Objective",
    "ObjectiveEntry",
    "Option",
    "annealed_vae_objective",
    "autoencoder_objective",
    "available",
    "bernoulli_binarize",
    "beta_tcvae_objective",
    "bind_dataset_size",
    "build_objective",
    "ciwae_objective",
    "combined_loss",
    "context_loss",
    "deep_svdd_objective",
    "denoising_objective",
    "describe_function",
    "dip_vae_objective",
    "factorvae_objective",
    "grouped_objective",
    "iwae_objective",
    "masked_mean",
    "miwae_objective",
    "mmd_objective",
    "objective_entry",
    "per_example_mse",
    "per_example_sse",
    "piwae_objective",
    "pixelcnn_objective",
    "rae_objective",
    "register_objective",
    "split_variables",
    "vae_objective",
    "vamp_objective",
    "vq_vae_objective",
]
