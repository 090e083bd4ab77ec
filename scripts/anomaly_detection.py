"""Anomaly detection: faces vs non-faces and one-class digits, against the common baselines.

Same flags as ``latent-jax anomaly``; run ``python scripts/anomaly_detection.py --help``.
"""

import sys

from latent_jax.cli import main

if __name__ == "__main__":
    sys.exit(main(["anomaly", *sys.argv[1:]]))
