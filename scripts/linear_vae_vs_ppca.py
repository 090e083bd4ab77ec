"""The linear VAE against probabilistic PCA (synthetic PPCA data and digits).

Same flags as ``latent-jax linear-vae``; run ``python scripts/linear_vae_vs_ppca.py --help``.
"""

import sys

from latent_jax.cli import main

if __name__ == "__main__":
    sys.exit(main(["linear-vae", *sys.argv[1:]]))
