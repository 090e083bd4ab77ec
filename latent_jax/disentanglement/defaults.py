"""The metrics' defaults, as disentanglement_lib's study configures them.

Every number here comes from the gin files of disentanglement_lib's unsupervised study
(``disentanglement_lib/config/unsupervised_study_v1/metric_configs/*.gin``), which define the
metrics as Locatello et al. (2019, "Challenging Common Assumptions in the Unsupervised
Learning of Disentangled Representations") computed them; the one exception is
:data:`DEFAULT_BATCH_SIZE`, which only sets how many observations go through the
representation at once.
"""

from __future__ import annotations

from types import MappingProxyType

# Observations per call of the representation. disentanglement_lib encodes in batches of 16
# (64 for the FactorVAE variance estimate, and the 64 points of each βVAE/FactorVAE sample);
# a deterministic representation gives the same codes in any batch, and larger batches are
# far faster for a compiled encoder, so the default here is larger.
DEFAULT_BATCH_SIZE = 256

# MIG and modularity discretize each code into 20 equal-width bins over its sampled range
# (mig.gin, modularity_explicitness.gin: discretizer.num_bins = 20, histogram_discretizer).
DEFAULT_NUM_BINS = 20

# Points whose codes make one training sample of the βVAE and FactorVAE scores
# (beta_vae_sklearn.batch_size = 64, factor_vae_score.batch_size = 64).
DEFAULT_POINTS_PER_SAMPLE = 64

# The FactorVAE score keeps the code dimensions whose standard deviation over the data is at
# least this (factor_vae_metric.gin: prune_dims.threshold = 0.05, compared with sqrt(variance)).
DEFAULT_PRUNE_THRESHOLD = 0.05

# SAP treats the factors as discrete: a linear SVM per (code, factor) pair
# (sap_score.gin: sap_score.continuous_factors = False).
DEFAULT_CONTINUOUS_FACTORS = False

# How many samples each metric draws, by metric function; evaluate_all scales these.
DEFAULT_SAMPLE_SIZES = MappingProxyType(
    {
        "beta_vae_score": MappingProxyType({"num_train": 10_000, "num_eval": 5_000}),
        "factor_vae_score": MappingProxyType(
            {"num_train": 10_000, "num_eval": 5_000, "num_variance_estimate": 10_000}
        ),
        "mig": MappingProxyType({"num_train": 10_000}),
        "sap": MappingProxyType({"num_train": 10_000, "num_test": 5_000}),
        "dci": MappingProxyType({"num_train": 10_000, "num_test": 5_000}),
        "modularity_explicitness": MappingProxyType({"num_train": 10_000, "num_test": 5_000}),
        # unsupervised_study_v1/metric_configs/unsupervised.gin
        "unsupervised_scores": MappingProxyType({"num_train": 10_000}),
    }
)
