"""Command-line entry point: `python -m train.main --config=configs/NAME.py --workdir=DIR`.

Any config key can be overridden: `--config.num_train_steps=100 --config.model_kwargs.dropout=0.5`.
Re-running with the same --workdir resumes from its newest checkpoint. With no flags at all, trains
the default experiment (configs/default.py) in a fresh directory under workdirs/.

SIGTERM or Ctrl-C during training saves a checkpoint at the end of the current step and exits 0;
the same command resumes. Before training has started (flag parsing, data loading, compilation)
they end the run at once, exit code 130 for Ctrl-C and 0 for SIGTERM: nothing has been trained
since the restored checkpoint. A second Ctrl-C exits at once, quietly, with code 130.
Every error in flags, configs, data or the run itself is one line `error: ...` and exit code 1
(2 for command-line errors).

Many hosts: start the same command on every host with `--num_processes=N --process_id=I
--coordinator_address=HOST:PORT`, or `--distributed` alone where JAX detects them itself (Cloud TPU,
SLURM, Open MPI).
"""

from __future__ import annotations

import datetime
import logging
import os
import re
import signal
import sys
import threading

from train import cli


class Stopper:
  """What SIGTERM and Ctrl-C do, decided on a helper thread as soon as they arrive.

  Until the trainer first asks `should_stop()` (after its first step) nothing has been trained,
  so a signal ends the process at once, even inside an XLA compile. After that the first signal
  asks the trainer to checkpoint and stop at the end of the current step; a second Ctrl-C ends
  the process at once.
  """

  def __init__(self):
    self.requested = threading.Event()
    self.training = threading.Event()
    self.installed = False

  def should_stop(self) -> bool:
    self.training.set()
    return self.requested.is_set()

  def on_signal(self, signum: int) -> None:
    interrupt = signum == signal.SIGINT
    if not self.training.is_set():
      cli.exit_now(130 if interrupt else 0,
                   f'\n{signal.Signals(signum).name} received before training started: nothing '
                   'to save; stopped.')
    if self.requested.is_set():
      if interrupt:
        cli.exit_now(130)
      return
    print(f'\n{signal.Signals(signum).name} received: saving a checkpoint and stopping.',
          file=sys.stderr, flush=True)
    self.requested.set()

  def install(self) -> None:
    self.installed = True
    for signum in (signal.SIGINT, signal.SIGTERM):
      signal.signal(signum, lambda *_: None)  # the watcher acts; no KeyboardInterrupt
    cli.watch_signals(self.on_signal)


_STOPPER = Stopper()
if __name__ == '__main__':  # at once: loading the config below imports jax, which takes seconds
  _STOPPER.install()

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags  # pylint: disable=g-import-not-at-top
from ml_collections import config_flags  # pylint: disable=g-import-not-at-top

import configs  # pylint: disable=g-import-not-at-top

_CONFIG_DIR = os.path.dirname(configs.__file__)
_DEFAULT_CONFIG = os.path.join(_CONFIG_DIR, 'default.py')


class _CommandLineError(Exception):
  """A problem with the command line: one line on stderr, exit code 2."""


def _config_path(argv: list[str]) -> str:
  for i, arg in enumerate(argv):
    if arg.startswith('--config='):
      return arg.split('=', 1)[1]
    if arg == '--config' and i + 1 < len(argv):
      return argv[i + 1]
  return _DEFAULT_CONFIG


def _load_config_file(spec: str):
  """`config_checks.load_config_file(spec)`, its errors as command-line errors (exit code 2)."""
  from train import config_checks
  try:
    return config_checks.load_config_file(spec)
  except config_checks.ConfigFileError as error:
    raise _CommandLineError(str(error)) from None


def _model_kwargs_hint(argv: list[str], key: str) -> str:
  """'; model M takes K1, K2, ...' when `key` was given as --config.model_kwargs.KEY."""
  if not any(a.startswith(f'--config.model_kwargs.{key}') for a in argv):
    return ''
  try:
    config = _load_config_file(_config_path(argv))
  except _CommandLineError:
    return ''
  keys = sorted(config.get('model_kwargs', None) or {})
  return (f"; model '{config.get('model', '')}' takes model_kwargs "
          f"{', '.join(keys) if keys else '(none)'}")


def _explain_flag_error(error: Exception, argv: list[str]) -> str:
  text = ' '.join(str(error).split())
  unknown = re.search(r"'\\?'?([\w.]+)\\?'?'.*Did you mean \"([\w.]+)\"", text)
  if unknown:
    return (f"unknown config key '{unknown.group(1)}'; did you mean '{unknown.group(2)}'?"
            f'{_model_kwargs_hint(argv, unknown.group(1))} (see {_config_path(argv)})')
  if isinstance(error, (AttributeError, KeyError)):
    key = re.search(r"([A-Za-z_][\w]*)", text)
    hint = _model_kwargs_hint(argv, key.group(1)) if key else ''
    if hint:
      return f"unknown config key 'model_kwargs.{key.group(1)}'{hint} (see {_config_path(argv)})"
    return f'unknown config key {text}; see {_config_path(argv)} for the valid keys'
  return text.replace('flag --config.', '--config.')


if __name__ == '__main__':  # a bad --config file or variant: one line before config_flags loads it
  try:
    _load_config_file(_config_path(sys.argv))
  except _CommandLineError as _error:
    print(f'error: {_error}', file=sys.stderr)
    sys.exit(2)
try:
  # config_flags reads the --config.* overrides from sys.argv already here.
  _CONFIG = config_flags.DEFINE_config_file(
      'config', _DEFAULT_CONFIG, 'Experiment config file (configs/NAME.py[:variant]).',
      lock_config=True)
except Exception as _error:  # a bad override: one line, not a traceback, when run as a command
  if __name__ != '__main__':
    raise
  print(f'error: {_explain_flag_error(_error, sys.argv)}', file=sys.stderr)
  sys.exit(2)
_WORKDIR = flags.DEFINE_string(
    'workdir', None, 'Directory for checkpoints, metrics.jsonl and TensorBoard files; re-use it to '
    'resume. Default: a new directory workdirs/<config>-<time>.')
_DISTRIBUTED = flags.DEFINE_bool(
    'distributed', False, 'Call jax.distributed.initialize() (implied by --num_processes > 1).')
_COORDINATOR = flags.DEFINE_string(
    'coordinator_address', None, 'HOST:PORT of process 0, for multi-host runs.')
_NUM_PROCESSES = flags.DEFINE_integer('num_processes', None, 'Number of processes (hosts).')
_PROCESS_ID = flags.DEFINE_integer('process_id', None, 'This process index, 0..num_processes-1.')


def parse_flags(argv: list[str]) -> list[str]:
  """absl's flag parsing, with every failure turned into one line on stderr and exit code 2."""
  try:  # the --config file itself was checked when this module was loaded
    try:
      remaining = flags.FLAGS(argv)
      _CONFIG.value  # the file is loaded and --config.* overrides applied on first access
    except Exception as error:  # absl, ml_collections and the config file itself raise many types
      raise _CommandLineError(_explain_flag_error(error, argv)) from None
    _check_process_flags()
    return remaining
  except _CommandLineError as error:
    print(f'error: {error}', file=sys.stderr)
    sys.exit(2)


def _check_process_flags() -> None:
  """Raises _CommandLineError for multi-host flags that make no sense alone or together."""
  count, index, address = _NUM_PROCESSES.value, _PROCESS_ID.value, _COORDINATOR.value
  if count is not None and count < 1:
    raise _CommandLineError(f'--num_processes must be at least 1, got {count}')
  if index is not None and count is None:
    raise _CommandLineError('--process_id needs --num_processes (and --coordinator_address)')
  if address is not None and count is None:
    raise _CommandLineError('--coordinator_address needs --num_processes and --process_id')
  if index is not None and not 0 <= index < count:
    raise _CommandLineError(f'--process_id must be in 0..{count - 1} (--num_processes={count}), '
                            f'got {index}')
  if address is not None and not re.fullmatch(r'\S+:\d+', address):
    raise _CommandLineError(f'--coordinator_address must be HOST:PORT, got {address!r}')
  if count is not None and count > 1 and index is None and address is not None:
    raise _CommandLineError('--coordinator_address and --num_processes need --process_id too')


def _default_workdir(config_path: str) -> str:
  name = os.path.splitext(os.path.basename(config_path.split(':')[0]))[0]
  return os.path.join('workdirs', f'{name}-{datetime.datetime.now():%Y%m%d-%H%M%S}')


def _initialize_distributed() -> None:
  import jax
  if not (_DISTRIBUTED.value or (_NUM_PROCESSES.value or 1) > 1):
    return
  # Cross-process collectives of the CPU backend (only the CPU backend reads this option).
  jax.config.update('jax_cpu_collectives_implementation', 'gloo')
  try:
    jax.distributed.initialize(coordinator_address=_COORDINATOR.value,
                               num_processes=_NUM_PROCESSES.value, process_id=_PROCESS_ID.value)
  except (RuntimeError, ValueError) as error:
    raise RuntimeError(
        f'jax.distributed.initialize failed: {cli.one_line(error)} (give every process '
        '--coordinator_address=HOST:PORT of process 0, --num_processes and its --process_id, '
        'or use --distributed alone where JAX detects them: Cloud TPU, SLURM, Open MPI)') from None


def main(argv: list[str]) -> int:
  if len(argv) > 1:
    print(f'error: unexpected arguments: {" ".join(argv[1:])} (flags are --name=value)',
          file=sys.stderr)
    return 2
  # Libraries log through absl; errors reach the user as our own one-line messages instead.
  for name in ('absl', 'jax', 'orbax'):
    logging.getLogger(name).setLevel(logging.ERROR if name == 'absl' else logging.WARNING)
  logging.getLogger('asyncio').setLevel(logging.CRITICAL)  # orbax's unretrieved write failures
  if threading.current_thread() is threading.main_thread() and not _STOPPER.installed:
    _STOPPER.install()
  # Imported after flag parsing: importing jax takes time.
  from train import checkpoint, platform, trainer, visualize
  platform.keep_freed_memory()  # before the first step: fewer page faults per step on CPU
  import data

  workdir = _WORKDIR.value or _default_workdir(flags.FLAGS['config'].config_filename)
  try:
    _initialize_distributed()
    cli.check_platform()
    config = _CONFIG.value
    hooks = [visualize.TensorBoardImages()] if config.get('tensorboard_images', True) else []
    metrics = trainer.train_and_evaluate(config, workdir, should_stop=_STOPPER.should_stop,
                                         eval_hooks=hooks)
  except (ValueError, TypeError, KeyError, OSError, FloatingPointError, RuntimeError,
          checkpoint.CheckpointError, data.DatasetNotFoundError) as error:
    # Exit at once: library threads (orbax's writers after a failed save) would otherwise print
    # their own tracebacks while the interpreter shuts down. The workdir is already consistent.
    cli.exit_now(1, f'error: {cli.one_line(error)}')
  if metrics.get('preempted'):
    print(f'Stopped at step {int(metrics["step"])} with a checkpoint; run the same command to '
          f'resume (workdir {workdir}).', flush=True)
    return 0
  summary = ', '.join(f'{k} {v:.4f}' for k, v in sorted(metrics.items()) if k.startswith('eval_'))
  print(f'Final: {summary} (workdir {workdir})')
  return 0


if __name__ == '__main__':
  app.run(lambda argv: sys.exit(main(argv)), flags_parser=parse_flags)
