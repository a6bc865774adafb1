"""Fine-tune an imported or trained workdir on your own images (an `image_folder` dataset).

Run:
  python -m train.main --config=configs/finetune_folder.py --workdir=workdirs/my_finetune \
      --config.init_from=workdirs/vgg16_torchvision --config.data_dir=ROOT

ROOT holds `train/<class>/*.jpg` and `val/<class>/*.jpg` (data/image_folder.py). With
`init_from` the model and its input preprocessing are the source workdir's (train/init_from.py);
its weights are loaded, except the output layer, which is replaced by a fresh one with one unit
per class folder. `--config.freeze_backbone=True` trains the new head only;
`--config.backbone_learning_rate_multiplier=0.1` trains the rest ten times slower. The
source's weights are read only when the workdir has no checkpoint: a stopped fine-tune resumes
its own. Without `init_from` the model below is trained from scratch on the folder.

Recipe: Adam, learning rate 1e-3 with cosine decay after 50 warm-up steps, batch 32, 500 steps
(a few epochs of a small folder); shorten with --config.num_train_steps=....
"""

from ml_collections.config_dict import placeholder

import data
from configs import common


def get_config():
  config = common.base()
  config.dataset = 'image_folder'
  config.data = data.options(config.dataset)
  config.model = 'resnet18'  # replaced by the source's with init_from
  config.model_kwargs = common.model_kwargs(config.model)
  config.init_from = placeholder(str)  # the workdir whose weights start the run
  config.head = placeholder(str)  # the output layer (set from init_from's model)
  config.freeze_backbone = False
  config.backbone_learning_rate_multiplier = 1.0
  config.batch_size = 32
  config.optimizer = 'adam'
  config.learning_rate = 1e-3
  config.schedule = 'warmup_cosine'
  config.warmup_steps = 50
  config.num_train_steps = 500
  config.log_every_steps = 50
  config.eval_every_steps = 250
  config.checkpoint_every_steps = 250
  return config
