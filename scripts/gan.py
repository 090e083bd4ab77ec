"""Image generation with a DCGAN on the VAE's data (Radford, Metz & Chintala 2016).

Same flags as ``latent-jax gan``; run ``python scripts/gan.py --help``.
"""

import sys

from latent_jax.cli import main

if __name__ == "__main__":
    sys.exit(main(["gan", *sys.argv[1:]]))
