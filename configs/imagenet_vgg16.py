"""ImageNet (ILSVRC-2012) with VGG-16, configuration D (Simonyan & Zisserman, ICLR 2015).

Run:
  python -m train.main --config=configs/imagenet_vgg16.py --workdir=workdirs/imagenet_vgg16

The paper's recipe (section 3.1): mini-batch SGD, batch 256, momentum 0.9, weight decay 5e-4,
dropout 0.5 on the first two fully connected layers, learning rate 0.01 "decreased by a factor of
10 when the validation set accuracy stopped improving" (three times), training stopped after 370K
iterations (74 epochs); 224x224 crops of rescaled images with flips. The plateau rule is replaced
by fixed decays at 40%, 70% and 90% of the 370K iterations. Variant: `:bn` trains `vgg16_bn`.
Published: 25.6% top-1 / 8.1% top-5 validation error (single scale); not reproduced on this
CPU-only machine.
"""

import data
from configs import common


def get_config(variant: str = ''):
  config = common.base()
  config.dataset = 'imagenet2012'
  config.data = data.options(config.dataset)  # 224x224 crops
  if variant not in ('', 'bn'):
    raise ValueError(f"Unknown variant '{variant}' of imagenet_vgg16; use ':bn' or none.")
  config.model = 'vgg16_bn' if variant == 'bn' else 'vgg16'
  config.model_kwargs = common.model_kwargs(config.model)
  config.batch_size = 256
  config.optimizer = 'sgd'
  config.learning_rate = 0.01
  config.momentum = 0.9
  config.weight_decay = 5e-4
  config.num_train_steps = 370_000
  config.schedule = 'step'
  config.decay_boundaries = (0.4, 0.7, 0.9)
  config.decay_factor = 0.1
  config.log_every_steps = 100
  config.eval_every_steps = 5000
  config.checkpoint_every_steps = 2000
  return config
