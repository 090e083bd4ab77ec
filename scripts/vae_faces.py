"""The tutorial's second example: image generation with a convolutional VAE.

Same flags as ``latent-jax vae``; run ``python scripts/vae_faces.py --help``.
"""

import sys

from latent_jax.cli import main

if __name__ == "__main__":
    sys.exit(main(["vae", *sys.argv[1:]]))
