"""Flax linen models: MLP and convolutional autoencoders and VAEs, the linear VAE, Deep SVDD
networks and GANs, and their layers; the one registry of models, the one factory of a model for
data of a shape, and the one inference-mode apply.

* :mod:`~latent_jax.models.registry`: :func:`register_model`, which every model class below
  joins where it is defined (run files rebuild it; a named one is chosen for data by name).
* :mod:`~latent_jax.models.mlp`, :mod:`~latent_jax.models.conv`, :mod:`~latent_jax.models.linear`,
  :mod:`~latent_jax.models.svdd`, :mod:`~latent_jax.models.gan`,
  :mod:`~latent_jax.models.benchmark_nets` (pythae's benchmark networks),
  :mod:`~latent_jax.models.factorvae` (a VAE with FactorVAE's discriminator),
  :mod:`~latent_jax.models.vampprior` (a VAE with the VampPrior): the models; wrappers call
  the VAE they hold through :mod:`~latent_jax.models.wrapping`.
* :mod:`~latent_jax.models.vqvae` (the VQ-VAE: a codebook-quantized conv autoencoder) and
  :mod:`~latent_jax.models.pixelcnn` (a PixelCNN over code grids, its prior).
* :mod:`~latent_jax.models.layers`: pooling with switches, unpooling, PyTorch-style transposed
  convolutions, masked BatchNorm.
* :mod:`~latent_jax.models.factory`: the model for data of a shape (MLP or convolutional).
* :mod:`~latent_jax.models.spec`: a model as JSON data and back.
* :mod:`~latent_jax.models.inference`: inference-mode apply, in blocks of rows.
"""

# Importing a model module registers its models: every module of the library's models is
# imported here, so that a run file can name any of them.
from latent_jax.models import benchmark_nets as benchmark_nets
from latent_jax.models import factorvae as factorvae
from latent_jax.models import gan as gan
from latent_jax.models import linear as linear
from latent_jax.models import pixelcnn as pixelcnn
from latent_jax.models import svdd as svdd
from latent_jax.models import vampprior as vampprior
from latent_jax.models import vqvae as vqvae
from latent_jax.models.conv import ConvAutoencoder as ConvAutoencoder
from latent_jax.models.conv import ConvVAE as ConvVAE
from latent_jax.models.factory import CONV_MIN_SIZE as CONV_MIN_SIZE
from latent_jax.models.factory import ModelForData as ModelForData
from latent_jax.models.factory import model_for_data as model_for_data
from latent_jax.models.factory import resolve_architecture as resolve_architecture
from latent_jax.models.inference import apply_inference as apply_inference
from latent_jax.models.inference import inference_kwargs as inference_kwargs
from latent_jax.models.inference import predict as predict
from latent_jax.models.mlp import VAE as VAE
from latent_jax.models.mlp import Autoencoder as Autoencoder
from latent_jax.models.registry import model_entries as model_entries
from latent_jax.models.registry import register_model as register_model
