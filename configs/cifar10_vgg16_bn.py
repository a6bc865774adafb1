"""CIFAR-10 with VGG-16 (configuration D) with batch norm, adapted to 32x32 inputs.

Run (needs tfds `cifar10` prepared under --config.data_dir in array_record format; see README
"Data"):
  python -m train.main --config=configs/cifar10_vgg16_bn.py --workdir=workdirs/cifar10_vgg16_bn
Quick CPU variant (VGG-11-BN, 4 epochs, for checking a set-up end to end):
  python -m train.main --config=configs/cifar10_vgg16_bn.py:quick --workdir=workdirs/cifar10_quick

After the five pools a 32x32 image is a 1x1x512 map, so the classifier is 512 -> 512 -> 512 -> 10
(dropout 0.5), as in the widely used CIFAR VGG of Zagoruyko's "92.45% on CIFAR-10 in Torch" (2015)
and kuangliu/pytorch-cifar. Recipe: SGD, batch 128, momentum 0.9, weight decay 5e-4, learning
rate 0.1 with 1 epoch of warm-up and cosine decay over 200 epochs, random crop (4-px padding) +
horizontal flip, per-channel standardisation. Those references report 92.5-93.6% test accuracy;
not reproduced on this CPU-only machine (no CIFAR-10 offline here).
"""

import data
from configs import common

TRAIN_EXAMPLES = 50_000


def get_config(variant: str = ''):
  config = common.base()
  config.dataset = 'cifar10'
  config.data = data.options(config.dataset)  # crop + flip, per-channel standardisation
  config.model = 'vgg16_bn'
  config.batch_size = 128
  config.optimizer = 'sgd'
  config.learning_rate = 0.1
  config.momentum = 0.9
  config.weight_decay = 5e-4
  config.schedule = 'warmup_cosine'
  epoch = TRAIN_EXAMPLES // config.batch_size
  config.warmup_steps = epoch
  epochs = 200
  if variant == 'quick':
    config.model = 'vgg11_bn'
    epochs = 4
  elif variant:
    raise ValueError(f"Unknown variant '{variant}' of cifar10_vgg16_bn; use ':quick' or none.")
  config.model_kwargs = common.model_kwargs(config.model, hidden_features=(512, 512))
  config.num_train_steps = epochs * epoch
  config.log_every_steps = 50
  config.eval_every_steps = epoch
  config.checkpoint_every_steps = epoch
  return config
