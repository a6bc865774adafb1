"""The CPU-only rewrites of the model zoo, in one place; `models.create` puts them in on CPU.

Every function here computes what its plain counterpart computes (same parameters, names, shapes
and values, within float rounding); each one exists because XLA:CPU runs the plain form slowly.
`docs/performance.md` has the measurements (what was timed, on which machine, how). On GPU and TPU
the models keep the plain building blocks of models/layers.py and models/rnn.py, whose libraries
(cuDNN, XLA's GPU fusions) choose their own algorithms.

How they get in: model code takes its convolution (`conv`), its recurrent cells' elementwise
pieces (`cell_ops`) and its wide output layer (`output_dense`, `output_affine`) as module
arguments with plain defaults. `models.create(name, platform=None)` resolves the platform once
(`jax.default_backend()` if None) and, on CPU, passes `MODULE_ARGUMENTS` to every model that
takes them.

- `CpuConv2D` (`conv`): `layers.Conv2D` computed by the measured rule `conv_method`:
  - `im2col_conv` where the window is larger than its map (a 3x3 kernel on a 2x2 or 1x1 map):
    XLA:CPU swaps the operands of such a convolution and runs it about two orders of magnitude
    slower; im2col is the padded input's shifted slices and ONE matrix product.
  - `winograd_conv`, Winograd's F(2x2, 3x3), for wide 3x3 stride-1 layers on small maps (128 or
    more input channels on maps of 8x8 or less) and 2x2 maps: 2.25x fewer multiplications than
    the direct convolution, which beats XLA:CPU's convolution there (float32/float64 only).
  - elsewhere the library convolution, as `layers.Conv2D`.
- `FoldedBiasDense` / `folded_affine` (`output_dense` / `output_affine`): `x @ kernel + bias` as
  ONE product `[x, 1] @ [kernel; bias]`. XLA:CPU adds a bias in its own pass over the output and
  sums the gradient's columns in another; for a 10k-word output layer both passes are worth
  saving.
- `CELL_OPS` (`cell_ops`), the pieces the LSTM/GRU/RNN cells are written with:
  - `tanh_sigmoid`: the logistic function as `(tanh(x/2) + 1) / 2`, which XLA:CPU computes faster
    than `jax.nn.sigmoid`'s exponential and division;
  - `split_gates`: slicing the gate blocks, with a backward pass that materialises each block's
    gradient before concatenating them (fused, XLA:CPU's concatenate picks the block per element
    and does not vectorise);
  - `materialise`: an optimisation barrier, which makes XLA compute an array as its own operation
    instead of fusing it into its consumers (used on the residual slices of the recurrent
    backward scan, whose fused dynamic-slice indexing XLA:CPU recomputes per element).
- `argmax_matches`: `argmax(logits) == targets` as one elementwise pass and one `any`, which
  XLA:CPU fuses, instead of argmax's two-operand reduction over a materialised index array. The
  tasks use it on every platform (it is exact everywhere).

Not here, because they are not CPU-specific: pooling as a reshape and a reduction where the window
tiles the map (`layers.MaxPool2D`, all platforms), the hoisted input projection and the recurrent
scan's hand-written backward (`rnn.RecurrentCell.scan`, all platforms), and the XLA:CPU compiler
options (train/platform.py).
"""

from __future__ import annotations

import functools
from typing import Any, Sequence

import flax.linen as nn
from flax.linen.dtypes import promote_dtype
import jax
from jax import lax
import jax.numpy as jnp

from models import layers
from models import rnn
from models.layers import Array, Dtype, PrecisionLike

def im2col_conv(x: Array, kernel: Array, stride: tuple[int, int],
                pads: tuple[tuple[int, int], ...], groups: int = 1,
                precision: PrecisionLike = None) -> Array:
  """Convolution as im2col and one matrix product (cross-correlation, like `lax.conv`).

  Args:
    x: images [batch, height, width, in_channels].
    kernel: [kh, kw, in_channels // groups, out_channels].
    stride: (height, width) strides.
    pads: ((top, bottom), (left, right)) zero padding.
    groups: number of feature groups.
    precision: passed to `lax.dot_general`.

  Returns:
    [batch, out_height, out_width, out_channels].
  """
  kh, kw, cin_group, cout = kernel.shape
  x = jnp.pad(x, ((0, 0), *pads, (0, 0)))
  out_h = (x.shape[1] - kh) // stride[0] + 1
  out_w = (x.shape[2] - kw) // stride[1] + 1
  patches = jnp.concatenate([
      x[:, i:i + (out_h - 1) * stride[0] + 1:stride[0], j:j + (out_w - 1) * stride[1] + 1:stride[1]]
      for i in range(kh) for j in range(kw)
  ], axis=-1)
  if groups == 1:
    return lax.dot_general(patches, kernel.reshape(kh * kw * cin_group, cout),
                           (((3,), (0,)), ((), ())), precision=precision)
  patches = patches.reshape(*patches.shape[:3], kh * kw, groups, cin_group)
  kernel = kernel.reshape(kh * kw, cin_group, groups, cout // groups)
  y = jnp.einsum('nhwkgc,kcgo->nhwgo', patches, kernel, precision=precision)
  return y.reshape(*y.shape[:3], cout)


# Winograd's minimal filtering F(m x m, 3 x 3) (Lavin & Gray 2016): B^T (input tile, m + 2 wide),
# G (kernel), A^T (output block, m wide). Y = A^T [(G g G^T) * (B^T d B)] A for each tile d.
_WINOGRAD = {
    2: (((1, 0, -1, 0), (0, 1, 1, 0), (0, -1, 1, 0), (0, 1, 0, -1)),
        ((1, 0, 0), (1 / 2, 1 / 2, 1 / 2), (1 / 2, -1 / 2, 1 / 2), (0, 0, 1)),
        ((1, 1, 1, 0), (0, 1, -1, -1))),
    4: (((4, 0, -5, 0, 1, 0), (0, -4, -4, 1, 1, 0), (0, 4, -4, -1, 1, 0), (0, -2, -1, 2, 1, 0),
         (0, 2, -1, -2, 1, 0), (0, 4, 0, -5, 0, 1)),
        ((1 / 4, 0, 0), (-1 / 6, -1 / 6, -1 / 6), (-1 / 6, 1 / 6, -1 / 6),
         (1 / 24, 1 / 12, 1 / 6), (1 / 24, -1 / 12, 1 / 6), (0, 0, 1)),
        ((1, 1, 1, 1, 1, 0), (0, 1, -1, 2, -2, 0), (0, 1, 1, 4, 4, 0), (0, 1, -1, 8, -8, 1))),
}


def _combine(matrix: Sequence[Sequence[float]], arrays: Sequence[Array]) -> list[Array]:
  """[sum_j matrix[i][j] * arrays[j] for each row i], as additions where a coefficient is +-1."""
  out = []
  for row in matrix:
    total = None
    for coefficient, array in zip(row, arrays):
      if coefficient == 0:
        continue
      if abs(coefficient) != 1:
        term = array * abs(coefficient)
      else:
        term = array
      if total is None:
        total = term if coefficient > 0 else -term
      else:
        total = total + term if coefficient > 0 else total - term
    out.append(total)
  return out


def winograd_conv(x: Array, kernel: Array, pads: tuple[tuple[int, int], ...],
                  precision: PrecisionLike = None, tile: int = 2) -> Array:
  """A 3x3 stride-1 convolution by Winograd's minimal filtering F(tile x tile, 3 x 3).

  Each tile x tile output block comes from a (tile + 2)^2 input patch (neighbours overlap by 2):
  patch and kernel are transformed to (tile + 2)^2 values each, multiplied pointwise (that many
  matrix products over the channels, `[blocks, in] x [in, out]`) and transformed back. F(2x2, 3x3)
  does 16 products where the direct convolution does 36 per 2x2 block (2.25x fewer), F(4x4, 3x3)
  36 per 4x4 block where it does 144 (4x fewer, with larger rounding errors). The transforms are
  slices and additions, and the transformed arrays stay separate (a Python list): stacked into one
  batched product, XLA:CPU copies them through a slow concatenate (docs/performance.md).
  Output sizes that are not a multiple of `tile` are padded to whole blocks and cropped. Autodiff
  gives the backward pass.

  Args:
    x: images [batch, height, width, in_channels].
    kernel: [3, 3, in_channels, out_channels].
    pads: ((top, bottom), (left, right)) zero padding.
    precision: passed to `lax.dot_general`.
    tile: output block size, 2 or 4.

  Returns:
    [batch, out_height, out_width, out_channels] with out = padded size - 2.
  """
  if kernel.shape[:2] != (3, 3) or tile not in _WINOGRAD:
    raise ValueError(f'winograd_conv computes 3x3 kernels with tile 2 or 4, got kernel '
                     f'{tuple(kernel.shape[:2])} and tile {tile}')
  input_matrix, kernel_matrix, output_matrix = _WINOGRAD[tile]
  size = tile + 2
  (top, bottom), (left, right) = pads
  out_h, out_w = x.shape[1] + top + bottom - 2, x.shape[2] + left + right - 2
  blocks_h, blocks_w = -(-out_h // tile), -(-out_w // tile)
  x = jnp.pad(x, ((0, 0), (top, bottom + tile * blocks_h - out_h),
                  (left, right + tile * blocks_w - out_w), (0, 0)))
  rows = _combine(input_matrix, [x[:, i:i + tile * blocks_h:tile] for i in range(size)])
  patches = [value for row in rows for value in
             _combine(input_matrix, [row[:, :, j:j + tile * blocks_w:tile] for j in range(size)])]
  kernel_rows = _combine(kernel_matrix, [kernel[i] for i in range(3)])
  kernels = [value for row in kernel_rows
             for value in _combine(kernel_matrix, [row[j] for j in range(3)])]
  products = [lax.dot_general(p, k, (((3,), (0,)), ((), ())), precision=precision)
              for p, k in zip(patches, kernels)]
  columns = [_combine(output_matrix, products[j::size]) for j in range(size)]  # [j][p]
  outputs = [_combine(output_matrix, [column[p] for column in columns])
             for p in range(tile)]  # [p][q]: output (p, q) of every block
  y = jnp.stack([jnp.stack(outputs[p], axis=3) for p in range(tile)], axis=2)
  y = y.reshape(y.shape[0], tile * blocks_h, tile * blocks_w, y.shape[-1])
  return y[:, :out_h, :out_w]


CONV_METHODS = ('lax', 'im2col', 'winograd')


def _winograd_applies(kernel_shape: Sequence[int], stride: tuple[int, int], groups: int) -> bool:
  return tuple(kernel_shape[:2]) == (3, 3) and tuple(stride) == (1, 1) and groups == 1


def conv_method(x_shape: Sequence[int], kernel_shape: Sequence[int], stride: tuple[int, int],
                groups: int, dtype: Dtype) -> str:
  """The fastest way to compute a convolution on CPU, as measured (docs/performance.md).

  A 3x3 stride-1 convolution uses Winograd F(2x2, 3x3) on wide layers on small maps (128 or more
  input channels on maps of 8x8 or less) and on 2x2 maps, in float32 or float64 only (in bfloat16
  its transforms would lose too much precision). Any other window larger than its map uses im2col
  (on a 1x1 map only the centre tap of a 3x3 kernel touches the map); everything else the library
  convolution.

  Args:
    x_shape: input shape [batch, height, width, in_channels].
    kernel_shape: [kh, kw, in_channels // groups, out_channels].
    stride: (height, width) strides.
    groups: feature groups.
    dtype: computation dtype.

  Returns:
    'lax', 'im2col' or 'winograd'.
  """
  _, height, width, in_channels = x_shape
  window_exceeds_input = kernel_shape[0] > height or kernel_shape[1] > width
  if (_winograd_applies(kernel_shape, stride, groups)
      and jnp.dtype(dtype) in (jnp.float32, jnp.float64)
      and min(height, width) >= 2
      and (window_exceeds_input or (in_channels >= 128 and max(height, width) <= 8))):
    return 'winograd'
  return 'im2col' if window_exceeds_input else 'lax'


class CpuConv2D(layers.Conv2D):
  """`layers.Conv2D` (same parameters, checks and function) computed as `conv_method` decides.

  Attributes:
    method: 'auto' (`conv_method`'s rule for this layer's shapes), or 'lax' (the library
      convolution), 'im2col' or 'winograd' (3x3, stride 1, no groups) to force one path. Every
      path computes the same function with the same parameters.
  """
  method: str = 'auto'

  def convolve(self, x: Array, kernel: Array, stride: tuple[int, int],
               pads: tuple[tuple[int, int], ...]) -> Array:
    """[batch, height, width, in] * kernel [kh, kw, in // groups, out] -> [batch, oh, ow, out]."""
    layer = layers.layer_name(self)
    if self.method not in ('auto',) + CONV_METHODS:
      raise ValueError(f"method must be 'auto', {', '.join(map(repr, CONV_METHODS))} at layer "
                       f'{layer}, got {self.method!r}')
    method = self.method
    if method == 'auto':
      method = conv_method(x.shape, kernel.shape, stride, self.groups, x.dtype)
    elif method == 'winograd' and not _winograd_applies(kernel.shape, stride, self.groups):
      raise ValueError(f"method 'winograd' needs a 3x3 kernel, stride 1 and groups 1 at layer "
                       f'{layer}, got kernel {tuple(kernel.shape[:2])}, stride {stride}, groups '
                       f'{self.groups}')
    if method == 'winograd':
      return winograd_conv(x, kernel, pads, self.precision)
    if method == 'im2col':
      return im2col_conv(x, kernel, stride, pads, self.groups, self.precision)
    return super().convolve(x, kernel, stride, pads)


def folded_affine(x: Array, kernel: Array, bias: Array, precision: PrecisionLike = None) -> Array:
  """`x @ kernel + bias` as one matrix product `[x, 1] @ [kernel; bias]`.

  Args:
    x: `[..., in_features]`.
    kernel: `[in_features, out_features]`.
    bias: `[out_features]`.
    precision: the matrix product's precision, as `nn.Dense`'s.

  Returns:
    `[..., out_features]`.
  """
  bias = bias.astype(kernel.dtype)
  ones = jnp.ones(x.shape[:-1] + (1,), x.dtype)
  return jnp.matmul(jnp.concatenate([x, ones], -1), jnp.concatenate([kernel, bias[None]]),
                    precision=precision)


class FoldedBiasDense(nn.Dense):
  """`nn.Dense` (same parameters, names and values) computed by `folded_affine`.

  Maps `[..., in_features]` to `[..., features]`; needs `use_bias=True`.
  """

  @nn.compact
  def __call__(self, inputs: Array) -> Array:
    if not self.use_bias:
      raise ValueError('FoldedBiasDense needs use_bias=True; use nn.Dense without a bias.')
    kernel = self.param('kernel', self.kernel_init, (jnp.shape(inputs)[-1], self.features),
                        self.param_dtype)
    bias = self.param('bias', self.bias_init, (self.features,), self.param_dtype)
    inputs, kernel, bias = promote_dtype(inputs, kernel, bias, dtype=self.dtype)
    return folded_affine(inputs, kernel, bias, self.precision)


def tanh_sigmoid(x: Array) -> Array:
  """The logistic function written as `(tanh(x/2) + 1) / 2` (the same function within 2e-7)."""
  return 0.5 * jnp.tanh(0.5 * x) + 0.5


def materialise(tree: Any) -> Any:
  """`tree` behind an optimisation barrier: XLA computes it as its own operation."""
  return lax.optimization_barrier(tree)


@functools.partial(jax.custom_vjp, nondiff_argnums=(1,))
def split_gates(x: Array, sizes: tuple[int, ...]) -> tuple[Array, ...]:
  """`x` `[..., sum(sizes)]` cut into consecutive blocks of `sizes` on the last axis.

  The values of `rnn.slice_gates`; the backward pass materialises each block's gradient, then
  concatenates them.
  """
  return rnn.slice_gates(x, sizes)


def _split_gates_fwd(x, sizes):
  return split_gates(x, sizes), None


def _split_gates_bwd(sizes, _, cotangents):
  return (jnp.concatenate(materialise(cotangents), -1),)


split_gates.defvjp(_split_gates_fwd, _split_gates_bwd)

CELL_OPS = rnn.CellOps(sigmoid=tanh_sigmoid, split=split_gates, materialise=materialise)


def argmax_matches(logits: Array, targets: Array) -> Array:
  """`jnp.argmax(logits, -1) == targets` (ties go to the first index) for logits without NaN.

  `logits` `[..., V]`, integer `targets` `[...]` -> bool `[...]`. Written as "no logit beats the
  target's": larger, or equal at a smaller index. Targets outside `[0, V)` never match.
  """
  vocab = logits.shape[-1]
  targets = targets.astype(jnp.int32)
  inside = (targets >= 0) & (targets < vocab)
  target_logit = jnp.take_along_axis(logits, jnp.clip(targets, 0, vocab - 1)[..., None], -1)
  index = lax.broadcasted_iota(jnp.int32, logits.shape, logits.ndim - 1)
  beaten = (logits > target_logit) | ((logits == target_logit) & (index < targets[..., None]))
  return inside & ~beaten.any(-1)


# Module arguments `models.create` passes on CPU to every model that declares them.
MODULE_ARGUMENTS: dict[str, Any] = {
    'conv': CpuConv2D,
    'cell_ops': CELL_OPS,
    'output_dense': FoldedBiasDense,
    'output_affine': folded_affine,
}
