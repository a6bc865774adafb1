"""The default experiment: a LeNet-style ConvNet on scikit-learn's real handwritten digits.

Run (what `python -m train.main` with no flags does):
  python -m train.main --config=configs/default.py --workdir=workdirs/digits

Data: 1,437 train / 360 test 8x8 digits (fixed stratified split, data/digits.py), 1-pixel random
shifts in training. Model: conv 32 -> pool -> conv 64 -> pool -> dense 256 -> 10.
Expected: see README.md "Results" (measured test accuracy and time on a 2-core CPU).
"""

import data
from configs import common


def get_config():
  config = common.base()
  config.dataset = 'digits'
  config.data = data.options(config.dataset)
  config.model = 'convnet'
  config.model_kwargs = common.model_kwargs(config.model)
  config.batch_size = 32
  config.optimizer = 'adam'
  config.learning_rate = 2e-3
  config.schedule = 'warmup_cosine'
  config.warmup_steps = 50
  config.num_train_steps = 1500
  config.log_every_steps = 100
  config.eval_every_steps = 500
  config.checkpoint_every_steps = 500
  return config
