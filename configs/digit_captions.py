"""Digit-strip captioning: a CNN encoder feeding an LSTM decoder reads 1-5 handwritten digits.

Run:
  python -m train.main --config=configs/digit_captions.py --workdir=workdirs/digit_captions

Data (data/digit_strips.py): strips of 1-5 of scikit-learn's real 8x8 handwritten digits side by
side (8x40 images), captioned by the digit sequence + EOS; 100,000 training strips from the
1,437 training digits, 2,000 held-out strips built only from the 360 held-out digits.
Model (models/captioning.py, `caption_lstm`, Show and Tell): conv32-conv32-pool-conv64-conv64-pool
with batch norm -> dense 128, the image vector, fed as the LSTM's first input; LSTM 256; greedy
decoding. Adam 3e-3, warm-up + cosine, gradient clipping at 1, batch 64.
Evaluation decodes greedily from the image alone: `eval_exact_match` is the fraction of held-out
strips whose whole caption (EOS included) is right.

Measured (2-vCPU AMD EPYC shared with four other jobs, load average 11-17; 2026-11-26), 628,589
parameters, 2,000 steps (1.28 epochs of the 100,000 strips), on the 2,000 held-out strips:
  step           500     1,000   1,500   2,000
  exact match    77.05%  92.35%  97.00%  97.40%   (greedy; the issue's target: >= 95%)
  token accuracy 90.04%  97.11%  98.92%  99.17%   (greedy, EOS included)
  teacher-forced accuracy at 2,000: 99.34%, loss 0.0237
  12 min 55 s wall (2 min 48 s of user CPU time: the machine was heavily shared).
Seed 1 (--config.seed=1, same strips): 89.35% at 1,000, 96.20% at 1,500, 96.85% exact match at
2,000 (token accuracy 98.95%, teacher-forced 99.22%); 9 min 37 s wall, 2 min 59 s user CPU.
"""

import data
from configs import common


def get_config():
  config = common.base()
  config.dataset = 'digit_strips'
  config.data = data.options(config.dataset)  # 100,000 / 2,000 strips of 1-5 digits
  config.task = 'captioning'
  config.model = 'caption_lstm'
  config.model_kwargs = common.model_kwargs(config.model, embed_dim=128, hidden_size=256)
  config.batch_size = 64
  config.eval_batch_size = 500
  config.optimizer = 'adam'
  config.learning_rate = 3e-3
  config.schedule = 'warmup_cosine'
  config.warmup_steps = 100
  config.grad_clip_norm = 1.0
  config.num_train_steps = 2_000
  config.log_every_steps = 100
  config.eval_every_steps = 500
  config.checkpoint_every_steps = 1_000
  return config
