"""Classic convolutional networks: ConvNet (LeNet style), LeNet-5, AlexNet, VGG and ResNet.

Every model maps images [batch, height, width, channels] (float) to logits [batch, num_classes]
through `model.apply(variables, x, train=bool)`. Dropout draws from the 'dropout' rng when `train`
is true; batch-norm running statistics live in the 'batch_stats' collection. Submodules carry the
names the papers and the Keras / torchvision zoos use (`block1_conv1`, `fc6`, `layer1_0/conv1`,
...), so feature maps can be read back by name (e.g. `capture_intermediates=True`).

Every model takes its convolution as a module argument, `conv` (default `layers.Conv2D`, the
library convolution), as Flax's ImageNet example does; `models.create` passes the CPU form
(`cpu_kernels.CpuConv2D`: same parameters and function) on CPU.

Architectures are data: `VGG_CONFIGS` is torchvision's table and `MODELS` maps registry names to
constructors. `MODEL_INFO` pins, next to them, the parameter count of every registry entry with
the input it is counted at and where the number comes from.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable, Sequence, Union

import flax.linen as nn
import jax

from models.layers import (AdaptiveAvgPool2D, AvgPool2D, BatchNorm, Conv2D, Dense, Dropout,
                           Flatten, LocalResponseNorm, MaxPool2D)

Array = jax.Array
ModuleDef = Any  # a module class, or a functools.partial of one

_ACTIVATIONS = {'relu': nn.relu, 'tanh': nn.tanh}
_POOLS = {'avg': AvgPool2D, 'max': MaxPool2D}


def _choice(table: dict, key: str, what: str):
  if key not in table:
    raise ValueError(f"{what} must be one of {', '.join(map(repr, table))}, got {key!r}")
  return table[key]


class ConvNet(nn.Module):
  """The CNN of Flax's MNIST example, configurable.

  Per entry of `features`: conv (kernel_size, SAME) -> [batch norm] -> ReLU -> 2x2/2 pool; then
  flatten -> dense `hidden` -> ReLU -> [dropout] -> dense `num_classes`. With the defaults on
  28x28x1 it is the Flax example exactly (824,458 parameters).

  Attributes:
    num_classes: number of output logits.
    features: filters of each conv layer, named conv1, conv2, ...
    kernel_size: conv window.
    hidden: width of the dense layer fc1.
    pool: 'avg' or 'max'.
    dropout: dropout rate before the logits (0 disables it).
    batch_norm: whether to put batch norm (bn1, bn2, ...) after each conv.
    in_channels: input channels; taken from the input if None.
    conv: the convolution module (`layers.Conv2D`'s signature and parameters).
  """
  num_classes: int = 10
  features: Sequence[int] = (32, 64)
  kernel_size: int = 3
  hidden: int = 256
  pool: str = 'avg'
  dropout: float = 0.0
  batch_norm: bool = False
  in_channels: int | None = None
  conv: ModuleDef = Conv2D

  @nn.compact
  def __call__(self, x: Array, train: bool = False) -> Array:
    """Maps [batch, height, width, channels] to logits [batch, num_classes]."""
    pool = _choice(_POOLS, self.pool, 'pool')
    channels = x.shape[-1] if self.in_channels is None else self.in_channels
    for i, features in enumerate(self.features, 1):
      x = self.conv(channels, features, self.kernel_size, padding='SAME', name=f'conv{i}')(x)
      if self.batch_norm:
        x = BatchNorm(name=f'bn{i}')(x, train)
      x = nn.relu(x)
      x = pool(2, name=f'pool{i}')(x)
      channels = features
    x = Flatten()(x)
    x = nn.relu(Dense(self.hidden, name='fc1')(x))
    if self.dropout:
      x = Dropout(self.dropout, name='dropout')(x, train)
    return Dense(self.num_classes, name='logits')(x)


class LeNet5(nn.Module):
  """LeNet-5 as it is usually rebuilt from LeCun et al. 1998.

  conv1 6 5x5 -> tanh -> 2x2/2 avg pool -> conv2 16 5x5 (VALID) -> tanh -> pool -> fc1 120 ->
  tanh -> fc2 84 -> tanh -> logits. Simplified from the paper as everyone does: C3 sees all six
  maps (not the paper's partial table), subsampling is a plain average (no trainable coefficient),
  and the output is a dense layer rather than Euclidean RBF units. 61,706 parameters.

  Attributes:
    num_classes: number of output logits.
    first_padding: zero padding of conv1: 2 gives the paper's 28x28 C1 maps from 28x28 MNIST
      digits, 0 is the paper's setting for its 32x32 inputs.
    activation: 'tanh' (the paper) or 'relu'.
    conv: the convolution module (`layers.Conv2D`'s signature and parameters).
  """
  num_classes: int = 10
  first_padding: int = 2
  activation: str = 'tanh'
  conv: ModuleDef = Conv2D

  @nn.compact
  def __call__(self, x: Array, train: bool = False) -> Array:
    """Maps [batch, 28, 28, 1] (or 32x32 with first_padding=0) to logits [batch, num_classes]."""
    act = _choice(_ACTIVATIONS, self.activation, 'activation')
    x = act(self.conv(x.shape[-1], 6, 5, padding=self.first_padding, name='conv1')(x))
    x = AvgPool2D(2, name='pool1')(x)
    x = act(self.conv(6, 16, 5, name='conv2')(x))
    x = AvgPool2D(2, name='pool2')(x)
    x = Flatten()(x)
    x = act(Dense(120, name='fc1')(x))
    x = act(Dense(84, name='fc2')(x))
    return Dense(self.num_classes, name='logits')(x)


def _classifier(x: Array, hidden_features: Sequence[int], num_classes: int, dropout: float,
                train: bool, first: int, dropout_first: bool, output_name: str) -> Array:
  """Dense layers fc{first}, fc{first+1}, ... with ReLU and dropout, then the output layer.

  Dropout goes before each hidden layer (torchvision's AlexNet) if `dropout_first`, else after
  each hidden ReLU (the AlexNet paper, VGG).
  """
  for i, features in enumerate(hidden_features, first):
    if dropout and dropout_first:
      x = Dropout(dropout, name=f'dropout{i}')(x, train)
    x = nn.relu(Dense(features, name=f'fc{i}')(x))
    if dropout and not dropout_first:
      x = Dropout(dropout, name=f'dropout{i}')(x, train)
  return Dense(num_classes, name=output_name)(x)


class AlexNet(nn.Module):
  """AlexNet as in Krizhevsky, Sutskever & Hinton 2012 (ILSVRC-2012), on 227x227x3 inputs.

  The paper's two GPUs are grouped convolutions (groups=2) where a layer only sees the maps of its
  own GPU (conv2, conv4, conv5); conv3 and the dense layers connect across both.

    conv1 96 11x11/4 VALID -> ReLU -> LRN -> max pool 3x3/2     [55x55 -> 27x27]
    conv2 256 5x5 pad 2 groups 2 -> ReLU -> LRN -> max pool     [27x27 -> 13x13]
    conv3 384 3x3 pad 1 -> ReLU
    conv4 384 3x3 pad 1 groups 2 -> ReLU
    conv5 256 3x3 pad 1 groups 2 -> ReLU -> max pool            [13x13 -> 6x6]
    fc6 4096 -> ReLU -> dropout -> fc7 4096 -> ReLU -> dropout -> fc8 num_classes

  LRN uses the paper's k=2, n=5, alpha=1e-4, beta=0.75. 60,965,224 parameters at 1000 classes.
  Weights use Flax's default initialisers, not the paper's N(0, 0.01) with unit biases.

  Attributes:
    num_classes: number of output logits.
    features: filters of conv1..conv5 (shrink them for tests; grouped layers need even counts).
    hidden_features: widths of fc6, fc7.
    dropout: dropout rate after fc6 and fc7.
    groups: feature groups of conv2, conv4 and conv5 (2 = the paper's two towers).
    conv: the convolution module (`layers.Conv2D`'s signature and parameters).
  """
  num_classes: int = 1000
  features: Sequence[int] = (96, 256, 384, 384, 256)
  hidden_features: Sequence[int] = (4096, 4096)
  dropout: float = 0.5
  groups: int = 2
  conv: ModuleDef = Conv2D

  @nn.compact
  def __call__(self, x: Array, train: bool = False) -> Array:
    """Maps [batch, 227, 227, 3] to logits [batch, num_classes]."""
    f1, f2, f3, f4, f5 = self.features
    g = self.groups
    x = nn.relu(self.conv(x.shape[-1], f1, 11, stride=4, name='conv1')(x))
    x = LocalResponseNorm(name='lrn1')(x)
    x = MaxPool2D(3, 2, name='pool1')(x)
    x = nn.relu(self.conv(f1, f2, 5, padding=2, groups=g, name='conv2')(x))
    x = LocalResponseNorm(name='lrn2')(x)
    x = MaxPool2D(3, 2, name='pool2')(x)
    x = nn.relu(self.conv(f2, f3, 3, padding=1, name='conv3')(x))
    x = nn.relu(self.conv(f3, f4, 3, padding=1, groups=g, name='conv4')(x))
    x = nn.relu(self.conv(f4, f5, 3, padding=1, groups=g, name='conv5')(x))
    x = MaxPool2D(3, 2, name='pool5')(x)
    x = Flatten()(x)
    return _classifier(x, self.hidden_features, self.num_classes, self.dropout, train, first=6,
                       dropout_first=False, output_name=f'fc{6 + len(self.hidden_features)}')


class AlexNetOneTower(nn.Module):
  """The single-tower AlexNet of torchvision (after Krizhevsky 2014, "One weird trick").

    conv1 64 11x11/4 pad 2 -> ReLU -> max pool 3x3/2
    conv2 192 5x5 pad 2 -> ReLU -> max pool 3x3/2
    conv3 384, conv4 256, conv5 256 (3x3 pad 1, ReLU) -> max pool 3x3/2
    adaptive average pool to 6x6 -> dropout -> fc6 4096 -> ReLU -> dropout -> fc7 4096 -> ReLU
    -> fc8 num_classes

  No LRN. 61,100,840 parameters at 1000 classes. At 224x224 the last map is already 6x6. The
  flattened features are in (height, width, channel) order, not torch's (channel, height, width).

  Attributes:
    num_classes: number of output logits.
    features: filters of conv1..conv5.
    hidden_features: widths of fc6, fc7.
    dropout: dropout rate before fc6 and fc7.
    pooled_size: output size of the adaptive average pool.
    conv: the convolution module (`layers.Conv2D`'s signature and parameters).
  """
  num_classes: int = 1000
  features: Sequence[int] = (64, 192, 384, 256, 256)
  hidden_features: Sequence[int] = (4096, 4096)
  dropout: float = 0.5
  pooled_size: int = 6
  conv: ModuleDef = Conv2D

  @nn.compact
  def __call__(self, x: Array, train: bool = False) -> Array:
    """Maps [batch, 224, 224, 3] to logits [batch, num_classes]."""
    f1, f2, f3, f4, f5 = self.features
    x = nn.relu(self.conv(x.shape[-1], f1, 11, stride=4, padding=2, name='conv1')(x))
    x = MaxPool2D(3, 2, name='pool1')(x)
    x = nn.relu(self.conv(f1, f2, 5, padding=2, name='conv2')(x))
    x = MaxPool2D(3, 2, name='pool2')(x)
    x = nn.relu(self.conv(f2, f3, 3, padding=1, name='conv3')(x))
    x = nn.relu(self.conv(f3, f4, 3, padding=1, name='conv4')(x))
    x = nn.relu(self.conv(f4, f5, 3, padding=1, name='conv5')(x))
    x = MaxPool2D(3, 2, name='pool5')(x)
    x = AdaptiveAvgPool2D(self.pooled_size, name='avgpool')(x)
    x = Flatten()(x)
    return _classifier(x, self.hidden_features, self.num_classes, self.dropout, train, first=6,
                       dropout_first=True, output_name=f'fc{6 + len(self.hidden_features)}')


# torchvision's table (Simonyan & Zisserman 2015, Table 1): filters of each 3x3 conv, 'M' for a
# 2x2/2 max pool. Configurations A, B, D, E are VGG-11, -13, -16, -19.
VGG_CONFIGS: dict[str, list[Union[int, str]]] = {
    'A': [64, 'M', 128, 'M', 256, 256, 'M', 512, 512, 'M', 512, 512, 'M'],
    'B': [64, 64, 'M', 128, 128, 'M', 256, 256, 'M', 512, 512, 'M', 512, 512, 'M'],
    'D': [64, 64, 'M', 128, 128, 'M', 256, 256, 256, 'M', 512, 512, 512, 'M', 512, 512, 512, 'M'],
    'E': [64, 64, 'M', 128, 128, 'M', 256, 256, 256, 256, 'M', 512, 512, 512, 512, 'M', 512, 512,
          512, 512, 'M'],
    # Three blocks for 28x28 inputs (Fashion-MNIST): 28 -> 14 -> 7 -> 3, a 3x3x256 map.
    'small': [64, 64, 'M', 128, 128, 'M', 256, 256, 'M'],
    # Test-only: two blocks of a few filters.
    'tiny': [8, 'M', 16, 'M'],
}


class VGG(nn.Module):
  """VGG (Simonyan & Zisserman 2015), torchvision's layout with Keras's layer names.

  Each number of `config` is conv 3x3 pad 1 -> [batch norm] -> ReLU, named block{i}_conv{j}
  (block{i}_bn{j}); each 'M' a 2x2/2 max pool block{i}_pool that closes block i. Then flatten
  whatever map remains -> fc1, fc2 (`hidden_features`, ReLU, dropout after each) ->
  predictions. At 224x224 the map is 7x7, as in the paper; on 32x32 CIFAR images it is 1x1.
  With `pooled_size` (7 in torchvision) an adaptive average pool `avgpool` first brings the map
  to that size, so any input of at least 32x32 gives the classifier the same width.
  Five pools need inputs of at least 32x32: for smaller images use a shorter table (the 'small'
  config for 28x28) or pass your own list.

  Attributes:
    config: a key of VGG_CONFIGS or a list of filters and 'M'.
    batch_norm: whether to put batch norm after each conv (torchvision's vgg*_bn).
    num_classes: number of output logits.
    hidden_features: widths of the hidden dense layers fc1, fc2, ...
    dropout: dropout rate after each hidden dense layer.
    pooled_size: output size of an adaptive average pool before the classifier
      (torchvision's `avgpool`, 7); None: no pool, the classifier sees the map as it is.
    conv: the convolution module (`layers.Conv2D`'s signature and parameters).
  """
  config: Union[str, Sequence[Union[int, str]]] = 'D'
  batch_norm: bool = False
  num_classes: int = 1000
  hidden_features: Sequence[int] = (4096, 4096)
  dropout: float = 0.5
  pooled_size: int | None = None
  conv: ModuleDef = Conv2D

  @nn.compact
  def __call__(self, x: Array, train: bool = False) -> Array:
    """Maps [batch, height, width, channels] to logits [batch, num_classes]."""
    config = (_choice(VGG_CONFIGS, self.config, 'config') if isinstance(self.config, str)
              else self.config)
    channels, block, layer = x.shape[-1], 1, 1
    for item in config:
      if item == 'M':
        x = MaxPool2D(2, name=f'block{block}_pool')(x)
        block, layer = block + 1, 1
        continue
      if not isinstance(item, int):
        raise ValueError(f"VGG config entries must be ints or 'M', got {item!r}")
      x = self.conv(channels, item, 3, padding=1, name=f'block{block}_conv{layer}')(x)
      if self.batch_norm:
        x = BatchNorm(name=f'block{block}_bn{layer}')(x, train)
      x = nn.relu(x)
      channels, layer = item, layer + 1
    if self.pooled_size is not None:
      x = AdaptiveAvgPool2D(self.pooled_size, name='avgpool')(x)
    x = Flatten()(x)
    return _classifier(x, self.hidden_features, self.num_classes, self.dropout, train, first=1,
                       dropout_first=False, output_name='predictions')


# torchvision's initialisation of ResNet convolutions: He normal over the fan-out.
_KAIMING_FAN_OUT = nn.initializers.variance_scaling(2.0, 'fan_out', 'normal')


class BasicBlock(nn.Module):
  """The ResNet basic block (He et al. 2016, Fig. 2 left), as torchvision's `BasicBlock`.

  conv1 3x3 (stride) -> bn1 -> ReLU -> conv2 3x3 -> bn2, plus the shortcut: the input itself, or
  where the shape changes (stride or channels) a projection downsample_0 (1x1 conv, stride) ->
  downsample_1 (batch norm); then ReLU. Convolutions have no bias.

  Attributes:
    in_channels: channels of the input.
    features: channels of both convolutions and of the output.
    stride: stride of conv1 and of the projection.
    conv: the convolution module (`layers.Conv2D`'s signature and parameters).
  """
  in_channels: int
  features: int
  stride: int = 1
  conv: ModuleDef = Conv2D

  @nn.compact
  def __call__(self, x: Array, train: bool = False) -> Array:
    """[batch, height, width, in_channels] -> [batch, height / stride, width / stride, features]."""
    conv = functools.partial(self.conv, use_bias=False, kernel_init=_KAIMING_FAN_OUT)
    y = conv(self.in_channels, self.features, 3, self.stride, 1, name='conv1')(x)
    y = nn.relu(BatchNorm(name='bn1')(y, train))
    y = conv(self.features, self.features, 3, 1, 1, name='conv2')(y)
    y = BatchNorm(name='bn2')(y, train)
    if self.stride != 1 or self.in_channels != self.features:
      x = conv(self.in_channels, self.features, 1, self.stride, name='downsample_0')(x)
      x = BatchNorm(name='downsample_1')(x, train)
    return nn.relu(y + x)


class ResNet(nn.Module):
  """ResNet with basic blocks (He et al. 2016, Table 1), torchvision's layout and names.

    'imagenet' stem: conv1 64 7x7/2 pad 3 -> bn1 -> ReLU -> max pool 3x3/2 pad 1
    'cifar' stem:    conv1 64 3x3/1 pad 1 -> bn1 -> ReLU (no pool; for 32x32 images, as in
                     kuangliu/pytorch-cifar)
    layer1 .. layer4: `stage_sizes[i]` BasicBlocks of 64, 128, 256, 512 channels, the first block
      of layer2..layer4 with stride 2 and a projection shortcut
    global average pool -> fc num_classes

  Blocks are named layer{i}_{j} (torchvision's `layer{i}.{j}`), their parts conv1, bn1, conv2,
  bn2, downsample_0, downsample_1, so torchvision's state dict maps name by name (kernels
  transposed from OIHW to HWIO). ResNet-18 has 11,689,512 parameters at 1000 classes, ResNet-34
  21,797,672 (BN running statistics excluded), at any input size.

  Attributes:
    stage_sizes: blocks per stage ([2, 2, 2, 2] for ResNet-18, [3, 4, 6, 3] for ResNet-34).
    num_classes: number of output logits.
    stem: 'imagenet' or 'cifar'.
    width: channels of the stem and of layer1 (doubled at each later stage).
    conv: the convolution module (`layers.Conv2D`'s signature and parameters).
  """
  stage_sizes: Sequence[int] = (2, 2, 2, 2)
  num_classes: int = 1000
  stem: str = 'imagenet'
  width: int = 64
  conv: ModuleDef = Conv2D

  @nn.compact
  def __call__(self, x: Array, train: bool = False) -> Array:
    """Maps [batch, height, width, channels] to logits [batch, num_classes]."""
    if self.stem not in ('imagenet', 'cifar'):
      raise ValueError(f"stem must be 'imagenet' or 'cifar', got {self.stem!r}")
    conv = functools.partial(self.conv, use_bias=False, kernel_init=_KAIMING_FAN_OUT)
    if self.stem == 'imagenet':
      x = conv(x.shape[-1], self.width, 7, 2, 3, name='conv1')(x)
    else:
      x = conv(x.shape[-1], self.width, 3, 1, 1, name='conv1')(x)
    x = nn.relu(BatchNorm(name='bn1')(x, train))
    if self.stem == 'imagenet':
      x = MaxPool2D(3, 2, 1, name='maxpool')(x)
    channels = self.width
    for stage, blocks in enumerate(self.stage_sizes):
      features = self.width * 2 ** stage
      for block in range(blocks):
        stride = 2 if stage > 0 and block == 0 else 1
        x = BasicBlock(channels, features, stride, conv=self.conv,
                       name=f'layer{stage + 1}_{block}')(x, train)
        channels = features
    x = x.mean(axis=(1, 2))
    return Dense(self.num_classes, name='fc')(x)


MODELS: dict[str, Callable[..., nn.Module]] = {
    'convnet': ConvNet,
    'lenet5': LeNet5,
    'alexnet': AlexNet,
    'alexnet_onetower': AlexNetOneTower,
    **{f'vgg{depth}{suffix}': functools.partial(VGG, config=key, batch_norm=bool(suffix))
       for depth, key in ((11, 'A'), (13, 'B'), (16, 'D'), (19, 'E')) for suffix in ('', '_bn')},
    # VGG-style net with batch norm for 28x28 images (the fashion_mnist_vgg experiment).
    'vgg_fashion': functools.partial(VGG, config='small', batch_norm=True, num_classes=10,
                                     hidden_features=(512,)),
    'resnet18': functools.partial(ResNet, stage_sizes=(2, 2, 2, 2)),
    'resnet34': functools.partial(ResNet, stage_sizes=(3, 4, 6, 3)),
    # Test-only: a few thousand parameters, runs in milliseconds on 8x8 or larger images.
    'vgg_tiny': functools.partial(VGG, config='tiny', batch_norm=True, num_classes=10,
                                  hidden_features=(32,)),
}


@dataclasses.dataclass(frozen=True)
class ModelInfo:
  """Parameter count of a registry entry (weights and biases; BN running statistics excluded).

  `published` is true where the exact count appears in the source, false where it is computed
  from the architecture here.
  """
  params: int
  input_shape: tuple[int, int, int]
  num_classes: int
  source: str
  published: bool = True


_TV = 'torchvision.models.{}; Simonyan & Zisserman 2015, config {}'

MODEL_INFO: dict[str, ModelInfo] = {
    'convnet': ModelInfo(824_458, (28, 28, 1), 10, 'Flax examples/mnist CNN; computed here', False),
    'lenet5': ModelInfo(61_706, (28, 28, 1), 10,
                        'LeCun et al. 1998 with full C3 connectivity; computed here', False),
    'alexnet': ModelInfo(60_965_224, (227, 227, 3), 1000,
                         'Krizhevsky et al. 2012 says "60 million"; exact count computed here',
                         False),
    'alexnet_onetower': ModelInfo(61_100_840, (224, 224, 3), 1000, 'torchvision.models.alexnet'),
    'vgg11': ModelInfo(132_863_336, (224, 224, 3), 1000, _TV.format('vgg11', 'A')),
    'vgg13': ModelInfo(133_047_848, (224, 224, 3), 1000, _TV.format('vgg13', 'B')),
    'vgg16': ModelInfo(138_357_544, (224, 224, 3), 1000, _TV.format('vgg16', 'D')),
    'vgg19': ModelInfo(143_667_240, (224, 224, 3), 1000, _TV.format('vgg19', 'E')),
    'vgg11_bn': ModelInfo(132_868_840, (224, 224, 3), 1000, _TV.format('vgg11_bn', 'A')),
    'vgg13_bn': ModelInfo(133_053_736, (224, 224, 3), 1000, _TV.format('vgg13_bn', 'B')),
    'vgg16_bn': ModelInfo(138_365_992, (224, 224, 3), 1000, _TV.format('vgg16_bn', 'D')),
    'vgg19_bn': ModelInfo(143_678_248, (224, 224, 3), 1000, _TV.format('vgg19_bn', 'E')),
    'resnet18': ModelInfo(11_689_512, (224, 224, 3), 1000,
                          'torchvision.models.resnet18; He et al. 2016, Table 1'),
    'resnet34': ModelInfo(21_797_672, (224, 224, 3), 1000,
                          'torchvision.models.resnet34; He et al. 2016, Table 1'),
    'vgg_fashion': ModelInfo(2_331_338, (28, 28, 1), 10, 'this repository', False),
    'vgg_tiny': ModelInfo(3_706, (8, 8, 1), 10, 'this repository, test-only', False),
}

PUBLISHED_PARAM_COUNTS: dict[str, int] = {
    name: info.params for name, info in MODEL_INFO.items() if info.published
}
