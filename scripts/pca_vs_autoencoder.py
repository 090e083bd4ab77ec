"""The tutorial's first example: dimensionality reduction with PCA and an autoencoder.

It is ``latent-jax reduce`` (its messages name that command): the same flags, run
``python scripts/pca_vs_autoencoder.py --help``. A table of your own with its labels in a
column needs ``--label-column`` (``-1``: the last), or the labels are trained on as a feature.
"""

import sys

from latent_jax.cli import main

if __name__ == "__main__":
    sys.exit(main(["reduce", *sys.argv[1:]]))
