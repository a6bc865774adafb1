"""Reversing long strings ('hdbfa' -> 'afbdh'): where attention matters most.

Run:
  python -m train.main --config=configs/reversal_seq2seq.py --workdir=workdirs/reversal_attention
  python -m train.main --config=configs/reversal_seq2seq.py:noattention \
      --workdir=workdirs/reversal_noattention

Data (data/synthetic.py): strings of 1-30 letters from a 10-letter alphabet, 50,000 training and
2,000 held-out ones. The no-attention model must squeeze the whole string into the encoder's
final state; with attention each output step can look up its source position. Model and recipe:
configs/_seq2seq.py with a 128-unit LSTM (the sequences are long, so steps cost more), 2,000
steps.

Measured (2-vCPU AMD EPYC, shared, 2026-11-26), greedy exact match on 2,000 held-out strings,
overall and by source length 1-10 / 11-20 / 21-30 (552 / 730 / 718 strings):
  attention (265,677 parameters)      99.95%   99.8 / 100.0 / 100.0%   6 min 49 s wall
  :noattention (167,373 parameters)   57.80%   98.9 /  74.8 /   8.9%   5 min 04 s wall
  (beam search, 4 beams, no attention: 64.75%; 99.3 / 84.3 / 18.4%)
"""

from configs import _seq2seq


def get_config(variant: str = ''):
  config = _seq2seq.base('reversal_seq2seq', variant, hidden_size=128)
  config.dataset = 'reversal'
  config.min_length = 1
  config.max_length = 30
  config.alphabet_size = 10
  config.num_train_steps = 2_000
  return config
