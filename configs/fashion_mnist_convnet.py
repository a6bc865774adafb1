"""Fashion-MNIST (60,000 train / 10,000 test real 28x28 images) with the LeNet-style ConvNet.

Prepare the data once (fetches Debian's dataset-fashion-mnist package through apt, builds the
tfds dataset `fashion_mnist_idx`):
  python -m data.prepare fashion_mnist
Run:
  python -m train.main --config=configs/fashion_mnist_convnet.py --workdir=workdirs/fmnist_convnet

Model: conv 32 -> BN -> pool -> conv 64 -> BN -> pool -> dense 256 -> dropout -> 10.
Target >= 91% test accuracy; measured: README.md "Results".
"""

import data
from configs import common

TRAIN_EXAMPLES = 60_000


def get_config():
  config = common.base()
  config.dataset = 'fashion_mnist'
  config.data = data.options(config.dataset, standardize=True)
  config.model = 'convnet'
  config.model_kwargs = common.model_kwargs(config.model, batch_norm=True, pool='max', dropout=0.3)
  config.batch_size = 128
  config.optimizer = 'adam'
  config.learning_rate = 2e-3
  config.schedule = 'warmup_cosine'
  config.warmup_steps = 200
  epochs = 12
  config.num_train_steps = common.steps_for_epochs(epochs, TRAIN_EXAMPLES, config.batch_size)
  config.log_every_steps = 100
  config.eval_every_steps = 1000
  config.checkpoint_every_steps = 1000
  return config
