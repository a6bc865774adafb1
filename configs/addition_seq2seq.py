"""Multi-digit addition ('123+45' -> '168') with an LSTM encoder-decoder and Luong attention.

Run:
  python -m train.main --config=configs/addition_seq2seq.py --workdir=workdirs/addition_attention
The no-attention baseline (same encoder-decoder, h~_t = h_t):
  python -m train.main --config=configs/addition_seq2seq.py:noattention \
      --workdir=workdirs/addition_noattention
Harder: more digits, e.g. --config.data.num_digits=6 (the source grows to 13 characters).

Data (data/synthetic.py): 50,000 training and 2,000 held-out problems with operands of 1-3
digits; no test problem appears in training. Model (configs/_seq2seq.py): character embeddings
(32), one-layer LSTM encoder and decoder (256), dot-product attention with input feeding. Adam
3e-3, warm-up + cosine, gradient clipping at 1, batch 128, 3,000 steps (7.7 epochs). Evaluation
decodes greedily (no teacher forcing): `eval_exact_match` is the fraction of test sums exactly
right.

Measured (quiet 2-vCPU AMD EPYC, the two runs at once; 2026-11-26, second session), exact match
on the 2,000 held-out problems after 3,000 steps, from `python -m train.evaluate --workdir=DIR
--beam_size=4`:
  attention (989,582 parameters)      greedy 99.45%  (beam search, 4 beams: 99.55%)  3 min 30 s wall
  :noattention (596,366 parameters)   greedy 98.90%  (beam 4: 99.30%)                2 min 42 s wall
(An earlier run on a busy machine, before this session's rounding-level changes (hand-written
scan backward, integer-label loss): 99.70% and 98.90%.)
"""

import data
from configs import _seq2seq


def get_config(variant: str = ''):
  config = _seq2seq.base('addition_seq2seq', variant)
  config.dataset = 'addition'
  config.data = data.options(config.dataset)  # operands of 1-3 digits
  return config
