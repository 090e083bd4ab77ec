"""The tutorial's first example: dimensionality reduction with PCA and an autoencoder.

Same flags as ``latent-jax reduce``; run ``python scripts/pca_vs_autoencoder.py --help``.
"""

import sys

from latent_jax.cli import main

if __name__ == "__main__":
    sys.exit(main(["reduce", *sys.argv[1:]]))
