"""Multi-digit addition ('123+45' -> '168') with an LSTM encoder-decoder and Luong attention.

Run:
  python -m train.main --config=configs/addition_seq2seq.py --workdir=workdirs/addition_attention
The no-attention baseline (same encoder-decoder, h~_t = h_t):
  python -m train.main --config=configs/addition_seq2seq.py:noattention \
      --workdir=workdirs/addition_noattention
Harder: more digits, e.g. --config.num_digits=6 (the source grows to 13 characters).

Data (data/synthetic.py): 50,000 training and 2,000 held-out problems with operands of 1-3
digits; no test problem appears in training. Model (configs/_seq2seq.py): character embeddings
(32), one-layer LSTM encoder and decoder (256), dot-product attention with input feeding. Adam
3e-3, warm-up + cosine, gradient clipping at 1, batch 128, 3,000 steps (7.7 epochs). Evaluation
decodes greedily (no teacher forcing): `eval_exact_match` is the fraction of test sums exactly
right.

Measured (2-vCPU AMD EPYC, shared with other jobs, load ~4; 2026-11-26), greedy exact match on the
2,000 held-out problems after 3,000 steps:
  attention (989,582 parameters)      99.70%  (beam search, 4 beams: 99.80%)  7 min 31 s wall
  :noattention (596,366 parameters)   98.90%  (beam 4: 99.30%)                6 min 04 s wall
"""

from configs import _seq2seq


def get_config(variant: str = ''):
  config = _seq2seq.base('addition_seq2seq', variant)
  config.dataset = 'addition'
  config.num_digits = 3
  return config
