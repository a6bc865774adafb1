"""Forecasting: windows and splits by hand, a scaler fitted on training data only, metric sums
against NumPy, the seq2seq forecaster's two feedback paths, and a short training run on a sine."""

import functools
import math
import sys

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

import compiled_apply
import data
import models
from data import timeseries
from train import forecast_tasks
from train import trainer

# Second differences 1: one-step changes 1, 2, ..., 9.
TINY = np.array([1, 2, 4, 7, 11, 16, 22, 29, 37, 46], np.float64)


def tiny_series(values=TINY):
  dates = np.datetime64('2000-01-01') + np.arange(len(values))
  return timeseries.Series('tiny', dates, np.asarray(values, np.float64), 'units')


@pytest.fixture
def fake_series(monkeypatch):
  """Registers series 'tiny' (TINY, daily from 2000-01-01; train 0-5, validation 6-7, test 8-9)
  and returns a function that replaces its values."""
  current = {'values': TINY}
  monkeypatch.setitem(timeseries.SERIES, 'tiny', timeseries.SeriesDefaults(
      lambda: tiny_series(current['values']), '2000-01-07', '2000-01-09', False))
  return lambda values: current.update(values=np.asarray(values, np.float64))


def config(**values):
  base = {'series': 'tiny', 'input_length': 3, 'horizon': 2}
  return ml_collections.ConfigDict({'dataset': 'timeseries', 'data': {**base, **values}})


def test_window_origins_by_hand():
  # Parts of a 10-value series: train [0, 6), validation [6, 8), test [8, 10); L=3, H=2.
  np.testing.assert_array_equal(timeseries.window_origins(0, 6, 3, 2), [2, 3])
  np.testing.assert_array_equal(timeseries.window_origins(6, 8, 3, 2), [5])
  np.testing.assert_array_equal(timeseries.window_origins(8, 10, 3, 2), [7])
  np.testing.assert_array_equal(timeseries.window_origins(0, 6, 1, 1, stride=2), [0, 2, 4])
  assert len(timeseries.window_origins(6, 8, 3, 3)) == 0  # the part is shorter than the horizon
  with pytest.raises(ValueError, match='positive'):
    timeseries.window_origins(0, 6, 3, 2, stride=0)


def test_split_bounds_by_date():
  dates = tiny_series().dates
  assert timeseries.split_bounds(dates, '2000-01-07', '2000-01-09') == (6, 8)
  with pytest.raises(ValueError, match='empty part'):
    timeseries.split_bounds(dates, '2000-01-09', '2000-01-07')


def test_scaler_by_hand():
  scaler = timeseries.Scaler.fit(TINY[:6])  # 1 2 4 7 11 16: mean 41/6, changes 1..5: std sqrt(2)
  assert scaler.loc == pytest.approx(41 / 6) and scaler.scale == pytest.approx(math.sqrt(2))
  z = scaler.transform(TINY)
  np.testing.assert_allclose(z, (TINY - 41 / 6) / math.sqrt(2))
  np.testing.assert_allclose(scaler.inverse(z), TINY)
  logged = timeseries.Scaler.fit(TINY[:6], log=True)
  assert logged.loc == pytest.approx(np.log(TINY[:6]).mean())
  assert logged.scale == pytest.approx(np.diff(np.log(TINY[:6])).std())
  np.testing.assert_allclose(logged.inverse(logged.transform(TINY)), TINY)
  with pytest.raises(ValueError, match='never changes'):
    timeseries.Scaler.fit(np.ones(5))


def test_pipeline_windows_and_splits_by_hand(fake_series):
  dataset = data.create(config(eval_split='validation'))
  train = dataset.train.fetch(np.arange(len(dataset.train)), None)
  z = lambda v: (np.asarray(v, np.float64) - 41 / 6) / math.sqrt(2)
  # Train origins 2 and 3: inputs x[0..2], x[1..3]; targets x[3..4], x[4..5].
  np.testing.assert_allclose(train['inputs'][..., 0], z([[1, 2, 4], [2, 4, 7]]), rtol=1e-6)
  np.testing.assert_allclose(train['targets'], z([[7, 11], [11, 16]]), rtol=1e-6)
  np.testing.assert_array_equal(train['target_values'], [[7, 11], [11, 16]])
  np.testing.assert_array_equal(train['last_value'], [4, 7])
  # The validation window (origin 5) reads its inputs from the training part, targets x[6..7].
  valid = dataset.eval.fetch(np.arange(len(dataset.eval)), None)
  np.testing.assert_array_equal(valid['target_values'], [[22, 29]])
  np.testing.assert_allclose(valid['inputs'][0, :, 0], z([7, 11, 16]), rtol=1e-6)
  test = data.create(config()).eval.fetch(np.arange(1), None)
  np.testing.assert_array_equal(test['target_values'], [[37, 46]])
  assert dataset.facts.parts == {'train': ('2000-01-01', '2000-01-06', 6),
                                   'validation': ('2000-01-07', '2000-01-08', 2),
                                   'test': ('2000-01-09', '2000-01-10', 2)}
  assert dataset.facts.model_kwargs() == {'horizon': 2}
  strided = data.create(config(input_length=1, horizon=1, window_stride=2))
  np.testing.assert_array_equal(strided.train.fetch(np.arange(3), None)['last_value'], [1, 4, 11])


def test_drift_and_seasonal_baselines_by_hand(fake_series):
  # Training part 1 2 4 7 11 16: mean one-step change 15 / 5 = 3. Test origin 7 (x = 29).
  test = data.create(config(season_length=2)).eval.fetch(np.arange(1), None)
  np.testing.assert_allclose(test['drift_forecast'], [[32, 35]])
  # x[t+k-2] + (x[t] - x[t-2]): 22 + (29 - 16), 29 + (29 - 16).
  np.testing.assert_allclose(test['seasonal_forecast'], [[35, 42]])
  assert 'seasonal_forecast' not in data.create(config()).eval.fetch(np.arange(1), None)
  logged = data.create(config(log_transform=True)).eval.fetch(np.arange(1), None)
  growth = np.mean(np.diff(np.log(TINY[:6])))
  np.testing.assert_allclose(logged['drift_forecast'],
                             [[29 * np.exp(growth), 29 * np.exp(2 * growth)]], rtol=1e-6)
  with pytest.raises(ValueError, match='horizon <= season_length'):
    data.create(config(season_length=1))


def test_scaler_is_fitted_on_the_training_part_only(fake_series):
  before = data.create(config())
  changed = TINY.copy()
  changed[6:] = [500, -3, 1e4, 7]  # validation and test values only
  fake_series(changed)
  after = data.create(config())
  assert before.facts.scaler == after.facts.scaler == timeseries.Scaler.fit(TINY[:6])
  first, second = (d.train.fetch(np.arange(2), None) for d in (before, after))
  for key in first:
    np.testing.assert_array_equal(first[key], second[key])
  assert not np.array_equal(before.eval.fetch(np.arange(1), None)['targets'],
                            after.eval.fetch(np.arange(1), None)['targets'])
  fake_series(np.where(np.arange(10) == 5, 99.0, TINY))  # a training value
  assert data.create(config()).facts.scaler != before.facts.scaler


def test_real_series_and_their_date_splits():
  msft = data.create(ml_collections.ConfigDict({'dataset': 'timeseries',
                                                'data': {'series': 'msft'}}))
  assert msft.facts.series.values.shape == (7983,)
  assert {k: v[2] for k, v in msft.facts.parts.items()} == {
      'train': 6255, 'validation': 754, 'test': 974}
  assert msft.facts.parts['test'] == ('2014-01-02', '2017-11-10', 974)
  assert len(msft.eval) == 974 - 5 + 1  # every origin whose 5 targets lie in the test part
  assert msft.facts.scaler.log
  co2 = timeseries.load_co2()
  assert co2.values.shape == (2284,) and np.isfinite(co2.values).all()
  assert timeseries.load_sunspots().values.shape == (309,)


def test_missing_package_is_a_clear_error(monkeypatch):
  monkeypatch.setitem(sys.modules, 'pmdarima', None)  # makes `import pmdarima` fail
  with pytest.raises(data.DatasetNotFoundError, match='pip install pmdarima'):
    timeseries.load_msft()


def _numpy_metrics(predictions, batch):
  keep = batch['mask']
  f = predictions * batch['scale'][:, None] + batch['loc'][:, None]
  values = np.where(batch['log'][:, None], np.exp(f), f)[keep]
  truth = batch['target_values'][keep]
  naive = np.broadcast_to(batch['last_value'][keep, None], truth.shape)
  rmse = lambda e: float(np.sqrt(np.mean(e ** 2)))
  return {'loss': np.mean((predictions[keep] - batch['targets'][keep]) ** 2),
          'rmse': rmse(values - truth), 'mae': np.mean(np.abs(values - truth)),
          'naive_rmse': rmse(naive - truth), 'naive_mae': np.mean(np.abs(naive - truth)),
          'rmse_step1': rmse(values[:, 0] - truth[:, 0]),
          'rmse_last': rmse(values[:, -1] - truth[:, -1]),
          'naive_rmse_last': rmse(naive[:, -1] - truth[:, -1]),
          'drift_rmse': rmse(batch['drift_forecast'][keep] - truth),
          'drift_mae': np.mean(np.abs(batch['drift_forecast'][keep] - truth)),
          'seasonal_rmse': rmse(batch['seasonal_forecast'][keep] - truth),
          'seasonal_mae': np.mean(np.abs(batch['seasonal_forecast'][keep] - truth))}


@pytest.mark.parametrize('log', [False, True])
def test_metric_sums_match_numpy(log):
  rng = np.random.default_rng(0)
  b, h = 12, 4
  batch = {'targets': rng.normal(size=(b, h)).astype(np.float32),
           'target_values': rng.uniform(1, 3, size=(b, h)).astype(np.float32),
           'last_value': rng.uniform(1, 3, size=b).astype(np.float32),
           'loc': np.full(b, 0.5, np.float32), 'scale': np.full(b, 0.2, np.float32),
           'log': np.full(b, log), 'mask': np.arange(b) < 9,  # 3 padding examples
           'drift_forecast': rng.uniform(1, 3, size=(b, h)).astype(np.float32),
           'seasonal_forecast': rng.uniform(1, 3, size=(b, h)).astype(np.float32)}
  predictions = rng.normal(size=(b, h)).astype(np.float32)
  task = forecast_tasks.Forecasting()
  loss_and_sums = jax.jit(task.loss_and_sums)
  halves = [loss_and_sums(predictions[s], {k: v[s] for k, v in batch.items()})[1]
            for s in (slice(0, 5), slice(5, None))]  # sums of two batches add up exactly
  sums = {k: float(halves[0][k]) + float(halves[1][k]) for k in halves[0]}
  metrics = task.finalize(sums)
  expected = _numpy_metrics(predictions.astype(np.float64), batch)
  for name, value in expected.items():
    assert metrics[name] == pytest.approx(value, rel=1e-5), name
  assert metrics['rmse_ratio'] == pytest.approx(expected['rmse'] / expected['naive_rmse'], rel=1e-5)
  loss, _ = loss_and_sums(predictions, batch)
  assert float(loss) == pytest.approx(expected['loss'], rel=1e-5)


@pytest.fixture(scope='module')
def forecaster():
  model = models.create('gru_forecaster', horizon=4, hidden_size=8, num_layers=2)
  inputs = jax.random.normal(jax.random.PRNGKey(0), (3, 6, 1))
  variables = jax.jit(model.init)(jax.random.PRNGKey(1), inputs, jnp.zeros((3, 4)))
  return model, variables, inputs


def test_untrained_forecaster_is_the_naive_forecast(forecaster):
  model, variables, inputs = forecaster
  predictions = compiled_apply.apply(model, variables, inputs, jnp.zeros((3, 4)))
  assert predictions.shape == (3, 4)
  np.testing.assert_array_equal(predictions, jnp.broadcast_to(inputs[:, -1], (3, 4)))


def test_teacher_forcing_and_free_running_agree_on_own_predictions(forecaster):
  model, variables, inputs = forecaster
  params = jax.tree.map(lambda p: p + 0.3 * jax.random.normal(jax.random.PRNGKey(2), p.shape),
                        variables['params'])  # a non-zero output layer
  variables = {'params': params}
  apply = functools.partial(compiled_apply.apply, model, variables)
  free = apply(inputs, jnp.zeros((3, 4)))
  # Fed its own predictions as "targets", teacher forcing retraces the free-running decoder.
  forced = apply(inputs, free, train=True)
  np.testing.assert_allclose(forced, free, rtol=1e-5, atol=1e-5)
  # Teacher forcing reads targets[:, k - 1] at step k; evaluation never reads targets.
  other = apply(inputs, free.at[:, 1].add(1.0), train=True)
  assert np.allclose(other[:, :2], forced[:, :2]) and not np.allclose(other[:, 2], forced[:, 2])
  np.testing.assert_array_equal(apply(inputs, free + 1.0), free)
  no_forcing = model.clone(teacher_forcing=False)
  np.testing.assert_allclose(
      compiled_apply.apply(no_forcing, variables, inputs, free + 1.0, train=True), free,
      rtol=1e-5, atol=1e-5)


def test_training_on_a_sine_beats_the_naive_forecast(monkeypatch, tmp_path):
  t = np.arange(400)
  sine = 10 + np.sin(2 * np.pi * t / 20)
  dates = np.datetime64('2000-01-01') + t
  monkeypatch.setitem(timeseries.SERIES, 'sine', timeseries.SeriesDefaults(
      lambda: timeseries.Series('sine', dates, sine, 'units'), '2000-10-01', '2000-11-01', False))
  cfg = ml_collections.ConfigDict({
      'seed': 0, 'dataset': 'timeseries',
      'data': {'series': 'sine', 'input_length': 10, 'horizon': 5},
      'task': 'forecasting', 'model': 'lstm_forecaster', 'model_kwargs': {'hidden_size': 16},
      'batch_size': 32, 'eval_batch_size': 64, 'optimizer': 'adam', 'learning_rate': 1e-2,
      'num_train_steps': 60, 'log_every_steps': 60, 'eval_every_steps': 60,
      'checkpoint_every_steps': 60, 'tensorboard_images': False})
  final = trainer.train_and_evaluate(cfg, str(tmp_path))
  # Untrained, the model is the naive forecast (ratio 1); the sine is learnable.
  assert final['eval_rmse_ratio'] < 0.3
  assert final['eval_naive_rmse'] > 0.3 and math.isfinite(final['eval_loss'])
