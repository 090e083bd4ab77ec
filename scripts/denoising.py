"""Denoising autoencoders against the noisy input, PCA projection and a plain autoencoder.

Same flags as ``latent-jax denoise``; run ``python scripts/denoising.py --help``.
"""

import sys

from latent_jax.cli import main

if __name__ == "__main__":
    sys.exit(main(["denoise", *sys.argv[1:]]))
