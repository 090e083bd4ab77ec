"""One-class MNIST (Ruff et al., ICML 2018): Deep SVDD and every latent_jax detector against
OC-SVM, IsolationForest and KDE, each digit in turn the normal class.

Same flags as ``latent-jax one-class``; run ``python scripts/one_class_mnist.py --help``.
"""

import sys

from latent_jax.cli import main

if __name__ == "__main__":
    sys.exit(main(["one-class", *sys.argv[1:]]))
