"""Command-line entry point: `python -m train.main --config=configs/NAME.py --workdir=DIR`.

Any config key can be overridden: `--config.num_train_steps=100 --config.model_kwargs.dropout=0.5`.
Re-running with the same --workdir resumes from its newest checkpoint. With no flags at all, trains
the default experiment (configs/default.py) in a fresh directory under workdirs/.
"""

from __future__ import annotations

import datetime
import logging
import os
import sys

from absl import app
from absl import flags
from ml_collections import config_flags

import configs

_DEFAULT_CONFIG = os.path.join(os.path.dirname(configs.__file__), 'default.py')

_CONFIG = config_flags.DEFINE_config_file(
    'config', _DEFAULT_CONFIG, 'Experiment config file (configs/NAME.py).', lock_config=True)
_WORKDIR = flags.DEFINE_string(
    'workdir', None, 'Directory for checkpoints, metrics.jsonl and TensorBoard files; re-use it to '
    'resume. Default: a new directory workdirs/<config>-<time>.')


def _default_workdir(config_path: str) -> str:
  name = os.path.splitext(os.path.basename(config_path.split(':')[0]))[0]
  return os.path.join('workdirs', f'{name}-{datetime.datetime.now():%Y%m%d-%H%M%S}')


def main(argv: list[str]) -> int:
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {" ".join(argv[1:])}')
  for name in ('absl', 'jax', 'orbax'):
    logging.getLogger(name).setLevel(logging.WARNING)
  from train import checkpoint, trainer  # after flag parsing: importing jax takes a moment
  import data

  workdir = _WORKDIR.value or _default_workdir(flags.FLAGS['config'].config_filename)
  try:
    metrics = trainer.train_and_evaluate(_CONFIG.value, workdir)
  except (ValueError, TypeError, KeyError, OSError, FloatingPointError,
          checkpoint.CheckpointError, data.DatasetNotFoundError) as error:
    message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    print(f'error: {message}', file=sys.stderr)
    return 1
  summary = ', '.join(f'{k} {v:.4f}' for k, v in sorted(metrics.items()) if k.startswith('eval_'))
  print(f'Final: {summary} (workdir {workdir})')
  return 0


if __name__ == '__main__':
  app.run(lambda argv: sys.exit(main(argv)))
