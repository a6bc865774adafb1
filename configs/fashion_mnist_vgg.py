"""Fashion-MNIST with a VGG-style network with batch norm for 28x28 inputs (`vgg_fashion`).

Prepare the data once: `python -m data.prepare fashion_mnist`. Run:
  python -m train.main --config=configs/fashion_mnist_vgg.py --workdir=workdirs/fmnist_vgg

Model: three VGG blocks of stacked 3x3 convs with BN (64,64 | 128,128 | 256,256, each closed by a
2x2 max pool; 28 -> 14 -> 7 -> 3), then dense 512 -> dropout 0.5 -> 10. Training follows the VGG
recipe (SGD, momentum 0.9, weight decay 5e-4) with a cosine schedule and random crops + flips.
Target >= 93.5% test accuracy; measured: README.md "Results".
"""

import data
from configs import common

TRAIN_EXAMPLES = 60_000


def get_config():
  config = common.base()
  config.dataset = 'fashion_mnist'
  config.data = data.options(config.dataset, augment=True, standardize=True)
  config.model = 'vgg_fashion'
  config.model_kwargs = common.model_kwargs(config.model)
  config.batch_size = 128
  config.optimizer = 'sgd'
  config.learning_rate = 0.05
  config.momentum = 0.9
  config.weight_decay = 5e-4
  config.schedule = 'warmup_cosine'
  config.warmup_steps = 300
  epochs = 15
  config.num_train_steps = common.steps_for_epochs(epochs, TRAIN_EXAMPLES, config.batch_size)
  config.log_every_steps = 100
  config.eval_every_steps = 2000
  config.checkpoint_every_steps = 1000
  return config
