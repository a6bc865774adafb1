"""A sequence-to-sequence forecaster: recurrent encoder over the past, autoregressive decoder.

  inputs x `[batch, L, 1]` (normalised) -> features per step `[x_t - x_L, x_t - x_{t-1}]`
  -> `rnn.RNN` encoder (LSTM/GRU, stacked) -> its final carries start the decoder
  -> decoder cells, one step per horizon step k = 1..H: input `[y_{k-1} - x_L, y_{k-1} - y_{k-2}]`
     (y_0 = x_L, y_{-1} = x_{L-1}), output d_k = Dense(h_k), y_k = y_{k-1} + d_k
  -> predictions y `[batch, H]` (normalised)

The decoder continues the encoder's feature stream, so both see the same two numbers per step:
where the series is relative to the last observed value, and its latest one-step change. Both are
invariant to the level of the series, so a price that has doubled since training looks familiar.
The output layer starts at zero: an untrained model predicts "no change", the naive last-value
forecast, and training learns the changes.

Feedback: in evaluation (`train=False`) every decoder step reads the model's own previous
prediction (free-running autoregression, no targets). In training, with `teacher_forcing=True`
and `targets` given, it reads the true previous value instead (teacher forcing); with
`teacher_forcing=False` it trains free-running as it evaluates, backpropagating through its own
predictions.
"""

from __future__ import annotations

import functools
from typing import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

from models import decoding, rnn

Array = jax.Array

_SCAN = dict(variable_broadcast='params', split_rngs={'params': False, 'dropout': True})


def _features(values: Array, last: Array, previous: Array) -> Array:
  """`[..., 2]`: level relative to the last observation, and the change from the previous step."""
  return jnp.stack([values - last, values - previous], axis=-1)


class Forecaster(nn.Module):
  """Encoder-decoder forecaster (see the module docstring).

  Attributes:
    horizon: H, steps forecast from each window (set from the dataset).
    hidden_size: H of every encoder and decoder layer.
    cell_type: 'lstm', 'gru' or 'rnn'.
    num_layers: layers of the encoder and of the decoder (decoder layer l starts from encoder
      layer l's final carry).
    dropout: between stacked layers and before the output layer (training only).
    teacher_forcing: in training, feed the decoder the true previous values (if given).
    unroll: scan unroll factor.
    cell_ops: the cells' elementwise pieces (`rnn.CellOps`; `models.create` passes the CPU forms
      on CPU).
  """
  horizon: int = 5
  hidden_size: int = 64
  cell_type: str = 'lstm'
  num_layers: int = 1
  dropout: float = 0.0
  teacher_forcing: bool = True
  unroll: int = 1
  cell_ops: rnn.CellOps = rnn.CellOps()

  def setup(self):
    self.encoder = rnn.RNN(self.hidden_size, self.cell_type, num_layers=self.num_layers,
                           dropout=self.dropout, unroll=self.unroll, cell_ops=self.cell_ops)
    self.decoder_cells = [rnn.make_cell(self.cell_type, self.hidden_size, ops=self.cell_ops)
                          for _ in range(self.num_layers)]
    self.output_layer = nn.Dense(1, kernel_init=nn.initializers.zeros_init())
    self.drop = nn.Dropout(self.dropout)

  def _decoder_step(self, carries, features: Array, train: bool):
    """One step from features `[batch, 2]`: (carries, change d_k `[batch]`)."""
    drop = lambda h: self.drop(h, deterministic=not train)
    carries, h = decoding.step_cells(self.decoder_cells, carries, features, between=drop)
    return carries, self.output_layer(drop(h))[:, 0]

  def __call__(self, inputs: Array, targets: Array | None = None, train: bool = False) -> Array:
    """Forecasts the next `horizon` values.

    Args:
      inputs: the past window `[batch, L, 1]` (or `[batch, L]`), normalised.
      targets: the true next values `[batch, H]`, read only in training with teacher forcing.
      train: enables dropout (rng 'dropout') and teacher forcing.

    Returns:
      predictions `[batch, H]`, normalised like the inputs.
    """
    x = inputs[..., 0] if inputs.ndim == 3 else inputs
    if x.shape[1] < 2:
      raise ValueError(f'the forecaster needs input windows of 2 or more steps, got {x.shape[1]}')
    last, previous = x[:, -1], x[:, -2]
    prev_x = jnp.concatenate([x[:, :1], x[:, :-1]], axis=1)  # the first step's change is 0
    _, carries = self.encoder(_features(x, last[:, None], prev_x), train=train)
    forced = train and self.teacher_forcing and targets is not None
    if forced:
      # The true y_{k-1} and y_{k-2} at every step k: [H, batch] each, time-major.
      known = jnp.concatenate([previous[:, None], last[:, None], targets[:, :-1]], axis=1)
      teacher = (jnp.swapaxes(known[:, 1:], 0, 1), jnp.swapaxes(known[:, :-1], 0, 1))
    else:
      teacher = (jnp.zeros((self.horizon, x.shape[0]), x.dtype),) * 2

    def body(module, state, forced_inputs):
      carries, y1, y2 = state  # y_{k-1}, y_{k-2} of the free-running decoder
      if forced:
        y1, y2 = forced_inputs
      carries, change = module._decoder_step(carries, _features(y1, last, y2), train)
      y = y1 + change
      return (carries, y, y1), y

    scan = nn.scan(body, in_axes=0, length=self.horizon, unroll=self.unroll, **_SCAN)
    _, predictions = scan(self, (tuple(carries), last, previous), teacher)
    return jnp.swapaxes(predictions, 0, 1)


MODELS: dict[str, Callable[..., nn.Module]] = {
    'lstm_forecaster': functools.partial(Forecaster, cell_type='lstm'),
    'gru_forecaster': functools.partial(Forecaster, cell_type='gru'),
}
