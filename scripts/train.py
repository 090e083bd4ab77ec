"""Train an autoencoder, VAE or ConvVAE on a .npy/.csv file or an image folder.

Same flags as ``latent-jax train`` (devices, mesh, multi-host, streaming); run
``python scripts/train.py --help``.
"""

import sys

from latent_jax.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
