"""β schedules compared: one VAE on digits, several seeds per schedule in one vmapped run.

Same flags as ``latent-jax beta-study``; run ``python scripts/beta_schedules.py --help``.
"""

import sys

from latent_jax.cli import main

if __name__ == "__main__":
    sys.exit(main(["beta-study", *sys.argv[1:]]))
