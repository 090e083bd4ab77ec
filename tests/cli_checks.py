"""Checks that several command-line test modules share (imported by name: pytest puts this
folder on the path)."""

from __future__ import annotations

import json
from pathlib import Path

from latent_jax import cli


def assert_config_round_trips(out: Path, command: str) -> None:
    """The run's config.json read back by --config gives the flags it records."""
    saved = json.loads((out / "config.json").read_text())
    args = cli.parse_args([command, "--config", str(out / "config.json")])
    for section in ("data", "model", "settings"):
        for name, value in saved[section].items():
            assert json.loads(json.dumps(getattr(args, name))) == value, (section, name)
    assert args.seed == saved["seed"] and args.learning_rate == saved["training"]["learning_rate"]
