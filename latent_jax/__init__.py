"""latent_jax: latent representations in JAX.

PCA and probabilistic PCA, autoencoders, denoising autoencoders, variational autoencoders and
β-VAEs, with one compiled training engine. The public names are re-exported here.
"""

from latent_jax.gaussian import kl_diag_gaussians as kl_diag_gaussians
from latent_jax.gaussian import kl_standard_normal as kl_standard_normal
from latent_jax.gaussian import reparameterize as reparameterize
from latent_jax.pca import PCA as PCA
from latent_jax.pca import PCAState as PCAState
from latent_jax.pca import fit_pca as fit_pca
from latent_jax.pca import fit_pca_streaming as fit_pca_streaming
from latent_jax.pca import fit_ppca as fit_ppca

__version__ = "0.1.0"
