"""Fit PCA and report explained variance; same flags as ``latent-jax pca``."""

import sys

from latent_jax.cli import main

if __name__ == "__main__":
    sys.exit(main(["pca", *sys.argv[1:]]))
