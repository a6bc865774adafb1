"""ImageNet (ILSVRC-2012) with AlexNet as published (Krizhevsky, Sutskever & Hinton, NIPS 2012).

Run (needs tfds `imagenet2012` prepared under --config.data_dir from the ILSVRC tars in its
manual_dir; see README "Data"):
  python -m train.main --config=configs/imagenet_alexnet.py --workdir=workdirs/imagenet_alexnet

The paper's recipe (section 5): SGD, batch 128, momentum 0.9, weight decay 0.0005, learning rate
0.01 "divided by 10 when the validation error rate stopped improving", which happened three times
in about 90 epochs over the 1.2 million training images. Dropout 0.5 in fc6 and fc7 (in the model).
The plateau rule is replaced here by fixed step decays after epochs 30, 60 and 80, the schedule the
torchvision reference recipe uses for its AlexNet. Input 227x227 random crops with flips
(the paper's 224 is the well-known off-by-three; the layer arithmetic needs 227). Published: 40.7%
top-1 / 18.2% top-5 error (single net, 5 crops + flips); not reproduced on this CPU-only machine.
"""

import data
from configs import common

TRAIN_EXAMPLES = 1_281_167


def get_config():
  config = common.base()
  config.dataset = 'imagenet2012'
  config.data = data.options(config.dataset, image_size=227)
  config.model = 'alexnet'
  config.model_kwargs = common.model_kwargs(config.model)
  config.batch_size = 128
  config.optimizer = 'sgd'
  config.learning_rate = 0.01
  config.momentum = 0.9
  config.weight_decay = 5e-4
  epoch = TRAIN_EXAMPLES // config.batch_size
  config.num_train_steps = 90 * epoch
  config.schedule = 'step'
  config.decay_boundaries = (30 * epoch, 60 * epoch, 80 * epoch)
  config.decay_factor = 0.1
  config.log_every_steps = 100
  config.eval_every_steps = epoch
  config.checkpoint_every_steps = 2000
  return config
