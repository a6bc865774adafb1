"""torchvision state dicts -> Flax variables of the registry's AlexNet (one tower), VGG and ResNet.

`convert(model, state_dict, like)` maps every tensor of a torchvision state dict (NumPy arrays,
torch's layouts, `features.0.weight`, `layer1.0.bn1.running_var`, ...) onto the Flax variables
`like` (shapes of `{'params': ..., 'batch_stats': ...}`) of `model`:

- convolutions: weight `[out, in, kh, kw]` (OIHW) -> kernel `[kh, kw, in, out]` (HWIO);
- linear layers: weight `[out, in]` -> kernel `[in, out]`;
- the first linear layer after the flatten: torch flattens the `[C, H, W]` map channel first,
  Flax the `[H, W, C]` map channel last, so its input dimension is permuted from (c, h, w) to
  (h, w, c) order. Without it the network still runs, on scrambled features (the classic silent
  error);
- batch norm: weight -> scale, bias -> bias, running_mean / running_var -> batch_stats mean /
  var; `num_batches_tracked` is dropped. Both use epsilon 1e-5 (models/layers.py BatchNorm).

Layer names: torchvision's `features.N` / `classifier.N` indices (AlexNet, VGG, computed from
the VGG table as torchvision's `make_layers` numbers them) and ResNet's own names (`layer1.0.conv1`
-> `layer1_0/conv1`). A state dict that does not fit raises `WeightsMismatch` naming the first
missing tensor, the first extra one, or the first of the wrong shape.
"""

from __future__ import annotations

from typing import Any, Iterator

import numpy as np

from models import cnn


class WeightsMismatch(ValueError):
  """A weights file does not fit the model; the message names the first mismatch."""


# (torch module prefix, Flax module path, kind); kind 'conv', 'linear', 'flatten_linear', 'bn'.
Layer = tuple[str, tuple[str, ...], str]


def _vgg_layers(model: cnn.VGG) -> Iterator[Layer]:
  config = cnn.VGG_CONFIGS[model.config] if isinstance(model.config, str) else model.config
  index, block, layer = 0, 1, 1
  for item in config:
    if item == 'M':
      index, block, layer = index + 1, block + 1, 1
      continue
    yield f'features.{index}', (f'block{block}_conv{layer}',), 'conv'
    if model.batch_norm:
      yield f'features.{index + 1}', (f'block{block}_bn{layer}',), 'bn'
    index += 3 if model.batch_norm else 2
    layer += 1
  names = [f'fc{i}' for i in range(1, len(model.hidden_features) + 1)] + ['predictions']
  for i, name in enumerate(names):
    yield f'classifier.{3 * i}', (name,), 'flatten_linear' if i == 0 else 'linear'


def _alexnet_layers(model: cnn.AlexNetOneTower) -> Iterator[Layer]:
  for index, name in zip((0, 3, 6, 8, 10), ('conv1', 'conv2', 'conv3', 'conv4', 'conv5')):
    yield f'features.{index}', (name,), 'conv'
  count = len(model.hidden_features) + 1
  for i in range(count):
    index = 3 * i + 1 if i < count - 1 else 3 * i  # Dropout, Linear, ReLU, ..., Linear
    yield f'classifier.{index}', (f'fc{6 + i}',), 'flatten_linear' if i == 0 else 'linear'


def _resnet_layers(model: cnn.ResNet) -> Iterator[Layer]:
  yield 'conv1', ('conv1',), 'conv'
  yield 'bn1', ('bn1',), 'bn'
  for stage, blocks in enumerate(model.stage_sizes, 1):
    for block in range(blocks):
      prefix, name = f'layer{stage}.{block}', f'layer{stage}_{block}'
      for part, kind in (('conv1', 'conv'), ('bn1', 'bn'), ('conv2', 'conv'), ('bn2', 'bn'),
                         ('downsample.0', 'conv'), ('downsample.1', 'bn')):
        yield f'{prefix}.{part}', (name, part.replace('.', '_')), kind
  yield 'fc', ('fc',), 'linear'


def layers(model) -> list[Layer]:
  """The torchvision layers of a registry model, in torchvision's order.

  Raises:
    ValueError: the model is not one torchvision has (AlexNet one tower, VGG, ResNet with the
      'imagenet' stem).
  """
  if isinstance(model, cnn.VGG):
    return list(_vgg_layers(model))
  if isinstance(model, cnn.AlexNetOneTower):
    return list(_alexnet_layers(model))
  if isinstance(model, cnn.ResNet) and model.stem == 'imagenet':
    return list(_resnet_layers(model))
  raise ValueError(f'torchvision has no weights for a {type(model).__name__} like this one; '
                   'import alexnet_onetower, vgg11 ... vgg19(_bn), resnet18 or resnet34')


def _get(tree: dict, path: tuple[str, ...]) -> Any:
  for key in path:
    if not isinstance(tree, dict) or key not in tree:
      return None
    tree = tree[key]
  return tree


def _set(tree: dict, path: tuple[str, ...], value: Any) -> None:
  for key in path[:-1]:
    tree = tree.setdefault(key, {})
  tree[path[-1]] = value


def _shape(x) -> list[int]:
  return list(np.shape(x))


def _torch_shape(kind: str, name: str, flax_shape: tuple[int, ...]) -> list[int]:
  """The torch shape of a tensor whose Flax counterpart has `flax_shape`."""
  if name == 'weight' and kind == 'conv':
    kh, kw, cin, cout = flax_shape
    return [cout, cin, kh, kw]
  if name == 'weight' and kind in ('linear', 'flatten_linear'):
    return [flax_shape[1], flax_shape[0]]
  return list(flax_shape)


def _expected(kind: str, module: dict) -> dict[str, tuple[str, str]]:
  """torch tensor name -> (collection, Flax leaf name) for one layer."""
  if kind == 'bn':
    return {'weight': ('params', 'scale'), 'bias': ('params', 'bias'),
            'running_mean': ('batch_stats', 'mean'), 'running_var': ('batch_stats', 'var')}
  names = {'weight': ('params', 'kernel')}
  if 'bias' in module:
    names['bias'] = ('params', 'bias')
  return names


def convert(model, state_dict: dict[str, np.ndarray], like: dict[str, Any],
            flatten_chw: bool = True) -> dict[str, Any]:
  """torchvision `state_dict` (NumPy arrays) -> Flax variables shaped like `like`.

  Args:
    model: the registry model (its architecture fixes torchvision's layer indices).
    state_dict: tensor name -> array, torch layouts.
    like: `{'params': ..., 'batch_stats': ...}` with leaves that have `.shape` (e.g. from
      `jax.eval_shape(model.init, ...)`).
    flatten_chw: permute the first dense layer's input from torch's (c, h, w) flatten order
      (True: what the file needs; False only shows, in tests, what goes wrong without it).

  Returns:
    Variables with the structure of `like`, float32 NumPy leaves.

  Raises:
    WeightsMismatch: a tensor the model needs is missing, a tensor the model has no place for is
      there, or a tensor has another shape than the model's (first one found, in that order).
  """
  plan = []  # (torch key, collection, flax path, kind, torch name)
  for prefix, path, kind in layers(model):
    module = _get(like['params'], path)
    if module is None:
      if prefix.endswith(('downsample.0', 'downsample.1')):
        continue  # a block without projection
      raise WeightsMismatch(f'{type(model).__name__} has no layer {"/".join(path)}')
    for name, (collection, leaf) in _expected(kind, module).items():
      plan.append((f'{prefix}.{name}', collection, path + (leaf,), kind, name))
  given = {key for key in state_dict if not key.endswith('num_batches_tracked')}
  wanted = [entry[0] for entry in plan]
  missing = [key for key in wanted if key not in state_dict]
  if missing:
    raise WeightsMismatch(f'the file has no tensor {missing[0]}, which the model needs '
                          f'({len(missing)} of {len(wanted)} missing); is it a file of this '
                          'architecture?')
  extra = sorted(given - set(wanted))
  if extra:
    raise WeightsMismatch(f'the file has a tensor {extra[0]} that the model has no place for '
                          f'({len(extra)} extra); is it a file of this architecture?')
  out: dict[str, Any] = {}
  channels = None  # output channels of the last convolution so far: the flattened map's
  for key, collection, path, kind, name in plan:
    target = _get(like[collection], path)
    if kind == 'conv' and name == 'weight':
      channels = int(target.shape[-1])
    array = np.asarray(state_dict[key], np.float32)
    expected = _torch_shape(kind, name, tuple(target.shape))
    if _shape(array) != expected:
      raise WeightsMismatch(f'tensor {key} has shape {_shape(array)}, the model expects '
                            f'{expected}')
    if name == 'weight' and kind == 'conv':
      array = array.transpose(2, 3, 1, 0)
    elif name == 'weight' and kind in ('linear', 'flatten_linear'):
      if kind == 'flatten_linear' and flatten_chw:
        array = permute_flatten(array, channels)
      array = array.T
    _set(out.setdefault(collection, {}), path, np.ascontiguousarray(array))
  return out


def permute_flatten(weight: np.ndarray, channels: int) -> np.ndarray:
  """A linear weight `[out, C*H*W]` reading torch's (c, h, w) flatten -> `[out, H*W*C]` reading
  the (h, w, c) flatten of the same map (H*W = in / C; square or not, only the product matters)."""
  out, features = weight.shape
  if features % channels:
    raise WeightsMismatch(f'a dense input of {features} features is not a flattened map of '
                          f'{channels} channels')
  return weight.reshape(out, channels, features // channels).transpose(0, 2, 1).reshape(out, -1)
