"""Mauna Loa CO2, weekly: 13 weeks (a quarter) ahead from the last 104, vs the naive forecast.

Run:
  python -m train.main --config=configs/co2_forecast.py --workdir=workdirs/co2_forecast
Choose settings on the validation part (1990-1995), never on the test part:
  python -m train.main --config=configs/co2_forecast.py --config.eval_split=validation \
      --workdir=workdirs/co2_forecast_validation

Data (data/timeseries.py, `statsmodels.api.datasets.co2`): 2,284 weeks 1958-03-29 to 2001-12-29
(59 missing weeks before 1986 interpolated); train before 1990 (1,658 weeks), validation 1990-1995
(313), test 1996-2001 (313 weeks, 301 windows). Model (configs/_forecast.py): LSTM
encoder-decoder, 64 units, predicting changes from the last value.
"""

from configs import _forecast


def get_config():
  return _forecast.base('co2', input_length=104, horizon=13)
