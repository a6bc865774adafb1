"""Tests of models/cnn.py: exact parameter counts, layer geometry and names, tiny train steps."""

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import models
from models import cnn

# Weights and biases, BN running statistics excluded, at MODEL_INFO's input size.
EXPECTED_PARAMS = {
    'alexnet': 60_965_224,
    'alexnet_onetower': 61_100_840,
    'vgg11': 132_863_336,
    'vgg13': 133_047_848,
    'vgg16': 138_357_544,
    'vgg19': 143_667_240,
    'vgg11_bn': 132_868_840,
    'vgg13_bn': 133_053_736,
    'vgg16_bn': 138_365_992,
    'vgg19_bn': 143_678_248,
    'resnet18': 11_689_512,
    'resnet34': 21_797_672,
    'convnet': 824_458,
    'lenet5': 61_706,
    'vgg_fashion': 2_331_338,
    'vgg_tiny': 3_706,
}


def _count(tree):
  return sum(int(np.prod(leaf.shape)) for leaf in jax.tree.leaves(tree))


def _shapes(model, input_shape, **kwargs):
  """Variable shapes from `init`, without materialising any weight."""
  return jax.eval_shape(lambda x: model.init(jax.random.key(0), x, **kwargs),
                        jax.ShapeDtypeStruct(input_shape, jnp.float32))


def _init(model, x):
  # Partitionable threefry makes XLA compile several random draws in one program 3-10x slower.
  with jax.threefry_partitionable(False):
    return jax.jit(model.init)(jax.random.key(0), x)


def _images(shape, seed=0):
  return jnp.asarray(np.random.default_rng(seed).standard_normal(shape, np.float32))


def _feature_shapes(variables):
  return {name: out['__call__'][0].shape for name, out in variables['intermediates'].items()
          if '__call__' in out}


def test_registry_holds_the_zoo():
  assert set(cnn.MODELS) == set(EXPECTED_PARAMS)
  assert set(models.names()) >= set(EXPECTED_PARAMS)
  assert set(cnn.MODEL_INFO) == set(EXPECTED_PARAMS)
  assert set(cnn.PUBLISHED_PARAM_COUNTS) >= {name for name in EXPECTED_PARAMS
                                             if name.startswith('vgg1')} | {'alexnet_onetower'}


@pytest.mark.parametrize('name', sorted(EXPECTED_PARAMS))
def test_exact_parameter_counts(name):
  info = cnn.MODEL_INFO[name]
  assert info.params == EXPECTED_PARAMS[name]
  model = models.create(name)
  assert model.num_classes == info.num_classes
  variables = _shapes(model, (1, *info.input_shape))
  assert _count(variables['params']) == EXPECTED_PARAMS[name]


def test_counts_at_other_inputs():
  assert _count(_shapes(cnn.LeNet5(first_padding=0), (1, 32, 32, 1))['params']) == 61_706
  # On 32x32 CIFAR images the VGG map is 1x1x512 when it reaches the classifier.
  variables = _shapes(models.create('vgg16_bn', num_classes=10), (2, 32, 32, 3))
  assert variables['params']['fc1']['kernel'].shape == (512, 4096)
  assert _count(variables['params']) == 138_365_992 - (7 * 7 - 1) * 512 * 4096 - 990 * 4097


def test_alexnet_follows_the_paper_geometry():
  variables = _shapes(models.create('alexnet'), (1, 227, 227, 3), capture_intermediates=True)
  assert _feature_shapes(variables) == {
      'conv1': (1, 55, 55, 96), 'lrn1': (1, 55, 55, 96), 'pool1': (1, 27, 27, 96),
      'conv2': (1, 27, 27, 256), 'lrn2': (1, 27, 27, 256), 'pool2': (1, 13, 13, 256),
      'conv3': (1, 13, 13, 384), 'conv4': (1, 13, 13, 384), 'conv5': (1, 13, 13, 256),
      'pool5': (1, 6, 6, 256), 'dropout6': (1, 4096), 'dropout7': (1, 4096),
      'fc6': (1, 4096), 'fc7': (1, 4096), 'fc8': (1, 1000), 'Flatten_0': (1, 9216)}
  kernels = {name: layer['kernel'].shape for name, layer in variables['params'].items()}
  assert kernels['conv2'] == (5, 5, 48, 256)
  assert kernels['conv3'] == (3, 3, 256, 384)
  assert kernels['conv4'] == (3, 3, 192, 384)
  assert kernels['conv5'] == (3, 3, 192, 256)


def test_alexnet_onetower_follows_torchvision_geometry():
  variables = _shapes(models.create('alexnet_onetower'), (1, 224, 224, 3),
                      capture_intermediates=True)
  shapes = _feature_shapes(variables)
  assert shapes['conv1'] == (1, 55, 55, 64)
  assert shapes['pool2'] == (1, 13, 13, 192)
  assert shapes['pool5'] == shapes['avgpool'] == (1, 6, 6, 256)
  assert 'lrn1' not in shapes


def test_vgg16_names_and_geometry():
  variables = _shapes(models.create('vgg16_bn'), (1, 224, 224, 3), capture_intermediates=True)
  convs = [f'block{i}_conv{j}' for i, n in enumerate((2, 2, 3, 3, 3), 1) for j in range(1, n + 1)]
  assert set(variables['params']) == {*convs, *(c.replace('conv', 'bn') for c in convs), 'fc1',
                                      'fc2', 'predictions'}
  assert set(variables['batch_stats']) == {c.replace('conv', 'bn') for c in convs}
  shapes = _feature_shapes(variables)
  assert shapes['block1_conv2'] == (1, 224, 224, 64)
  assert shapes['block3_pool'] == (1, 28, 28, 256)
  assert shapes['block5_pool'] == (1, 7, 7, 512)
  assert shapes['predictions'] == (1, 1000)


def test_resnet_names_and_geometry():
  variables = _shapes(models.create('resnet18'), (1, 224, 224, 3), capture_intermediates=True)
  blocks = [f'layer{i}_{j}' for i in range(1, 5) for j in range(2)]
  assert set(variables['params']) == {'conv1', 'bn1', *blocks, 'fc'}
  projected = {name for name in blocks if 'downsample_0' in variables['params'][name]}
  assert projected == {'layer2_0', 'layer3_0', 'layer4_0'}
  assert set(variables['params']['layer2_0']) == {'conv1', 'bn1', 'conv2', 'bn2', 'downsample_0',
                                                  'downsample_1'}
  assert variables['params']['layer2_0']['downsample_0']['kernel'].shape == (1, 1, 64, 128)
  assert 'bias' not in variables['params']['conv1']
  assert set(variables['batch_stats']['layer4_1']) == {'bn1', 'bn2'}
  shapes = _feature_shapes(variables)
  assert shapes['conv1'] == (1, 112, 112, 64)
  assert shapes['maxpool'] == (1, 56, 56, 64)
  assert shapes['layer1_1'] == (1, 56, 56, 64)
  assert shapes['layer2_0'] == (1, 28, 28, 128)
  assert shapes['layer4_1'] == (1, 7, 7, 512)
  assert shapes['fc'] == (1, 1000)
  depth34 = _shapes(models.create('resnet34'), (1, 64, 64, 3))['params']
  assert {name.split('_')[0] for name in depth34 if name.startswith('layer')} == {
      'layer1', 'layer2', 'layer3', 'layer4'}
  assert sum(name.startswith('layer') for name in depth34) == 3 + 4 + 6 + 3


def test_resnet_cifar_stem():
  model = models.create('resnet18', num_classes=10, stem='cifar')
  variables = _shapes(model, (2, 32, 32, 3), capture_intermediates=True)
  shapes = _feature_shapes(variables)
  assert shapes['conv1'] == (2, 32, 32, 64) and 'maxpool' not in shapes
  assert shapes['layer4_1'] == (2, 4, 4, 512)
  assert variables['params']['conv1']['kernel'].shape == (3, 3, 3, 64)
  assert _count(variables['params']) == (11_689_512 - 7 * 7 * 3 * 64 + 3 * 3 * 3 * 64
                                         - 1000 * 513 + 10 * 513)
  with pytest.raises(ValueError, match="stem must be 'imagenet' or 'cifar', got 'tiny'"):
    _shapes(cnn.ResNet(stem='tiny'), (1, 32, 32, 3))


def _torch_resnet18(num_classes):
  """ResNet-18 in PyTorch with torchvision's layout and module names (torchvision is not needed)."""
  import torch
  from torch import nn as tnn

  class Block(tnn.Module):

    def __init__(self, in_channels, features, stride):
      super().__init__()
      self.conv1 = tnn.Conv2d(in_channels, features, 3, stride, 1, bias=False)
      self.bn1 = tnn.BatchNorm2d(features)
      self.conv2 = tnn.Conv2d(features, features, 3, 1, 1, bias=False)
      self.bn2 = tnn.BatchNorm2d(features)
      self.downsample = None
      if stride != 1 or in_channels != features:
        self.downsample = tnn.Sequential(tnn.Conv2d(in_channels, features, 1, stride, bias=False),
                                         tnn.BatchNorm2d(features))

    def forward(self, x):
      y = torch.relu(self.bn1(self.conv1(x)))
      y = self.bn2(self.conv2(y))
      return torch.relu(y + (x if self.downsample is None else self.downsample(x)))

  class Net(tnn.Module):

    def __init__(self):
      super().__init__()
      self.conv1 = tnn.Conv2d(3, 64, 7, 2, 3, bias=False)
      self.bn1 = tnn.BatchNorm2d(64)
      self.maxpool = tnn.MaxPool2d(3, 2, 1)
      channels = 64
      for stage, features in enumerate((64, 128, 256, 512), 1):
        stride = 1 if stage == 1 else 2
        setattr(self, f'layer{stage}', tnn.Sequential(Block(channels, features, stride),
                                                      Block(features, features, 1)))
        channels = features
      self.fc = tnn.Linear(512, num_classes)

    def forward(self, x):
      x = self.maxpool(torch.relu(self.bn1(self.conv1(x))))
      for stage in range(1, 5):
        x = getattr(self, f'layer{stage}')(x)
      return self.fc(x.mean((2, 3)))

  return Net()


@pytest.mark.torch
def test_resnet18_matches_a_pytorch_twin_with_copied_weights():
  import flax
  import torch
  torch.set_num_threads(1)
  model = models.create('resnet18', num_classes=10)
  x = _images((2, 32, 32, 3))
  shapes = _shapes(model, x.shape)
  rng = np.random.default_rng(1)

  def draw(path, leaf):
    name = path[-1].key
    if name == 'kernel' and len(leaf.shape) == 4:
      fan_in = np.prod(leaf.shape[:3])
      return rng.standard_normal(leaf.shape).astype(np.float32) * np.sqrt(2 / fan_in)
    if name == 'var':
      return rng.uniform(0.5, 1.5, leaf.shape).astype(np.float32)
    return (rng.standard_normal(leaf.shape) * 0.1).astype(np.float32)

  variables = jax.tree_util.tree_map_with_path(draw, shapes)
  twin = _torch_resnet18(10)
  renames = {'scale': 'weight', 'kernel': 'weight', 'mean': 'running_mean', 'var': 'running_var'}
  state = {}
  for collection in ('params', 'batch_stats'):
    for path, value in flax.traverse_util.flatten_dict(variables[collection]).items():
      key = '.'.join(part.replace('_', '.') for part in path[:-1]) + '.' + renames.get(
          path[-1], path[-1])
      value = np.asarray(value)
      if value.ndim == 4:
        value = value.transpose(3, 2, 0, 1)  # HWIO -> OIHW
      elif value.ndim == 2:
        value = value.T
      state[key] = torch.tensor(value)
  twin_state = twin.state_dict()
  assert set(state) == {k for k in twin_state if not k.endswith('num_batches_tracked')}
  twin.load_state_dict({**twin_state, **state})
  twin.eval()
  x_torch = torch.tensor(np.asarray(x).transpose(0, 3, 1, 2))
  with torch.no_grad():
    expected = twin(x_torch).numpy()
    twin.train()
    expected_train = twin(x_torch).numpy()

  @jax.jit
  def run(variables, x):
    train, _ = model.apply(variables, x, train=True, mutable=['batch_stats'])
    return model.apply(variables, x), train

  logits, train_logits = run(variables, x)
  scale = np.abs(expected).max()
  np.testing.assert_allclose(logits, expected, rtol=1e-4, atol=1e-4 * scale)
  np.testing.assert_allclose(train_logits, expected_train, rtol=1e-4,
                             atol=1e-4 * np.abs(expected_train).max())


def test_vgg_on_small_inputs():
  variables = _shapes(models.create('vgg_fashion'), (2, 28, 28, 1), capture_intermediates=True)
  assert _feature_shapes(variables)['block3_pool'] == (2, 3, 3, 256)
  with pytest.raises(ValueError, match='window 2x2 is larger than the padded input 1x1 at layer '
                     'block5_pool'):
    _shapes(models.create('vgg11'), (1, 28, 28, 1))
  custom = cnn.VGG(config=[16, 'M', 32, 32, 'M'], num_classes=3, hidden_features=(8,))
  assert _count(_shapes(custom, (1, 12, 12, 3))['params']) == (
      3 * 3 * 3 * 16 + 16 + 3 * 3 * 16 * 32 + 32 + 3 * 3 * 32 * 32 + 32 + 9 * 32 * 8 + 8 + 27)
  with pytest.raises(ValueError, match="config must be one of 'A', 'B'"):
    _shapes(cnn.VGG(config='Z'), (1, 32, 32, 3))


def test_bad_options_raise():
  with pytest.raises(ValueError, match="pool must be one of 'avg', 'max', got 'min'"):
    _shapes(cnn.ConvNet(pool='min'), (1, 8, 8, 1))
  with pytest.raises(ValueError, match="Bad model_kwargs for 'vgg11'"):
    models.create('vgg11', depth=3)


def test_convnet_is_flax_mnist_example():
  shapes = jax.tree.map(jnp.shape, _shapes(cnn.ConvNet(), (1, 28, 28, 1))['params'])
  assert shapes == {
      'conv1': {'kernel': (3, 3, 1, 32), 'bias': (32,)},
      'conv2': {'kernel': (3, 3, 32, 64), 'bias': (64,)},
      'fc1': {'kernel': (7 * 7 * 64, 256), 'bias': (256,)},
      'logits': {'kernel': (256, 10), 'bias': (10,)}}


# Tiny forward and backward passes of each family.

TINY = {
    'convnet': (cnn.ConvNet(), (4, 8, 8, 1)),
    'convnet_bn': (cnn.ConvNet(features=(8, 16), hidden=32, pool='max', dropout=0.5,
                               batch_norm=True), (4, 8, 8, 1)),
    'lenet5': (cnn.LeNet5(), (4, 28, 28, 1)),
    'alexnet': (cnn.AlexNet(num_classes=5, features=(8, 8, 12, 8, 8), hidden_features=(16, 16)),
                (2, 67, 67, 3)),
    'alexnet_onetower': (cnn.AlexNetOneTower(num_classes=5, features=(8, 8, 12, 8, 8),
                                             hidden_features=(16, 16), pooled_size=2),
                         (2, 127, 127, 3)),
    'vgg_tiny': (models.create('vgg_tiny'), (4, 8, 8, 1)),
}


def _loss_fn(model, x, labels, batch_stats, rng):

  def loss(params):
    variables = {'params': params, **({'batch_stats': batch_stats} if batch_stats else {})}
    logits, updates = model.apply(variables, x, train=True, rngs={'dropout': rng},
                                  mutable=['batch_stats'])
    xent = optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
    return xent, (logits, updates)

  return loss


@functools.lru_cache(maxsize=None)
def _tiny(name):
  """The model, its input and its initial variables."""
  model, shape = TINY[name]
  x = _images(shape)
  return model, x, _init(model, x)


@pytest.mark.parametrize('name', sorted(TINY))
def test_tiny_forward_backward(name):
  model, x, variables = _tiny(name)
  labels = jnp.arange(x.shape[0]) % model.num_classes
  loss = _loss_fn(model, x, labels, variables.get('batch_stats'), jax.random.key(1))
  (value, (logits, _)), grads = jax.jit(jax.value_and_grad(loss, has_aux=True))(
      variables['params'])
  assert logits.shape == (x.shape[0], model.num_classes)
  assert np.isfinite(value)
  assert all(np.isfinite(g).all() for g in jax.tree.leaves(grads))
  if name in ('convnet', 'convnet_bn', 'vgg_tiny'):
    zero = [jax.tree_util.keystr(path) for path, g in jax.tree_util.tree_leaves_with_path(grads)
            if not np.any(g)]
    assert not zero, f'parameters without gradient: {zero}'


@pytest.mark.parametrize('name', ['alexnet', 'convnet_bn', 'vgg_tiny'])
def test_dropout_only_in_train(name):
  model, x, variables = _tiny(name)
  apply = jax.jit(lambda x, key: model.apply(variables, x, train=True, rngs={'dropout': key},
                                             mutable=['batch_stats'])[0])
  evaluate = jax.jit(lambda x: model.apply(variables, x))
  np.testing.assert_array_equal(evaluate(x), evaluate(x))
  np.testing.assert_array_equal(apply(x, jax.random.key(1)), apply(x, jax.random.key(1)))
  assert not np.allclose(apply(x, jax.random.key(1)), apply(x, jax.random.key(2)))


def test_batch_norm_running_stats_in_vgg():
  model = models.create('vgg_tiny', dropout=0.0)
  x = _images((4, 8, 8, 1)) * 3 + 1
  variables = _init(model, x)

  # Train mode: batch statistics, and running averages move by (1 - momentum) = 0.1.
  _, state = jax.jit(lambda v, x: model.apply(v, x, train=True, capture_intermediates=True,
                                              mutable=['batch_stats', 'intermediates']))(
                                                  variables, x)
  conv1 = state['intermediates']['block1_conv1']['__call__'][0]
  np.testing.assert_allclose(state['batch_stats']['block1_bn1']['mean'],
                             0.1 * conv1.mean(axis=(0, 1, 2)), rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(state['batch_stats']['block1_bn1']['var'],
                             0.9 + 0.1 * conv1.var(axis=(0, 1, 2)), rtol=1e-5)

  # Eval mode: running averages, so each example is independent of the rest of the batch.
  evaluate = jax.jit(lambda v, x: model.apply(v, x))
  np.testing.assert_allclose(evaluate(variables, x)[:1], evaluate(variables, x[:1]), rtol=1e-6)
  train = jax.jit(lambda x: model.apply(variables, x, train=True, mutable=['batch_stats'])[0])
  train_logits, train_first = train(x), train(x[:2])
  assert not np.allclose(train_logits[:2], train_first, atol=1e-3)

  # Fresh running averages (mean 0, var 1) with unit scale make BN the identity up to
  # 1 / sqrt(1 + eps): the net equals the same VGG without BN on the same weights.
  plain = cnn.VGG(config='tiny', num_classes=10, hidden_features=(32,), dropout=0.0)
  params = {k: v for k, v in variables['params'].items() if '_bn' not in k}
  np.testing.assert_allclose(evaluate(variables, x),
                             jax.jit(plain.apply)({'params': params}, x),
                             rtol=1e-4, atol=1e-5)
  assert not np.allclose(evaluate(variables, x), train_logits, atol=1e-3)

  # Updated running averages change the eval output.
  updated = {**variables, 'batch_stats': state['batch_stats']}
  assert not np.allclose(evaluate(updated, x), evaluate(variables, x), atol=1e-4)


def test_registry_entries_train_on_digits_size():
  for name in ('convnet', 'vgg_tiny'):
    model = models.create(name, num_classes=10)
    assert isinstance(model, nn.Module)
    assert _shapes(model, (2, 8, 8, 1))['params']
