"""Word-level LSTM language models of Zaremba, Sutskever & Vinyals (2014), "Recurrent Neural
Network Regularization": variants `small`, `medium` and `large`.

  python -m train.main --config=configs/ptb_lstm_zaremba.py:small --workdir=workdirs/zaremba_small

| variant | layers x units | dropout | init U(-s, s) | epochs | decay per epoch | clip | paper |
|---------|----------------|---------|---------------|--------|-----------------|------|-------|
| small   | 2 x 200        | 0       | 0.1           | 13     | x0.5 from 5th   | 5    | 114.5 |
| medium  | 2 x 650        | 0.5     | 0.05          | 39     | /1.2 from 7th   | 5    | 82.7  |
| large   | 2 x 1500       | 0.65    | 0.04          | 55     | /1.15 from 15th | 10   | 78.4  |

("paper": the paper's PTB test perplexity.) All: plain SGD with learning rate 1, batch 20,
truncated BPTT over 35 steps, carried state reset at each epoch, gradients clipped by global norm,
LSTM forget bias 0, no weight tying, 10,000-word vocabulary.

Data: the Penn Treebank ships in no package these machines can install, so the config reads a tfds
text corpus named by `tfds_name` through the `tfds_text_lm` pipeline (data/text_tfds.py): by
default `tiny_shakespeare`, word level (lines of lower-cased words, each ended by <eos>). To run on
PTB, prepare a tfds dataset whose train/test splits hold the PTB text (e.g. a custom builder over
ptb.train.txt / ptb.test.txt; one line per example is fine) and pass
`--config.data.tfds_name=NAME`.

Steps: `num_train_steps` is `epochs x steps per epoch` for PTB's 929,589 training tokens
(1,327 steps of 20 x 35 tokens per epoch, as in the paper's reader); the learning-rate decays
are placed at fractions of `num_train_steps`, so they land on epoch boundaries of any corpus
once `num_train_steps` is set to `epochs x` the steps per epoch that the pipeline reports in
`dataset.facts.steps_per_epoch` (the run's first line shows it too: train examples / batch
size). When they disagree (`num_epochs` is set), `data.create` logs a warning with the value
to pass.

Evaluation scores every token of the test split once (rows of 35 x 20 tokens, each preceded by
35 unscored tokens of context) and reports `eval_perplexity`; the paper evaluates in one pass with
batch size 1, which differs only in the 35-token context at row starts.
"""

import data
from configs import common

PTB_TRAIN_TOKENS = 929_589  # words + <eos>, as read by the paper's reader

# variant -> (hidden, dropout, init_scale, epochs, decay, decay from epoch, clip)
VARIANTS = {
    'small': (200, 0.0, 0.1, 13, 0.5, 4, 5.0),
    'medium': (650, 0.5, 0.05, 39, 1 / 1.2, 6, 5.0),
    'large': (1500, 0.65, 0.04, 55, 1 / 1.15, 14, 10.0),
}


def get_config(variant: str = 'small'):
  if variant not in VARIANTS:
    raise ValueError(f"Unknown variant '{variant}' of ptb_lstm_zaremba; use one of "
                     f"{', '.join(VARIANTS)}.")
  hidden, dropout, init_scale, epochs, decay, decay_from, clip = VARIANTS[variant]
  config = common.base()
  config.dataset = 'tfds_text_lm'
  # Lower-cased words, BPTT over seq_len 35 (the default).
  config.data = data.options(config.dataset, tfds_name='tiny_shakespeare', vocab_size=10_000,
                             eval_row_length=700, eval_context=35)
  config.model = 'lstm_lm'
  config.model_kwargs = common.model_kwargs(
      config.model, hidden_size=hidden, embedding_size=hidden, num_layers=2, dropout=dropout,
      init_scale=init_scale, forget_bias=0.0, tie_weights=False)
  config.task = 'language_model'
  config.task_kwargs.bits_per_char = False
  config.batch_size = 20
  config.eval_batch_size = 20
  config.optimizer = 'sgd'
  config.momentum = 0.0
  config.learning_rate = 1.0
  config.grad_clip_norm = clip
  config.schedule = 'step'
  config.decay_factor = decay
  # Fractions of num_train_steps (train/optim.py); + 1e-9 so that float rounding never moves a
  # boundary one step before the epoch's start.
  config.decay_boundaries = tuple(k / epochs + 1e-9 for k in range(decay_from, epochs))
  steps_per_epoch = (PTB_TRAIN_TOKENS // config.batch_size - 1) // config.data.seq_len
  config.num_epochs = epochs
  config.num_train_steps = epochs * steps_per_epoch
  config.log_every_steps = 100
  config.eval_every_steps = steps_per_epoch
  config.checkpoint_every_steps = steps_per_epoch
  return config
