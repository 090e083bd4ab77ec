"""Every failure of a command is one clear line, bad input writes nothing, no traceback.

Each case runs the command line in this process (``cli.main``) and checks the exit code, the
one line on stderr (what it names and says), that no traceback was printed and that the
output folder is absent or untouched. None of them trains a model.
"""

import errno
import os

import numpy as np
import pytest
from test_locks import held  # noqa: F401  (a folder locked by another process)

from latent_jax import cli
from latent_jax.experiments import common, pca_summary
from latent_jax.runs import checkpoint
from latent_jax.train import NonFiniteLossError


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Bad and good data files, made once."""
    root = tmp_path_factory.mktemp("data")
    good = np.random.default_rng(0).normal(size=(40, 8)).astype(np.float32)
    np.save(root / "good.npy", good)
    np.savetxt(root / "good.csv", good, delimiter=",")
    raw = (root / "good.npy").read_bytes()
    (root / "truncated.npy").write_bytes(raw[:-40])
    (root / "text.npy").write_text("1,2,3\n4,5,6\n")
    np.save(root / "objects.npy", np.array([{"a": 1}, 2], dtype=object), allow_pickle=True)
    (root / "header.csv").write_text("a,b,c\n")
    (root / "ragged.csv").write_text("1,2,3\n4,5\n")
    os.mkfifo(root / "pipe.csv")
    os.mkfifo(root / "pipe.npy")
    (root / "a-file").write_text("not a folder\n")
    return root


def _fails(capsys, argv, out, code=2):
    """Runs ``argv``; checks the exit code, one line on stderr, no traceback, ``out`` absent.

    Returns:
        The line.
    """
    existed = os.path.exists(out)
    before = sorted(os.listdir(out)) if os.path.isdir(out) else None
    assert cli.main([*argv, "--out", str(out)]) == code
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"latent-jax {argv[0]}: error: ")
    if existed:
        assert (sorted(os.listdir(out)) if os.path.isdir(out) else None) == before
    else:
        assert not os.path.exists(out)
    return lines[0]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("missing.npy", "data file not found: '{path}'"),
        ("text.npy", "data file '{path}' is not a NumPy array file (.npy): it starts with"),
        ("objects.npy", "data file '{path}' holds Python objects (an object array), which "),
        ("truncated.npy", "data file '{path}' is truncated or corrupt: Failed to read all data"),
        ("header.csv", "cannot read data file '{path}': no data rows"),
        ("ragged.csv", "cannot read data file '{path}': rows have different numbers of columns"),
        ("pipe.csv", "data file '{path}' is a named pipe (FIFO), not a regular file"),
        ("pipe.npy", "data file '{path}' is a named pipe (FIFO), not a regular file"),
    ],
)
def test_bad_data_files_are_named_and_write_nothing(files, tmp_path, capsys, name, expected):
    path = str(files / name)
    line = _fails(capsys, ["pca", "--data", path], tmp_path / "out")
    assert expected.format(path=path) in line
    assert "allow_pickle" not in line and "unsafe" not in line


@pytest.mark.parametrize("command", ["train", "anomaly", "denoise"])
def test_every_command_checks_its_data_before_creating_out(files, tmp_path, capsys, command):
    path = str(files / "text.npy")
    line = _fails(capsys, [command, "--data", path, "--epochs", "1"], tmp_path / "out")
    assert f"data file '{path}' is not a NumPy array file" in line


def test_out_that_is_a_file(files, capsys):
    out = files / "a-file"
    line = _fails(capsys, ["pca", "--data", str(files / "good.csv")], out)
    assert f"--out '{out}' is a file, not a folder" in line
    assert out.read_text() == "not a folder\n"


def test_out_under_a_file(files, capsys):
    out = files / "a-file" / "run"
    line = _fails(capsys, ["pca", "--data", str(files / "good.csv")], out)
    assert f"is under '{files / 'a-file'}', which is a file, not a folder" in line


def test_out_that_cannot_be_created(files, tmp_path, capsys, monkeypatch):
    def refuse(path, *args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", path)

    monkeypatch.setattr(common.os, "makedirs", refuse)
    out = tmp_path / "out"
    line = _fails(capsys, ["train", "--data", str(files / "good.npy"), "--epochs", "1"], out)
    assert line.endswith(f"'{out}': permission denied")


def test_a_full_disk_is_one_line_and_leaves_nothing(files, tmp_path, capsys, monkeypatch):
    def full(run_dir, *args, **kwargs):
        path = os.path.join(run_dir, "config.json")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)

    monkeypatch.setattr(common, "write_run_config", full)
    out = tmp_path / "out"
    argv = ["train", "--data", str(files / "good.npy"), "--epochs", "1", "--out", str(out)]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    says = "the disk is full: free some space or write elsewhere (--out)"
    assert err == f"latent-jax train: error: '{out / 'config.json'}': {says}\n"
    assert not out.exists()  # released, and the empty folder it created removed


def test_a_failure_keeps_a_folder_that_existed(files, tmp_path, capsys, monkeypatch):
    def full(run_dir, *args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), run_dir)

    monkeypatch.setattr(common, "write_run_config", full)
    out = tmp_path / "out"
    out.mkdir()
    argv = ["train", "--data", str(files / "good.npy"), "--epochs", "1", "--out", str(out)]
    assert cli.main(argv) == 2
    assert "the disk is full" in capsys.readouterr().err
    assert out.is_dir() and os.listdir(out) == []


@pytest.mark.parametrize(
    ("error", "line"),
    [
        (OSError(errno.EROFS, "Read-only file system", "/r/x"), "'/r/x': the file system is "),
        (PermissionError(errno.EACCES, "Permission denied", "/p"), "'/p': permission denied"),
        (OSError(errno.EIO, "Input/output error", "/d"), "'/d': input/output error"),
        (OSError("no errno"), "no errno"),
        (ValueError("first\nsecond"), "first second"),
    ],
)
def test_describe_error(error, line):
    message, code = cli.describe_error(error)
    assert message.startswith(line) and code == cli.EXIT_ERROR


def test_divergence_exits_with_its_own_code(files, tmp_path, capsys, monkeypatch):
    def diverge(args):
        raise NonFiniteLossError(
            "non-finite loss at epoch 3, step 7: training stopped (lower the learning rate "
            "or check the data)",
            epoch=3,
            step=7,
            run=None,
            history=None,
            checkpoint=None,
        )

    monkeypatch.setattr(pca_summary, "run", diverge)
    line = _fails(capsys, ["pca"], tmp_path / "out", code=cli.EXIT_DIVERGED)
    assert "non-finite loss at epoch 3, step 7" in line


@pytest.mark.parametrize("where", ["before", "after"])
def test_verbose_shows_the_traceback(files, tmp_path, where):
    argv = ["pca", "--data", str(files / "text.npy"), "--out", str(tmp_path / "out")]
    argv = ["--verbose", *argv] if where == "before" else [*argv, "--verbose"]
    with pytest.raises(ValueError, match="not a NumPy array file"):
        cli.main(argv)


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (["--max-test-rows", "-5"], "--max-test-rows must be >= 1, got -5"),
        (["--image-size", "8x8"], "--image-size resizes the images of a folder; --data '{path}'"),
    ],
)
def test_train_flags_are_checked_first(files, tmp_path, capsys, flags, expected):
    path = str(files / "good.npy")
    line = _fails(capsys, ["train", "--data", path, *flags], tmp_path / "out")
    assert expected.format(path=path) in line


def test_a_second_writer_on_out_is_refused(files, held, capsys):  # noqa: F811
    argv = ["train", "--data", str(files / "good.npy"), "--epochs", "1"]
    line = _fails(capsys, argv, held.folder)
    assert f"{held.folder} is in use by process {held.pid}" in line


@pytest.mark.slow
def test_a_real_divergence_at_once_exits_3_and_leaves_nothing(files, tmp_path, capsys):
    # Nothing was trained before the loss turned non-finite: no checkpoint to keep, no folder.
    out = tmp_path / "out"
    argv = ["train", "--data", str(files / "good.npy"), "--epochs", "3", "--learning-rate", "1e30"]
    assert cli.main([*argv, "--quiet", "--out", str(out)]) == cli.EXIT_DIVERGED
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert "latent-jax train: error: non-finite loss at epoch 1" in err
    assert "checkpoint" not in err
    assert not out.exists()


def test_a_fresh_run_never_mixes_with_or_silently_deletes_an_earlier_runs_checkpoints(
    tmp_path, capsys
):
    data = tmp_path / "x.npy"
    np.save(data, np.zeros((8, 3), np.float32))
    out = tmp_path / "run"
    earlier = out / "checkpoints"
    checkpoint.save_checkpoint(earlier, {"w": np.ones(2, np.float32)}, epoch=7)
    argv = ["train", "--data", str(data), "--model", "ae", "--epochs", "1"]
    line = _fails(capsys, argv, out)
    assert "holds an earlier run's checkpoints (up to epoch 7, in checkpoints/)" in line
    assert "--resume" in line and "--overwrite" in line
    assert checkpoint.list_checkpoints(earlier)[0][0] == 7  # untouched
    line = _fails(capsys, [*argv, "--resume", "--overwrite"], out)
    assert "pick one" in line
    # --overwrite deletes them only once the folder is locked by this run.
    common.check_resume_arguments(cli.parse_command([*argv, "--overwrite", "--out", str(out)]))
    assert checkpoint.list_checkpoints(earlier)
    common.prepare_output_dir(out)
    common.release_output_dirs()
    assert not earlier.exists()


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["train", "--lerning-rate", "0.1"], "(did you mean --learning-rate?)"),
        (["vea"], "(did you mean vae?)"),
        (["train", "--model", "vea"], "(did you mean vae?)"),
        (["vae", "--beta-schedule", "cyclic"], "(did you mean cyclical?)"),
    ],
)
def test_a_misspelled_flag_subcommand_or_choice_gets_a_suggestion(capsys, argv, expected):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    assert exit_info.value.code == 2
    assert expected in capsys.readouterr().err


def test_an_error_is_one_line_on_standard_error(files, tmp_path, capsys):
    """Nothing is logged before the error (the compile cache's note is a debug message)."""
    assert cli.main(["train", "--data", str(tmp_path / "missing.npy")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("latent-jax train: error: ")


@pytest.mark.parametrize("command", sorted(cli.SUBCOMMANDS))
def test_help_is_plain_text_with_every_default_stated_the_right_way(capsys, command):
    with pytest.raises(SystemExit):
        cli.main([command, "--help"])
    text = capsys.readouterr().out
    assert "``" not in text and ":func:" not in text and ":mod:" not in text
    assert ":class:" not in text and ".. math::" not in text
    # a --no-X switch alone would show its dest's default, True, where the switch is off
    sub = cli._subparsers(cli.build_parser())[command]
    backwards = [
        a.option_strings
        for a in sub._actions
        if a.option_strings
        and all(f.startswith("--no-") for f in a.option_strings)
        and a.default is True
    ]
    assert backwards == []


@pytest.mark.parametrize("command", ["pca", "reduce", "denoise", "train"])
def test_help_lists_the_named_data_sets(capsys, command):
    with pytest.raises(SystemExit):
        cli.main([command, "--help"])
    assert "mnist-5k" in capsys.readouterr().out


def test_plain_text_reads_docstring_markup():
    text = "see :func:`~latent_jax.objectives.iwae_objective`, :mod:`latent_jax.runs`, ``--k K``"
    assert cli.plain_text(text) == "see iwae_objective, latent_jax.runs, --k K"
