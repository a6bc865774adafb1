"""Command-line entry point: `python -m train.main --config=configs/NAME.py --workdir=DIR`.

Any config key can be overridden: `--config.num_train_steps=100 --config.model_kwargs.dropout=0.5`.
Re-running with the same --workdir resumes from its newest checkpoint. With no flags at all, trains
the default experiment (configs/default.py) in a fresh directory under workdirs/.

SIGTERM or Ctrl-C saves a checkpoint at the current step and exits 0; the same command resumes.
Every error in flags, configs, data or the run itself is one line `error: ...` and exit code 1
(2 for command-line errors).

Many hosts: start the same command on every host with `--num_processes=N --process_id=I
--coordinator_address=HOST:PORT`, or `--distributed` alone where JAX detects them itself (Cloud TPU,
SLURM, Open MPI).
"""

from __future__ import annotations

import datetime
import difflib
import glob
import logging
import os
import re
import signal
import sys
import threading

from absl import app
from absl import flags
from ml_collections import config_flags

import configs

_CONFIG_DIR = os.path.dirname(configs.__file__)
_DEFAULT_CONFIG = os.path.join(_CONFIG_DIR, 'default.py')

class _CommandLineError(Exception):
  pass


def _config_path(argv: list[str]) -> str:
  for i, arg in enumerate(argv):
    if arg.startswith('--config='):
      return arg.split('=', 1)[1]
    if arg == '--config' and i + 1 < len(argv):
      return argv[i + 1]
  return _DEFAULT_CONFIG


def _explain_flag_error(error: Exception, argv: list[str]) -> str:
  text = ' '.join(str(error).split())
  unknown = re.search(r"'\\?'?([\w.]+)\\?'?'.*Did you mean \"([\w.]+)\"", text)
  if unknown:
    return (f"unknown config key '{unknown.group(1)}'; did you mean '{unknown.group(2)}'? "
            f'(see {_config_path(argv)})')
  if isinstance(error, (AttributeError, KeyError)):
    return f'unknown config key {text}; see {_config_path(argv)} for the valid keys'
  return text.replace('flag --config.', '--config.')


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
  try:
    path = _config_path(argv).split(':')[0]
    if not os.path.isfile(path):
      known = sorted(os.path.basename(p) for p in glob.glob(os.path.join(_CONFIG_DIR, '*.py'))
                     if not os.path.basename(p).startswith(('_', 'common')))
      close = difflib.get_close_matches(os.path.basename(path), known, n=1)
      hint = f' Did you mean configs/{close[0]}?' if close else ''
      raise _CommandLineError(f'config file {path} not found.{hint} Configs: {", ".join(known)}')
    try:
      remaining = flags.FLAGS(argv)
      _CONFIG.value  # the file is loaded and --config.* overrides applied on first access
      return remaining
    except Exception as error:  # absl, ml_collections and the config file itself raise many types
      raise _CommandLineError(_explain_flag_error(error, argv)) from None
  except _CommandLineError as error:
    print(f'error: {error}', file=sys.stderr)
    sys.exit(2)


def _default_workdir(config_path: str) -> str:
  name = os.path.splitext(os.path.basename(config_path.split(':')[0]))[0]
  return os.path.join('workdirs', f'{name}-{datetime.datetime.now():%Y%m%d-%H%M%S}')


def _initialize_distributed() -> None:
  import jax
  if not (_DISTRIBUTED.value or (_NUM_PROCESSES.value or 1) > 1):
    return
  # Cross-process collectives of the CPU backend (only the CPU backend reads this option).
  jax.config.update('jax_cpu_collectives_implementation', 'gloo')
  jax.distributed.initialize(coordinator_address=_COORDINATOR.value,
                             num_processes=_NUM_PROCESSES.value, process_id=_PROCESS_ID.value)


def _stop_on_signals() -> threading.Event:
  """SIGTERM / the first SIGINT ask the trainer to checkpoint and stop; a second SIGINT kills."""
  stop = threading.Event()

  def handler(signum, frame):
    if stop.is_set() and signum == signal.SIGINT:
      raise KeyboardInterrupt
    print(f'\n{signal.Signals(signum).name} received: saving a checkpoint and stopping.',
          file=sys.stderr, flush=True)
    stop.set()

  signal.signal(signal.SIGTERM, handler)
  signal.signal(signal.SIGINT, handler)
  return stop


def main(argv: list[str]) -> int:
  if len(argv) > 1:
    print(f'error: unexpected arguments: {" ".join(argv[1:])} (flags are --name=value)',
          file=sys.stderr)
    return 2
  # Libraries log through absl; errors reach the user as our own one-line messages instead.
  for name in ('absl', 'jax', 'orbax'):
    logging.getLogger(name).setLevel(logging.ERROR if name == 'absl' else logging.WARNING)
  logging.getLogger('asyncio').setLevel(logging.CRITICAL)  # orbax's unretrieved write failures
  stop = _stop_on_signals()
  # Imported after flag parsing: importing jax takes time.
  from train import checkpoint, platform, trainer, visualize
  platform.keep_freed_memory()  # before the first step: fewer page faults per step on CPU
  import data

  workdir = _WORKDIR.value or _default_workdir(flags.FLAGS['config'].config_filename)
  try:
    _initialize_distributed()
    config = _CONFIG.value
    hooks = [visualize.TensorBoardImages()] if config.get('tensorboard_images', True) else []
    metrics = trainer.train_and_evaluate(config, workdir, should_stop=stop.is_set,
                                         eval_hooks=hooks)
  except (ValueError, TypeError, KeyError, OSError, FloatingPointError, RuntimeError,
          checkpoint.CheckpointError, data.DatasetNotFoundError) as error:
    message = ' '.join(str(error).split()) or type(error).__name__
    print(f'error: {message}', file=sys.stderr)
    sys.stdout.flush()
    sys.stderr.flush()
    # Exit at once: library threads (orbax's writers after a failed save) would otherwise print
    # their own tracebacks while the interpreter shuts down. The workdir is already consistent.
    os._exit(1)
  if metrics.get('preempted'):
    print(f'Stopped at step {int(metrics["step"])} with a checkpoint; run the same command to '
          f'resume (workdir {workdir}).', flush=True)
    return 0
  summary = ', '.join(f'{k} {v:.4f}' for k, v in sorted(metrics.items()) if k.startswith('eval_'))
  print(f'Final: {summary} (workdir {workdir})')
  return 0


if __name__ == '__main__':
  app.run(lambda argv: sys.exit(main(argv)), flags_parser=parse_flags)
