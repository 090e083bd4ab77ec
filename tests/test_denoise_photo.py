"""The photograph denoising experiment: test crop, training photographs, patches, one tiny run."""

import json

import jax
import numpy as np
import pytest
from cli_checks import assert_config_round_trips
from numerics import assert_bitwise

from latent_jax import cli
from latent_jax.cli import main
from latent_jax.experiments import denoise_photo

# A run of seconds: two levels, two photographs, a 2-layer DAE of 2 channels.
TINY = [
    "denoise-photo",
    "--levels=0.1,0.2",
    "--show-level=0.1",
    "--photos=camera,coins",
    "--patch-size=12",
    "--n-patches=32",
    "--batch-size=16",
    "--depth=2",
    "--features=2",
    "--pca-patch-size=4",
    "--pca-patches=100",
    "--quiet",
]


def test_the_test_crop_is_the_galleries_chelsea_crop_in_grey_levels():
    crop = denoise_photo.load_test_crop()
    assert crop.shape == (150, 250)
    assert crop.dtype == np.float64
    assert 0.0 <= crop.min() < crop.max() <= 1.0


def test_the_training_photographs_exclude_the_test_photograph():
    assert not set(denoise_photo.TEST_PHOTO_NAMES) & set(denoise_photo.TRAINING_PHOTOS)
    photos = denoise_photo.load_training_photos(("camera", "coffee"))
    assert [p.shape for p in photos] == [(512, 512), (400, 600)]
    assert all(p.dtype == np.float32 and 0.0 <= p.min() and p.max() <= 1.0 for p in photos)
    for name in denoise_photo.TEST_PHOTO_NAMES:
        with pytest.raises(ValueError, match=f"test photograph '{name}'"):
            denoise_photo.load_training_photos(("camera", name))
    with pytest.raises(ValueError, match="no photograph 'nonsense'"):
        denoise_photo.load_training_photos(("nonsense",))


def test_patch_sampling_is_keyed_and_in_range():
    photos = [
        np.arange(12 * 9, dtype=np.float32).reshape(12, 9) / 256,  # exact in float32
        np.full((5, 7), 0.9, np.float32),
    ]
    first = denoise_photo.sample_patches(jax.random.key(0), photos, 2000, 5)
    again = denoise_photo.sample_patches(jax.random.key(0), photos, 2000, 5)
    other = denoise_photo.sample_patches(jax.random.key(1), photos, 2000, 5)
    assert first.shape == (2000, 5, 5, 1) and first.dtype == np.float32
    assert_bitwise(first, again)
    assert not np.array_equal(first, other)
    # Every patch is a crop of one photograph, and every position of the ramp occurs.
    constant = np.all(first == np.float32(0.9), axis=(1, 2, 3))
    ramp = first[~constant, :, :, 0] * 256
    assert 800 < constant.sum() < 1200
    corners = ramp[:, 0, 0].astype(int)
    assert_bitwise(ramp, corners[:, None, None] + photos[0][:5, :5] * 256)  # exact values
    assert set(corners) == {9 * r + c for r in range(8) for c in range(5)}
    with pytest.raises(ValueError, match=r"photos\[1\] must be .* at least 6x6"):
        denoise_photo.sample_patches(jax.random.key(0), photos, 3, 6)


def test_blind_gaussian_draws_one_level_per_example_in_its_range():
    x = np.full((100, 16, 16, 1), 0.5, np.float32)
    corrupt = jax.jit(denoise_photo.blind_gaussian(0.05, 0.2))
    noisy = np.asarray(corrupt(jax.random.key(0), x))
    stds = (noisy - x).reshape(100, -1).std(axis=1)
    assert 0.03 < stds.min() and stds.max() < 0.23 and stds.std() > 0.03
    with pytest.raises(ValueError, match="high must be >= low"):
        denoise_photo.blind_gaussian(0.2, 0.1)


def test_the_residual_denoiser_takes_any_image_size():
    model = denoise_photo.ResidualDenoiser(features=4, depth=3)
    variables = jax.eval_shape(model.init, jax.random.key(0), np.zeros((1, 8, 8, 1), np.float32))
    out = jax.eval_shape(model.apply, variables, np.zeros((2, 150, 250, 1), np.float32))
    assert out.shape == (2, 150, 250, 1)


@pytest.mark.slow
def test_the_experiment_writes_every_method_and_level(tmp_path):
    out = tmp_path / "run"
    assert main([*TINY, "--epochs=1", f"--out={out}"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["levels"] == [0.1, 0.2]
    assert metrics["methods"] == list(denoise_photo.METHODS)
    for table in ("psnr", "ssim"):
        assert set(metrics[table]) == set(denoise_photo.METHODS)
        assert all(len(v) == 2 and np.all(np.isfinite(v)) for v in metrics[table].values())
    assert metrics["psnr_agreement_max_abs_diff_db"] < 1e-6
    assert metrics["psnr"]["wavelet-bayes"][0] > metrics["psnr"]["noisy"][0]
    assert (out / "denoised_photo.png").stat().st_size > 0
    assert (out / "psnr_vs_noise.png").stat().st_size > 0


def test_bad_flags_are_clear_errors_and_write_nothing(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["denoise-photo", "--photos=camera,chelsea", f"--out={out}"]) == 2
    assert "test photograph 'chelsea'" in capsys.readouterr().err
    assert main(["denoise-photo", "--show-level=0.5", f"--out={out}"]) == 2
    assert "--show-level 0.5 is not one of --levels" in capsys.readouterr().err
    assert not out.exists()


def test_run_flags_parse_and_bad_ones_write_nothing(tmp_path, capsys):
    args = cli.parse_args(["denoise-photo", "--checkpoint-every=2", "--resume"])
    assert (args.checkpoint_every, args.resume, args.lr_schedule) == (2, True, "cosine")
    assert cli.parse_args(["denoise-photo", "--lr-schedule=constant"]).lr_schedule == "constant"
    out = tmp_path / "run"
    assert main(["denoise-photo", "--checkpoint-every=-1", f"--out={out}"]) == 2
    assert "--checkpoint-every must be >= 0 epochs, got -1" in capsys.readouterr().err
    assert main(["denoise-photo", "--override=learning_rate", f"--out={out}"]) == 2
    assert "--override applies only with --resume" in capsys.readouterr().err
    assert not out.exists()


class _Interrupt(Exception):
    pass


def _interrupted_at(fit, epoch):
    """``fit`` whose run raises _Interrupt after ``epoch`` (checkpointed before callbacks)."""

    def interrupted(*args, callbacks=(), **kwargs):
        def interrupt(state, history):
            if history.num_epochs == epoch:
                raise _Interrupt

        return fit(*args, callbacks=[*callbacks, interrupt], **kwargs)

    return interrupted


def _history_rows(out):
    """history.csv without its epoch_time column."""
    lines = [line.split(",") for line in (out / "history.csv").read_text().splitlines()]
    column = lines[0].index("epoch_time")
    return [row[:column] + row[column + 1 :] for row in lines]


@pytest.mark.slow
def test_an_interrupted_run_resumes_to_the_uninterrupted_runs_numbers(tmp_path, monkeypatch):
    def flags(out, *extra):
        return [*TINY, "--epochs=4", "--checkpoint-every=1", f"--out={out}", *extra]

    reference, out = tmp_path / "reference", tmp_path / "resumed"
    assert main(flags(reference)) == 0
    monkeypatch.setattr(denoise_photo, "fit", _interrupted_at(denoise_photo.fit, 2))
    with pytest.raises(_Interrupt):
        main(flags(out))
    assert not (out / "metrics.json").exists()
    monkeypatch.undo()
    assert main(flags(out, "--resume")) == 0

    got, want = (json.loads((d / "metrics.json").read_text()) for d in (out, reference))
    for name in ("psnr", "ssim", "results"):
        assert got[name] == want[name], name
    assert got["dae"]["train_loss"] == want["dae"]["train_loss"]
    assert _history_rows(out) == _history_rows(reference)
    config = json.loads((out / "config.json").read_text())
    assert config["resumed"] == [{"epoch": 2, "changed": {}}]
    assert config["training"]["checkpoint_dir"] == str(out / "checkpoints")
    assert_config_round_trips(out, "denoise-photo")
