"""End-to-end experiments behind the ``latent-jax`` subcommands and the ``scripts/`` files.

Each experiment module exposes ``add_arguments(parser)`` (its flags, with the tutorial's values as
defaults) and ``run(args) -> dict`` (the metrics it wrote), so the command line and the scripts
share one definition of every flag.
"""
