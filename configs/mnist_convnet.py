"""MNIST with the LeNet-style ConvNet of Flax's examples/mnist.

Run (needs the tfds `mnist` dataset prepared under --config.data_dir; TensorFlow is needed only to
prepare it, not to read it):
  python -m train.main --config=configs/mnist_convnet.py --workdir=workdirs/mnist_convnet

Hyperparameters as in flax/examples/mnist/configs/default.py: SGD, learning rate 0.1, momentum 0.9,
batch 128, 10 epochs. That example reports ~99.2% test accuracy; not measured here (no MNIST
offline on this machine: see README).
"""

import data
from configs import common

TRAIN_EXAMPLES = 60_000


def get_config():
  config = common.base()
  config.dataset = 'mnist'
  config.data = data.options(config.dataset)  # no augmentation, pixels in [0, 1]
  config.model = 'convnet'
  config.model_kwargs = common.model_kwargs(config.model)
  config.batch_size = 128
  config.optimizer = 'sgd'
  config.learning_rate = 0.1
  config.momentum = 0.9
  config.num_train_steps = common.steps_for_epochs(10, TRAIN_EXAMPLES, config.batch_size)
  config.log_every_steps = 100
  config.eval_every_steps = 468
  config.checkpoint_every_steps = 468
  return config
