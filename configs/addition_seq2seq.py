"""Multi-digit addition ('123+45' -> '168') with an LSTM encoder-decoder and Luong attention.

Run:
  python -m train.main --config=configs/addition_seq2seq.py --workdir=workdirs/addition_attention
The no-attention baseline (same encoder-decoder, h~_t = h_t):
  python -m train.main --config=configs/addition_seq2seq.py:noattention \
      --workdir=workdirs/addition_noattention
Harder: more digits, e.g. --config.num_digits=6 (the source grows to 13 characters).

Data (data/synthetic.py): 50,000 training and 2,000 held-out problems with operands of 1-3
digits; no test problem appears in training. Model: character embeddings (32), one-layer LSTM
encoder and decoder (256), dot-product attention with input feeding. Adam 3e-3, warm-up + cosine,
gradient clipping at 1, batch 128, 3,000 steps (~7.7 epochs). Evaluation decodes greedily (no
teacher forcing): `eval_exact_match` is the fraction of test sums that are exactly right.
Expected: see README.md "Results" (measured exact match and time on a 2-core CPU).
"""

from configs import common

VARIANTS = {'': 'seq2seq_attention', 'noattention': 'seq2seq'}


def get_config(variant: str = ''):
  if variant not in VARIANTS:
    raise ValueError(f"Unknown variant '{variant}' of addition_seq2seq; use ':noattention' or none.")
  config = common.base()
  config.dataset = 'addition'
  config.num_digits = 3
  config.train_size = 50_000
  config.test_size = 2_000
  config.data_seed = 0
  config.task = 'seq2seq'
  config.model = VARIANTS[variant]
  config.model_kwargs = common.model_kwargs(config.model, embed_dim=32, hidden_size=256)
  config.batch_size = 128
  config.eval_batch_size = 500
  config.optimizer = 'adam'
  config.learning_rate = 3e-3
  config.schedule = 'warmup_cosine'
  config.warmup_steps = 100
  config.grad_clip_norm = 1.0
  config.num_train_steps = 3_000
  config.log_every_steps = 100
  config.eval_every_steps = 1_000
  config.checkpoint_every_steps = 1_000
  return config
