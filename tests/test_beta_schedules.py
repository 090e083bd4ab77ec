"""The β-schedule study (``latent-jax beta-study``) on a tiny configuration."""

import json

import numpy as np
import pytest
from cli_checks import assert_config_round_trips
from numerics import assert_bitwise

from latent_jax import cli, load_run, metrics
from latent_jax.experiments import beta_schedules

EPOCHS, SEEDS, LATENT = 3, 2, 4


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    out = tmp_path_factory.mktemp("beta")
    flags = ["--epochs", str(EPOCHS), "--seeds", str(SEEDS), "--schedules", "constant,cyclical"]
    flags += ["--iwae-k", "5", "--hidden-dims", "16", "--latent-dim", str(LATENT)]
    flags += ["--elbo-samples", "2", "--quiet", "--out", str(out)]
    assert cli.main(["beta-study", *flags]) == 0
    return out


@pytest.mark.slow
def test_writes_metrics_history_and_figures(study):
    result = json.loads((study / "metrics.json").read_text())
    assert result["likelihood"] == "bernoulli" and result["seeds"] == SEEDS
    assert set(result["schedules"]) == {"constant", "cyclical"}
    for row in result["schedules"].values():
        assert len(row["test_elbo"]["runs"]) == SEEDS
        assert all(0 <= a <= LATENT for a in row["active_units"]["runs"])
        assert len(row["kl_per_dim"]) == LATENT
        assert np.isclose(sum(row["kl_per_dim"]), row["kl"]["mean"], rtol=1e-4)
        # IWAE with k = 5 is at least the ELBO up to sampling noise.
        assert row["test_nll_nats"]["mean"] <= -row["test_elbo"]["mean"] + 0.5
    for name in ("beta_schedules.png", "schedule_terms.png", "config.json"):
        assert (study / name).is_file()
    # The first schedule is the folder's own, the second a sub-folder of the same layout.
    for folder in (study, study / "cyclical"):
        header, *rows = (folder / "history.csv").read_text().splitlines()
        assert len(rows) == EPOCHS and "train_kl[1]" in header.split(",")
    assert json.loads((study / "cyclical" / "config.json").read_text())["run"] == "cyclical"


@pytest.mark.slow
def test_the_folder_reloads_the_seeds_that_scored_the_saved_elbos(study):
    assert_config_round_trips(study, "beta-study")
    saved = json.loads((study / "metrics.json").read_text())["schedules"]
    args = cli.parse_args(["beta-study", "--config", str(study / "config.json")])
    assert args.seeds == SEEDS and args.schedules == ["constant", "cyclical"]
    _, x_test = beta_schedules.load_split(args.test_size, args.seed)
    for name, folder in (("constant", study), ("cyclical", study / "cyclical")):
        run = load_run(folder)
        assert run.n_runs == SEEDS and run.history["train_kl[1]"].shape == (EPOCHS,)
        for k in range(SEEDS):
            score = metrics.evaluate_vae(
                run.model,
                run.select(k).variables,
                x_test,
                beta_schedules.evaluation_key(args.seed, k),
                num_samples=args.iwae_k,
                likelihood="bernoulli",
                elbo_samples=args.elbo_samples,
            )
            # The study's evaluation program on seed k's saved parameters: bit for bit.
            assert score["elbo"] == saved[name]["test_elbo"]["runs"][k]


def test_schedules_follow_their_definitions():
    total = 400
    steps = np.arange(total)
    constant = np.asarray(beta_schedules.study_schedule("constant", total)(steps))
    linear = np.asarray(beta_schedules.study_schedule("linear", total, 0.25)(steps))
    cyclical = np.asarray(beta_schedules.study_schedule("cyclical", total)(steps))
    tutorial = np.asarray(beta_schedules.study_schedule("monotonic-tutorial", total)(steps))
    assert np.all(constant == 1.0)
    assert linear[0] == 0.0 and linear[50] == pytest.approx(0.5) and np.all(linear[100:] == 1.0)
    # Four cycles of 100 steps: a ramp over the first 50, then held at 1.
    assert np.all(cyclical[[0, 100, 200, 300]] == 0.0) and np.all(cyclical[50:100] == 1.0)
    assert tutorial.max() <= 1.0 / 30.0
    with pytest.warns(DeprecationWarning, match="'monotonic-tutorial'"):
        old = np.asarray(beta_schedules.study_schedule("monotonic-seed", total)(steps))
    assert_bitwise(old, tutorial)  # the same program on the same steps
    with pytest.raises(ValueError, match="schedule must be one of"):
        beta_schedules.study_schedule("sigmoid", total)
