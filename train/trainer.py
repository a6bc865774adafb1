"""The one training loop: `train_and_evaluate(config, workdir)` for every experiment.

The experiment API (train/experiment.py) builds the data, task and model and compiles the steps;
this file owns the loop around them: resume from the newest checkpoint, log, evaluate,
checkpoint, stop on request. Anything else that should happen at each evaluation (TensorBoard
pictures, say) is passed in as an `eval_hook`.
"""

from __future__ import annotations

import json
import logging
import os
import time
from typing import Any, Callable, Sequence

import jax
import ml_collections
import numpy as np

from data import pipeline
from train import checkpoint as checkpoint_lib
from train import config_checks
from train import experiment as experiment_lib
from train import init_from
from train import optim
from train import platform
from train import run_info
from train import workdir as workdir_lib
from train.metrics_writer import MetricWriter, Progress

log = logging.getLogger(__name__)


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


# `eval_hook(writer, state, experiment, step)`, called after each evaluation.
EvalHook = Callable[[MetricWriter, experiment_lib.TrainState, experiment_lib.Experiment, int], None]


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str,
                       should_stop: Callable[[], bool] | None = None,
                       eval_hooks: Sequence[EvalHook] = ()) -> dict[str, Any]:
  """Trains `config.model` on `config.dataset`, evaluating and checkpointing as configured.

  Re-running with the same `workdir` resumes from its newest checkpoint, with the same data order;
  a workdir holding a run of another model, dataset, optimiser, batch size or seed is refused.
  `should_stop()` is polled after every step (e.g. set by SIGTERM): when it returns True the run
  saves a checkpoint at the current step and returns early with `preempted` set. Each of
  `eval_hooks` is called after every evaluation as `hook(writer, state, experiment, step)`.
  Returns the final metrics (`eval_*` and the last logged `train_*`), plus `step`.
  """
  config_checks.validate_config(config)
  workdir_lib.prepare(workdir)
  workdir_lib.claim(workdir)  # before any work: a second run on this workdir stops here
  try:
    return _train(config, workdir, should_stop, eval_hooks)
  finally:
    workdir_lib.release(workdir)


def _train(config, workdir: str, should_stop, eval_hooks) -> dict[str, Any]:
  """`train_and_evaluate` on a workdir this process owns."""
  is_main = jax.process_index() == 0
  config = init_from.resolve_config(config, workdir)  # fine-tuning: the source workdir's model
  try:
    check_resume_config(config, workdir)
    if is_main:
      _save_config(config, workdir)
  except OSError as error:
    raise OSError(f'cannot write to workdir {workdir}: {workdir_lib.describe_os_error(error)}'
                  ) from None

  experiment = experiment_lib.build(config)
  dataset = experiment.dataset
  eval_batch_size = experiment.eval_batch_size
  platform.check_batch_size(config.batch_size)
  platform.check_batch_size(eval_batch_size, 'eval_batch_size')
  if config.batch_size > len(dataset.train):
    raise ValueError(f'batch_size {config.batch_size} is larger than the training split '
                     f'({len(dataset.train)} examples); use --config.batch_size='
                     f'{len(dataset.train)} or less.')

  mesh = platform.make_mesh()
  schedule = optim.create_schedule(config)
  state, state_sharding = experiment_lib.create_train_state(
      config, experiment.model, optim.create_optimizer(config), experiment.sample_batch(),
      experiment.task, mesh)
  checkpointer = checkpoint_lib.Checkpointer(workdir, keep=config.get('keep_checkpoints', 3))
  restored = checkpointer.restore(state)
  if restored is not None:
    state, _ = restored
    log.info('Resumed from step %d of %s', int(state.step), checkpointer.directory)
  elif config.get('init_from', None):  # only a fresh run starts from another workdir
    state = init_from.initialize_state(state, config)
  start_step = int(state.step)
  total_steps = config.num_train_steps

  n_params = sum(x.size for x in jax.tree.leaves(state.params))
  if is_main:
    print(f'{config.model} ({n_params:,} parameters) on {config.dataset} '
          f'({len(dataset.train):,} train / {len(dataset.eval):,} eval examples), '
          f'{jax.device_count()} {jax.default_backend()} device(s); workdir {workdir}', flush=True)
    if start_step:
      print(f'Resuming from checkpoint at step {start_step}.', flush=True)

  session = run_info.Session(workdir, total_steps)  # run.json: hardware, wall time, finished
  if is_main:
    session.begin(start_step)
  writer = MetricWriter(workdir, enabled=is_main, resume_step=start_step)  # drops rows > start
  progress = Progress(total_steps, config.batch_size, start_step, enabled=is_main)
  train_iter = pipeline.prefetch(pipeline.train_batches(
      dataset.train, config.batch_size, config.seed, start_step,
      jax.process_index(), jax.process_count()))

  first_batch = platform.global_batch(next(train_iter), mesh)
  compile_start = time.perf_counter()
  train_step = experiment_lib.compile_train_step(
      experiment.task, state, state_sharding, mesh, first_batch, dtype=experiment.dtype,
      skip_nonfinite=config.get('skip_nonfinite_updates', False))
  eval_example = experiment_lib.global_eval_example(dataset.eval, eval_batch_size, mesh)
  eval_step = experiment_lib.compile_eval_step(experiment.task, state, mesh, eval_example,
                                               dtype=experiment.dtype)
  if is_main:
    print(f'Compiled train and eval steps in {time.perf_counter() - compile_start:.1f} s.', flush=True)

  def evaluate() -> dict[str, float]:
    metrics = experiment_lib.evaluate(experiment.task, eval_step, state, dataset.eval,
                                      eval_batch_size, mesh)
    return {f'eval_{k}': v for k, v in metrics.items()}

  log_every = config.get('log_every_steps', 50)
  final: dict[str, float] = {}
  pending: list[dict[str, Any]] = []
  last_good_step = checkpointer.latest_step()
  progress.restart_clock(start_step)
  batch = first_batch
  step = done_step = start_step  # done_step: trained, evaluated and checkpointed as configured
  try:
    while step < total_steps:
      state, sums, stats = train_step(state, batch)
      pending.append((sums, stats))
      step += 1
      if step < total_steps:
        batch = platform.global_batch(next(train_iter), mesh)

      is_last = step == total_steps
      if step % log_every == 0 or is_last:
        totals = experiment_lib.sum_host([sums for sums, _ in pending])
        interval_stats = experiment_lib.sum_host([step_stats for _, step_stats in pending])
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
        train_metrics = {f'train_{k}': v for k, v in experiment.task.finalize(totals).items()}
        train_metrics['train_grad_norm'] = interval_stats['grad_norm'] / steps_in_interval
        train_metrics['train_nonfinite_steps'] = interval_stats['nonfinite']
        train_metrics['learning_rate'] = float(schedule(step - 1))
        progress.report(step, {k: v for k, v in train_metrics.items()
                               if k in ('train_loss', 'train_accuracy')})
        train_metrics['steps_per_second'] = progress.steps_per_second
        writer.write(step, train_metrics)
        final.update(train_metrics)

      if step % config.eval_every_steps == 0 or is_last:
        eval_metrics = evaluate()
        writer.write(step, eval_metrics)
        for hook in eval_hooks:
          hook(writer, state, experiment, step)
        final.update(eval_metrics)
        if is_main:
          print(f'eval at step {step}: ' + ', '.join(f'{k} {v:.4f}' for k, v in eval_metrics.items()),
                flush=True)
        progress.restart_clock(step)

      saved = step % config.checkpoint_every_steps == 0 or is_last
      if saved:
        checkpointer.save(step, state)
        last_good_step = step
        progress.restart_clock(step)
      done_step = step
      if not is_last and should_stop is not None and _all_agree_to_stop(should_stop(), step):
        if not saved:
          checkpointer.save(step, state)
        final.update(preempted=True, step=step)
        return final
    if start_step >= total_steps:  # a finished run: report its metrics again
      final = evaluate()
      if is_main:
        print(f'Already trained to step {start_step}; evaluated the checkpoint: ' +
              ', '.join(f'{k} {v:.4f}' for k, v in final.items()), flush=True)
  finally:
    writer.close()
    checkpointer.close()
    if is_main:
      session.end(done_step)
  final['step'] = max(step, start_step)
  return final
