"""Import published weights into a workdir that every command reads like a trained run.

  python -m train.import_weights --source=torchvision --file=vgg16-397923af.pth --model=vgg16 \
      --workdir=workdirs/vgg16_torchvision
  python -m train.import_weights --source=keras \
      --file=~/.keras/models/vgg16_weights_tf_dim_ordering_tf_kernels.h5 --model=vgg16 \
      --workdir=workdirs/vgg16_keras

Sources and models:
  torchvision: `.pth` state dicts (read with `torch.load(..., weights_only=True)`) or
    `.safetensors` (read with `safetensors.numpy`, no PyTorch needed) of `alexnet_onetower`,
    `vgg11` ... `vgg19`, `vgg11_bn` ... `vgg19_bn`, `resnet18`, `resnet34`
    (train/weights_torchvision.py converts the layouts);
  keras: `.h5`, `.weights.h5` or `.keras` files of `vgg16` and `vgg19` (train/weights_keras.py).

The workdir gets what a training run leaves: `config.json` (the resolved config: the model, the
`imagenet2012_published` dataset with the preprocessing the weights expect, data/preprocessing.py)
and an orbax checkpoint at step 0 written by train/checkpoint.py. `train.evaluate` then scores
the weights on the ImageNet validation split, `train.predict` classifies image files, and
configs/finetune_folder.py fine-tunes from it. VGG imported from torchvision gets torchvision's
adaptive average pool to 7x7 (`model_kwargs.pooled_size=7`), so it runs on any input of 32x32 or
more, as torchvision's does.

A file that does not fit the model is one line, `error: ...`, naming the first mismatch (exit
code 1); a bad command line exits with 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any, Sequence

import numpy as np

from train import cli

SOURCES = {
    'torchvision': ('alexnet_onetower', 'vgg11', 'vgg13', 'vgg16', 'vgg19', 'vgg11_bn',
                    'vgg13_bn', 'vgg16_bn', 'vgg19_bn', 'resnet18', 'resnet34'),
    'keras': ('vgg16', 'vgg19'),
}
PRESET = {'torchvision': 'torchvision', 'keras': 'keras_caffe'}
DATASET = 'imagenet2012_published'


def read_state_dict(path: str) -> dict[str, np.ndarray]:
  """A torchvision state dict as NumPy arrays, from `.safetensors` (no PyTorch needed) or a
  `.pth` / `.pt` file (PyTorch, `weights_only=True`)."""
  if path.endswith('.safetensors'):
    from safetensors.numpy import load_file
    try:
      return dict(load_file(path))
    except Exception as error:  # safetensors raises its own SafetensorError
      raise ValueError(f'cannot read {path} as safetensors: {cli.one_line(error)}') from None
  try:
    import torch
  except ImportError:
    raise ValueError(f'reading {path} needs PyTorch (pip install torch); or convert it to '
                     '.safetensors, which is read without it') from None
  try:
    state = torch.load(path, map_location='cpu', weights_only=True)
  except Exception as error:  # pickle, zip and torch errors of every kind
    raise ValueError(f'cannot read {path} as a PyTorch state dict: {cli.one_line(error)}') from None
  if not isinstance(state, dict) or not all(hasattr(v, 'numpy') for v in state.values()):
    raise ValueError(f'{path} does not hold a state dict (tensor name -> tensor)')
  return {key: value.detach().float().numpy() if value.is_floating_point()
          else value.detach().numpy() for key, value in state.items()}


def import_config(source: str, model: str, **model_kwargs):
  """The config of an imported workdir: `model` on `imagenet2012_published`, preprocessed as
  `source` expects; `model_kwargs` (e.g. `num_classes`) override the model's defaults."""
  import data
  from configs import common
  from data import preprocessing
  if source not in SOURCES:
    raise cli.UsageError(f"--source must be one of {', '.join(SOURCES)}, got '{source}'")
  if model not in SOURCES[source]:
    raise cli.UsageError(f"{source} weights can be imported into {', '.join(SOURCES[source])}; "
                         f"got --model={model}")
  config = common.base()
  config.dataset = DATASET
  config.data = data.options(DATASET, augment=True,
                             **preprocessing.as_options(preprocessing.PRESETS[PRESET[source]]))
  config.model = model
  if source == 'torchvision' and model.startswith('vgg'):
    model_kwargs = {'pooled_size': 7, **model_kwargs}
  # num_classes is written out, so the workdir's model is known without opening ImageNet.
  model_kwargs = {'num_classes': 1000, **model_kwargs}
  config.model_kwargs = common.model_kwargs(model, **model_kwargs)
  config.batch_size = 64
  config.learning_rate = 0.01
  config.weights_source = source
  return config


def _write_config(config, workdir: str) -> None:
  """config.json as the trainer writes it."""
  path = os.path.join(workdir, 'config.json')
  with open(path + '.tmp', 'w') as f:
    f.write(config.to_json_best_effort(indent=2, sort_keys=True))
  os.replace(path + '.tmp', path)


def convert(source: str, path: str, model, like: dict[str, Any],
            state_dict: dict[str, np.ndarray] | None = None) -> dict[str, Any]:
  """The weights file at `path` as Flax variables of `model` shaped like `like`."""
  if source == 'keras':
    from train import weights_keras
    return weights_keras.convert(path, like)
  from train import weights_torchvision
  return weights_torchvision.convert(model, read_state_dict(path) if state_dict is None
                                     else state_dict, like)


def import_weights(source: str, path: str, model_name: str, workdir: str,
                   **model_kwargs) -> str:
  """Converts the weights file at `path` into a new workdir; returns the workdir.

  Raises:
    cli.UsageError: an unknown source or model, a missing file, a workdir that has checkpoints.
    weights_torchvision.WeightsMismatch: the file does not fit the model.
  """
  import jax
  import models
  from train import checkpoint as checkpoint_lib
  from train import experiment
  from train import optim
  from train import platform
  from train import tasks as tasks_lib

  path = os.path.expanduser(path)
  config = import_config(source, model_name, **model_kwargs)
  if not os.path.isfile(path):
    raise cli.UsageError(f'--file={path}: no such file')
  if checkpoint_lib.has_checkpoints(workdir):
    raise cli.UsageError(f'workdir {workdir} already has checkpoints; use a new --workdir')
  kwargs = {k: v for k, v in config.model_kwargs.items() if v is not None}
  model = models.create(model_name, **kwargs)
  size = config.data.image_size
  sample = {'image': np.zeros((1, size, size, 3), np.float32), 'label': np.zeros((1,), np.int32)}
  like = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), sample['image']))
  variables = convert(source, path, model, like)

  os.makedirs(workdir, exist_ok=True)
  tx = optim.create_optimizer(config)
  with config.unlocked():  # the state's shapes do not depend on the batch; init one example
    small = config.copy_and_resolve_references()
    small.batch_size = 1
  if source == 'torchvision':  # adaptive pools: the shapes do not depend on the image size
    sample = {**sample, 'image': np.zeros((1, 64, 64, 3), np.float32)}
  state, _ = experiment.create_train_state(small, model, tx, sample,
                                           tasks_lib.create('classification'),
                                           platform.make_mesh())
  params = jax.tree.map(lambda x, ref: jax.numpy.asarray(x, ref.dtype), variables['params'],
                        state.params)
  model_state = dict(state.model_state)
  if 'batch_stats' in model_state:
    model_state['batch_stats'] = jax.tree.map(lambda x, ref: jax.numpy.asarray(x, ref.dtype),
                                              variables['batch_stats'],
                                              model_state['batch_stats'])
  state = state.replace(params=params, model_state=model_state, opt_state=tx.init(params))
  _write_config(config, workdir)
  checkpointer = checkpoint_lib.Checkpointer(workdir)
  try:
    checkpointer.save(0, state)
  finally:
    checkpointer.close()
  return workdir


def _parser() -> argparse.ArgumentParser:
  parser = cli.Parser(prog='python -m train.import_weights',
                      description=__doc__.split('\n\n')[0])
  parser.add_argument('--source', required=True, choices=sorted(SOURCES))
  parser.add_argument('--file', required=True, help='the weights file')
  parser.add_argument('--model', required=True, help='registry name, e.g. vgg16')
  parser.add_argument('--workdir', required=True, help='the new workdir')
  return parser


def main(argv: Sequence[str] | None = None) -> int:
  args = _parser().parse_args(argv)

  def command():
    workdir = import_weights(args.source, args.file, args.model, args.workdir)
    print(f'Imported {args.source} weights {args.file} into {workdir} ({args.model}); '
          f'evaluate with python -m train.evaluate --workdir={workdir}')

  return cli.run(command)


if __name__ == '__main__':
  sys.exit(main())
