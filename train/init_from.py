"""Fine-tuning: start a run from another workdir's weights with a new head (`config.init_from`).

`resolve_config(config)` (before anything is built): with `config.init_from=SRC` the model is
SRC's (`model`, `model_kwargs`, `num_classes` left to the new dataset) and, for an `image_folder`
dataset, so is the preprocessing (data/preprocessing.py fields of `config.data`), since the
weights only work on inputs prepared as they were trained; `config.head` becomes the name of
the model's output layer (the last layer it creates: `predictions`, `fc`, `logits`, `fc8`).
Keys that the config sets itself (training schedule, dataset, `freeze_backbone`, ...) stay.

`initialize_state(state, config)` (the trainer calls it only when the workdir has no checkpoint,
so a resumed fine-tune resumes its own): every parameter and batch-norm statistic of SRC's newest
checkpoint (train/experiment.py `restore_variables`, read-only, SRC's dataset is not opened)
replaces the fresh one, except the head's, which keeps its fresh initialisation, shaped for the
new dataset's classes. The optimiser state is initialised anew.
"""

from __future__ import annotations

import os
from typing import Any

import jax
import ml_collections
import numpy as np

import models
from train import config_checks


def head_name(model_name: str, model_kwargs: dict[str, Any], input_shape: tuple[int, ...]) -> str:
  """The output layer of a registry classifier: the last top-level module holding parameters
  (Flax records parameters in the order the layers are created)."""
  model = models.create(model_name, **model_kwargs)
  names: list[str] = []

  def init():
    variables = model.init(jax.random.PRNGKey(0), np.zeros((1,) + tuple(input_shape), np.float32))
    names.extend(variables['params'].keys())
    return variables

  jax.eval_shape(init)
  return names[-1]


def resolve_config(config: ml_collections.ConfigDict,
                   workdir: str | None = None) -> ml_collections.ConfigDict:
  """`config` with the model (and image_folder preprocessing) of `config.init_from`'s workdir;
  `config` itself when `init_from` is not set.

  A fine-tune that already has checkpoints in `workdir` does not need the source any more: if
  the source's config.json is gone, the model comes from the fine-tune's own config.json.

  Raises:
    FileNotFoundError: `init_from` is not a workdir with a config.json (and `workdir` holds no
      fine-tune of it to resume).
  """
  source_dir = config.get('init_from', None)
  if not source_dir:
    return config
  from data import preprocessing
  from train import checkpoint as checkpoint_lib
  if (workdir and not os.path.isfile(os.path.join(source_dir, 'config.json'))
      and checkpoint_lib.has_checkpoints(workdir)
      and os.path.isfile(os.path.join(workdir, 'config.json'))):
    saved = config_checks.read_workdir_config(workdir)
    if saved.get('init_from', None) == source_dir:
      config = ml_collections.ConfigDict(config.to_dict())
      for key in ('model', 'model_kwargs', 'head'):
        config[key] = saved.get(key)
      if config.dataset == 'image_folder':
        for key in preprocessing.FIELDS:
          config.data[key] = saved.data[key]
      return config
  source = config_checks.read_workdir_config(source_dir)
  p = preprocessing.for_config(source)
  config = ml_collections.ConfigDict(config.to_dict())  # unlocked, placeholders resolved
  config.model = source.model
  kwargs = dict(source.get('model_kwargs', None) or {})
  kwargs['num_classes'] = None  # the new dataset's
  config.model_kwargs = ml_collections.ConfigDict(kwargs)
  if config.dataset == 'image_folder':
    for key, value in preprocessing.as_options(p).items():
      config.data[key] = value
  given = {k: v for k, v in kwargs.items() if v is not None}
  config.head = head_name(config.model, {**given, 'num_classes': 2}, p.input_shape)
  return config


def _merge(fresh: Any, source: Any, skip: str | None, path: str = '') -> Any:
  """`source`'s leaves in `fresh`'s structure, except under top-level key `skip`."""
  if isinstance(fresh, dict):
    if not isinstance(source, dict):
      raise ValueError(f'init_from: the source has no layer {path or "root"} of this model')
    merged = {}
    for key, value in fresh.items():
      if not path and key == skip:
        merged[key] = value
      elif key not in source:
        raise ValueError(f'init_from: the source checkpoint has no {path}{key}')
      else:
        merged[key] = _merge(value, source[key], skip, f'{path}{key}/')
    return merged
  if tuple(np.shape(fresh)) != tuple(np.shape(source)):
    raise ValueError(f'init_from: {path.rstrip("/")} has shape {list(np.shape(source))} in the '
                     f'source, {list(np.shape(fresh))} here')
  return jax.numpy.asarray(source, fresh.dtype)


def initialize_state(state, config):
  """The fresh train `state` with `config.init_from`'s weights outside `config.head`."""
  from train import experiment
  source_config, _, variables, step = experiment.restore_variables(config.init_from)
  del source_config, step
  variables = jax.device_get(variables)
  head = config.get('head', None)
  params = _merge(jax.device_get(state.params), variables['params'], head)
  model_state = {name: _merge(jax.device_get(value), variables.get(name, {}), head)
                 for name, value in state.model_state.items()}
  shardings = jax.tree.map(lambda x: x.sharding, (state.params, state.model_state))
  params, model_state = jax.device_put((params, model_state), shardings)
  return state.replace(params=params, model_state=model_state, opt_state=state.tx.init(params))
