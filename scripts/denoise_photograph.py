"""A convolutional denoising autoencoder on scikit-image's chelsea crop against scikit-image's
wavelet, total-variation and non-local-means denoisers and PCA on patches.

Same flags as ``latent-jax denoise-photo``; run ``python scripts/denoise_photograph.py --help``.
"""

import sys

from latent_jax.cli import main

if __name__ == "__main__":
    sys.exit(main(["denoise-photo", *sys.argv[1:]]))
