"""Flax linen models: MLP and convolutional autoencoders and VAEs, and their layers; the one
factory of a model for data of a shape, and the one inference-mode apply."""

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
