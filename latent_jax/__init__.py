"""latent_jax: latent representations in JAX.

PCA, probabilistic PCA, robust PCA, factor analysis, incremental and kernel PCA, ICA,
autoencoders, denoising autoencoders, anomaly detection (Deep SVDD among it), variational
autoencoders, β-VAEs and IWAEs, and GANs, with one compiled
training engine. The names most programs need are re-exported here (``__all__``); the
packages hold the rest, each mapping its modules in its docstring: ``latent_jax.linear``,
``latent_jax.data``, ``latent_jax.objectives``, ``latent_jax.models``, ``latent_jax.train``,
``latent_jax.detectors``, ``latent_jax.runs``.
"""

from latent_jax import disentanglement as disentanglement

# The old module of the same name as the function, imported first so that the function
# below is what latent_jax.robust_pca stays (a later import of the module finds it loaded).
from latent_jax import robust_pca as _robust_pca_module  # noqa: F401
from latent_jax._deprecation import deprecated_names as _deprecated_names
from latent_jax.adversarial import GroupedObjective as GroupedObjective
from latent_jax.adversarial import gan_objective as gan_objective
from latent_jax.anomaly import AnomalyDetector as AnomalyDetector
from latent_jax.data import Dataset as Dataset
from latent_jax.data import split_dataset as split_dataset
from latent_jax.data.dsprites import DSprites as DSprites
from latent_jax.data.streaming import fit_pca_source as fit_pca_source
from latent_jax.data.streaming import partial_fit_source as partial_fit_source
from latent_jax.gaussian import kl_diag_gaussians as kl_diag_gaussians
from latent_jax.gaussian import kl_standard_normal as kl_standard_normal
from latent_jax.gaussian import reparameterize as reparameterize
from latent_jax.generate import GenerationScorer as GenerationScorer
from latent_jax.generate import generation_score as generation_score
from latent_jax.linear import PCA as PCA
from latent_jax.linear import FactorAnalysis as FactorAnalysis
from latent_jax.linear import FastICA as FastICA
from latent_jax.linear import IncrementalPCA as IncrementalPCA
from latent_jax.linear import KernelPCA as KernelPCA
from latent_jax.linear import PCAState as PCAState
from latent_jax.linear import RobustPCA as RobustPCA
from latent_jax.linear import fit_pca as fit_pca
from latent_jax.linear import fit_pca_chunks as fit_pca_chunks
from latent_jax.linear import fit_ppca as fit_ppca
from latent_jax.linear import robust_pca as robust_pca
from latent_jax.models import VAE as VAE
from latent_jax.models import Autoencoder as Autoencoder
from latent_jax.models import ConvAutoencoder as ConvAutoencoder
from latent_jax.models import ConvVAE as ConvVAE
from latent_jax.models.factory import model_for_data as model_for_data
from latent_jax.models.gan import DCGAN as DCGAN
from latent_jax.models.gan import MLPGAN as MLPGAN
from latent_jax.models.inference import apply_inference as apply_inference
from latent_jax.models.linear import LinearVAE as LinearVAE
from latent_jax.models.svdd import DeepSVDDConv as DeepSVDDConv
from latent_jax.models.svdd import DeepSVDDMLP as DeepSVDDMLP
from latent_jax.objectives import annealed_vae_objective as annealed_vae_objective
from latent_jax.objectives import autoencoder_objective as autoencoder_objective
from latent_jax.objectives import deep_svdd_objective as deep_svdd_objective
from latent_jax.objectives import denoising_objective as denoising_objective
from latent_jax.objectives import iwae_objective as iwae_objective
from latent_jax.objectives import vae_objective as vae_objective
from latent_jax.runs import Run as Run
from latent_jax.runs import load_run as load_run
from latent_jax.samplers import GaussianMixtureSampler as GaussianMixtureSampler
from latent_jax.samplers import TwoStageSampler as TwoStageSampler
from latent_jax.train import TrainConfig as TrainConfig
from latent_jax.train import TrainState as TrainState
from latent_jax.train import fit as fit
from latent_jax.train import fit_many as fit_many
from latent_jax.train import fit_stream as fit_stream

__version__ = "0.1.0"

__all__ = [
    "DCGAN",
    "MLPGAN",
    "PCA",
    "VAE",
    "AnomalyDetector",
    "Autoencoder",
    "ConvAutoencoder",
    "ConvVAE",
    "DSprites",
    "Dataset",
    "DeepSVDDConv",
    "DeepSVDDMLP",
    "FactorAnalysis",
    "FastICA",
    "GaussianMixtureSampler",
    "GenerationScorer",
    "GroupedObjective",
    "IncrementalPCA",
    "KernelPCA",
    "LinearVAE",
    "PCAState",
    "RobustPCA",
    "Run",
    "TrainConfig",
    "TrainState",
    "TwoStageSampler",
    "annealed_vae_objective",
    "apply_inference",
    "autoencoder_objective",
    "deep_svdd_objective",
    "denoising_objective",
    "disentanglement",
    "fit",
    "fit_many",
    "fit_pca",
    "fit_pca_chunks",
    "fit_pca_source",
    "fit_ppca",
    "fit_stream",
    "gan_objective",
    "generation_score",
    "iwae_objective",
    "kl_diag_gaussians",
    "kl_standard_normal",
    "load_run",
    "model_for_data",
    "partial_fit_source",
    "reparameterize",
    "robust_pca",
    "split_dataset",
    "vae_objective",
]

# Renamed public names, served with a DeprecationWarning for one release.
__getattr__ = _deprecated_names(
    __name__, {"fit_pca_streaming": ("latent_jax.fit_pca_chunks", lambda: fit_pca_chunks)}
)
