"""Microsoft's daily closing price, 5 trading days ahead from the last 60, vs the naive forecast.

Run:
  python -m train.main --config=configs/msft_forecast.py --workdir=workdirs/msft_forecast
Choose settings on the validation part (2011-2013), never on the test part:
  python -m train.main --config=configs/msft_forecast.py --config.eval_split=validation \
      --workdir=workdirs/msft_forecast_validation

Data (data/timeseries.py, `pmdarima.datasets.load_msft()`): 7,983 trading days 1986-03-13 to
2017-11-10; train before 2011 (6,255 days), validation 2011-2013 (754), test 2014-01-02 to
2017-11-10 (974 days, 970 windows). Log prices, normalised by the training part's mean and the
standard deviation of its daily log changes. Model (configs/_forecast.py): LSTM encoder-decoder,
64 units, predicting changes from the last close.
"""

from configs import _forecast


def get_config():
  return _forecast.base('msft', input_length=60, horizon=5)
