"""The one training loop: `train_and_evaluate(config, workdir)` for every experiment.

A task (train/tasks.py) contributes the loss and metrics, a pipeline (data/) the batches, the zoo
(models/) the module; this file owns everything else: the train state, the jit-compiled steps,
evaluation over the whole split, checkpoints and resume, and metric writing.
"""

from __future__ import annotations

import json
import logging
import os
import time
from typing import Any, Callable

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
from train.metrics_writer import MetricWriter, Progress

log = logging.getLogger(__name__)

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
      outputs = task.apply(state.apply_fn, variables, cast_floating(batch, dtype), train=True,
                           rngs={'dropout': dropout_rng}, mutable=mutable or False)
      outputs, new_model_state = outputs if mutable else (outputs, {})
      loss, sums = task.loss_and_sums(outputs, batch)
      return loss.astype(jnp.float32), (sums, _restore_dtypes(new_model_state, state.model_state))

    (loss, (sums, new_model_state)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
        state.params)
    updates, opt_state = state.tx.update(grads, state.opt_state, state.params)
    new_state = state.replace(step=state.step + 1, params=optax.apply_updates(state.params, updates),
                              model_state=new_model_state, opt_state=opt_state)
    grad_norm = optax.global_norm(grads)
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
    variables = cast_floating({'params': state.params, **state.model_state}, dtype)
    outputs = task.apply(state.apply_fn, variables, cast_floating(batch, dtype), train=False)
    return task.loss_and_sums(outputs, batch)[1]

  return eval_step


def _model_kwargs(config, meta: dict[str, Any]) -> dict[str, Any]:
  """The config's `model_kwargs` over the dataset's defaults (`meta['model_kwargs']`, e.g. a
  vocabulary size; or `num_classes`)."""
  defaults = meta.get('model_kwargs',
                      {'num_classes': meta['num_classes']} if 'num_classes' in meta else {})
  overrides = {k: v for k, v in (config.get('model_kwargs', None) or {}).items() if v is not None}
  return {**defaults, **overrides}


def create_train_state(config, model, tx, sample_batch, task, mesh) -> tuple[TrainState, Any]:
  """Initialises parameters on the devices, replicated over the mesh.

  The model is initialised on zeros shaped like a whole training batch, so that state a model
  keeps per example (e.g. a language model's carried recurrent state) has its training shape.
  Returns the state and its shardings (split over devices with `config.shard_params`).
  """
  init_rng, train_rng = jax.random.split(jax.random.PRNGKey(config.seed))
  inputs = task.model_inputs({k: np.zeros((config.batch_size,) + v.shape[1:], v.dtype)
                              for k, v in sample_batch.items()})

  def init():
    variables = model.init({'params': init_rng, 'dropout': init_rng}, *inputs, train=False)
    variables = flax.core.unfreeze(variables)
    params = variables.pop('params')
    return TrainState(step=jnp.zeros((), jnp.int32), params=params, model_state=variables,
                      opt_state=tx.init(params), rng=train_rng, apply_fn=model.apply, tx=tx)

  shardings = platform.state_shardings(jax.eval_shape(init), mesh,
                                       config.get('shard_params', False))
  return jax.jit(init, out_shardings=shardings)(), shardings


def _sum_host(sums_list: list[dict[str, Any]]) -> dict[str, float]:
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


def evaluate(eval_step, state, source, batch_size: int, mesh, task) -> dict[str, float]:
  """Metrics over every example of `source` exactly once."""
  sums_list = []
  for batch in pipeline.eval_batches(source, batch_size, jax.process_index(), jax.process_count()):
    sums_list.append(eval_step(state, platform.global_batch(batch, mesh)))
  return task.finalize(_sum_host(sums_list))


# Keys that fix what a checkpoint holds or the batches a run reads; resuming under another value
# would silently mix two experiments.
RESUME_MUST_MATCH = ('model', 'model_kwargs', 'dataset', 'task', 'task_kwargs', 'optimizer',
                     'batch_size', 'seed')


def check_resume_config(config, workdir: str) -> None:
  """Raises ValueError if `workdir` has checkpoints of a run with another RESUME_MUST_MATCH key."""
  path = os.path.join(workdir, 'config.json')
  if not (os.path.exists(path) and os.path.isdir(os.path.join(workdir, 'checkpoints'))
          and os.listdir(os.path.join(workdir, 'checkpoints'))):
    return
  saved = config_checks.read_workdir_config(workdir).to_dict()
  current = json.loads(config.to_json_best_effort())
  for key in RESUME_MUST_MATCH:
    before, now = saved.get(key), current.get(key)
    if before == now:
      continue
    if isinstance(before, dict) and isinstance(now, dict):  # name the sub-key that differs
      sub = next(k for k in sorted(set(before) | set(now)) if before.get(k) != now.get(k))
      key, before, now = f'{key}.{sub}', before.get(sub), now.get(sub)
    raise ValueError(
        f'workdir {workdir} holds checkpoints of a run with {key}={before!r}, but this config '
        f'has {key}={now!r}; use a new --workdir, or the original config.')


def _all_agree_to_stop(requested: bool, step: int, every: int = 10) -> bool:
  """Whether to stop now. With several processes they decide together every `every` steps."""
  if jax.process_count() == 1:
    return requested
  if step % every:
    return False
  from jax.experimental import multihost_utils
  return bool(np.any(multihost_utils.process_allgather(np.array([requested]))))


def _save_config(config, workdir: str) -> None:
  path = os.path.join(workdir, 'config.json')
  with open(path + '.tmp', 'w') as f:
    f.write(config.to_json_best_effort(indent=2, sort_keys=True))
  os.replace(path + '.tmp', path)


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str,
                       should_stop: Callable[[], bool] | None = None) -> dict[str, Any]:
  """Trains `config.model` on `config.dataset`, evaluating and checkpointing as configured.

  Re-running with the same `workdir` resumes from its newest checkpoint, with the same data order;
  a workdir holding a run of another model, dataset, optimiser, batch size or seed is refused.
  `should_stop()` is polled after every step (e.g. set by SIGTERM): when it returns True the run
  saves a checkpoint at the current step and returns early with `preempted` set.
  Returns the final metrics (`eval_*` and the last logged `train_*`), plus `step`.
  """
  config_checks.validate_config(config)
  dtype = compute_dtype(config.get('compute_dtype', 'float32'))
  is_main = jax.process_index() == 0
  try:
    os.makedirs(workdir, exist_ok=True)
    check_resume_config(config, workdir)
    if is_main:
      _save_config(config, workdir)
  except OSError as error:
    raise OSError(f'cannot write to workdir {workdir} ({error.strerror or error}); choose a '
                  'writable --workdir with free space.') from None

  dataset = data_lib.create(config)
  task = tasks_lib.create(config.get('task', 'classification'), **(config.get('task_kwargs', None) or {}))
  model = models.create(config.model, **_model_kwargs(config, dataset.meta))
  eval_batch_size = config.get('eval_batch_size', None) or config.batch_size
  platform.check_batch_size(config.batch_size)
  platform.check_batch_size(eval_batch_size, 'eval_batch_size')
  pipeline.steps_per_epoch(len(dataset.train), config.batch_size)

  mesh = platform.make_mesh()
  tx = optim.create_optimizer(config)
  schedule = optim.create_schedule(config)
  sample = dataset.train.fetch(np.arange(1), None)
  state, state_sharding = create_train_state(config, model, tx, sample, task, mesh)
  checkpointer = checkpoint_lib.Checkpointer(workdir, keep=config.get('keep_checkpoints', 3))
  restored = checkpointer.restore(state)
  if restored is not None:
    state, _ = restored
    log.info('Resumed from step %d of %s', int(state.step), checkpointer.directory)
  start_step = int(state.step)
  total_steps = config.num_train_steps

  n_params = sum(x.size for x in jax.tree.leaves(state.params))
  if is_main:
    print(f'{config.model} ({n_params:,} parameters) on {config.dataset} '
          f'({len(dataset.train):,} train / {len(dataset.eval):,} eval examples), '
          f'{jax.device_count()} {jax.default_backend()} device(s); workdir {workdir}', flush=True)
    if start_step:
      print(f'Resuming from checkpoint at step {start_step}.', flush=True)

  writer = MetricWriter(workdir, enabled=is_main)
  progress = Progress(total_steps, config.batch_size, start_step, enabled=is_main)
  train_iter = pipeline.prefetch(pipeline.train_batches(
      dataset.train, config.batch_size, config.seed, start_step,
      jax.process_index(), jax.process_count()))

  replicated = platform.replicated(mesh)
  first_batch = platform.global_batch(next(train_iter), mesh)
  compile_start = time.perf_counter()
  train_step = platform.compile(
      make_train_step(task, config.get('skip_nonfinite_updates', False), dtype), state, first_batch,
      donate_argnums=0, in_shardings=(state_sharding, platform.batch_sharded(mesh)),
      out_shardings=(state_sharding, replicated, replicated))
  eval_example = platform.global_batch(
      next(pipeline.eval_batches(dataset.eval, eval_batch_size, jax.process_index(),
                                 jax.process_count())), mesh)
  eval_step = platform.compile(make_eval_step(task, dtype), state, eval_example,
                               out_shardings=replicated)
  if is_main:
    print(f'Compiled train and eval steps in {time.perf_counter() - compile_start:.1f} s.', flush=True)

  log_every = config.get('log_every_steps', 50)
  final: dict[str, float] = {}
  pending: list[dict[str, Any]] = []
  last_good_step = checkpointer.latest_step()
  progress.restart_clock(start_step)
  batch = first_batch
  step = start_step
  try:
    while step < total_steps:
      state, sums, stats = train_step(state, batch)
      pending.append((sums, stats))
      step += 1
      if step < total_steps:
        batch = platform.global_batch(next(train_iter), mesh)

      is_last = step == total_steps
      if step % log_every == 0 or is_last:
        totals = _sum_host([sums for sums, _ in pending])
        interval_stats = _sum_host([step_stats for _, step_stats in pending])
        steps_in_interval = len(pending)
        pending = []
        if interval_stats['nonfinite'] and not config.get('skip_nonfinite_updates', False):
          bad = int(interval_stats['first_nonfinite_step'])
          where = (f'the last good checkpoint is step {last_good_step} in {checkpointer.directory}'
                   if last_good_step is not None else 'no checkpoint was saved yet')
          raise FloatingPointError(
              f'Loss or gradients became NaN/Inf at step {bad + 1}; {where}. Lower the learning '
              'rate, clip gradients (--config.grad_clip_norm) or set '
              '--config.skip_nonfinite_updates=True.')
        train_metrics = {f'train_{k}': v for k, v in task.finalize(totals).items()}
        train_metrics['train_grad_norm'] = interval_stats['grad_norm'] / steps_in_interval
        train_metrics['train_nonfinite_steps'] = interval_stats['nonfinite']
        train_metrics['learning_rate'] = float(schedule(step - 1))
        progress.report(step, {k: v for k, v in train_metrics.items()
                               if k in ('train_loss', 'train_accuracy')})
        train_metrics['steps_per_second'] = progress.steps_per_second
        writer.write(step, train_metrics)
        final.update(train_metrics)

      if step % config.eval_every_steps == 0 or is_last:
        eval_metrics = {f'eval_{k}': v for k, v in
                        evaluate(eval_step, state, dataset.eval, eval_batch_size, mesh, task).items()}
        writer.write(step, eval_metrics)
        if config.get('tensorboard_images', True):  # filters and feature maps; see train/visualize
          from train import visualize
          visualize.write_eval_images(writer, state, dataset, step, config)
        final.update(eval_metrics)
        if is_main:
          print(f'eval at step {step}: ' + ', '.join(f'{k} {v:.4f}' for k, v in eval_metrics.items()),
                flush=True)
        progress.restart_clock(step)

      if step % config.checkpoint_every_steps == 0 or is_last:
        checkpointer.save(step, state)
        last_good_step = step
        progress.restart_clock(step)
      elif should_stop is not None and _all_agree_to_stop(should_stop(), step):
        checkpointer.save(step, state)
        final.update(preempted=True, step=step)
        return final
    if start_step >= total_steps:  # a finished run: report its metrics again
      final = {f'eval_{k}': v for k, v in
               evaluate(eval_step, state, dataset.eval, eval_batch_size, mesh, task).items()}
      if is_main:
        print(f'Already trained to step {start_step}; evaluated the checkpoint: ' +
              ', '.join(f'{k} {v:.4f}' for k, v in final.items()), flush=True)
  finally:
    writer.close()
    checkpointer.close()
  final['step'] = max(step, start_step)
  return final
