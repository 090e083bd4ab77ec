"""latent_jax.xla_options: the compile options of latent_jax's own programs."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from numerics import assert_close

from latent_jax import xla_options
from latent_jax.models.inference import predict
from latent_jax.models.mlp import Autoencoder

pytestmark = pytest.mark.skipif(jax.default_backend() != "cpu", reason="CPU options")


def test_repeated_and_one_off_programs_get_their_cpu_options():
    assert xla_options.default_options() == {"xla_backend_optimization_level": 2}
    once = xla_options.default_options(once=True)
    assert once == {"xla_backend_optimization_level": 0, "xla_cpu_use_fusion_emitters": False}
    # Each call returns a fresh dict: callers may update it.
    once["x"] = 1
    assert "x" not in xla_options.default_options(once=True)


def test_at_top_level_is_false_inside_every_trace():
    seen = {}

    def probe(name):
        def f(x):
            seen[name] = xla_options.at_top_level()
            return x

        return f

    assert xla_options.at_top_level()
    jax.jit(probe("jit"))(1.0)
    jax.eval_shape(probe("eval_shape"), 1.0)
    jax.vmap(probe("vmap"))(jnp.ones(2))
    jax.grad(probe("grad"))(1.0)
    assert seen == dict.fromkeys(("jit", "eval_shape", "vmap", "grad"), False)


@pytest.mark.numerics
def test_predict_inside_a_jit_that_closes_over_everything():
    # Nothing the call gets is traced, yet it runs inside a trace: no compile options there.
    model = Autoencoder(input_dim=4, hidden_dims=(3,), latent_dim=2)
    variables = model.init(jax.random.key(0), jnp.zeros((1, 4)))
    x = np.ones((5, 4), np.float32)
    inside = jax.jit(lambda: predict(model, variables, x))()
    # Two programs (inside the jit, and predict's own): ops = fan-ins 4 + 3 + 2 + 3.
    assert_close(inside, predict(model, variables, x), ops=12)
