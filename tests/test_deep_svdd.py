"""Deep SVDD (Ruff et al., 2018): the bias-free networks, the centre from an initial forward
pass, the objective through the shared engine, and AnomalyDetector(method="deep-svdd")."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from cli_checks import assert_config_round_trips
from numerics import assert_bitwise, assert_close
from sklearn.metrics import roc_auc_score

from latent_jax import cli
from latent_jax.anomaly import AnomalyDetector
from latent_jax.detectors.networks import SVDD_INIT_FOLD
from latent_jax.experiments.one_class import global_contrast_normalization, min_max_scaling
from latent_jax.models.inference import predict
from latent_jax.models.spec import build_module, module_spec
from latent_jax.models.svdd import DeepSVDDConv, DeepSVDDMLP, initial_center, with_center
from latent_jax.objectives import Batch, deep_svdd_objective
from latent_jax.runs import checkpoint as ckpt

# Small enough to train in a fraction of a second once compiled.
OPTIONS = {
    "epochs": 30,
    "batch_size": 64,
    "learning_rate": 1e-2,
    "hidden_dims": (16,),
    "latent_dim": 4,
}


def _data(seed=0, n=240, n_outliers=24, d=6):
    """Normal rows with decaying variances; outliers in the low-variance directions."""
    rng = np.random.default_rng(seed)
    scale = np.r_[3.0, 2.0, 1.0, 0.2, 0.2, 0.2][:d]
    normal = rng.normal(size=(n, d)) * scale
    outliers = rng.normal(size=(n_outliers, d)) * scale
    outliers[:, 3:] += 2.0 * np.sign(rng.normal(size=(n_outliers, d - 3)))
    return normal.astype(np.float32), outliers.astype(np.float32)


@pytest.fixture(scope="module")
def fitted():
    train, _ = _data()
    return AnomalyDetector("deep-svdd", **OPTIONS).fit(train), train


def _leaf_names(tree, prefix=()):
    if isinstance(tree, dict):
        return [n for k, v in tree.items() for n in _leaf_names(v, (*prefix, k))]
    return [prefix]


def test_training_loss_falls(fitted):
    detector, _ = fitted
    distance = detector.history_["train_distance"]
    assert distance[-1] < 0.5 * distance[0]
    loss = detector.history_["train_loss"]
    np.testing.assert_allclose(loss, distance + detector.history_["train_weight_decay"], rtol=1e-5)


def test_planted_outliers_rank_high(fitted):
    detector, _ = fitted
    normal, outliers = _data(seed=1)
    scores = detector.decision_function(np.concatenate([normal, outliers]))
    labels = np.r_[np.zeros(len(normal)), np.ones(len(outliers))]
    assert roc_auc_score(labels, scores) > 0.9
    # Programs for 24 rows and for 264. ops: Dense(6 -> 16) 6, BatchNorm ~6, Dense(16 -> 4)
    # 16, the squared distance to the centre over 4 coordinates ~6.
    assert_close(detector.score_samples(outliers), -scores[len(normal) :], ops=34)


def test_center_is_the_mean_of_the_initial_forward_pass(fitted):
    detector, train = fitted
    model = detector.backend_.model
    xs = detector._transform(train)
    key = jax.random.fold_in(jax.random.key(detector.seed), SVDD_INIT_FOLD)
    initial = deep_svdd_objective(model).init(key, xs[:1])
    z = np.asarray(predict(model, initial, xs, method="represent"), np.float64)
    mean = z.mean(axis=0)
    eps = detector.center_eps
    expected = np.where(np.abs(mean) < eps, np.where(mean < 0, -eps, eps), mean)
    # The centre's own program on the same rows, averaged in float64: only its float32 cast.
    np.testing.assert_allclose(detector.center_, expected, rtol=1e-5, atol=1e-6)
    assert np.all(np.abs(detector.center_) >= eps)
    # Training moved the weights but not the centre.
    trained = detector.backend_.variables["params"]
    assert not np.allclose(trained["out"]["kernel"], initial["params"]["out"]["kernel"])


def test_initial_center_pushes_small_coordinates_to_plus_or_minus_eps():
    model = DeepSVDDMLP(input_dim=2, hidden_dims=(), rep_dim=3)
    variables = {"params": {"out": {"kernel": jnp.array([[1.0, -0.01, 0.0], [0.0, 0.0, 0.0]])}}}
    variables["center"] = {"c": jnp.zeros(3)}
    x = np.array([[2.0, 5.0], [4.0, -5.0]], np.float32)
    np.testing.assert_allclose(initial_center(model, variables, x, eps=0.1), [3.0, -0.1, 0.1])
    with pytest.raises(ValueError, match="center must have shape"):
        with_center(variables, np.zeros(2))
    with pytest.raises(ValueError, match="no 'center' collection"):
        with_center({"params": variables["params"]}, np.zeros(3))


@pytest.mark.parametrize(
    "model, x",
    [
        (DeepSVDDConv(), jnp.zeros((2, 28, 28, 1))),
        (DeepSVDDMLP(input_dim=6, hidden_dims=(8, 4)), jnp.zeros((2, 6))),
    ],
)
def test_no_parameter_is_a_bias(model, x):
    shapes = jax.eval_shape(lambda k: model.init(k, x), jax.random.key(0))
    names = _leaf_names(shapes["params"])
    assert all(path[-1] == "kernel" for path in names), names
    assert sorted(shapes) == ["batch_stats", "center", "params"]
    if isinstance(model, DeepSVDDConv):
        # The paper's LeNet-type MNIST network: 5x5x1x8 + 5x5x8x4 + (7*7*4)x32 weights.
        assert sum(np.prod(s.shape) for s in jax.tree.leaves(shapes["params"])) == 7272
    assert module_spec(build_module(module_spec(model))) == module_spec(model)


def test_padding_rows_change_neither_the_loss_nor_batch_statistics():
    model = DeepSVDDMLP(input_dim=3, hidden_dims=(4,), rep_dim=2)
    objective = deep_svdd_objective(model, weight_decay=0.0)
    x = jax.random.normal(jax.random.key(1), (6, 3))
    variables = objective.init(jax.random.key(0), x)
    params = variables.pop("params")
    loss = jax.jit(objective.loss)
    mask = jnp.r_[jnp.ones(4), 0.0, 0.0]
    key, step = jax.random.key(2), jnp.int32(0)
    one = loss(params, variables, Batch(x, mask), key, step, step)
    other = loss(params, variables, Batch(x.at[4:].set(100.0), mask), key, step, step)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6), one, other)
    assert not np.allclose(one[1][1]["batch_stats"]["bn0"]["mean"], 0.0)


def test_save_and_load_give_identical_scores(fitted, tmp_path):
    detector, _ = fitted
    normal, outliers = _data(seed=2)
    detector.save(tmp_path / "svdd")
    loaded = AnomalyDetector.load(tmp_path / "svdd")
    x = np.concatenate([normal, outliers])
    # The same scoring program on the parameters the file restored: bit for bit.
    assert_bitwise(loaded.decision_function(x), detector.decision_function(x))
    assert_bitwise(loaded.center_, detector.center_)
    assert loaded.threshold_ == detector.threshold_
    assert loaded.get_params() == detector.get_params()


@pytest.mark.parametrize(
    "params, error, match",
    [
        ({"weight_decay": -1e-3}, ValueError, "weight_decay must be >= 0, got weight_decay=-0.001"),
        ({"center_eps": "small"}, TypeError, "center_eps must be a real number"),
        ({"statistic": "elbo"}, ValueError, "method='deep-svdd' has one statistic"),
        ({"latent_dim": 0}, ValueError, "latent_dim"),
        ({"architecture": "conv"}, ValueError, "architecture='conv' needs images"),
    ],
)
def test_bad_options_are_clear_errors(params, error, match):
    train, _ = _data(n=8)
    with pytest.raises(error, match=match):
        AnomalyDetector("deep-svdd", **params).fit(train)


def test_bad_networks_are_clear_errors():
    with pytest.raises(ValueError, match="too small for 2 stages"):
        DeepSVDDConv(image_shape=(3, 3, 1))
    with pytest.raises(ValueError, match="kernel_size must be odd"):
        DeepSVDDConv(kernel_size=4)
    with pytest.raises(ValueError, match=r"x must have shape \(batch, 28, 28, 1\)"):
        DeepSVDDConv().init(jax.random.key(0), jnp.zeros((1, 8, 8, 1)))
    with pytest.raises(ValueError, match="weight_decay must be >= 0"):
        deep_svdd_objective(DeepSVDDMLP(), weight_decay=-1.0)
    detector = AnomalyDetector("pca").fit(_data(n=20)[0])
    with pytest.raises(AttributeError, match="center_ is deep-svdd's"):
        _ = detector.center_


def test_global_contrast_normalization_and_min_max_scaling():
    image = np.random.default_rng(0).random((5, 5, 1)).astype(np.float32)
    x = np.stack([image, 10.0 * image, np.zeros_like(image)])
    g = global_contrast_normalization(x + 3.0)
    np.testing.assert_allclose(g[:2].mean(axis=(1, 2, 3)), 0.0, atol=1e-6)
    np.testing.assert_allclose(np.abs(g[:2]).mean(axis=(1, 2, 3)), 1.0, rtol=1e-5)
    np.testing.assert_allclose(g[0], g[1], rtol=1e-4, atol=1e-5)  # the contrast is gone
    assert_bitwise(g[2], 0.0)  # a constant image
    train, test = min_max_scaling(g[:2], 2.0 * g[:2])
    assert train.min() == 0.0 and train.max() == 1.0
    assert test.max() > 1.0


def test_one_class_command_rejects_bad_flags_before_writing(tmp_path, capsys):
    out = tmp_path / "run"
    assert cli.main(["one-class", "--classes", "3,11", "--out", str(out)]) == 2
    assert "--classes must be distinct digits 0-9" in capsys.readouterr().err
    assert cli.main(["one-class", "--weight-decay", "-1", "--out", str(out)]) == 2
    assert "--methods deep-svdd: weight_decay must be >= 0" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # argparse refuses the flag
        cli.main(["one-class", "--methods", "pca,svm", "--out", str(out)])
    assert "--methods must be a subset of" in capsys.readouterr().err
    assert not out.exists()


def test_one_class_command_has_the_run_flags_and_checks_them_before_writing(tmp_path, capsys):
    args = cli.parse_args(["one-class", "--checkpoint-every", "2", "--resume", "--clip-norm", "1"])
    assert (args.checkpoint_every, args.resume, args.clip_norm) == (2, True, 1.0)
    out = tmp_path / "run"
    assert cli.main(["one-class", "--checkpoint-every", "-1", "--out", str(out)]) == 2
    assert "--checkpoint-every must be >= 0 epochs, got -1" in capsys.readouterr().err
    assert cli.main(["one-class", "--override", "learning_rate", "--out", str(out)]) == 2
    assert "--override applies only with --resume" in capsys.readouterr().err
    assert not out.exists()


class _Interrupt(Exception):
    pass


@pytest.mark.slow
def test_one_class_interrupted_and_resumed_gives_the_uninterrupted_aurocs(tmp_path, monkeypatch):
    import latent_jax.detectors.networks as training_module

    def flags(out, *extra):
        return [
            "one-class",
            "--classes=0",
            "--methods=pca,autoencoder,vae,deep-svdd",
            "--seeds=1",
            "--epochs=3",
            "--vae-epochs=3",
            "--svdd-epochs=3",
            "--checkpoint-every=1",
            "--quiet",
            f"--out={out}",
            *extra,
        ]

    reference, out = tmp_path / "reference", tmp_path / "resumed"
    assert cli.main(flags(reference)) == 0
    # The autoencoder finishes, the VAE stops after its epoch 2, deep-svdd never starts.
    fit, calls = training_module.fit, []

    def interrupted(*args, callbacks=(), **kwargs):
        calls.append(kwargs["resume"])

        def interrupt(state, history):
            if len(calls) == 2 and history.num_epochs == 2:
                raise _Interrupt

        return fit(*args, callbacks=[*callbacks, interrupt], **kwargs)

    monkeypatch.setattr(training_module, "fit", interrupted)
    with pytest.raises(_Interrupt):
        cli.main(flags(out))
    checkpoints = {
        m: out / "detectors" / "0" / m / "seed0" / "checkpoints"
        for m in ("autoencoder", "vae", "deep-svdd")
    }
    assert ckpt.load_checkpoint(checkpoints["autoencoder"]).epoch == 3
    assert ckpt.load_checkpoint(checkpoints["vae"]).epoch == 2
    assert not checkpoints["deep-svdd"].exists()
    calls.clear()
    assert cli.main(flags(out, "--resume")) == 0
    # Each from its own folder: the finished one and the stopped one; deep-svdd afresh.
    assert calls == [str(checkpoints["autoencoder"]), str(checkpoints["vae"]), None]
    assert ckpt.load_checkpoint(checkpoints["deep-svdd"]).epoch == 3
    for folder in checkpoints.values():  # one history row per epoch, the resumed one too
        assert len((folder.parent / "history.csv").read_text().splitlines()) == 1 + 3

    got, want = (json.loads((d / "metrics.json").read_text()) for d in (out, reference))
    for method in ("pca", "autoencoder", "vae", "deep-svdd"):
        assert got["methods"][method]["per_class"] == want["methods"][method]["per_class"]
    assert_config_round_trips(out, "one-class")
