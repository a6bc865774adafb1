"""The experiment API every command stands on: build, restore, compile and evaluate, written once.

- `build(config) -> Experiment`: the dataset, task and model of a config, with the model's resolved
  constructor arguments (the dataset's defaults, e.g. its number of classes, under the config's
  `model_kwargs`) and the compute dtype.
- `create_train_state` / `abstract_train_state`: the train state initialised on the devices, or
  only its shapes and shardings (what a checkpoint is restored into).
- `compile_train_step` / `compile_eval_step`: the jit-compiled steps on a device mesh, in the
  config's compute dtype; `evaluate(...)`: metrics over a whole split, every example exactly once.
- `restore(workdir, step=None) -> Run`: a workdir's resolved config, its experiment and a
  checkpoint, read-only (nothing in the workdir changes); `initialize(config) -> Run`: the same for
  the freshly initialised model a training run with that config starts from.
- `Run.evaluate()`: the task's metrics as training logs them (`eval_*`); `Run.compiled(fn)`: any
  other function of `(model, variables, batch)` (decoding, feature maps) compiled with the run's
  mesh and compute dtype.

The training loop (train/trainer.py) and the commands (evaluate, translate, visualize, sample,
benchmark) are built from these pieces; train/checkpoint.py is the one module that talks to orbax.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Callable, Iterator

import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from flax import struct

import data as data_lib
import models
from data import pipeline
from train import checkpoint as checkpoint_lib
from train import config_checks
from train import optim
from train import platform
from train import tasks as tasks_lib

COMPUTE_DTYPES = {'float32': jnp.float32, 'bfloat16': jnp.bfloat16, 'float16': jnp.float16}


def compute_dtype(name: str):
  """The jnp dtype for `config.compute_dtype`; ValueError naming the choices otherwise."""
  if name not in COMPUTE_DTYPES:
    raise ValueError(f"compute_dtype must be one of {', '.join(COMPUTE_DTYPES)}; got '{name}'.")
  return COMPUTE_DTYPES[name]


def cast_floating(tree: Any, dtype) -> Any:
  """`tree` with every floating-point array cast to `dtype` (integer and boolean leaves kept)."""
  if dtype == jnp.float32:
    return tree
  return jax.tree.map(
      lambda x: x.astype(dtype) if jnp.issubdtype(jnp.asarray(x).dtype, jnp.floating) else x, tree)


def resolve_model_kwargs(config, facts: pipeline.DatasetFacts) -> dict[str, Any]:
  """The model's constructor arguments: the dataset's (`facts.model_kwargs()`, e.g. a vocabulary
  size or the number of classes) under the config's `model_kwargs` (None values, the
  placeholders of `configs.common.model_kwargs`, leave the dataset's value in place)."""
  defaults = facts.model_kwargs()
  overrides = {k: v for k, v in (config.get('model_kwargs', None) or {}).items() if v is not None}
  return {**defaults, **overrides}


@dataclasses.dataclass
class Experiment:
  """What a config builds: the data, the task and the model.

  Attributes:
    config: the resolved config.
    dataset: `data.create(config)`: train and eval sources plus the dataset's facts.
    task: the loss and metrics (train/tasks.py).
    model: the Flax module, built with `model_kwargs`.
    model_kwargs: the model's resolved constructor arguments.
    dtype: the compute dtype of the forward and backward passes (`config.compute_dtype`).
  """
  config: ml_collections.ConfigDict
  dataset: pipeline.Dataset
  task: tasks_lib.Task
  model: Any
  model_kwargs: dict[str, Any]
  dtype: Any

  @property
  def eval_batch_size(self) -> int:
    return self.config.get('eval_batch_size', None) or self.config.batch_size

  def sample_batch(self) -> dict[str, np.ndarray]:
    """One training example as a batch of one, unaugmented (its shapes and dtypes)."""
    return self.dataset.train.fetch(np.arange(1), None)

  def prepare(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """A host batch as the model sees it inside the steps (`task.prepare`: e.g. uint8 images
    normalised to float32), as NumPy arrays: for code that calls the model directly."""
    prepared = self.task.prepare(batch)
    return {name: np.asarray(value) for name, value in prepared.items()}


def build(config: ml_collections.ConfigDict) -> Experiment:
  """Builds the dataset, task and model of `config` (nothing is initialised or compiled)."""
  dtype = compute_dtype(config.get('compute_dtype', 'float32'))
  dataset = data_lib.create(config)
  task = tasks_lib.create(config.get('task', 'classification'),
                          **{**getattr(dataset.facts, 'task_kwargs', dict)(),
                             **(config.get('task_kwargs', None) or {})})
  kwargs = resolve_model_kwargs(config, dataset.facts)
  model = models.create(config.model, **kwargs)
  return Experiment(config=config, dataset=dataset, task=task, model=model, model_kwargs=kwargs,
                    dtype=dtype)


# The train state and the steps.


class TrainState(struct.PyTreeNode):
  """Everything a train step reads and writes.

  Attributes:
    step: number of updates applied so far.
    params: the 'params' collection.
    model_state: the other mutable collections, e.g. `{'batch_stats': ...}`.
    opt_state: the optimiser's state.
    rng: base PRNG key; step `s` uses `fold_in(rng, s)`, so a resumed run draws the same numbers.
  """

  step: jax.Array
  params: Any
  model_state: Any
  opt_state: Any
  rng: jax.Array
  apply_fn: Callable = struct.field(pytree_node=False)
  tx: optax.GradientTransformation = struct.field(pytree_node=False)

  @property
  def variables(self) -> dict[str, Any]:
    """`{'params': ..., **model_state}`, what `model.apply` takes."""
    return {'params': self.params, **self.model_state}


def _state_initializer(config, model, tx, sample_batch, task) -> Callable[[], TrainState]:
  """A function of no arguments that initialises the train state from `config.seed`.

  The model is initialised on zeros shaped like a whole training batch, so that state a model
  keeps per example (e.g. a language model's carried recurrent state) has its training shape.
  """
  init_rng, train_rng = jax.random.split(jax.random.PRNGKey(config.seed))
  inputs = task.model_inputs(task.prepare(
      {k: np.zeros((config.batch_size,) + v.shape[1:], v.dtype) for k, v in sample_batch.items()}))

  def init():
    variables = model.init({'params': init_rng, 'dropout': init_rng}, *inputs, train=False)
    variables = flax.core.unfreeze(variables)
    params = variables.pop('params')
    return TrainState(step=jnp.zeros((), jnp.int32), params=params, model_state=variables,
                      opt_state=tx.init(params), rng=train_rng, apply_fn=model.apply, tx=tx)

  return init


def create_train_state(config, model, tx, sample_batch, task, mesh) -> tuple[TrainState, Any]:
  """Initialises the train state on the devices of `mesh`.

  Returns the state and its shardings: replicated, or split over devices with
  `config.shard_params` (`platform.state_shardings`).
  """
  init = _state_initializer(config, model, tx, sample_batch, task)
  shardings = platform.state_shardings(jax.eval_shape(init), mesh,
                                       config.get('shard_params', False))
  return jax.jit(init, out_shardings=shardings)(), shardings


def abstract_train_state(config, model, tx, sample_batch, task, mesh) -> tuple[TrainState, Any]:
  """The train state's shapes, dtypes and shardings (`jax.ShapeDtypeStruct` leaves), computed
  without materialising a parameter; returns it and its shardings."""
  abstract = jax.eval_shape(_state_initializer(config, model, tx, sample_batch, task))
  shardings = platform.state_shardings(abstract, mesh, config.get('shard_params', False))
  return jax.tree.map(lambda leaf, sharding: jax.ShapeDtypeStruct(leaf.shape, leaf.dtype,
                                                                  sharding=sharding),
                      abstract, shardings), shardings


def _restore_dtypes(tree: Any, like: Any) -> Any:
  """`tree` cast leaf by leaf to the dtypes of `like` (stored state stays float32)."""
  return jax.tree.map(lambda x, ref: x.astype(ref.dtype), tree, like)


def make_train_step(task: tasks_lib.Task, skip_nonfinite: bool = False, dtype=jnp.float32):
  """Returns `train_step(state, batch) -> (state, sums, stats)`, a pure function for `jax.jit`.

  `sums` are the task's metric sums; `stats` are per-step facts the host checks at each log step:
  the gradient norm, whether the step was non-finite, and if so its step number.

  Mixed precision: with `dtype` bfloat16 the forward and backward passes compute in `dtype` (the
  float32 parameters, model state and floating inputs are cast on entry), while the parameters,
  their gradients, the optimiser state, the loss and the metric sums stay float32.
  """

  def train_step(state: TrainState, batch: dict[str, jax.Array]):
    dropout_rng = jax.random.fold_in(state.rng, state.step)
    mutable = list(state.model_state)

    def loss_fn(params):
      variables = cast_floating({'params': params, **state.model_state}, dtype)
      inputs = cast_floating(task.prepare(batch), dtype)
      outputs = task.apply(state.apply_fn, variables, inputs, train=True,
                           rngs={'dropout': dropout_rng}, mutable=mutable or False)
      outputs, new_model_state = outputs if mutable else (outputs, {})
      loss, sums = task.loss_and_sums(outputs, batch)
      return loss.astype(jnp.float32), (sums, _restore_dtypes(new_model_state, state.model_state))

    (loss, (sums, new_model_state)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
        state.params)
    updates, opt_state = state.tx.update(grads, state.opt_state, state.params)
    new_state = state.replace(step=state.step + 1, params=optax.apply_updates(state.params, updates),
                              model_state=new_model_state, opt_state=opt_state)
    grad_norm = optax.tree.norm(grads)
    finite = jnp.isfinite(loss) & jnp.isfinite(grad_norm)
    if skip_nonfinite:
      new_state = jax.tree.map(lambda new, old: jnp.where(finite, new, old), new_state,
                               state.replace(step=state.step + 1))
    stats = {'grad_norm': grad_norm, 'nonfinite': 1.0 - finite.astype(jnp.float32),
             'first_nonfinite_step': jnp.where(finite, jnp.iinfo(jnp.int32).max, state.step)}
    return new_state, sums, stats

  return train_step


def make_eval_step(task: tasks_lib.Task, dtype=jnp.float32):
  """Returns `eval_step(state, batch) -> sums` over the batch's unmasked examples (computing in
  `dtype`, like the train step)."""

  def eval_step(state: TrainState, batch: dict[str, jax.Array]):
    variables = cast_floating(state.variables, dtype)
    outputs = task.apply(state.apply_fn, variables, cast_floating(task.prepare(batch), dtype),
                         train=False)
    return task.loss_and_sums(outputs, batch)[1]

  return eval_step


def compile_train_step(task: tasks_lib.Task, state, state_sharding, mesh, batch, *,
                       dtype=jnp.float32, skip_nonfinite: bool = False):
  """`make_train_step` compiled for `state` and a global `batch` on `mesh` (state donated)."""
  replicated = platform.replicated(mesh)
  return platform.compile(make_train_step(task, skip_nonfinite, dtype), state, batch,
                          donate_argnums=0,
                          in_shardings=(state_sharding, platform.batch_sharded(mesh)),
                          out_shardings=(state_sharding, replicated, replicated))


def compile_eval_step(task: tasks_lib.Task, state, mesh, batch, *, dtype=jnp.float32):
  """`make_eval_step` compiled for `state` and a global eval `batch` on `mesh`."""
  return platform.compile(make_eval_step(task, dtype), state, batch,
                          out_shardings=platform.replicated(mesh))


def sum_host(sums_list: list[dict[str, Any]]) -> dict[str, float]:
  """Adds up a list of per-step sums fetched from the devices (minimum for the first bad step)."""
  fetched = jax.device_get(sums_list)
  total: dict[str, float] = {}
  for sums in fetched:
    for name, value in sums.items():
      value = float(value)
      if name == 'first_nonfinite_step':
        total[name] = min(total.get(name, value), value)
      else:
        total[name] = total.get(name, 0.0) + value
  return total


def global_eval_example(source, batch_size: int, mesh) -> dict[str, jax.Array]:
  """The first global eval batch (what a step is compiled for), read in this process: no worker
  processes are started for it."""
  return platform.global_batch(pipeline.eval_batch(source, batch_size, 0, jax.process_index(),
                                                   jax.process_count()), mesh)


def global_eval_batches(source, batch_size: int, mesh) -> Iterator[dict[str, jax.Array]]:
  """One exact pass over `source` (the last batch padded and masked) as global device batches;
  each process reads its own slice."""
  for batch in pipeline.eval_batches(source, batch_size, jax.process_index(), jax.process_count()):
    yield platform.global_batch(batch, mesh)


def evaluate(task: tasks_lib.Task, eval_step, state, source, batch_size: int,
             mesh) -> dict[str, float]:
  """The task's finalised metrics over every example of `source` exactly once, computed by the
  compiled `eval_step` (`compile_eval_step`)."""
  sums = [eval_step(state, batch) for batch in global_eval_batches(source, batch_size, mesh)]
  return task.finalize(sum_host(sums))


# Reading workdirs.


@dataclasses.dataclass
class Run:
  """An experiment with its train state on the devices: a restored checkpoint or a fresh model.

  Attributes:
    experiment: what the config builds.
    state: the train state (parameters, model state, optimiser state, step).
    mesh: the device mesh the state lives on.
    step: the checkpoint's step, or None for a freshly initialised model.
    workdir: where the checkpoint came from, or None.
  """
  experiment: Experiment
  state: TrainState
  mesh: Any
  step: int | None
  workdir: str | None = None
  _eval_step: Any = dataclasses.field(default=None, repr=False)

  @property
  def config(self) -> ml_collections.ConfigDict:
    return self.experiment.config

  @property
  def dataset(self) -> pipeline.Dataset:
    return self.experiment.dataset

  @property
  def model(self):
    return self.experiment.model

  @property
  def variables(self) -> dict[str, Any]:
    """`{'params': ..., **model_state}` for `model.apply` (float32, as stored)."""
    return self.state.variables

  def evaluate(self, source=None, batch_size: int | None = None) -> dict[str, float]:
    """The task's metrics over `source` (default: the eval split), computed exactly as training
    computes its `eval_*` metrics: the same compiled eval step, mesh and compute dtype."""
    batch_size = batch_size or self.experiment.eval_batch_size
    platform.check_batch_size(batch_size, 'eval batch size')
    source = self.dataset.eval if source is None else source
    if self._eval_step is None or self._eval_step[0] != batch_size:
      example = global_eval_example(source, batch_size, self.mesh)
      self._eval_step = (batch_size, compile_eval_step(self.experiment.task, self.state,
                                                       self.mesh, example,
                                                       dtype=self.experiment.dtype))
    return evaluate(self.experiment.task, self._eval_step[1], self.state, source, batch_size,
                    self.mesh)

  def compiled(self, fn: Callable[..., Any]) -> Callable[[dict[str, np.ndarray]], Any]:
    """`fn(model, variables, batch)` jit-compiled with the run's variables in its compute dtype.

    Returns a function of a host batch (a dict of NumPy arrays); batches whose size divides over
    the devices are sharded over the mesh like training batches, others are replicated.
    """
    dtype = self.experiment.dtype
    model, prepare = self.model, self.experiment.task.prepare
    jitted = jax.jit(lambda variables, batch: fn(model, cast_floating(variables, dtype),
                                                 cast_floating(prepare(batch), dtype)))
    devices = self.mesh.devices.size

    def call(batch):
      size = len(next(iter(batch.values())))
      if size % devices == 0:
        batch = platform.global_batch(batch, self.mesh)
      else:
        batch = jax.device_put(batch, platform.replicated(self.mesh))
      return jitted(self.variables, batch)

    return call


def _run(experiment: Experiment, mesh, restore_from: str | None, step: int | None) -> Run:
  tx = optim.create_optimizer(experiment.config)
  args = (experiment.config, experiment.model, tx, experiment.sample_batch(), experiment.task,
          mesh)
  if restore_from is None:
    state, _ = create_train_state(*args)
    return Run(experiment, state, mesh, None)
  abstract, _ = abstract_train_state(*args)
  restored = checkpoint_lib.restore_read_only(restore_from, abstract, step)
  if restored is None:
    return Run(experiment, create_train_state(*args)[0], mesh, None, restore_from)
  state, restored_step = restored
  return Run(experiment, state, mesh, restored_step, restore_from)


def restore(workdir: str, step: int | None = None, *, fresh_if_none: bool = False,
            config: ml_collections.ConfigDict | None = None,
            config_overrides: dict[str, Any] | None = None) -> Run:
  """A workdir's experiment (from its `config.json`) with its newest checkpoint, or `step`.

  Read-only: nothing in the workdir changes (a damaged checkpoint is reported, not moved).
  `config` replaces the saved config (the checkpoint must fit its model); `config_overrides`
  change keys of the config first (a nested dict updates a section:
  `{'data': {'eval_split': 'validation'}}`).
  With `fresh_if_none`, a workdir without checkpoints gives the freshly initialised model
  (`Run.step` None); otherwise that is an error.

  Raises:
    FileNotFoundError: no workdir, no config.json, or (without `fresh_if_none`) no checkpoint.
    ValueError: a damaged config.json; `step` is not a checkpoint of the workdir.
    checkpoint.CheckpointError: the checkpoint cannot be read.
  """
  if not os.path.isdir(workdir):
    raise FileNotFoundError(f'workdir {workdir} does not exist')
  if config is None:
    config = config_checks.read_workdir_config(workdir)
  if config_overrides:
    with config.unlocked():
      config.update(config_overrides)
  if step is None and not fresh_if_none and not checkpoint_lib.has_checkpoints(workdir):
    raise FileNotFoundError(f'{workdir} has no checkpoint')
  run = _run(build(config), platform.make_mesh(), workdir, step)
  if run.step is None and not fresh_if_none:
    raise FileNotFoundError(f'{workdir} has no checkpoint')
  return run


def initialize(config: ml_collections.ConfigDict) -> Run:
  """The freshly initialised model a training run with `config` starts from (`config.seed`)."""
  return _run(build(config), platform.make_mesh(), None, None)


def restore_variables(workdir: str, step: int | None = None) -> tuple[
    ml_collections.ConfigDict, Any, dict[str, Any], int]:
  """A classification workdir's model and variables without opening its dataset (read-only).

  For commands that only apply the model (prediction, fine-tuning from it): an imported workdir
  of ImageNet weights is usable without ImageNet. The input shape comes from the config's
  preprocessing (data/preprocessing.py `for_config`); the dataset is built only when the config
  does not name the number of classes (`model_kwargs.num_classes`).

  Returns:
    (config, model, variables `{'params': ..., **model_state}`, step).

  Raises:
    FileNotFoundError: no workdir, no config.json, or no checkpoint.
    ValueError: not an image classification workdir; a damaged config.json.
    checkpoint.CheckpointError: the checkpoint cannot be read.
  """
  from data import preprocessing
  if not os.path.isdir(workdir):
    raise FileNotFoundError(f'workdir {workdir} does not exist')
  config = config_checks.read_workdir_config(workdir)
  if not checkpoint_lib.has_checkpoints(workdir):
    raise FileNotFoundError(f'{workdir} has no checkpoint')
  shape = preprocessing.for_config(config).input_shape
  overrides = {k: v for k, v in (config.get('model_kwargs', None) or {}).items() if v is not None}
  if 'num_classes' not in overrides:
    overrides = resolve_model_kwargs(config, data_lib.create(config).facts)
  model = models.create(config.model, **overrides)
  task = tasks_lib.create(config.get('task', 'classification'),
                          **(config.get('task_kwargs', None) or {}))
  sample = {'image': np.zeros((1,) + shape, np.float32), 'label': np.zeros((1,), np.int32)}
  mesh = platform.make_mesh()
  abstract, _ = abstract_train_state(config, model, optim.create_optimizer(config), sample, task,
                                     mesh)
  restored = checkpoint_lib.restore_read_only(workdir, abstract, step)
  if restored is None:
    raise FileNotFoundError(f'{workdir} has no checkpoint')
  state, restored_step = restored
  return config, model, state.variables, restored_step
