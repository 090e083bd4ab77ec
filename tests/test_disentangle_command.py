"""``latent-jax disentangle``: disentanglement_lib's VAE on procedural dSprites, scored."""

from __future__ import annotations

import json
import os

import jax
import numpy as np
import pytest

from latent_jax import cli
from latent_jax.experiments import common, disentangle


@pytest.mark.parametrize("size", [64, 32])
def test_the_dsprites_vae_is_disentanglement_libs_network(size):
    model = disentangle.dsprites_vae(size, latent_dim=10)
    x = np.zeros((2, size, size, 1), np.float32)
    variables = jax.eval_shape(lambda: model.init(jax.random.key(0), x, jax.random.key(1)))
    params = variables["params"]
    # Four (three at 32x32) 4x4 stride-2 convolutions down to 4x4 feature maps of 64 channels,
    # a dense layer of 256, two heads of 10.
    assert model.feature_shape == (4, 4, 64)
    assert params["mean_layer"]["kernel"].shape == (256, 10)
    out = jax.eval_shape(lambda v: model.apply(v, x, jax.random.key(2)), variables)
    assert out[0].shape == x.shape and out[1].shape == (2, 10)
    if size == 64:
        # disentanglement_lib's conv_encoder + deconv_decoder at latent 10 (counted layer by
        # layer: convs 544 + 16416 + 32832 + 65600, dense 262400, heads 5140; decoder 2816 +
        # 263168, deconvs 65600 + 32800 + 16416 + 513).
        n = sum(np.prod(leaf.shape) for leaf in jax.tree.leaves(params))
        assert (
            n
            == 544
            + 16416
            + 32832
            + 65600
            + 262400
            + 5140
            + 2816
            + 263168
            + 65600
            + 32800
            + 16416
            + 513
        )


def test_downsample_averages_two_by_two_blocks():
    images = np.arange(2 * 64 * 64, dtype=np.float32).reshape(2, 64, 64, 1)
    small = disentangle.downsample(images, 32)
    assert small.shape == (2, 32, 32, 1)
    np.testing.assert_array_equal(small[1, 3, 5, 0], images[1, 6:8, 10:12, 0].mean())
    np.testing.assert_array_equal(disentangle.downsample(images, 64), images)


def test_bad_flags_are_refused_before_anything_is_written(tmp_path):
    out = tmp_path / "run"
    assert cli.main(["disentangle", "--metric-scale", "0", "--out", str(out)]) != 0
    assert (
        cli.main(["disentangle", "--data-dir", str(tmp_path / "none.npz"), "--out", str(out)]) != 0
    )
    assert cli.main(["disentangle", "--gamma", "3", "--out", str(out)]) != 0  # not elbo's
    assert not out.exists()


@pytest.mark.slow
def test_disentangle_trains_scores_and_writes_every_metric(tmp_path):
    out = tmp_path / "run"
    argv = ["disentangle", "--image-size", "32", "--train-images", "256", "--test-images"]
    argv += ["32", "--epochs", "1", "--seeds", "2", "--metric-scale", "0.01"]
    argv += ["--dci-importance", "lasso", "--quiet", "--out", str(out)]
    assert cli.main(argv) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    for key in disentangle.METRIC_KEYS:
        assert 0.0 <= metrics[key] <= 1.0
        assert len(metrics["summary"][key]["runs"]) == 2
        assert metrics[key] == pytest.approx(np.median(metrics["summary"][key]["runs"]))
    for key in disentangle.CORRELATION_KEYS:
        assert all(value >= 0.0 for value in metrics["summary"][key]["runs"])
    assert np.asarray(metrics["mutual_information"]).shape == (10, 5)
    for figure in ("traversal.png", "traversal_run1.png", "mutual_information.png", "data.png"):
        assert os.path.getsize(out / figure) > 0
    config = json.loads((out / "config.json").read_text())
    assert config["command"] == "disentangle"


def test_the_likelihood_is_bernoulli_unless_asked_and_reaches_the_objective():
    args = cli.parse_command(["disentangle", "--out", "unused"])
    assert args.likelihood == "bernoulli"
    model = disentangle.dsprites_vae(32, latent_dim=3)
    objective = common.objective_from_flags(common.check_objective_arguments(args), model)
    assert objective.spec["likelihood"] == "bernoulli"
    args = cli.parse_command(["disentangle", "--likelihood", "sse", "--out", "unused"])
    assert args.likelihood == "sse"
