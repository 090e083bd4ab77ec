"""The package's layering, read from its source: experiments import the library and the shared
run scaffold, never each other; only the command line layer speaks argparse."""

from __future__ import annotations

import ast
import pathlib

import latent_jax

PACKAGE = pathlib.Path(latent_jax.__file__).parent
EXPERIMENTS = PACKAGE / "experiments"
# The run scaffold every command shares (and its tracker), and the alias module kept for one
# release.
SHARED = {"common", "tracking"}
ALIASES = {"evaluate"}


def _imported_modules(path: pathlib.Path) -> set[str]:
    """Every module a file imports (``from a import b`` counts ``a`` and ``a.b``)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def test_no_experiment_imports_another():
    experiments = {p.stem for p in EXPERIMENTS.glob("*.py")} - {"__init__"}
    assert {"vae_faces", "gan", "train_cli", "anomaly", "one_class"} <= experiments
    crossings = []
    for path in sorted(EXPERIMENTS.glob("*.py")):
        if path.stem in ALIASES:
            continue
        for module in _imported_modules(path):
            parts = module.split(".")
            if parts[:2] == ["latent_jax", "experiments"] and len(parts) > 2:
                target = parts[2]
                if target != path.stem and target not in SHARED and target in experiments:
                    crossings.append(f"{path.name} imports {module}")
    assert crossings == []


def test_only_the_command_line_layer_speaks_argparse():
    """The library (everything outside ``cli.py`` and ``experiments/``) never takes or builds
    parsed flags."""
    speaking = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE)
        if relative.parts[0] in ("experiments", "cli.py"):
            continue
        if any(m == "argparse" or m.startswith("argparse.") for m in _imported_modules(path)):
            speaking.append(str(relative))
        elif "Namespace" in path.read_text(encoding="utf-8"):
            speaking.append(f"{relative} (mentions Namespace)")
    assert speaking == []


def test_parsed_flags_stop_at_the_command_line():
    """Only ``cli.py`` handles ``argparse.Namespace``: every command takes its typed
    ``Arguments`` (a :class:`~latent_jax.experiments.common.CommandArguments`)."""
    import dataclasses
    import importlib

    from latent_jax import cli
    from latent_jax.experiments import common

    holders = [
        str(path.relative_to(PACKAGE))
        for path in sorted(PACKAGE.rglob("*.py"))
        if path.name != "cli.py" and "Namespace" in path.read_text(encoding="utf-8")
    ]
    assert holders == []
    parsers = cli._subparsers(cli.build_parser())
    for command, (module_name, _) in cli.SUBCOMMANDS.items():
        module = importlib.import_module(f"latent_jax.experiments.{module_name}")
        assert issubclass(module.Arguments, common.CommandArguments)
        fields = {f.name for f in dataclasses.fields(module.Arguments)}
        dests = {a.dest for a in parsers[command]._actions} - {"help", "verbose"}
        if common.OBJECTIVE_OPTIONS_FIELD in fields:  # the objectives' flags, as one field
            options = set(common.given_objective_options(dict.fromkeys(dests, 0)))
            assert options, command
            dests = (dests - options) | {common.OBJECTIVE_OPTIONS_FIELD}
        assert fields == dests, command  # every flag typed, no field without its flag


def test_the_checks_see_a_crossing(tmp_path):
    """The import reader finds what the layering checks look for."""
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import argparse\nfrom latent_jax.experiments.vae_faces import load_data\n"
        "from latent_jax.experiments import common\n"
    )
    found = _imported_modules(sample)
    assert "argparse" in found
    assert "latent_jax.experiments.vae_faces" in found
    assert "latent_jax.experiments.common" in found


def test_the_top_level_api_is_curated():
    """Every name the package exports is listed in ``__all__`` and resolves; nothing else
    public is left at the top level but the subpackages and modules."""
    import types

    exported = set(latent_jax.__all__)
    assert len(exported) == len(latent_jax.__all__)
    assert all(getattr(latent_jax, name) is not None for name in exported)
    public = {
        name
        for name, value in vars(latent_jax).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert public - exported == set()
    for package in ("linear", "data", "objectives", "detectors", "runs"):
        module = getattr(latent_jax, package)
        assert module.__doc__ and all(hasattr(module, n) for n in module.__all__)


def test_the_run_scaffold_takes_typed_flags():
    """The shared scaffold's training helpers read :class:`RunFlags`, not parsed flags."""
    import inspect

    from latent_jax.experiments import common

    helpers = (
        common.checkpoint_options,
        common.resume_options,
        common.detector_fit_options,
        common.training_in,
        common.history_writers,
        common.train_options,
    )
    for helper in helpers:
        annotations = [str(p.annotation) for p in inspect.signature(helper).parameters.values()]
        assert not any("Namespace" in a for a in annotations), helper.__name__
    from latent_jax import cli

    flags = common.RunFlags.from_flags(
        cli.parse_command(["train", "--resume", "--override", "data"])
    )
    assert flags == common.RunFlags(resume=True, override=("data",))  # the rest: defaults
    assert common.checkpoint_options(flags, "run", 40) == {
        "checkpoint_dir": "run/checkpoints",
        "checkpoint_every": 2,  # 5% of the epochs
    }
