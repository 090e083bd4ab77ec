"""The IWAE paper's Table 1 protocol on mnist-5k: a VAE against IWAEs, several seeds each.

Same flags as ``latent-jax iwae-table1``; run ``python scripts/iwae_table1.py --help``.
"""

import sys

from latent_jax.cli import main

if __name__ == "__main__":
    sys.exit(main(["iwae-table1", *sys.argv[1:]]))
