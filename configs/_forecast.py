"""The recipe the forecasting experiments share (configs/*_forecast.py).

A sequence-to-sequence LSTM forecaster (models/forecast.py) on windows of one real series
(data/timeseries.py), trained with Adam on the mean squared error of normalised values
(train/forecast_tasks.py). Evaluation forecasts free-running and reports `eval_rmse` and `eval_mae`
in the series' units next to the naive last-value forecast on the same windows (`eval_naive_rmse`,
`eval_naive_mae`, `eval_rmse_ratio`). Settings are chosen on the validation part
(`--config.data.eval_split=validation`); the test part is the default eval split and is evaluated
once.
"""

import data
from configs import common


def base(series: str, input_length: int, horizon: int, **model_kwargs):
  """The shared config for `series`; `model_kwargs` override the model's."""
  config = common.base()
  config.dataset = 'timeseries'
  # eval_split 'test' ('validation' for choosing settings); the series' own split and transform.
  config.data = data.options(config.dataset, series=series, input_length=input_length,
                             horizon=horizon)
  config.task = 'forecasting'
  config.model = 'lstm_forecaster'
  config.model_kwargs = common.model_kwargs(config.model, **{'hidden_size': 64, **model_kwargs})
  config.batch_size = 64
  config.eval_batch_size = 512
  config.optimizer = 'adam'
  config.learning_rate = 1e-3
  config.schedule = 'warmup_cosine'
  config.warmup_steps = 50
  config.grad_clip_norm = 1.0
  config.tensorboard_images = False
  config.num_train_steps = 2_000
  config.log_every_steps = 100
  config.eval_every_steps = 500
  config.checkpoint_every_steps = 500
  return config
