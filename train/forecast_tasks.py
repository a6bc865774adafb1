"""Multi-step forecasting: MSE on normalised values; errors in original units vs the naive forecast.

Batch (data/timeseries.py): `inputs` `[B, L, 1]`, `targets` `[B, H]` (normalised),
`target_values` `[B, H]` and `last_value` `[B]` (original units), the scaler `loc`, `scale`,
`log` `[B]`, and in evaluation `mask` `[B]` (False on padding).

The model sees the targets only in training (for teacher forcing); evaluation calls it with the
inputs alone, so every eval forecast is free-running.

Metrics (sums over examples and horizon steps, divided once at the end):
  loss           mean squared error of the normalised forecasts, over the H steps.
  rmse, mae      root mean squared and mean absolute error in the series' original units (dollars,
                 ppm), over every forecast value (examples x H steps).
  naive_rmse, naive_mae   the same for the naive forecast (every step = the last observed value),
                 on the same windows.
  rmse_ratio     rmse / naive_rmse (below 1: better than naive); mae_ratio likewise.
  rmse_step1, rmse_last, naive_rmse_step1, naive_rmse_last   RMSE of the first and the last
                 (H-th) forecast step alone.
  drift_rmse, drift_mae, seasonal_rmse, seasonal_mae   the other baselines the pipeline supplies
                 (`drift_forecast`, `seasonal_forecast` `[B, H]`, original units), where present.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from train.tasks import Batch, Sums, Task, example_weights


def to_original_units(z: jax.Array, batch: Batch) -> jax.Array:
  """Normalised values `[B, ...]` -> original units, with the scaler carried in the batch."""
  expand = lambda a: a.reshape(a.shape + (1,) * (z.ndim - 1))
  f = z.astype(jnp.float32) * expand(batch['scale']) + expand(batch['loc'])
  return jnp.where(expand(batch['log']), jnp.exp(f), f)


# Baseline forecasts a pipeline may put in the batch as `<name>_forecast` (data/timeseries.py).
BASELINES = ('drift', 'seasonal')


class Forecasting(Task):
  """Mean squared error of the H-step forecast in normalised units."""

  def model_inputs(self, batch: Batch) -> tuple:
    return batch['inputs'], batch['targets']

  def apply(self, apply_fn, variables, batch: Batch, *, train: bool, rngs=None, mutable=False):
    inputs = self.model_inputs(batch) if train else (batch['inputs'],)
    return apply_fn(variables, *inputs, train=train, rngs=rngs, mutable=mutable)

  def loss_and_sums(self, predictions: jax.Array, batch: Batch) -> tuple[jax.Array, Sums]:
    targets = batch['targets']
    weights = example_weights(batch, targets.shape[0])
    predictions = predictions.astype(jnp.float32)
    per_example = jnp.mean((predictions - targets) ** 2, axis=-1)
    count = weights.sum()
    values = batch['target_values']
    errors = to_original_units(predictions, batch) - values
    naive = batch['last_value'][:, None] - values
    w = weights[:, None]
    sums = {
        'loss': (per_example * weights).sum(),
        'count': count,
        'points': count * targets.shape[1],
        'squared_error': (errors ** 2 * w).sum(),
        'absolute_error': (jnp.abs(errors) * w).sum(),
        'naive_squared_error': (naive ** 2 * w).sum(),
        'naive_absolute_error': (jnp.abs(naive) * w).sum(),
        'squared_error_step1': (errors[:, 0] ** 2 * weights).sum(),
        'squared_error_last': (errors[:, -1] ** 2 * weights).sum(),
        'naive_squared_error_step1': (naive[:, 0] ** 2 * weights).sum(),
        'naive_squared_error_last': (naive[:, -1] ** 2 * weights).sum(),
    }
    for name in BASELINES:
      if f'{name}_forecast' in batch:
        error = batch[f'{name}_forecast'].astype(jnp.float32) - values
        sums[f'{name}_squared_error'] = (error ** 2 * w).sum()
        sums[f'{name}_absolute_error'] = (jnp.abs(error) * w).sum()
    return sums['loss'] / jnp.maximum(count, 1.0), sums

  def finalize(self, sums: dict[str, float]) -> dict[str, float]:
    count, points = max(sums['count'], 1.0), max(sums['points'], 1.0)
    metrics = {
        'loss': sums['loss'] / count,
        'rmse': math.sqrt(sums['squared_error'] / points),
        'mae': sums['absolute_error'] / points,
        'naive_rmse': math.sqrt(sums['naive_squared_error'] / points),
        'naive_mae': sums['naive_absolute_error'] / points,
        'rmse_step1': math.sqrt(sums['squared_error_step1'] / count),
        'rmse_last': math.sqrt(sums['squared_error_last'] / count),
        'naive_rmse_step1': math.sqrt(sums['naive_squared_error_step1'] / count),
        'naive_rmse_last': math.sqrt(sums['naive_squared_error_last'] / count),
    }
    for name in BASELINES:
      if f'{name}_squared_error' in sums:
        metrics[f'{name}_rmse'] = math.sqrt(sums[f'{name}_squared_error'] / points)
        metrics[f'{name}_mae'] = sums[f'{name}_absolute_error'] / points
    ratio = lambda a, b: a / b if b > 0 else float('nan')
    metrics['rmse_ratio'] = ratio(metrics['rmse'], metrics['naive_rmse'])
    metrics['mae_ratio'] = ratio(metrics['mae'], metrics['naive_mae'])
    return metrics
