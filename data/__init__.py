"""Input pipelines. `create(config)` returns a `Dataset` (train and eval sources plus metadata).

Pipelines are imported lazily, so the default digits run never pays for importing
tensorflow-datasets.
"""

from __future__ import annotations

import difflib
import importlib

from data.pipeline import Dataset


class DatasetNotFoundError(FileNotFoundError):
  """A dataset is not prepared where the config points; the message says how to prepare it."""


# name -> "module:function"; each function takes the config and returns a `Dataset`.
_PIPELINES = {
    'digits': 'data.digits:create',
    'fashion_mnist': 'data.fashion_mnist:create',
    'mnist': 'data.images:create_mnist',
    'cifar10': 'data.images:create_cifar10',
    'imagenet2012': 'data.images:create_imagenet2012',
    'addition': 'data.synthetic:create_addition',
    'reversal': 'data.synthetic:create_reversal',
    'dates': 'data.synthetic:create_dates',
    'movie_reviews': 'data.movie_reviews:create',
    'shakespeare': 'data.shakespeare:create',
    'imdb_reviews': 'data.text_tfds:create_imdb_reviews',
    'glue_sst2': 'data.text_tfds:create_sst2',
    'tiny_shakespeare': 'data.text_tfds:create_tiny_shakespeare',
    'tfds_text_lm': 'data.text_tfds:create_language_model',
    'ding_en_de': 'data.translation:create_ding',
    'tfds_translation': 'data.translation:create_tfds',
    'timeseries': 'data.timeseries:create',
    'digit_strips': 'data.digit_strips:create',
    'coco_captions': 'data.coco_captions:create',
}


def names() -> list[str]:
  return sorted(_PIPELINES)


def create(config) -> Dataset:
  """Builds the input pipeline named by `config.dataset`."""
  name = config.dataset
  if name not in _PIPELINES:
    close = difflib.get_close_matches(name, _PIPELINES, n=1)
    hint = f" Did you mean '{close[0]}'?" if close else ''
    raise ValueError(f"Unknown dataset '{name}'.{hint} Known datasets: {', '.join(names())}.")
  module_name, function_name = _PIPELINES[name].split(':')
  return getattr(importlib.import_module(module_name), function_name)(config)
