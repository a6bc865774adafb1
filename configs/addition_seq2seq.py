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
right. Expected: >= 99% exact match with attention; measured numbers and times: README.md
"Results".
"""

from configs import _seq2seq


def get_config(variant: str = ''):
  config = _seq2seq.base('addition_seq2seq', variant)
  config.dataset = 'addition'
  config.num_digits = 3
  return config
