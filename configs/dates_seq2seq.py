"""Date normalisation ('March 5, 2021', '05/03/21', ... -> '2021-03-05').

Run:
  python -m train.main --config=configs/dates_seq2seq.py --workdir=workdirs/dates_attention
  python -m train.main --config=configs/dates_seq2seq.py:noattention \
      --workdir=workdirs/dates_noattention

Data (data/synthetic.py): eight human date formats (with and without weekday, month names
abbreviated or not, day/month/two-digit year) for days 1950-2049, 50,000 training and 2,000
held-out strings. Model and recipe: configs/_seq2seq.py with a 128-unit LSTM, 2,000 steps.

Measured (2-vCPU AMD EPYC, shared, 2026-11-26): 100.00% greedy exact match on the 2,000 held-out
dates with attention (100% already at step 1,000; 6 min 04 s wall for 2,000 steps) and also
without (99.95% at step 1,000, 100.00% at 2,000; 6 min 18 s): the outputs are short, so this
task checks the pipeline rather than separating the models.
"""

import data
from configs import _seq2seq


def get_config(variant: str = ''):
  config = _seq2seq.base('dates_seq2seq', variant, hidden_size=128)
  config.dataset = 'dates'
  config.data = data.options(config.dataset)
  config.num_train_steps = 2_000
  return config
