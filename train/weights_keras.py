"""Keras VGG-16 / VGG-19 weights (`keras.applications`) -> Flax variables of `vgg16` / `vgg19`.

Three file formats, read with h5py (no Keras or TensorFlow needed):

- `.h5`, the legacy HDF5 weights Keras publishes (`vgg16_weights_tf_dim_ordering_tf_kernels.h5`,
  what `keras.applications.VGG16(weights='imagenet')` caches in `~/.keras/models/`) or a legacy
  whole-model file (`model.save('x.h5')`, weights under `model_weights/`): a group per layer
  name whose attribute `weight_names` lists its arrays, kernel first, then bias;
- `.weights.h5` (Keras 3 `model.save_weights`): `layers/<name>/vars/<i>`, where the names are
  the layers' classes numbered in model order (`conv2d`, `conv2d_1`, ..., `dense_2`), so the
  `i`-th convolution of the file is the `i`-th of the network;
- `.keras` (Keras 3 `model.save`): a zip holding that `model.weights.h5`.

Keras and the Flax VGG agree on layouts: kernels HWIO, dense kernels `[in, out]`, and both
flatten the final `[7, 7, 512]` map channel last, so nothing is permuted. Layer names are Keras's
(`block1_conv1` ... `block5_conv3`, `fc1`, `fc2`, `predictions`) in both. A file that does not
fit raises `weights_torchvision.WeightsMismatch` naming the first mismatch.
"""

from __future__ import annotations

import io
import re
import zipfile
from typing import Any

import numpy as np

from train.weights_torchvision import WeightsMismatch


def _layer_order(params: dict) -> tuple[list[str], list[str]]:
  """The Flax VGG's convolution and dense layer names, in network order."""
  def key(name):
    match = re.fullmatch(r'block(\d+)_conv(\d+)', name)
    return (int(match[1]), int(match[2])) if match else (0, 0)
  convs = sorted((n for n in params if re.fullmatch(r'block\d+_conv\d+', n)), key=key)
  denses = sorted((n for n in params if re.fullmatch(r'fc\d+', n)), key=lambda n: int(n[2:]))
  return convs, denses + ['predictions']


def _legacy(group) -> dict[str, list[np.ndarray]]:
  if 'model_weights' in group:
    group = group['model_weights']
  names = [n.decode() if isinstance(n, bytes) else str(n) for n in group.attrs['layer_names']]
  layers = {}
  for name in names:
    weight_names = [w.decode() if isinstance(w, bytes) else str(w)
                    for w in group[name].attrs.get('weight_names', [])]
    if weight_names:
      layers[name] = [np.asarray(group[name][w]) for w in weight_names]
  return layers


def _keras3(group, convs: list[str], denses: list[str]) -> dict[str, list[np.ndarray]]:
  """Keras 3 files name layers by class and position; maps them onto the Flax names."""
  found: dict[str, list[tuple[int, list[np.ndarray]]]] = {}
  for name, layer in group['layers'].items():
    if 'vars' not in layer or not len(layer['vars']):
      continue  # input, pooling, flatten
    match = re.fullmatch(r'(.+?)(?:_(\d+))?', name)
    arrays = [np.asarray(layer['vars'][str(i)]) for i in range(len(layer['vars']))]
    found.setdefault(match[1], []).append((int(match[2] or 0), arrays))
  kinds = set(found) - {'conv2d', 'dense'}
  if kinds:
    raise WeightsMismatch(f"the file has layers of a kind VGG does not have ('{sorted(kinds)[0]}')")
  layers = {}
  for kind, names in (('conv2d', convs), ('dense', denses)):
    ordered = [arrays for _, arrays in sorted(found.get(kind, []), key=lambda item: item[0])]
    if len(ordered) != len(names):
      raise WeightsMismatch(f'the file has {len(ordered)} {kind} layers, the model '
                            f'{len(names)} ({names[min(len(ordered), len(names) - 1)]} ...)')
    layers.update(zip(names, ordered))
  return layers


def read(path: str, params_like: dict) -> dict[str, list[np.ndarray]]:
  """Layer name (the Flax VGG's) -> [kernel, bias] from a Keras weights file."""
  import h5py
  convs, denses = _layer_order(params_like)
  if path.endswith('.keras'):
    try:
      with zipfile.ZipFile(path) as archive:
        payload = archive.read('model.weights.h5')
    except (zipfile.BadZipFile, KeyError) as error:
      raise WeightsMismatch(f'{path} is not a Keras 3 .keras archive with model.weights.h5 '
                            f'({error})') from None
    with h5py.File(io.BytesIO(payload), 'r') as f:
      return _keras3(f, convs, denses)
  try:
    f = h5py.File(path, 'r')
  except OSError as error:
    raise WeightsMismatch(f'{path} is not an HDF5 file ({" ".join(str(error).split())})') from None
  with f:
    if 'layers' in f:
      return _keras3(f, convs, denses)
    if 'layer_names' in f.attrs or 'model_weights' in f:
      return _legacy(f)
  raise WeightsMismatch(f'{path} holds no Keras weights (neither layer_names nor layers/)')


def convert(path: str, like: dict[str, Any]) -> dict[str, Any]:
  """The Keras weights file at `path` -> `{'params': ...}` shaped like `like['params']`.

  Raises:
    WeightsMismatch: a layer is missing, extra, or has arrays of other shapes.
  """
  params_like = like['params']
  layers = read(path, params_like)
  convs, denses = _layer_order(params_like)
  for name in convs + denses:
    if name not in layers:
      raise WeightsMismatch(f'the file has no layer {name}, which the model needs (an include_top'
                            '=False "notop" file, or another architecture?)')
  extra = sorted(set(layers) - set(convs) - set(denses))
  if extra:
    raise WeightsMismatch(f'the file has a layer {extra[0]} that the model has no place for')
  params = {}
  for name in convs + denses:
    arrays = layers[name]
    target = params_like[name]
    want = [tuple(target['kernel'].shape), tuple(target['bias'].shape)]
    have = [tuple(a.shape) for a in arrays]
    if have != want:
      raise WeightsMismatch(f'layer {name} has arrays of shapes {[list(s) for s in have]}, the '
                            f'model expects {[list(s) for s in want]}')
    params[name] = {'kernel': np.asarray(arrays[0], np.float32),
                    'bias': np.asarray(arrays[1], np.float32)}
  return {'params': params}
