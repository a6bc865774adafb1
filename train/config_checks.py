"""Checks on an experiment config that run before anything is built or compiled.

`validate_config(config)` raises ValueError naming the first key that is missing, of the wrong
type, or out of range: counts, sizes, intervals and step numbers must be positive (warm-up and
other offsets non-negative), rates such as dropout must lie in [0, 1). The rules go by the key's
name, so they cover every config, `model_kwargs` and `task_kwargs` alike, including keys added
later. `read_workdir_config(workdir)` reads a training workdir's `config.json`, turning a damaged
file into a ValueError that names it and says what to do. `load_config_file('PATH[:variant]')`
loads an experiment config file, the way `--config` does, with one-line errors.
"""

from __future__ import annotations

import difflib
import glob
import inspect
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


class ConfigFileError(ValueError):
  """A config file given as `--config` cannot be used; the message says why, on one line."""


def _one_line(error: BaseException) -> str:
  return ' '.join(str(error).split()) or type(error).__name__


def known_configs() -> list[str]:
  """The experiment config files of the repository's `configs/` (file names)."""
  import configs
  directory = os.path.dirname(configs.__file__)
  return sorted(os.path.basename(p) for p in glob.glob(os.path.join(directory, '*.py'))
                if not os.path.basename(p).startswith(('_', 'common')))


def load_config_file(spec: str) -> ml_collections.ConfigDict:
  """Loads `PATH[:variant]` the way `--config` does; returns `get_config([variant])`.

  Raises ConfigFileError with one line for what a user can get wrong: a missing file or a
  directory, a file that is not a Python config (JSON, text), one that fails to load, one without
  `get_config`, a variant of a config that has none, a variant it does not know (the config's
  own message names the valid ones), and a `get_config` returning something else than a
  ConfigDict.
  """
  import importlib.machinery
  import importlib.util

  path, _, variant = spec.partition(':')
  has_variant = ':' in spec
  if os.path.isdir(path):
    raise ConfigFileError(f'--config={spec}: {path} is a directory; give a config file, e.g. '
                          f'configs/default.py')
  if not os.path.isfile(path):
    close = difflib.get_close_matches(os.path.basename(path), known_configs(), n=1)
    hint = f' Did you mean configs/{close[0]}?' if close else ''
    raise ConfigFileError(f'config file {path} not found.{hint} Configs: '
                          f'{", ".join(known_configs())}')
  if not path.endswith('.py'):
    raise ConfigFileError(
        f'--config={spec}: not a Python config file; --config takes configs/NAME.py[:variant], '
        f'a module whose get_config() returns the experiment config (override single keys with '
        f'--config.KEY=VALUE)')
  try:
    loader = importlib.machinery.SourceFileLoader('_checked_config', path)
    module = importlib.util.module_from_spec(importlib.util.spec_from_loader(loader.name, loader))
    loader.exec_module(module)
  except Exception as error:  # a config file can raise anything while it loads
    raise ConfigFileError(f'--config={spec}: cannot load {path}: {type(error).__name__}: '
                          f'{_one_line(error)}') from None
  get_config = getattr(module, 'get_config', None)
  if not callable(get_config):
    raise ConfigFileError(f'--config={spec}: {path} defines no get_config() function, so it '
                          f'is not an experiment config (see configs/default.py)')
  try:
    takes_variant = bool(inspect.signature(get_config).parameters)
  except (TypeError, ValueError):
    takes_variant = True
  if has_variant and not takes_variant:
    raise ConfigFileError(f"--config={spec}: {path} has no variants; use --config={path}")
  try:
    config = get_config(variant) if has_variant else get_config()
  except Exception as error:  # the config's own message, e.g. naming its variants
    message = _one_line(error)
    if has_variant and isinstance(error, (ValueError, KeyError)):
      raise ConfigFileError(f'--config={spec}: {message}') from None
    raise ConfigFileError(f'--config={spec}: get_config() failed: {type(error).__name__}: '
                          f'{message}') from None
  if not isinstance(config, ml_collections.ConfigDict):
    raise ConfigFileError(f'--config={spec}: get_config() returned a {type(config).__name__}, '
                          f'not an ml_collections.ConfigDict')
  return config
