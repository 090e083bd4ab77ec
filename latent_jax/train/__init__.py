r"""The training engine: whole epochs compiled on the device, for any model and objective.

:func:`fit` trains the model inside an :class:`~latent_jax.objectives.Objective` on arrays that
live on the device, and returns the final :class:`TrainState` and a :class:`History` of
per-epoch metrics. :func:`fit_many` trains K independent runs (seeds) at once, as a
``jax.vmap`` of the same compiled code over the keys. :func:`fit_stream` trains on data read
from disk batch by batch, through the same driver.

The package, one job a module:

* :mod:`~latent_jax.train.config`: :class:`TrainConfig` and the optax optimizer it names.
* :mod:`~latent_jax.train.state`: :class:`TrainState` (fresh or warm-started), :class:`History`.
* :mod:`~latent_jax.train.epoch`: the compiled epoch (step, batches, evaluation, early stopping).
* :mod:`~latent_jax.train.compile`: each objective's compiled programs, an explicit cache.
* :mod:`~latent_jax.train.checkpoints`: the checkpoint format of a run, and resuming it.
* :mod:`~latent_jax.train.sources`: batches from device arrays or streamed from disk.
* :mod:`~latent_jax.train.driver`: the one loop between compiled calls.
* :mod:`~latent_jax.train.trainers`: the public trainers and :func:`evaluate`.
* :mod:`~latent_jax.train.callbacks`: per-epoch writers of the history (CSV, TensorBoard).
* :mod:`~latent_jax.train.trackers`: the experiment trackers as callbacks (MLflow, W&B).

How an epoch runs:

* The data stay on the device. Epoch ``e`` (0-based, absolute) uses the key
  ``fold_in(train_key, e)``, split into a shuffle key (a permutation of the N rows from
  :func:`latent_jax.shuffle.permutation`, O(N) where a sort-based shuffle is not) and a batch
  key; batch ``b`` of the epoch gets ``fold_in(batch_key, b)``, which the
  objective splits for its own draws (reparameterization, corruption, dropout).
* The permutation is padded to ``ceil(N / batch_size)`` full batches and a mask marks the
  padding: every sample enters the epoch's loss exactly once, none is dropped, and each batch's
  loss is the mean over its real rows (the last, ragged batch makes an update of its own, like
  PyTorch's ``DataLoader(drop_last=False)``). A batch size above N is reduced to N.
* The batches run as one ``jax.lax.scan``; several epochs (a chunk) run as a ``lax.scan`` over
  epochs around it, in **one** compiled call. Python runs once per chunk: progress bar,
  logging, the non-finite check, checkpoints and callbacks. The chunk is compiled once per
  run (its length is static; how many of its epochs are active is an argument), so the number
  of traces does not grow with the number of epochs.
* After each epoch the test split is evaluated inside the same call, in inference mode
  (BatchNorm on running statistics), in masked batches, with a fixed evaluation key so that
  the numbers are comparable across epochs.

Keys: the root key is split once into ``init_key, train_key, eval_key``. Because every epoch's
keys derive from its absolute index, results do not depend on how epochs are grouped into
calls, and a run resumed from a checkpoint continues the very same key sequence: on CPU an
interrupted and resumed run ends bit for bit where an uninterrupted one does.

Reported metrics (the keys of :class:`History`): ``epoch`` (1-based), ``epoch_time`` (seconds,
the chunk's time shared evenly among its epochs, compilation excluded), and for every metric
``m`` of the objective ``train_m`` and ``test_m``. A train metric is the mean over the epoch's
samples of the per-example values, i.e. the batch means weighted by each batch's number of
real rows. (The tutorial's autoencoder loop instead averages its batch means with equal weights,
which over-weights the ragged last batch; the tutorial's VAE loop divides batch sums by N, which is
what is reported here.) ``train_beta`` is the sample-weighted mean β over the epoch.

Failures: a non-finite loss stops training with :class:`NonFiniteLossError`, which names the
epoch, the step and (for :func:`fit_many`) the run; the state before the failing chunk is
checkpointed if it was not already, so the last good checkpoint stays loadable.

Parameter groups (a GAN's generator and discriminator): an objective is either an
:class:`~latent_jax.objectives.Objective` (one loss, one optimizer over all parameters) or a
:class:`~latent_jax.objectives.GroupedObjective`, which also declares ``groups`` (names of
the top-level entries of ``params``, in update order) and ``group_losses`` (one loss per group,
with the same signature as ``loss``). For a grouped objective the optimizer is a dict of optax
transformations, one per group (``TrainConfig.group_optimizers`` overrides the config's
optimizer settings for a group), and ``TrainState.params`` and ``opt_state`` are dicts keyed by
group. Each batch's step updates the groups in the declared order, each by the gradient of its
own loss with respect to its own parameters: with ``TrainConfig.group_updates="alternating"``
a group's gradient is taken at the parameters the groups before it just updated, with
``"simultaneous"`` all at the batch's starting parameters; the model state (BatchNorm's
statistics) passes through the groups' losses in order. ``step`` counts batches (one update of
every group), and ``loss`` is the sum of the groups' losses. Everything else (the epoch scan,
masking, evaluation with ``objective.loss``, checkpoints and resume, :func:`fit_many`'s vmap,
meshes, streaming) sees only pytrees and runs unchanged. The dispatch happens once, when the
step is built (:func:`make_train_step`): a one-group objective gets the very step it had
before, so the autoencoders and VAEs compute the same numbers with the same compiled code.

Early stopping (``TrainConfig.patience``) watches the test loss (the train loss without test
data) and is decided inside the compiled call after every epoch, so it is exact whatever the
chunking. Each run of :func:`fit_many` stops on its own; its later entries in the history are
NaN.
"""

from latent_jax.train.callbacks import HistoryCSV as HistoryCSV
from latent_jax.train.callbacks import TensorBoardWriter as TensorBoardWriter
from latent_jax.train.compile import CompileCache as CompileCache
from latent_jax.train.compile import cache_for as cache_for
from latent_jax.train.config import OPTIMIZERS as OPTIMIZERS
from latent_jax.train.config import TrainConfig as TrainConfig
from latent_jax.train.config import make_optimizer as make_optimizer
from latent_jax.train.driver import NonFiniteLossError as NonFiniteLossError
from latent_jax.train.epoch import EpochOutput as EpochOutput
from latent_jax.train.epoch import batches_per_epoch as batches_per_epoch
from latent_jax.train.epoch import make_epoch_fn as make_epoch_fn
from latent_jax.train.epoch import make_train_step as make_train_step
from latent_jax.train.state import History as History
from latent_jax.train.state import TrainState as TrainState
from latent_jax.train.state import init_state as init_state
from latent_jax.train.state import state_from_variables as state_from_variables
from latent_jax.train.trackers import MLflowLogger as MLflowLogger
from latent_jax.train.trackers import WandbLogger as WandbLogger
from latent_jax.train.trainers import evaluate as evaluate
from latent_jax.train.trainers import fit as fit
from latent_jax.train.trainers import fit_many as fit_many
from latent_jax.train.trainers import fit_stream as fit_stream
