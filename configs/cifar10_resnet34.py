"""CIFAR-10 with ResNet-34 (He et al. 2016, basic blocks), with the CIFAR stem.

Run (needs tfds `cifar10` prepared under --config.data_dir in array_record format; see README
"Data"):
  python -m train.main --config=configs/cifar10_resnet34.py --workdir=workdirs/cifar10_resnet34

Model: `resnet34` with `stem='cifar'`, the usual adaptation to 32x32 images (as in
kuangliu/pytorch-cifar): a 3x3 stride-1 first convolution and no max pool, so the four stages
run on 32x32, 16x16, 8x8 and 4x4 maps. Recipe: SGD, batch 128, momentum 0.9, weight decay 5e-4,
learning rate 0.1 with 1 epoch of warm-up and cosine decay over 200 epochs, random crop (4-px
padding) + horizontal flip, per-channel standardisation. References: kuangliu/pytorch-cifar reports
93.02% for ResNet-18 with this recipe; reimplementations report ResNet-34 in the same 93-95%
range. Not reproduced here (no CIFAR-10 offline on this machine).
"""

from configs import cifar10_resnet18
from configs import common


def get_config():
  """configs/cifar10_resnet18.py's recipe with `resnet34`."""
  config = cifar10_resnet18.get_config()
  config.model = 'resnet34'
  config.model_kwargs = common.model_kwargs(config.model, stem='cifar')
  return config
