"""``python -m latent_jax`` runs the command line."""

import sys

from latent_jax.cli import main

sys.exit(main())
