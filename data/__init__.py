"""Input pipelines. `create(config)` returns a `Dataset` (train and eval sources plus typed facts).

Each pipeline owns its configuration: a frozen dataclass of options (registered with it below),
whose fields, each documented in the class docstring, are the only keys the pipeline reads and
whose defaults are the only defaults. An experiment config names the pipeline in `config.dataset`
and holds its options in the section `config.data`, built with `options`:

    config.dataset = 'fashion_mnist'
    config.data = data.options(config.dataset, augment=True)

`config.data` then lists every option (the rest at their defaults), so any of them can be set from
the command line (`--config.data.augment=False`) and a misspelled one is refused. `create(config)`
turns `config.data` back into the options dataclass, checking names and types.

Every pipeline function has the signature

    create(options, *, data_dir=None, batch_size=None) -> Dataset

with `options` its options dataclass and, from the trainer's config, passed explicitly by
`create`: `data_dir`, the tfds data directory (None: `$TFDS_DATA_DIR` or `~/tensorflow_datasets`;
pipelines that read no files ignore it), and `batch_size`, the global training batch size (only the
language-model pipelines use it: they cut their training stream into `batch_size` rows, and raise
ValueError without it).

Pipelines are imported lazily, so the default digits run never pays for importing
tensorflow-datasets.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import logging
import types
import typing
from typing import Any, Mapping

from data.pipeline import Dataset

log = logging.getLogger(__name__)


class DatasetNotFoundError(FileNotFoundError):
  """A dataset is not prepared where the config points; the message says how to prepare it."""


# name -> ("module:function", "module:OptionsClass"): the pipeline and its options dataclass.
_PIPELINES = {
    'digits': ('data.digits:create', 'data.digits:Options'),
    'fashion_mnist': ('data.fashion_mnist:create', 'data.fashion_mnist:Options'),
    'mnist': ('data.images:create_mnist', 'data.images:MnistOptions'),
    'cifar10': ('data.images:create_cifar10', 'data.images:Cifar10Options'),
    'imagenet2012': ('data.images:create_imagenet2012', 'data.images:ImageNetOptions'),
    'imagenet2012_published': ('data.published:create', 'data.published:Options'),
    'image_folder': ('data.image_folder:create', 'data.image_folder:Options'),
    'addition': ('data.synthetic:create_addition', 'data.synthetic:AdditionOptions'),
    'reversal': ('data.synthetic:create_reversal', 'data.synthetic:ReversalOptions'),
    'dates': ('data.synthetic:create_dates', 'data.synthetic:ProblemSetOptions'),
    'movie_reviews': ('data.movie_reviews:create', 'data.movie_reviews:Options'),
    'shakespeare': ('data.shakespeare:create', 'data.shakespeare:Options'),
    'imdb_reviews': ('data.text_tfds:create_imdb_reviews', 'data.text_tfds:ImdbOptions'),
    'glue_sst2': ('data.text_tfds:create_sst2', 'data.text_tfds:Sst2Options'),
    'tiny_shakespeare': ('data.text_tfds:create_tiny_shakespeare',
                         'data.text_tfds:TinyShakespeareOptions'),
    'tfds_text_lm': ('data.text_tfds:create_language_model', 'data.text_tfds:TextLmOptions'),
    'ding_en_de': ('data.translation:create_ding', 'data.translation:DingOptions'),
    'tfds_translation': ('data.translation:create_tfds', 'data.translation:TfdsTranslationOptions'),
    'timeseries': ('data.timeseries:create', 'data.timeseries:Options'),
    'digit_strips': ('data.digit_strips:create', 'data.digit_strips:Options'),
    'coco_captions': ('data.coco_captions:create', 'data.coco_captions:Options'),
}


def names() -> list[str]:
  return sorted(_PIPELINES)


def _check_name(name: str) -> None:
  if name not in _PIPELINES:
    close = difflib.get_close_matches(str(name), _PIPELINES, n=1)
    hint = f" Did you mean '{close[0]}'?" if close else ''
    raise ValueError(f"Unknown dataset '{name}'.{hint} Known datasets: {', '.join(names())}.")


def _load(target: str) -> Any:
  module_name, attribute = target.split(':')
  return getattr(importlib.import_module(module_name), attribute)


def options_class(name: str) -> type:
  """The frozen dataclass of pipeline `name`'s options (its docstring documents each field)."""
  _check_name(name)
  return _load(_PIPELINES[name][1])


def _hints(cls: type) -> dict[str, Any]:
  hints = typing.get_type_hints(cls)
  return {field.name: hints[field.name] for field in dataclasses.fields(cls)}


def _type_name(hint: Any) -> str:
  return getattr(hint, '__name__', None) or str(hint).replace('typing.', '')


def _convert(name: str, key: str, value: Any, hint: Any) -> Any:
  """`value` as option `key` of type `hint` (bool, int, float, str, tuple[X, ...], X | None).

  An int is accepted for a float, and a list for a tuple (JSON has no tuples).

  Raises:
    ValueError: `value` does not have that type.
  """
  origin = typing.get_origin(hint)
  if origin in (typing.Union, types.UnionType):
    args = typing.get_args(hint)
    if value is None and type(None) in args:
      return None
    for arg in args:
      if arg is type(None):
        continue
      try:
        return _convert(name, key, value, arg)
      except ValueError:
        pass
  elif origin is tuple:
    if isinstance(value, (tuple, list)):
      item = typing.get_args(hint)[0]
      return tuple(_convert(name, key, v, item) for v in value)
  elif hint is bool:
    if isinstance(value, bool):
      return value
  elif hint is int:
    if isinstance(value, int) and not isinstance(value, bool):
      return value
  elif hint is float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
      return float(value)
  elif isinstance(value, hint):
    return value
  raise ValueError(f"Data option '{key}' of dataset '{name}' must be {_type_name(hint)}, "
                   f'got {value!r}.')


def _unknown_key(name: str, key: str, valid) -> ValueError:
  close = difflib.get_close_matches(key, valid, n=1)
  hint = f" Did you mean '{close[0]}'?" if close else ''
  return ValueError(f"Dataset '{name}' has no data option '{key}'.{hint} Its options: "
                    f"{', '.join(valid)}.")


def parse_options(name: str, values: Mapping[str, Any] | None = None):
  """Pipeline `name`'s options dataclass with `values` (e.g. `config.data`) over its defaults.

  Raises:
    ValueError: an unknown dataset or option (the message lists the valid ones), or a value of
      the wrong type.
  """
  cls = options_class(name)
  hints = _hints(cls)
  if values is not None and hasattr(values, 'to_dict'):
    values = values.to_dict()  # a ConfigDict: field references resolved
  given = dict(values or {})
  for key in given:
    if key not in hints:
      raise _unknown_key(name, key, list(hints))
  return cls(**{key: _convert(name, key, value, hints[key]) for key, value in given.items()})


def options(name: str, **overrides):
  """Every option of pipeline `name` as an `ml_collections.ConfigDict`: defaults, then `overrides`.

  For config files: `config.data = data.options(config.dataset, augment=True)`. Options whose
  value is None are typed placeholders, so each can be set from the command line.

  Raises:
    ValueError: an unknown dataset or option, or a value of the wrong type.
  """
  import ml_collections
  from ml_collections.config_dict import placeholder

  parsed = parse_options(name, overrides)
  section = ml_collections.ConfigDict()
  for key, hint in _hints(type(parsed)).items():
    value = getattr(parsed, key)
    if value is None:
      kinds = [a for a in typing.get_args(hint) if a is not type(None)]
      kind = (typing.get_origin(kinds[0]) or kinds[0]) if len(kinds) == 1 else object
      section[key] = placeholder(kind)
    else:
      section[key] = value
  return section


def create(config) -> Dataset:
  """Builds the input pipeline named by `config.dataset` with the options in `config.data`.

  Reads from `config`: `dataset`; `data` (the options; absent: every default); `data_dir` and
  `batch_size`, passed to the pipeline (module docstring); and `num_epochs`, optional: when set,
  a warning is logged if `num_train_steps` is not that many passes over the training split.

  Raises:
    ValueError: an unknown dataset or data option, a value of the wrong type, or a data option set
      at the top level of `config` instead of in `config.data`.
  """
  name = config.get('dataset', None)
  _check_name(name)
  valid = list(_hints(options_class(name)))
  misplaced = [key for key in valid if key in config]
  if misplaced:
    raise ValueError(f"Config key '{misplaced[0]}' is a data option of dataset '{name}': set it "
                     f'in the data section, config.data.{misplaced[0]} '
                     f'(--config.data.{misplaced[0]}=...).')
  parsed = parse_options(name, config.get('data', None))
  batch_size = config.get('batch_size', None)
  dataset = _load(_PIPELINES[name][0])(parsed, data_dir=config.get('data_dir', None),
                                       batch_size=batch_size)
  epochs, steps = config.get('num_epochs', None), config.get('num_train_steps', None)
  if epochs and steps and batch_size:
    per_epoch = len(dataset.train) // batch_size
    if steps != epochs * per_epoch:
      log.warning('num_train_steps %d is %.2f epochs of this dataset (%d steps per epoch); for '
                  'the %d epochs of num_epochs pass --config.num_train_steps=%d.', steps,
                  steps / max(per_epoch, 1), per_epoch, epochs, epochs * per_epoch)
  return dataset
