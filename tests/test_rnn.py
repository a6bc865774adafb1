"""Tests of models/rnn.py: the equations (NumPy), PyTorch with copied weights, length masking."""

import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from models import rnn
from compiled_apply import apply as _apply

try:  # the tests marked `torch` compare against PyTorch; the Python 3.12 CI leg has none
  import torch
  torch.set_num_threads(1)
  TORCH_CLASSES = {'rnn': torch.nn.RNN, 'lstm': torch.nn.LSTM, 'gru': torch.nn.GRU}
except ImportError:
  torch = TORCH_CLASSES = None

TOL = dict(rtol=1e-5, atol=1e-5)


def _rng(seed=0):
  return np.random.default_rng(seed)


def _sigmoid(x):
  return 1.0 / (1.0 + np.exp(-x))


def _numpy_step(cell_type, p, carry, x, activation='tanh'):
  """The textbook equations, one time step, from the cell's parameter dict."""
  w_x, b = np.asarray(p['input_projection']['kernel']), np.asarray(p['input_projection']['bias'])
  w_h = np.asarray(p['recurrent_kernel'])
  if cell_type == 'rnn':
    act = np.tanh if activation == 'tanh' else (lambda v: np.maximum(v, 0))
    h = act(x @ w_x + b + carry @ w_h)
    return h, h
  if cell_type == 'lstm':
    h, c = carry
    hsz = h.shape[-1]
    z = x @ w_x + b + h @ w_h
    i, f, g, o = (z[:, k * hsz:(k + 1) * hsz] for k in range(4))
    c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
    h = _sigmoid(o) * np.tanh(c)
    return (h, c), h
  h = carry
  hsz = h.shape[-1]
  b_h = np.asarray(p['recurrent_bias'])
  xs = x @ w_x + b
  hs = h @ w_h + b_h
  r = _sigmoid(xs[:, :hsz] + hs[:, :hsz])
  z = _sigmoid(xs[:, hsz:2 * hsz] + hs[:, hsz:2 * hsz])
  n = np.tanh(xs[:, 2 * hsz:] + r * hs[:, 2 * hsz:])
  h = (1 - z) * n + z * h
  return h, h


def _zeros(cell_type, batch, hidden):
  z = np.zeros((batch, hidden), np.float32)
  return (z, z) if cell_type == 'lstm' else z


def _init(module, *args):
  return jax.jit(module.init)(jax.random.PRNGKey(0), *args)



# Cells.


def test_cell_ops_default_to_the_plain_functions():
  ops = rnn.CellOps()
  assert ops.sigmoid is jax.nn.sigmoid and ops.split is rnn.slice_gates
  x = jnp.arange(2 * 9, dtype=jnp.float32).reshape(2, 9)
  for block, (start, stop) in zip(rnn.slice_gates(x, (2, 4, 3)), [(0, 2), (2, 6), (6, 9)]):
    np.testing.assert_array_equal(block, x[:, start:stop])
  assert ops.materialise(x) is x


@pytest.mark.parametrize('cell_type', ['rnn', 'lstm', 'gru'])
def test_cell_step_by_step_matches_numpy_equations(cell_type):
  batch, features, hidden, steps = 3, 5, 4, 4
  cell = rnn.make_cell(cell_type, hidden)
  xs = _rng(1).standard_normal((steps, batch, features)).astype(np.float32)
  carry = cell.zero_carry(batch)
  variables = _init(cell, carry, xs[0])
  p = variables['params']
  expected_carry = _zeros(cell_type, batch, hidden)
  for t in range(steps):
    carry, h = _apply(cell, variables, carry, xs[t])
    expected_carry, expected_h = _numpy_step(cell_type, p, expected_carry, xs[t])
    np.testing.assert_allclose(h, expected_h, **TOL)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, **TOL), carry, expected_carry)


def test_cell_parameters_shapes_and_forget_bias():
  lstm = rnn.LSTMCell(6)
  params = _init(lstm, lstm.zero_carry(2), jnp.zeros((2, 3)))['params']
  assert params['input_projection']['kernel'].shape == (3, 24)
  assert params['recurrent_kernel'].shape == (6, 24)  # one fused matrix for the four gates
  bias = np.asarray(params['input_projection']['bias'])
  np.testing.assert_array_equal(bias[6:12], 1.0)  # forget gate
  np.testing.assert_array_equal(np.delete(bias, np.s_[6:12]), 0.0)
  # Each gate block of the recurrent kernel is orthogonal.
  block = np.asarray(params['recurrent_kernel'][:, 6:12])
  np.testing.assert_allclose(block.T @ block, np.eye(6), atol=1e-5)
  gru = rnn.GRUCell(6)
  params = _init(gru, gru.zero_carry(2), jnp.zeros((2, 3)))['params']
  assert params['recurrent_bias'].shape == (18,)


def test_relu_rnn_cell():
  cell = rnn.SimpleRNNCell(4, activation='relu')
  x = _rng(2).standard_normal((2, 3)).astype(np.float32)
  variables = _init(cell, cell.zero_carry(2), x)
  carry, h = _apply(cell, variables, cell.zero_carry(2) + 0.5, x)
  expected, _ = _numpy_step('rnn', variables['params'], np.full((2, 4), 0.5, np.float32), x, 'relu')
  np.testing.assert_allclose(h, expected, **TOL)
  assert (np.asarray(h) >= 0).all()


# The layer against NumPy and PyTorch.


@pytest.mark.parametrize('cell_type', ['rnn', 'lstm', 'gru'])
def test_layer_matches_numpy_loop(cell_type):
  batch, steps, features, hidden = 2, 5, 3, 4
  layer = rnn.RNN(hidden, cell_type)
  x = _rng(3).standard_normal((batch, steps, features)).astype(np.float32)
  variables = _init(layer, x)
  outputs, (final,) = _apply(layer, variables, x)
  carry = _zeros(cell_type, batch, hidden)
  for t in range(steps):
    carry, h = _numpy_step(cell_type, variables['params']['l0'], carry, x[:, t])
    np.testing.assert_allclose(outputs[:, t], h, **TOL)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, **TOL), final, carry)


def _torch_pair(cell_type, features, hidden, num_layers, bidirectional, nonlinearity='tanh'):
  torch.manual_seed(0)
  kwargs = {'nonlinearity': nonlinearity} if cell_type == 'rnn' else {}
  reference = TORCH_CLASSES[cell_type](features, hidden, num_layers=num_layers, batch_first=True,
                                       bidirectional=bidirectional, **kwargs)
  params = rnn.params_from_torch(reference.state_dict(), cell_type, num_layers, bidirectional)
  layer = rnn.RNN(hidden, cell_type, num_layers=num_layers, bidirectional=bidirectional,
                  activation=nonlinearity)
  return reference, layer, {'params': params}


@pytest.mark.torch
@pytest.mark.parametrize('cell_type, num_layers, bidirectional, nonlinearity', [
    ('rnn', 2, True, 'tanh'), ('rnn', 1, False, 'relu'), ('lstm', 2, True, 'tanh'),
    ('gru', 3, True, 'tanh'),
])
def test_layer_matches_torch_with_copied_weights(cell_type, num_layers, bidirectional,
                                                  nonlinearity):
  batch, steps, features, hidden = 3, 6, 5, 7
  reference, layer, variables = _torch_pair(cell_type, features, hidden, num_layers,
                                            bidirectional, nonlinearity)
  # The copied parameters have exactly the shapes the layer creates.
  x = _rng(4).standard_normal((batch, steps, features)).astype(np.float32)
  created = jax.eval_shape(lambda: layer.init(jax.random.PRNGKey(0), x))
  assert jax.tree.map(lambda a: a.shape, created) == jax.tree.map(lambda a: a.shape, variables)

  dirs = 2 if bidirectional else 1
  h0 = _rng(5).standard_normal((num_layers * dirs, batch, hidden)).astype(np.float32)
  c0 = _rng(6).standard_normal((num_layers * dirs, batch, hidden)).astype(np.float32)
  with torch.no_grad():
    if cell_type == 'lstm':
      expected, (h_n, c_n) = reference(torch.tensor(x), (torch.tensor(h0), torch.tensor(c0)))
      initial = tuple(zip(h0, c0))
    else:
      expected, h_n = reference(torch.tensor(x), torch.tensor(h0))
      initial = tuple(h0)
  outputs, finals = _apply(layer, variables, x, initial_carry=initial)
  assert outputs.shape == (batch, steps, dirs * hidden)
  np.testing.assert_allclose(outputs, expected.numpy(), **TOL)
  np.testing.assert_allclose(np.stack([rnn.hidden_state(c) for c in finals]), h_n.numpy(), **TOL)
  if cell_type == 'lstm':
    np.testing.assert_allclose(np.stack([c[1] for c in finals]), c_n.numpy(), **TOL)
  np.testing.assert_allclose(rnn.final_hidden(finals, dirs),
                             np.concatenate(list(h_n.numpy()[-dirs:]), -1), **TOL)


@pytest.mark.torch
def test_lengths_match_torch_packed_sequences():
  batch, steps, features, hidden = 3, 6, 4, 5
  reference, layer, variables = _torch_pair('lstm', features, hidden, 2, True)
  x = _rng(7).standard_normal((batch, steps, features)).astype(np.float32)
  lengths = np.array([6, 2, 4])
  packed = torch.nn.utils.rnn.pack_padded_sequence(torch.tensor(x), torch.tensor(lengths),
                                                   batch_first=True, enforce_sorted=False)
  with torch.no_grad():
    out, (h_n, c_n) = reference(packed)
  expected, _ = torch.nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=steps)
  outputs, finals = _apply(layer, variables, x, lengths)
  np.testing.assert_allclose(outputs, expected.numpy(), **TOL)
  np.testing.assert_allclose(np.stack([c[0] for c in finals]), h_n.numpy(), **TOL)
  np.testing.assert_allclose(np.stack([c[1] for c in finals]), c_n.numpy(), **TOL)


# Padding, initial carry, scan, gradients.


@pytest.mark.parametrize('cell_type', ['lstm', 'gru'])  # carries (h, c) and h
def test_padding_never_changes_results(cell_type):
  batch, steps, features, hidden = 3, 7, 3, 4
  layer = rnn.RNN(hidden, cell_type, num_layers=2, bidirectional=True)
  lengths = np.array([7, 3, 1])
  x = _rng(8).standard_normal((batch, steps, features)).astype(np.float32)
  variables = _init(layer, x)
  padded = np.where(np.arange(steps)[None, :, None] < lengths[:, None, None], x, 99.0)
  outputs, finals = _apply(layer, variables, padded, lengths)
  for b, n in enumerate(lengths):
    alone, alone_finals = _apply(layer, variables, x[b:b + 1, :n])
    np.testing.assert_allclose(outputs[b:b + 1, :n], alone, **TOL)
    np.testing.assert_array_equal(outputs[b, n:], 0.0)
    jax.tree.map(lambda a, e: np.testing.assert_allclose(a[b:b + 1], e, **TOL),
                 finals, alone_finals)


def test_initial_carry_is_honoured_with_lengths():
  layer = rnn.RNN(4, 'gru', bidirectional=True)
  x = _rng(9).standard_normal((2, 5, 3)).astype(np.float32)
  variables = _init(layer, x)
  initial = tuple(_rng(10).standard_normal((2, 2, 4)).astype(np.float32))
  lengths = np.array([5, 2])
  out_a, fin_a = _apply(layer, variables, x, lengths, initial)
  out_b, _ = _apply(layer, variables, x, lengths)
  assert not np.allclose(out_a, out_b)
  # The second sequence alone, from its own initial carry, gives the same.
  alone, fin_alone = _apply(layer, variables, x[1:, :2], None, tuple(c[1:] for c in initial))
  np.testing.assert_allclose(out_a[1:, :2], alone, **TOL)
  jax.tree.map(lambda a, e: np.testing.assert_allclose(a[1:], e, **TOL), fin_a, fin_alone)
  # A length-0 sequence keeps its initial carry.
  _, fin_zero = _apply(layer, variables, x, np.array([5, 0]), initial)
  np.testing.assert_allclose(fin_zero[0][1], initial[0][1])


def test_recurrence_is_one_scan_and_long_sequences_compile_fast():
  layer = rnn.RNN(8, 'lstm', num_layers=2, bidirectional=True, unroll=2)
  short = jnp.zeros((2, 10, 3))
  variables = _init(layer, short)

  def forward(x):
    return _apply(layer, variables, x, jnp.array([x.shape[1], 1]))[0]

  text_short = str(jax.make_jaxpr(forward)(short))
  long = jnp.zeros((2, 2000, 3))
  text_long = str(jax.make_jaxpr(forward)(long))
  assert text_short.count('scan[') == 4  # one per layer and direction
  # The program does not grow with the sequence length (no Python loop over time).
  assert abs(len(text_long) - len(text_short)) < 200
  start = time.perf_counter()
  jax.block_until_ready(jax.jit(forward)(long))
  assert time.perf_counter() - start < 30


@pytest.mark.parametrize('cell_type, num_layers, bidirectional', [
    ('lstm', 2, True), ('gru', 1, True), ('rnn', 1, False)])
def test_every_parameter_gets_a_gradient(cell_type, num_layers, bidirectional):
  layer = rnn.RNN(4, cell_type, num_layers=num_layers, bidirectional=bidirectional)
  x = _rng(11).standard_normal((2, 5, 3)).astype(np.float32)
  variables = _init(layer, x)

  def loss(params):
    outputs, finals = layer.apply({'params': params}, x, np.array([5, 3]))
    return (outputs ** 2).sum() + sum((leaf ** 2).sum() for leaf in jax.tree.leaves(finals))

  grads = jax.jit(jax.grad(loss))(variables['params'])
  for path, g in jax.tree_util.tree_leaves_with_path(grads):
    assert np.abs(np.asarray(g)).max() > 0, jax.tree_util.keystr(path)


def test_dropout_between_layers_in_training_only():
  layer = rnn.RNN(16, 'lstm', num_layers=2, dropout=0.5)
  x = _rng(12).standard_normal((2, 4, 3)).astype(np.float32)
  variables = _init(layer, x)
  eval_a, _ = _apply(layer, variables, x)
  eval_b, _ = _apply(layer, variables, x, train=False)
  np.testing.assert_array_equal(eval_a, eval_b)
  train_out, _ = _apply(layer, variables, x, train=True, rngs={'dropout': jax.random.PRNGKey(1)})
  assert not np.allclose(train_out, eval_a)


def test_output_layer_is_a_dense_on_the_outputs_and_return_carry_option():
  layer = rnn.RNN(4, 'rnn', return_carry=False)
  x = _rng(13).standard_normal((2, 3, 2)).astype(np.float32)
  variables = _init(layer, x)
  hidden = _apply(layer, variables, x)
  assert hidden.shape == (2, 3, 4)
  head = nn.Dense(5)
  y = head.apply(head.init(jax.random.PRNGKey(1), hidden), hidden)
  assert y.shape == (2, 3, 5)


def test_bad_arguments():
  with pytest.raises(ValueError, match='cell_type'):
    rnn.make_cell('transformer', 4)
  layer = rnn.RNN(4, 'gru', num_layers=2)
  with pytest.raises(ValueError, match='initial_carry'):
    _init(layer, jnp.zeros((1, 2, 3)), None, (jnp.zeros((1, 4)),))
