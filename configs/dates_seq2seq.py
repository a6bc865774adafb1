"""Date normalisation ('March 5, 2021', '05/03/21', ... -> '2021-03-05').

Run:
  python -m train.main --config=configs/dates_seq2seq.py --workdir=workdirs/dates_attention
  python -m train.main --config=configs/dates_seq2seq.py:noattention \
      --workdir=workdirs/dates_noattention

Data (data/synthetic.py): eight human date formats (with and without weekday, month names
abbreviated or not, day/month/two-digit year) for days 1950-2049, 50,000 training and 2,000
held-out strings. Model and recipe: configs/_seq2seq.py with a 128-unit LSTM, 2,000 steps.
Expected: near-perfect exact match with attention; measured numbers and times: README.md
"Results".
"""

from configs import _seq2seq


def get_config(variant: str = ''):
  config = _seq2seq.base('dates_seq2seq', variant, hidden_size=128)
  config.dataset = 'dates'
  config.num_train_steps = 2_000
  return config
