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

Measured (quiet 2-vCPU AMD EPYC, the two runs at once, 2026-11-26, second session), exact match
on the 2,000 held-out strings, overall and by source length 1-10 / 11-20 / 21-30 (552 / 730 /
718 strings), from `python -m train.evaluate --workdir=DIR --beam_size=4`:
                                      greedy                          beam 4              wall
  attention (265,677 parameters)      99.95%  99.8 / 100.0 / 100.0%   99.95%  (the same)  4 min 14 s
  :noattention (167,373 parameters)   57.95%  99.1 /  75.3 /   8.6%   64.95%  99.8 / 85.1 / 17.7%
                                                                                          3 min 12 s
(An earlier run on a busy machine, before this session's rounding-level changes (hand-written
scan backward, integer-label loss): 99.95% and 57.80%.)
"""

import data
from configs import _seq2seq


def get_config(variant: str = ''):
  config = _seq2seq.base('reversal_seq2seq', variant, hidden_size=128)
  config.dataset = 'reversal'
  config.data = data.options(config.dataset, max_length=30)
  config.num_train_steps = 2_000
  return config
