"""Flax linen models: MLP and convolutional autoencoders and VAEs, and their layers."""

from latent_jax.models.conv import ConvAutoencoder as ConvAutoencoder
from latent_jax.models.conv import ConvVAE as ConvVAE
from latent_jax.models.mlp import VAE as VAE
from latent_jax.models.mlp import Autoencoder as Autoencoder
