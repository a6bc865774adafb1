"""PyTorch versions of benchmarked architectures, for same-process speed comparisons only.

PyTorch is a benchmark extra (`pip install -e '.[bench]'`), never a dependency of the models. Each
builder mirrors a registry model layer for layer (same parameter count, checked by the benchmark
test) and returns `(module, make_batch, loss_fn)`.
"""

from __future__ import annotations

import torch
from torch import nn


def convnet(num_classes: int = 10, in_channels: int = 1, size: int = 28) -> nn.Module:
  """The registry's `convnet`: conv32-avgpool-conv64-avgpool-dense256-dense."""
  return nn.Sequential(
      nn.Conv2d(in_channels, 32, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2),
      nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2),
      nn.Flatten(), nn.Linear(64 * (size // 4) ** 2, 256), nn.ReLU(), nn.Linear(256, num_classes))


_VGG = {
    'A': [64, 'M', 128, 'M', 256, 256, 'M', 512, 512, 'M', 512, 512, 'M'],
    'D': [64, 64, 'M', 128, 128, 'M', 256, 256, 256, 'M', 512, 512, 512, 'M', 512, 512, 512, 'M'],
}


def vgg(config: str = 'A', batch_norm: bool = True, num_classes: int = 10,
        hidden_features=(512, 512), size: int = 32, dropout: float = 0.5) -> nn.Module:
  """torchvision's VGG layout with a classifier sized for `size`x`size` inputs."""
  layers, channels = [], 3
  for item in _VGG[config]:
    if item == 'M':
      layers.append(nn.MaxPool2d(2))
      size //= 2
      continue
    layers.append(nn.Conv2d(channels, item, 3, padding=1))
    if batch_norm:
      layers.append(nn.BatchNorm2d(item))
    layers.append(nn.ReLU(inplace=True))
    channels = item
  layers.append(nn.Flatten())
  width = channels * size * size
  for hidden in hidden_features:
    layers += [nn.Linear(width, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout)]
    width = hidden
  layers.append(nn.Linear(width, num_classes))
  return nn.Sequential(*layers)


def classification_step(model: nn.Module, lr: float = 0.01, momentum: float = 0.9,
                        channels_last: bool = False):
  """A train step function `step(images, labels)` (forward, backward, SGD with momentum)."""
  if channels_last:
    model = model.to(memory_format=torch.channels_last)
  optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
  loss_fn = nn.CrossEntropyLoss()
  model.train()

  def step(images, labels):
    optimizer.zero_grad(set_to_none=True)
    loss = loss_fn(model(images), labels)
    loss.backward()
    optimizer.step()
    return loss

  return step


def count_parameters(model: nn.Module) -> int:
  return sum(p.numel() for p in model.parameters())
