"""The ``latent-jax`` command line (also ``python -m latent_jax``).

Each subcommand is an experiment module under :mod:`latent_jax.experiments` that defines its
own flags; this file only registers them and dispatches.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import warnings
from collections.abc import Sequence

import latent_jax
from latent_jax._deprecation import warn_deprecated

# subcommand -> (module under latent_jax.experiments, one-line help)
SUBCOMMANDS = {
    "pca": ("pca_summary", "fit PCA, print the explained-variance table, save the figure"),
    "reduce": (
        "reduce",
        "dimensionality reduction, PCA against an autoencoder (tutorial example 1)",
    ),
    "vae": ("vae_faces", "image generation with a convolutional VAE (tutorial example 2)"),
    "train": ("train_cli", "train an AE / VAE / ConvVAE on your data; many devices, many hosts"),
    "evaluate-vae": (
        "evaluate_vae",
        "IWAE bound, NLL, active units and KL per dimension of a VAE run",
    ),
    "linear-vae": ("linear_vae", "linear VAE against probabilistic PCA: ELBO, IWAE, angles"),
    "beta-study": ("beta_schedules", "beta schedules compared on digits over several seeds"),
    "denoise": ("denoising", "denoising autoencoders against PCA projection and a plain AE"),
    "anomaly": ("anomaly", "anomaly detection: PCA, PPCA, AE, VAE against IsolationForest, OCSVM"),
}
# Old subcommand names, accepted for one release with a DeprecationWarning: old -> new.
DEPRECATED_SUBCOMMANDS = {"evaluate": "evaluate-vae"}


def _renamed_subcommand(argv: list[str]) -> list[str]:
    """``argv`` with a deprecated subcommand (the first positional word) renamed, warning."""
    for index, word in enumerate(argv):
        if not word.startswith("-"):
            if word in DEPRECATED_SUBCOMMANDS:
                new = DEPRECATED_SUBCOMMANDS[word]
                warn_deprecated(f"the subcommand 'latent-jax {word}'", f"'latent-jax {new}'")
                return [*argv[:index], new, *argv[index + 1 :]]
            break
    return argv


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="latent-jax",
        description="Latent representations in JAX: PCA, autoencoders, VAEs.",
    )
    parser.add_argument(
        "--version", action="version", version=f"latent-jax {latent_jax.__version__}"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        module = importlib.import_module(f"latent_jax.experiments.{module_name}")
        sub = subparsers.add_parser(name, help=help_text, description=module.__doc__)
        module.add_arguments(sub)
        sub.set_defaults(run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parses ``argv`` (default: ``sys.argv[1:]``), runs the subcommand, returns an exit code."""
    parser = build_parser()
    with warnings.catch_warnings():
        # The library's own deprecations (old flag values, renamed subcommands) are shown to
        # the user of the command line; Python hides DeprecationWarnings by default.
        warnings.filterwarnings("default", category=DeprecationWarning, module=r"latent_jax\b")
        return _main(parser, list(sys.argv[1:] if argv is None else argv))


def _main(parser: argparse.ArgumentParser, argv: list[str]) -> int:
    args = parser.parse_args(_renamed_subcommand(argv))
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    # JAX logs its platform probing at INFO; keep the user's terminal for our own messages.
    logging.getLogger("jax").setLevel(logging.DEBUG if args.verbose else logging.WARNING)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        args.run(args)
    except (ValueError, TypeError, FileNotFoundError) as error:
        if args.verbose:
            raise
        print(f"latent-jax {args.command}: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
