"""Reversing long strings ('hdbfa' -> 'afbdh'): where attention matters most.

Run:
  python -m train.main --config=configs/reversal_seq2seq.py --workdir=workdirs/reversal_attention
  python -m train.main --config=configs/reversal_seq2seq.py:noattention \
      --workdir=workdirs/reversal_noattention

Data (data/synthetic.py): strings of 1-30 letters from a 10-letter alphabet, 50,000 training and
2,000 held-out ones. The no-attention model must squeeze the whole string into the encoder's
final state; with attention each output step can look up its source position. Model and recipe:
configs/_seq2seq.py with a 128-unit LSTM (the sequences are long, so steps cost more), 2,000
steps. Expected: a large exact-match gap between the two variants; measured numbers and times:
README.md "Results".
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
