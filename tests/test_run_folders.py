"""What every training command shares: the run folder's files, --config (JSON and TOML, a
run's config.json repeating the run), --tensorboard, the compilation cache, the shared
optimizer flags and --help showing every default."""

import json
import subprocess
import sys
import time

import numpy as np
import pytest

from latent_jax import cli, load_run, persistent_cache
from latent_jax.experiments import common

TRAINING_COMMANDS = ("reduce", "vae", "train", "denoise", "anomaly", "linear-vae", "beta-study")


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "table.npy"
    np.save(path, np.random.default_rng(0).normal(size=(120, 6)).astype(np.float32))
    return path


def _reduce_flags(table):
    flags = ["--data", str(table), "--epochs", "3", "--batch-size", "32", "--latent-dim", "2"]
    return [*flags, "--hidden-dims", "4", "--quiet"]


@pytest.fixture(scope="module")
def reduce_run(tmp_path_factory, table):
    out = tmp_path_factory.mktemp("run") / "first"
    flags = [*_reduce_flags(table), "--lr-schedule", "warmup-cosine", "--clip-norm", "0.5"]
    assert cli.main(["reduce", *flags, "--tensorboard", "--out", str(out)]) == 0
    return out


def test_every_subcommand_shows_every_default_in_its_help(capsys):
    parser = cli.build_parser()
    for name, sub in cli._subparsers(parser).items():
        formatter = sub._get_formatter()
        for action in sub._actions:
            if action.option_strings and action.dest != "help":
                text = formatter._get_help_string(action)
                assert "(default" in text, (name, action.option_strings)
        with pytest.raises(SystemExit) as exit_info:
            cli.main([name, "--help"])
        assert exit_info.value.code == 0
        shown = capsys.readouterr().out
        assert "--no-compile-cache" in shown, name
        if name in TRAINING_COMMANDS:
            for flag in ("--config", "--tensorboard", "--lr-schedule", "--clip-norm"):
                assert flag in shown, (name, flag)
    # A sequence is shown the way the flag takes it.
    help_text = cli._subparsers(parser)["reduce"].format_help()
    assert "(default: 30,10)" in help_text and "(default: constant)" in help_text


def test_the_run_folder_has_the_one_layout(reduce_run):
    out = reduce_run
    for name in ("config.json", "metrics.json", "history.csv", "normalizer.json"):
        assert (out / name).is_file(), name
    config = json.loads((out / "config.json").read_text())
    assert set(config) == {"command", "version", "data", "model", "training", "seed", "settings"}
    assert config["training"]["lr_schedule"] == "warmup-cosine"
    assert config["training"]["clip_norm"] == 0.5
    run = load_run(out)
    assert run.train_config.lr_schedule == "warmup-cosine" and run.model.latent_dim == 2
    header, *rows = (out / "history.csv").read_text().splitlines()
    assert "epoch" in header.split(",") and len(rows) == 3


def test_a_runs_config_json_repeats_the_run(reduce_run, tmp_path):
    again = tmp_path / "again"
    assert (
        cli.main(["reduce", "--config", str(reduce_run / "config.json"), "--out", str(again)]) == 0
    )
    first = json.loads((reduce_run / "metrics.json").read_text())
    second = json.loads((again / "metrics.json").read_text())
    for key in ("ae_test_mse", "ae_train_mse", "pca_test_mse", "ae_final_epoch_test_loss"):
        assert first[key] == second[key], key
    assert (reduce_run / "history.csv").read_text().splitlines()[0] == (
        (again / "history.csv").read_text().splitlines()[0]
    )
    repeated = json.loads((again / "config.json").read_text())
    original = json.loads((reduce_run / "config.json").read_text())
    repeated["training"].pop("checkpoint_dir"), original["training"].pop("checkpoint_dir")
    assert repeated == original


def test_tensorboard_events_read_back_with_tensorboards_reader(reduce_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(reduce_run / common.TENSORBOARD_DIR))
    events.Reload()
    assert {"train_loss", "test_loss"} <= set(events.Tags()["scalars"])
    losses = events.Scalars("test_loss")
    assert [e.step for e in losses] == [1, 2, 3]
    history = load_run(reduce_run).history["test_loss"]
    np.testing.assert_allclose([e.value for e in losses], history, rtol=1e-6)


def test_a_toml_file_sets_flags_and_the_command_line_wins(tmp_path, table):
    path = tmp_path / "settings.toml"
    path.write_text(
        f'data = "{table}"\nseed = 3\n\n[model]\nlatent-dim = 2\nhidden_dims = [8, 4]\n\n'
        '[training]\nepochs = 7\nlr_schedule = "cosine"\nclip_norm = 1.5\n'
    )
    args = cli.parse_args(["reduce", "--config", str(path), "--epochs", "2"])
    assert (args.data, args.seed, args.latent_dim, args.hidden_dims) == (str(table), 3, 2, (8, 4))
    assert (args.epochs, args.lr_schedule, args.clip_norm) == (2, "cosine", 1.5)
    assert args.batch_size == 128  # not in the file: the flag's default
    vae = tmp_path / "vae.json"
    vae.write_text(json.dumps({"model": {"latent_dim": 3}, "settings": {"beta_max": "1/30"}}))
    args = cli.parse_args(["vae", "--config", str(vae)])
    assert args.latent_dim == 3 and args.beta_max == pytest.approx(1 / 30)


@pytest.mark.parametrize(
    ("contents", "message"),
    [
        ({"model": {"latent_size": 2}}, "model.latent_size is not a flag of 'latent-jax reduce'"),
        ({"command": "vae"}, "is the config of 'latent-jax vae', not of 'latent-jax reduce'"),
        ({"training": {"lr_schedule": "step"}}, "must be one of"),
        ({"training": {"optimizer": "sgd"}}, "training.optimizer='sgd' has no flag"),
        ({"training": {"epoch": 3}}, "training.epoch is not a TrainConfig field"),
        ({"latent_dim": "two"}, "latent_dim (--latent-dim) does not take 'two'"),
        ({"quiet": "yes"}, "must be true or false"),
    ],
)
def test_a_config_file_that_does_not_fit_is_one_clear_line(tmp_path, capsys, contents, message):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(contents))
    out = tmp_path / "never"
    assert cli.main(["reduce", "--config", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err and str(path) in err
    assert not out.exists()


def test_missing_or_broken_config_files_are_named(tmp_path, capsys):
    assert cli.main(["vae", "--config", str(tmp_path / "none.toml")]) == 2
    assert "none.toml: no such file" in capsys.readouterr().err
    broken = tmp_path / "broken.toml"
    broken.write_text("epochs = \n")
    assert cli.main(["vae", "--config", str(broken)]) == 2
    assert "broken.toml is not valid TOML" in capsys.readouterr().err


@pytest.mark.parametrize("command", TRAINING_COMMANDS)
def test_shared_flags_are_checked_before_the_output_folder_exists(tmp_path, capsys, command):
    out = tmp_path / "never"
    extra = ["--data", str(tmp_path)] if command == "train" else []
    assert cli.main([command, *extra, "--clip-norm", "-1", "--out", str(out)]) == 2
    assert "--clip-norm must be > 0, got -1.0" in capsys.readouterr().err
    assert not out.exists()
    with pytest.raises(SystemExit):
        cli.main([command, "--lr-schedule", "step"])
    assert "invalid choice: 'step'" in capsys.readouterr().err


def test_the_command_line_turns_the_compile_cache_on_unless_told_not_to(
    tmp_path, monkeypatch, capsys
):
    calls = []
    monkeypatch.setattr(persistent_cache, "enable", lambda directory=None: calls.append(1))
    monkeypatch.delenv(persistent_cache.DISABLE_VARIABLE, raising=False)
    missing = ["--data", str(tmp_path / "missing.csv"), "--out", str(tmp_path / "o")]
    assert cli.main(["pca", *missing]) == 2
    assert calls == [1]
    assert cli.main(["reduce", *missing, "--no-compile-cache"]) == 2
    monkeypatch.setenv(persistent_cache.DISABLE_VARIABLE, "1")
    assert cli.main(["reduce", *missing]) == 2
    assert calls == [1]
    capsys.readouterr()


def test_history_csv_keeps_the_epochs_of_a_run_killed_mid_way(tmp_path, table):
    # A kill (SIGKILL: no handler, no clean-up) after some epochs: history.csv already holds
    # every epoch trained, one row each, written as they ended.
    out = tmp_path / "killed"
    flags = [*_reduce_flags(table), "--epochs", "100000", "--checkpoint-every", "0"]
    command = [sys.executable, "-m", "latent_jax", "reduce", *flags, "--out", str(out)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    history = out / "history.csv"
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and process.poll() is None:
            if history.exists() and len(history.read_text().splitlines()) >= 3:
                break
            time.sleep(0.05)
        assert process.poll() is None, "the run ended before it could be killed"
    finally:
        process.kill()
        process.wait(timeout=60)
    header, *rows = history.read_text().splitlines()
    epochs = [int(row.split(",")[header.split(",").index("epoch")]) for row in rows]
    assert epochs == list(range(1, len(epochs) + 1)) and len(epochs) >= 2
    assert (out / "config.json").is_file() and not (out / "metrics.json").exists()
