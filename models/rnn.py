"""Recurrent cells (SimpleRNN, LSTM, GRU) and the scan-driven, length-masked `RNN` layer.

The cells are written as the textbook writes them, in two parts so that the layer can hoist work
out of the recurrence:

1. `cell.project(x)`: the input projection `W_x x_t + b` for all gates at once, `[..., in]` ->
   `[..., G * H]` (G = 1, 4, 3 gates for RNN, LSTM, GRU). It does not depend on the previous step,
   so `RNN` applies it to every time step in ONE matrix product outside the scan.
2. `cell.step(carry, projected)`: the recurrence proper, one fused product `h_{t-1} W_h` with
   `W_h` `[H, G * H]`, then the gate nonlinearities.

`cell(carry, x)` does both, for stepping a cell by hand. `cell.scan(carry, projected, mask)` runs
the step over time (what `RNN` and the language model use): the values of
`scan_steps(cell.step_fn(), ...)` with a hand-written backward pass whose recurrent-kernel gradient
is one large product after the backward scan instead of a `[H, G*H]` update per time step
(docs/performance.md has the measurements). The sigmoid, the gate split and a barrier on the
backward scan's residuals come from the cell's `ops` (`CellOps`: plain by default; on CPU
`models.create` passes `cpu_kernels.CELL_OPS`). Gate order and biases follow PyTorch
(`torch.nn.RNN/LSTM/GRU`), so its weights copy over with a transpose (`params_from_torch`):

  SimpleRNNCell  h_t = act(W_x x_t + W_h h_{t-1} + b)                    carry h
  LSTMCell       [i f g o] = W_x x_t + b + W_h h_{t-1}                   carry (h, c)
                 c_t = sigmoid(f) * c_{t-1} + sigmoid(i) * tanh(g);  h_t = sigmoid(o) * tanh(c_t)
  GRUCell        [r z n]: r = sigmoid(W_xr x + b_xr + W_hr h + b_hr), z likewise,
                 n = tanh(W_xn x + b_xn + r * (W_hn h + b_hn));  h_t = (1 - z) * n + z * h_{t-1}

Parameters of a cell: `input_projection/kernel` `[in, G*H]`, `input_projection/bias` `[G*H]`,
`recurrent_kernel` `[H, G*H]`, and for the GRU `recurrent_bias` `[G*H]` (PyTorch's `b_hh`, kept
separate because `r` multiplies `W_hn h + b_hn`). The textbook output layer of a simple RNN,
`y_t = f(W_y h_t + b_y)`, is not part of the cell: apply an `nn.Dense` to the `RNN` outputs
`[batch, time, H]`, which is one matrix product for all time steps.

Initialisation: input kernels LeCun normal, recurrent kernels orthogonal per gate block, biases
zero except the LSTM forget gate's, which starts at `forget_bias` = 1 (Jozefowicz et al. 2015).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable, ClassVar, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

Array = jax.Array
Carry = Any  # h `[batch, H]`, or for the LSTM the tuple (h, c)
Initializer = Callable[..., Array]

_ACTIVATIONS = {'tanh': jnp.tanh, 'relu': jax.nn.relu}


def slice_gates(x: Array, sizes: tuple[int, ...]) -> tuple[Array, ...]:
  """`x` `[..., sum(sizes)]` cut into consecutive blocks of `sizes` on the last axis."""
  starts = [sum(sizes[:i]) for i in range(len(sizes))]
  return tuple(x[..., start:start + size] for start, size in zip(starts, sizes))


def unchanged(tree: Any) -> Any:
  """The identity (the plain `CellOps.materialise`)."""
  return tree


@dataclasses.dataclass(frozen=True)
class CellOps:
  """The elementwise pieces the cells are written with; the defaults are the textbook ones.

  On CPU `models.create` passes `cpu_kernels.CELL_OPS` instead: the same functions, computed in
  forms XLA:CPU runs faster.

  Attributes:
    sigmoid: the logistic function, `[...]` -> `[...]`.
    split: `split(x, sizes)`: `x` `[..., sum(sizes)]` -> its consecutive blocks on the last axis.
    materialise: applied to each step's residuals in the recurrent backward scan (a pytree in,
      the same pytree out).
  """
  sigmoid: Callable[[Array], Array] = jax.nn.sigmoid
  split: Callable[[Array, tuple[int, ...]], tuple[Array, ...]] = slice_gates
  materialise: Callable[[Any], Any] = unchanged


def _choice(table: dict, key: str, what: str):
  if key not in table:
    raise ValueError(f"{what} must be one of {', '.join(map(repr, table))}, got {key!r}")
  return table[key]


def _per_gate(init: Initializer, num_gates: int) -> Initializer:
  """Initialises a `[H, G*H]` kernel as G independent `[H, H]` blocks (e.g. G orthogonal ones)."""

  def initializer(key, shape, dtype=jnp.float32):
    rows, cols = shape
    keys = jax.random.split(key, num_gates)
    return jnp.concatenate([init(k, (rows, cols // num_gates), dtype) for k in keys], axis=-1)

  return initializer


class RecurrentCell(nn.Module):
  """Base class: input projection + recurrent step. Subclasses set `num_gates` and `_step`.

  Attributes:
    hidden_size: H, the size of the hidden state.
    kernel_init: initialiser of the input kernel `[in, G*H]`.
    recurrent_kernel_init: initialiser of each `[H, H]` gate block of the recurrent kernel.
    bias_init: initialiser of the input bias `[G*H]`.
    ops: the sigmoid, gate split and residual barrier the math is written with (`CellOps`).
  """
  hidden_size: int
  kernel_init: Initializer = nn.initializers.lecun_normal()
  recurrent_kernel_init: Initializer = nn.initializers.orthogonal()
  bias_init: Initializer = nn.initializers.zeros_init()
  ops: CellOps = CellOps()

  num_gates: ClassVar[int] = 1
  # Whether `_combine` reads `projected` and `product` only as their sum (lets `scan`'s backward
  # keep one array per step instead of two).
  additive: ClassVar[bool] = False

  def _input_bias_init(self, key, shape, dtype=jnp.float32):
    return self.bias_init(key, shape, dtype)

  def setup(self):
    gates = self.num_gates * self.hidden_size
    self.input_projection = nn.Dense(gates, kernel_init=self.kernel_init,
                                     bias_init=self._input_bias_init, name='input_projection')
    self.recurrent_kernel = self.param(
        'recurrent_kernel', _per_gate(self.recurrent_kernel_init, self.num_gates),
        (self.hidden_size, gates))

  def project(self, inputs: Array) -> Array:
    """`W_x x + b` for every gate: `[..., in]` -> `[..., G*H]` (any leading axes, e.g. time)."""
    return self.input_projection(inputs)

  def recurrent_params(self) -> dict[str, Array]:
    """The parameters the step reads (arrays, so a `lax.scan` body can close over them)."""
    return {'recurrent_kernel': self.recurrent_kernel}

  def step_fn(self) -> Callable[[Carry, Array], tuple[Carry, Array]]:
    """A pure `step(carry, projected) -> (carry, h)`, closed over the recurrent parameters.

    Call it outside `jax.lax.scan` and use the result inside: Flax parameters cannot be read
    from inside a JAX transform, plain arrays can.
    """
    return functools.partial(self._step, self.recurrent_params())

  def step(self, carry: Carry, projected: Array) -> tuple[Carry, Array]:
    """One step from the projected input `[batch, G*H]`; returns (new carry, h `[batch, H]`)."""
    return self.step_fn()(carry, projected)

  def __call__(self, carry: Carry, inputs: Array) -> tuple[Carry, Array]:
    """One time step from raw inputs `[batch, in]`: `step(carry, project(inputs))`."""
    return self.step(carry, self.project(inputs))

  def zero_carry(self, batch_shape: Sequence[int] | int, dtype=jnp.float32) -> Carry:
    """All-zero carry for `batch_shape` (works on an unbound module)."""
    batch_shape = (batch_shape,) if isinstance(batch_shape, int) else tuple(batch_shape)
    return jnp.zeros(batch_shape + (self.hidden_size,), dtype)

  @staticmethod
  def hidden(carry: Carry) -> Array:
    """The hidden state h of a carry."""
    return carry

  def _step(self, params, carry, projected):
    return self._combine(carry, projected, _recurrent_product(params, self.hidden(carry)))

  def _combine(self, carry, projected, product):
    """The gates from `projected` `[batch, G*H]` and `product` = `h W_h (+ b_h)` `[batch, G*H]`."""
    raise NotImplementedError

  def scan(self, carry: Carry, projected: Array, mask: Array | None = None, *,
           reverse: bool = False, unroll: int = 1) -> tuple[Carry, Array]:
    """`scan_steps(self.step_fn(), ...)`: same values, with a hand-written backward pass.

    Autodiff of `lax.scan` adds `h_{t-1}^T dz_t` into the recurrent kernel's gradient at every
    step (a `[H, G*H]` read-modify-write per step); here the backward scan only carries `dh`, and
    the kernel's gradient is ONE `[H, time*batch] x [time*batch, G*H]` product afterwards.
    """
    params = self.recurrent_params()
    return _fused_scan(self._combine, self.hidden, self.additive, reverse, unroll,
                       self.ops.materialise, params['recurrent_kernel'],
                       params.get('recurrent_bias'), carry, projected, mask)


class SimpleRNNCell(RecurrentCell):
  """Elman RNN: `h_t = activation(W_x x_t + W_h h_{t-1} + b)`; carry h `[batch, H]`.

  Attributes:
    activation: 'tanh' (default) or 'relu', as `torch.nn.RNN(nonlinearity=...)`.
  """
  activation: str = 'tanh'

  num_gates: ClassVar[int] = 1
  additive: ClassVar[bool] = True

  def _combine(self, h, projected, product):
    act = _choice(_ACTIVATIONS, self.activation, 'activation')
    h = act(projected + product)
    return h, h


class LSTMCell(RecurrentCell):
  """LSTM with forget gate, all four gates from one fused product; carry (h, c), each `[batch, H]`.

  Attributes:
    forget_bias: initial value of the forget gate's bias (1.0; 0.0 gives PyTorch's init).
  """
  forget_bias: float = 1.0

  num_gates: ClassVar[int] = 4
  additive: ClassVar[bool] = True

  def _input_bias_init(self, key, shape, dtype=jnp.float32):
    h = self.hidden_size
    return self.bias_init(key, shape, dtype).at[h:2 * h].add(self.forget_bias)

  def _combine(self, carry, projected, product):
    _, c = carry
    sizes = (c.shape[-1],) * 4
    z = projected + product
    # One logistic over all four gate blocks (g's block unused) beats three over thin slices.
    i, f, _, o = self.ops.split(self.ops.sigmoid(z), sizes)
    c = f * c + i * jnp.tanh(self.ops.split(z, sizes)[2])
    h = o * jnp.tanh(c)
    return (h, c), h

  def zero_carry(self, batch_shape, dtype=jnp.float32):
    h = super().zero_carry(batch_shape, dtype)
    return (h, h)

  @staticmethod
  def hidden(carry):
    return carry[0]


class GRUCell(RecurrentCell):
  """GRU as PyTorch writes it (reset gate applied to `W_hn h + b_hn`); carry h `[batch, H]`."""

  num_gates: ClassVar[int] = 3

  def setup(self):
    super().setup()
    self.recurrent_bias = self.param('recurrent_bias', self.bias_init, (3 * self.hidden_size,))

  def recurrent_params(self):
    return {'recurrent_kernel': self.recurrent_kernel, 'recurrent_bias': self.recurrent_bias}

  def _combine(self, h, projected, product):
    hidden = h.shape[-1]
    split, sigmoid = self.ops.split, self.ops.sigmoid
    x_rz, x_n = split(projected, (2 * hidden, hidden))
    h_rz, h_n = split(product, (2 * hidden, hidden))
    r, z = split(sigmoid(x_rz + h_rz), (hidden, hidden))
    n = jnp.tanh(x_n + r * h_n)
    h = (1.0 - z) * n + z * h
    return h, h


CELLS: dict[str, type[RecurrentCell]] = {'rnn': SimpleRNNCell, 'lstm': LSTMCell, 'gru': GRUCell}


def make_cell(cell_type: str, hidden_size: int, activation: str = 'tanh',
              forget_bias: float = 1.0, **kwargs) -> RecurrentCell:
  """Builds the cell named `cell_type` ('rnn', 'lstm' or 'gru')."""
  cls = _choice(CELLS, cell_type, 'cell_type')
  if cls is SimpleRNNCell:
    kwargs['activation'] = activation
  elif cls is LSTMCell:
    kwargs['forget_bias'] = forget_bias
  return cls(hidden_size, **kwargs)


def scan_steps(step: Callable, carry: Carry, projected: Array, mask: Array | None = None, *,
               reverse: bool = False, unroll: int = 1) -> tuple[Carry, Array]:
  """Runs `step` over time with `jax.lax.scan`, skipping masked (padding) steps.

  Args:
    step: pure `step(carry, x_t) -> (carry, h_t)`.
    carry: initial carry, leaves `[batch, ...]`.
    projected: time-major inputs `[time, batch, G*H]`.
    mask: `[time, batch]` bool, False on padding; a masked step leaves the carry unchanged and
      outputs zeros. With padding at the end and `reverse=True`, each sequence therefore starts at
      its own last element, from the initial carry.
    reverse: scan from the last time step to the first (outputs stay in time order).
    unroll: `lax.scan`'s unroll factor.

  Returns:
    (final carry, outputs `[time, batch, H]`).
  """

  def body(carry, inputs):
    x, valid = inputs
    return _masked(lambda c, x, _: step(c, x), carry, x, None, valid)

  return jax.lax.scan(body, carry, (projected, mask), reverse=reverse, unroll=unroll)


def _recurrent_product(params, h):
  product = h @ params['recurrent_kernel']
  return product + params['recurrent_bias'] if 'recurrent_bias' in params else product


def _masked(combine, carry, x, product, valid):
  new_carry, h = combine(carry, x, product)
  if valid is None:
    return new_carry, h
  keep = valid[:, None]
  new_carry = jax.tree.map(lambda new, old: jnp.where(keep, new, old), new_carry, carry)
  return new_carry, jnp.where(keep, h, jnp.zeros_like(h))


def _add_to_hidden(carry, dh):
  return (carry[0] + dh,) + tuple(carry[1:]) if isinstance(carry, tuple) else carry + dh


def _fused_scan_fwd(combine, hidden, additive, reverse, unroll, materialise, kernel, bias, carry,
                    projected, mask):
  def body(carry, inputs):
    x, valid = inputs
    product = hidden(carry) @ kernel
    if bias is not None:
      product = product + bias
    new_carry, h = _masked(combine, carry, x, product, valid)
    # An additive cell's backward needs only the sum; keep it instead of the product.
    return new_carry, (h, carry, x + product if additive else product)

  final, (outputs, previous, products) = jax.lax.scan(body, carry, (projected, mask),
                                                      reverse=reverse, unroll=unroll)
  return (final, outputs), (kernel, bias is not None, previous, products,
                            None if additive else projected, mask)


def _fused_scan_bwd(combine, hidden, additive, reverse, unroll, materialise, residuals,
                    cotangents):
  kernel, has_bias, previous, products, projected, mask = residuals
  d_final, d_outputs = cotangents

  def body(d_carry, inputs):
    inputs = materialise(inputs)  # this step's residual slices
    if additive:  # `product` holds x + product; one gradient serves both
      carry, z, valid, d_h = inputs
      _, vjp = jax.vjp(lambda c, z: _masked(combine, c, z, jnp.zeros_like(z), valid), carry, z)
      d_carry, d_product = vjp((d_carry, d_h))
      d_x = ()
    else:
      carry, x, product, valid, d_h = inputs
      _, vjp = jax.vjp(lambda c, x, z: _masked(combine, c, x, z, valid), carry, x, product)
      d_carry, d_x, d_product = vjp((d_carry, d_h))
    return _add_to_hidden(d_carry, d_product @ kernel.T), (d_x, d_product)

  xs = ((previous, products, mask, d_outputs) if additive else
        (previous, projected, products, mask, d_outputs))
  d_carry, (d_projected, d_products) = jax.lax.scan(body, d_final, xs, reverse=not reverse,
                                                    unroll=unroll)
  if additive:
    d_projected = d_products
  h_previous = hidden(previous)
  rows = h_previous.shape[0] * h_previous.shape[1]
  d_kernel = h_previous.reshape(rows, -1).T @ d_products.reshape(rows, -1)
  d_bias = d_products.sum((0, 1)) if has_bias else None
  return d_kernel, d_bias, d_carry, d_projected, None


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1, 2, 3, 4, 5))
def _fused_scan(combine, hidden, additive, reverse, unroll, materialise, kernel, bias, carry,
                projected, mask):
  """`lax.scan` of `combine(carry, x_t, hidden(carry) @ kernel + bias)` over time-major
  `projected`, masked as `scan_steps`; returns (final carry, outputs `[time, batch, H]`).

  `additive`: `combine` reads `x_t` and the product only as their sum (SimpleRNN, LSTM); the
  backward then saves and differentiates that sum alone. `materialise` is applied to each step's
  residuals in the backward scan (`CellOps.materialise`).
  """
  return _fused_scan_fwd(combine, hidden, additive, reverse, unroll, materialise, kernel, bias,
                         carry, projected, mask)[0]


_fused_scan.defvjp(_fused_scan_fwd, _fused_scan_bwd)


class RNN(nn.Module):
  """A stacked, optionally bidirectional recurrent layer driven by `jax.lax.scan`.

  Equivalent to `torch.nn.RNN/LSTM/GRU(batch_first=True)` (with `params_from_torch`), plus
  per-sequence lengths: each sequence's outputs past its length are zero, its final carry is the
  one at its true length, and the reverse direction starts at its true last element (padding
  stays at the end). So a padded batch gives exactly what each sequence gives alone.

  Each layer's input projection is one matrix product over all time steps, outside the scan.

  Attributes:
    hidden_size: H per direction.
    cell_type: 'lstm', 'gru' or 'rnn' (tanh/ReLU Elman).
    num_layers: stacked layers; layer l > 0 reads layer l-1's outputs (both directions).
    bidirectional: adds a reverse-time direction per layer; outputs concatenate [forward, reverse].
    dropout: dropout rate on the outputs of every layer but the last (training only), as PyTorch.
    activation: 'tanh' or 'relu' for `cell_type='rnn'`.
    forget_bias: LSTM forget-gate bias at initialisation.
    unroll: `lax.scan` unroll factor (time steps per loop iteration).
    return_carry: if False, `__call__` returns the outputs only.
    cell_ops: the cells' elementwise pieces (`CellOps`; `models.create` passes CPU forms on CPU).

  Submodules (cells) are named like PyTorch's parameter suffixes: `l0`, `l0_reverse`, `l1`, ...
  """
  hidden_size: int
  cell_type: str = 'lstm'
  num_layers: int = 1
  bidirectional: bool = False
  dropout: float = 0.0
  activation: str = 'tanh'
  forget_bias: float = 1.0
  unroll: int = 1
  return_carry: bool = True
  cell_ops: CellOps = CellOps()

  @property
  def num_directions(self) -> int:
    return 2 if self.bidirectional else 1

  def zero_carry(self, batch_size: int, dtype=jnp.float32) -> tuple[Carry, ...]:
    """Zero initial carries, one per layer and direction in PyTorch's order (works unbound)."""
    cell = make_cell(self.cell_type, self.hidden_size, self.activation, parent=None)
    return tuple(cell.zero_carry(batch_size, dtype)
                 for _ in range(self.num_layers * self.num_directions))

  @nn.compact
  def __call__(self, inputs: Array, lengths: Array | None = None,
               initial_carry: Sequence[Carry] | None = None, *, train: bool = False):
    """Runs the layers over `inputs`.

    Args:
      inputs: `[batch, time, features]`.
      lengths: optional `[batch]` int, each sequence's true length (padding at the end);
        None means every sequence is `time` long.
      initial_carry: optional, one carry per layer and direction in PyTorch's order
        (`l0`, `l0_reverse`, `l1`, ...); each an `[batch, H]` array, or (h, c) for the LSTM.
        Default zeros.
      train: enables dropout between layers (rng 'dropout').

    Returns:
      (outputs `[batch, time, num_directions * H]`, final carries: a tuple in the order of
      `initial_carry`, each taken at the sequence's true length), or only the outputs if
      `return_carry` is False.
    """
    batch, time = inputs.shape[:2]
    if initial_carry is None:
      initial_carry = self.zero_carry(batch, inputs.dtype)
    if len(initial_carry) != self.num_layers * self.num_directions:
      raise ValueError(f'initial_carry has {len(initial_carry)} entries; expected num_layers * '
                       f'num_directions = {self.num_layers * self.num_directions}')
    mask = None
    if lengths is not None:
      mask = jnp.arange(time)[:, None] < jnp.asarray(lengths)[None, :]  # [time, batch]

    x = jnp.swapaxes(inputs, 0, 1)  # time-major [time, batch, features] through the stack
    finals = []
    for layer in range(self.num_layers):
      outputs = []
      for direction in range(self.num_directions):
        suffix = '_reverse' if direction else ''
        cell = make_cell(self.cell_type, self.hidden_size, self.activation, self.forget_bias,
                         ops=self.cell_ops, name=f'l{layer}{suffix}')
        projected = cell.project(x)  # one product for all time steps
        carry = initial_carry[layer * self.num_directions + direction]
        carry, out = cell.scan(carry, projected, mask, reverse=bool(direction),
                               unroll=self.unroll)
        finals.append(carry)
        outputs.append(out)
      x = outputs[0] if len(outputs) == 1 else jnp.concatenate(outputs, axis=-1)
      if self.dropout and layer < self.num_layers - 1:
        x = nn.Dropout(self.dropout, deterministic=not train)(x)
    outputs = jnp.swapaxes(x, 0, 1)
    return (outputs, tuple(finals)) if self.return_carry else outputs


def hidden_state(carry: Carry) -> Array:
  """h `[batch, H]` of any cell's carry (the LSTM's is (h, c))."""
  return carry[0] if isinstance(carry, (tuple, list)) else carry


def final_hidden(carries: Sequence[Carry], num_directions: int = 1) -> Array:
  """The last layer's final h, directions concatenated: `[batch, num_directions * H]`.

  For a padded batch this is each sequence's state at its true length (forward) and at its
  first element (reverse): the usual sequence summary for a classifier.
  """
  last = [hidden_state(c) for c in carries[-num_directions:]]
  return last[0] if num_directions == 1 else jnp.concatenate(last, axis=-1)


def params_from_torch(state_dict: dict[str, Any], cell_type: str, num_layers: int = 1,
                      bidirectional: bool = False) -> dict[str, Any]:
  """`RNN` params from a `torch.nn.RNN/LSTM/GRU` state dict (tensors or NumPy arrays).

  PyTorch keeps `weight_ih_l{k}` `[G*H, in]`, `weight_hh_l{k}` `[G*H, H]`, `bias_ih_l{k}` and
  `bias_hh_l{k}` with the same gate order as here; kernels are transposed, and for the RNN and
  LSTM the two biases are summed (they only ever appear added). Returns `{'l0': {...}, ...}`, to
  be used as `{'params': params_from_torch(...)}`.
  """
  _choice(CELLS, cell_type, 'cell_type')

  def get(name):
    value = state_dict[name]
    value = value.detach().cpu().numpy() if hasattr(value, 'detach') else value
    return jnp.asarray(value, jnp.float32)

  params = {}
  for layer in range(num_layers):
    for suffix in ('', '_reverse') if bidirectional else ('',):
      key = f'l{layer}{suffix}'
      b_ih, b_hh = get(f'bias_ih_{key}'), get(f'bias_hh_{key}')
      cell = {
          'input_projection': {'kernel': get(f'weight_ih_{key}').T,
                               'bias': b_ih if cell_type == 'gru' else b_ih + b_hh},
          'recurrent_kernel': get(f'weight_hh_{key}').T,
      }
      if cell_type == 'gru':
        cell['recurrent_bias'] = b_hh
      params[key] = cell
  return params
