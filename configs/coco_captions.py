"""COCO captioning, Show and Tell style: VGG-16 features feeding an LSTM (Vinyals et al. 2015).

Run (needs the prepared tfds `coco_captions` dataset, see data/coco_captions.py):
  python -m train.main --config=configs/coco_captions.py --workdir=workdirs/coco_captions \
      --config.data_dir=DATA_DIR

Data (data/coco_captions.py): COCO 2014 images with Karpathy & Li's splits, train (82,783 images;
`--config.data.train_split=train+restval` for the usual 113k) and val (5,000); images resized to
224x224 and ImageNet-standardised; captions lower-cased, punctuation dropped, at most 20 words,
vocabulary of the training words seen at least 5 times; one random caption per image per epoch.
Model (`caption_vgg16_lstm`): VGG-16 (configuration D) -> fc1, fc2 4096 (dropout 0.5) -> the
512-d image vector, fed as the LSTM's first input; word embeddings 512, LSTM 512, dropout 0.5.
Trained from scratch here (Show and Tell starts from ImageNet weights, which this repository does
not ship). Adam 4e-4, warm-up + cosine, gradient clipping at 5, batch 64, 20 epochs of train.
Evaluation: teacher-forced `eval_loss` / `eval_accuracy` and greedy `eval_exact_match` /
`eval_token_accuracy` against each image's first reference caption (no BLEU/CIDEr here).

Not measured: this machine has no COCO and no accelerator; the config is exercised end to end on
a tiny dataset with the same feature layout (tests/test_captioning.py, tests/test_configs.py).
"""

import data
from configs import common

TRAIN_IMAGES = 82_783


def get_config():
  config = common.base()
  config.dataset = 'coco_captions'
  config.data = data.options(config.dataset)
  config.task = 'captioning'
  config.model = 'caption_vgg16_lstm'
  config.model_kwargs = common.model_kwargs(config.model)
  config.batch_size = 64
  config.eval_batch_size = 250
  config.optimizer = 'adam'
  config.learning_rate = 4e-4
  config.schedule = 'warmup_cosine'
  config.warmup_steps = 1_000
  config.grad_clip_norm = 5.0
  config.num_train_steps = common.steps_for_epochs(20, TRAIN_IMAGES, config.batch_size)
  config.log_every_steps = 100
  config.eval_every_steps = 5_000
  config.checkpoint_every_steps = 5_000
  return config
