"""PyTorch twins of torchvision's AlexNet, VGG and ResNet (basic blocks), for tests only.

Module for module as torchvision.models builds them (alexnet.py, vgg.py `make_layers`,
resnet.py `BasicBlock` / `ResNet`), so their state dict keys are exactly torchvision's
(`features.0.weight`, `classifier.6.bias`, `layer2.0.downsample.1.running_var`, `fc.weight`).
Widths can be shrunk (`vgg(cfg=[8, 'M', ...], hidden=64)`, `resnet(width=8)`) to keep tests
fast: the names and the structure stay. torchvision itself is not needed.
"""

import torch
from torch import nn

VGG_CFGS = {
    'A': [64, 'M', 128, 'M', 256, 256, 'M', 512, 512, 'M', 512, 512, 'M'],
    'B': [64, 64, 'M', 128, 128, 'M', 256, 256, 'M', 512, 512, 'M', 512, 512, 'M'],
    'D': [64, 64, 'M', 128, 128, 'M', 256, 256, 256, 'M', 512, 512, 512, 'M', 512, 512, 512, 'M'],
    'E': [64, 64, 'M', 128, 128, 'M', 256, 256, 256, 256, 'M', 512, 512, 512, 512, 'M', 512, 512,
          512, 512, 'M'],
}


class VGG(nn.Module):
  """torchvision.models.vgg.VGG."""

  def __init__(self, features, num_classes=1000, hidden=4096, dropout=0.5):
    super().__init__()
    channels = [m.out_channels for m in features if isinstance(m, nn.Conv2d)][-1]
    self.features = features
    self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
    self.classifier = nn.Sequential(
        nn.Linear(channels * 7 * 7, hidden), nn.ReLU(True), nn.Dropout(p=dropout),
        nn.Linear(hidden, hidden), nn.ReLU(True), nn.Dropout(p=dropout),
        nn.Linear(hidden, num_classes))

  def forward(self, x):
    x = self.features(x)
    x = self.avgpool(x)
    x = torch.flatten(x, 1)
    return self.classifier(x)


def make_layers(cfg, batch_norm=False):
  """torchvision.models.vgg.make_layers."""
  layers, in_channels = [], 3
  for v in cfg:
    if v == 'M':
      layers += [nn.MaxPool2d(kernel_size=2, stride=2)]
    else:
      conv2d = nn.Conv2d(in_channels, v, kernel_size=3, padding=1)
      if batch_norm:
        layers += [conv2d, nn.BatchNorm2d(v), nn.ReLU(inplace=True)]
      else:
        layers += [conv2d, nn.ReLU(inplace=True)]
      in_channels = v
  return nn.Sequential(*layers)


def vgg(cfg='D', batch_norm=False, num_classes=1000, hidden=4096):
  cfg = VGG_CFGS[cfg] if isinstance(cfg, str) else cfg
  return VGG(make_layers(cfg, batch_norm), num_classes, hidden)


class AlexNet(nn.Module):
  """torchvision.models.alexnet.AlexNet."""

  def __init__(self, num_classes=1000, hidden=4096, dropout=0.5):
    super().__init__()
    self.features = nn.Sequential(
        nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2), nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Conv2d(64, 192, kernel_size=5, padding=2), nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Conv2d(192, 384, kernel_size=3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(384, 256, kernel_size=3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(256, 256, kernel_size=3, padding=1), nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=3, stride=2))
    self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
    self.classifier = nn.Sequential(
        nn.Dropout(p=dropout), nn.Linear(256 * 6 * 6, hidden), nn.ReLU(inplace=True),
        nn.Dropout(p=dropout), nn.Linear(hidden, hidden), nn.ReLU(inplace=True),
        nn.Linear(hidden, num_classes))

  def forward(self, x):
    x = self.features(x)
    x = self.avgpool(x)
    x = torch.flatten(x, 1)
    return self.classifier(x)


class BasicBlock(nn.Module):
  """torchvision.models.resnet.BasicBlock."""
  expansion = 1

  def __init__(self, inplanes, planes, stride=1, downsample=None):
    super().__init__()
    self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
    self.bn1 = nn.BatchNorm2d(planes)
    self.relu = nn.ReLU(inplace=True)
    self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
    self.bn2 = nn.BatchNorm2d(planes)
    self.downsample = downsample
    self.stride = stride

  def forward(self, x):
    identity = x
    out = self.relu(self.bn1(self.conv1(x)))
    out = self.bn2(self.conv2(out))
    if self.downsample is not None:
      identity = self.downsample(x)
    return self.relu(out + identity)


class ResNet(nn.Module):
  """torchvision.models.resnet.ResNet with BasicBlock (resnet18: [2, 2, 2, 2], resnet34:
  [3, 4, 6, 3]); `width` 64 is torchvision's."""

  def __init__(self, layers, num_classes=1000, width=64):
    super().__init__()
    self.inplanes = width
    self.conv1 = nn.Conv2d(3, width, kernel_size=7, stride=2, padding=3, bias=False)
    self.bn1 = nn.BatchNorm2d(width)
    self.relu = nn.ReLU(inplace=True)
    self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
    self.layer1 = self._make_layer(width, layers[0])
    self.layer2 = self._make_layer(width * 2, layers[1], stride=2)
    self.layer3 = self._make_layer(width * 4, layers[2], stride=2)
    self.layer4 = self._make_layer(width * 8, layers[3], stride=2)
    self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
    self.fc = nn.Linear(width * 8, num_classes)

  def _make_layer(self, planes, blocks, stride=1):
    downsample = None
    if stride != 1 or self.inplanes != planes:
      downsample = nn.Sequential(nn.Conv2d(self.inplanes, planes, 1, stride, bias=False),
                                 nn.BatchNorm2d(planes))
    layers = [BasicBlock(self.inplanes, planes, stride, downsample)]
    self.inplanes = planes
    layers += [BasicBlock(self.inplanes, planes) for _ in range(1, blocks)]
    return nn.Sequential(*layers)

  def forward(self, x):
    x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
    x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
    x = torch.flatten(self.avgpool(x), 1)
    return self.fc(x)


def randomize(model, seed=0):
  """Random weights everywhere, batch-norm running statistics included (torch's fresh ones are
  0 and 1, which would not test their conversion); returns the model in eval mode."""
  generator = torch.Generator().manual_seed(seed)
  with torch.no_grad():
    for name, tensor in model.state_dict().items():
      if tensor.is_floating_point():
        if name.endswith('running_var'):
          tensor.copy_(0.5 + torch.rand(tensor.shape, generator=generator))
        elif name.endswith(('weight', 'bias', 'running_mean')):
          fan_in = tensor[0].numel() if tensor.ndim > 1 else 1
          scale = (2.0 / fan_in) ** 0.5 if tensor.ndim > 1 else 0.1
          tensor.copy_(torch.randn(tensor.shape, generator=generator) * scale
                       + (1.0 if name.endswith('weight') and tensor.ndim == 1 else 0.0))
  return model.eval()
