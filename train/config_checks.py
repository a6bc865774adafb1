"""Checks on an experiment config that run before anything is built or compiled.

`validate_config(config)` raises ValueError naming the first key that is missing, of the wrong
type, or out of range: counts, sizes, intervals and step numbers must be positive (warm-up and
other offsets non-negative), rates such as dropout must lie in [0, 1). The rules go by the key's
name, so they cover every config, `model_kwargs` and `task_kwargs` alike, including keys added
later. `read_workdir_config(workdir)` reads a training workdir's `config.json`, turning a damaged
file into a ValueError that names it and says what to do.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

import ml_collections

# Keys every experiment config has, with the type each must have.
REQUIRED_KEYS = {
    'seed': int, 'batch_size': int, 'num_train_steps': int, 'learning_rate': float,
    'eval_every_steps': int, 'checkpoint_every_steps': int, 'model': str, 'dataset': str,
}

# Key names (anywhere in the config) whose numbers count or size something: each must be >= 1.
POSITIVE = re.compile(
    r'(^|_)(steps|size|sizes|features|hidden|layers|dim|threads|length|stride|horizon|groups|'
    r'heads|units|channels|epochs|classes|digits|checkpoints)$|^num_|^max_|^seq_len$')
# Offsets and minimum counts: each must be >= 0.
NON_NEGATIVE = re.compile(r'^warmup_steps$|^min_|_min_count$|^weight_decay$|^decay_boundaries$')
# Probabilities of dropping something, and momentum: each must lie in [0, 1).
RATES = re.compile(r'dropout|^rate$|^momentum$')


def _numbers(value: Any) -> list[Any] | None:
  """The numbers in `value` (a number, or a tuple/list of them); None for anything else."""
  items = value if isinstance(value, (tuple, list)) else [value]
  if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in items):
    return list(items)
  return None


def check_ranges(config: ml_collections.ConfigDict, prefix: str = '') -> None:
  """Raises ValueError for the first key whose value is out of the range its name implies.

  Looks into nested ConfigDicts (`model_kwargs`, `task_kwargs`, ...); None (unset) values are
  skipped.
  """
  for key, value in config.items():
    name = f'{prefix}{key}'
    if isinstance(value, (ml_collections.ConfigDict, dict)):
      check_ranges(ml_collections.ConfigDict(value) if isinstance(value, dict) else value,
                   f'{name}.')
      continue
    numbers = _numbers(value) if value is not None else None
    if not numbers:
      continue
    if RATES.search(key):
      bad = [v for v in numbers if not 0 <= v < 1]
      if bad:
        raise ValueError(f"Config key '{name}' is a rate and must be in [0, 1), got {value!r}.")
    elif NON_NEGATIVE.search(key):
      if any(v < 0 for v in numbers):
        raise ValueError(f"Config key '{name}' must be zero or positive, got {value!r}.")
    elif POSITIVE.search(key):
      if any(v <= 0 for v in numbers):
        raise ValueError(f"Config key '{name}' must be positive, got {value!r}.")


def validate_config(config: ml_collections.ConfigDict) -> None:
  """Raises ValueError naming the first missing, ill-typed or out-of-range key."""
  for key, kind in REQUIRED_KEYS.items():
    if key not in config:
      raise ValueError(f"Config has no '{key}'; every experiment config must set it.")
    value = config[key]
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
      value = float(value)
    if not isinstance(value, kind) or isinstance(value, bool):
      raise ValueError(f"Config key '{key}' must be {kind.__name__}, got {value!r}.")
  if config.learning_rate <= 0:
    raise ValueError(f'learning_rate must be positive, got {config.learning_rate}.')
  grad_clip_norm = config.get('grad_clip_norm', None)
  if grad_clip_norm is not None and not grad_clip_norm > 0:
    raise ValueError(f"Config key 'grad_clip_norm' must be positive (or None), got "
                     f'{grad_clip_norm!r}.')
  decay_factor = config.get('decay_factor', None)
  if decay_factor is not None and not decay_factor > 0:
    raise ValueError(f"Config key 'decay_factor' must be positive, got {decay_factor!r}.")
  check_ranges(config)


def read_workdir_config(workdir: str) -> ml_collections.ConfigDict:
  """The `config.json` a training run saved in `workdir`, as a ConfigDict.

  Raises:
    FileNotFoundError: `workdir` has no config.json.
    ValueError: config.json cannot be read as a JSON object (truncated or garbled); the message
      names the file and what to do.
  """
  path = os.path.join(workdir, 'config.json')
  if not os.path.isfile(path):
    raise FileNotFoundError(f'{path} not found (is {workdir} a training workdir?)')
  try:
    with open(path, encoding='utf-8') as f:
      saved = json.load(f)
  except (ValueError, UnicodeDecodeError) as error:
    problem = ' '.join(str(error).split())
  else:
    if isinstance(saved, dict):
      return ml_collections.ConfigDict(saved)
    problem = f'it holds a JSON {type(saved).__name__}, not an object'
  raise ValueError(
      f'{path} is damaged ({problem}); restore it from a copy, or delete it and run '
      f'python -m train.main with the run\'s original --config and this --workdir, which '
      f'writes it again.')
