"""Convolutional building blocks as the textbook describes them (Flax linen, NHWC).

Every layer takes images as [batch, height, width, channels] and checks its input with a one-line
`ValueError` that names the layer. CPU speed fixes from PERF.md live here:

- `Conv2D` computes a convolution whose window is larger than its input map (a 3x3 kernel on a 2x2
  or 1x1 map) as im2col plus one matrix product, because XLA's CPU convolution is ~100x slower
  there; wide 3x3 stride-1 layers on small maps by Winograd's F(2x2, 3x3) (`winograd_conv`),
  which beat XLA's convolution there; elsewhere `lax.conv_general_dilated`. `conv_method` holds
  the measured rule; `Conv2D(method=...)` overrides it. Parameters match `nn.Conv` exactly.
- `FoldedBiasDense` is `nn.Dense` computed as ONE product `[x, 1] @ [kernel; bias]`: for wide
  outputs (a 10k-word vocabulary) this saves a pass over the logits forward and the bias
  gradient's column sum backward (it comes out of the kernel-gradient product).
- `MaxPool2D` and `AvgPool2D` compute non-overlapping, unpadded pooling (window == stride, map
  divisible by the window) as a reshape and a reduction, whose backward pass is ~4x faster than
  `reduce_window`'s select-and-scatter.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence, Union

import flax.linen as nn
from flax.linen.dtypes import promote_dtype
import jax
from jax import lax
import jax.numpy as jnp

Array = jax.Array
Dtype = Any
PrecisionLike = Union[None, str, lax.Precision, tuple[str, str],
                      tuple[lax.Precision, lax.Precision]]
IntOrPair = Union[int, Sequence[int]]
# An int, a pair (height, width), pairs ((top, bottom), (left, right)), or 'SAME' / 'VALID'.
PaddingLike = Union[str, int, Sequence[int], Sequence[Sequence[int]]]

Dense = nn.Dense


def folded_affine(x: Array, kernel: Array, bias: Array, precision: PrecisionLike = None) -> Array:
  """`x @ kernel + bias` as one matrix product `[x, 1] @ [kernel; bias]` on CPU (plainly elsewhere).

  Args:
    x: `[..., in_features]`.
    kernel: `[in_features, out_features]`.
    bias: `[out_features]`.
    precision: the matrix product's precision, as `nn.Dense`'s.

  Returns:
    `[..., out_features]`.
  """
  bias = bias.astype(kernel.dtype)
  if jax.default_backend() != 'cpu':  # GPU/TPU libraries add the bias inside the product
    return jnp.matmul(x, kernel, precision=precision) + bias
  ones = jnp.ones(x.shape[:-1] + (1,), x.dtype)
  return jnp.matmul(jnp.concatenate([x, ones], -1), jnp.concatenate([kernel, bias[None]]),
                    precision=precision)


class FoldedBiasDense(nn.Dense):
  """`nn.Dense` (same parameters, names and values) computed by `folded_affine`.

  XLA:CPU adds a bias in a separate pass over the product and sums the output gradient's columns
  for the bias gradient in another; folding the bias into the product removes both. Worth it for
  wide outputs: the 10k-word output layer of the LSTM language model (700 x 200 -> 10k, train
  step) took 55 ms instead of 60 on the 2-core CPU. Needs `use_bias=True`.
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


def _layer_name(module: nn.Module) -> str:
  """A readable name for error messages: the module path, or its class name at the top level."""
  path = module.scope.path if module.scope is not None else ()
  return '/'.join(path) if path else type(module).__name__


def _pair(value: IntOrPair, what: str, layer: str) -> tuple[int, int]:
  """Returns `value` as (height, width), checking that both are positive integers."""
  pair = (value, value) if isinstance(value, int) else tuple(value)
  if len(pair) != 2 or not all(isinstance(v, int) for v in pair):
    raise ValueError(f'{what} must be an int or a pair of ints at layer {layer}, got {value!r}')
  if min(pair) <= 0:
    raise ValueError(f'{what} must be positive at layer {layer}, got {value!r}')
  return pair


def _resolve_padding(padding: PaddingLike, spatial: tuple[int, int], window: tuple[int, int],
                     stride: tuple[int, int], layer: str) -> tuple[tuple[int, int], ...]:
  """Returns explicit ((top, bottom), (left, right)) padding."""
  if isinstance(padding, str):
    if padding.upper() not in ('SAME', 'VALID'):
      raise ValueError(f"padding must be 'SAME', 'VALID', an int or pairs at layer {layer}, "
                       f'got {padding!r}')
    return tuple(lax.padtype_to_pads(spatial, window, stride, padding.upper()))
  if isinstance(padding, int):
    pads = ((padding, padding), (padding, padding))
  else:
    padding = tuple(padding)
    if len(padding) == 2 and all(isinstance(p, int) for p in padding):
      pads = ((padding[0], padding[0]), (padding[1], padding[1]))
    elif len(padding) == 2 and all(not isinstance(p, int) and len(tuple(p)) == 2
                                   for p in padding):
      pads = tuple(tuple(p) for p in padding)
    else:
      raise ValueError(f'padding must be an int, a pair or a pair of pairs at layer {layer}, '
                       f'got {padding!r}')
  flat = [p for pair in pads for p in pair]
  if not all(isinstance(p, int) for p in flat) or min(flat) < 0:
    raise ValueError(f'padding must be non-negative ints at layer {layer}, got {padding!r}')
  return pads


def _check_images(x: Array, layer: str, kind: str) -> None:
  if x.ndim != 4:
    raise ValueError(f'{kind} at layer {layer} expects [batch, height, width, channels], '
                     f'got shape {tuple(x.shape)}')


def _output_size(x: Array, window: tuple[int, int], stride: tuple[int, int],
                 pads: tuple[tuple[int, int], ...], layer: str, what: str) -> tuple[int, int]:
  """Returns the output map size, or raises if the window is larger than the map.

  A window may overhang the map only into padding and by at most one pixel on each side (a 3x3
  window with padding 1 on a 1x1 or 2x2 map, where a VGG or ResNet block's map has shrunk below
  its kernel). A larger window is refused whatever the padding: most of its taps would only ever
  read padding.
  """
  size = tuple(x.shape[1:3])
  padded = tuple(n + lo + hi for n, (lo, hi) in zip(size, pads))
  if window[0] > padded[0] or window[1] > padded[1]:
    raise ValueError(f'{what} {window[0]}x{window[1]} is larger than the padded input '
                     f'{padded[0]}x{padded[1]} at layer {layer}; lower the {what} size or use a '
                     'larger input')
  reach = tuple(n + min(lo, 1) + min(hi, 1) for n, (lo, hi) in zip(size, pads))
  if window[0] > reach[0] or window[1] > reach[1]:
    raise ValueError(f'{what} {window[0]}x{window[1]} is larger than the {size[0]}x{size[1]} map '
                     f'at layer {layer}, whatever the padding (a window may overhang the map by '
                     f'at most one pixel per side); lower the {what} size or use a larger input')
  return tuple((n + lo + hi - k) // s + 1
               for n, (lo, hi), k, s in zip(size, pads, window, stride))


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
  slices and additions, and the transformed arrays stay separate (a Python list): stacking them
  into one batched product makes XLA:CPU copy them through a slow concatenate (../shared/PERF.md).
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
                groups: int, dtype: Dtype, platform: str | None = None) -> str:
  """The fastest way to compute a convolution on CPU, as measured here (../shared/PERF.md).

  On GPU and TPU (`platform` other than 'cpu'; default: JAX's default backend) always 'lax': the
  vendor libraries (cuDNN) choose their own algorithms, Winograd included.

  A 3x3 stride-1 convolution uses Winograd F(2x2, 3x3) where it made the VGG-11-BN train step
  faster (batch 128, 32x32 inputs): wide layers on small maps (128 or more input channels on maps
  of 8x8 or less; +8-12% over XLA's convolution there) and 2x2 maps (+3% over im2col); in float32
  or float64 only (in bfloat16 its transforms would lose too much precision). On 16x16 maps with
  64 input channels and on 3-channel inputs it lost. Any other window larger than its map uses
  im2col (XLA's convolution is ~100x slower there; on a 1x1 map only the centre tap is nonzero);
  everything else the library convolution.

  Args:
    x_shape: input shape [batch, height, width, in_channels].
    kernel_shape: [kh, kw, in_channels // groups, out_channels].
    stride: (height, width) strides.
    groups: feature groups.
    dtype: computation dtype.
    platform: 'cpu', 'gpu', 'tpu', or None for `jax.default_backend()`.

  Returns:
    'lax', 'im2col' or 'winograd'.
  """
  if (platform or jax.default_backend()) != 'cpu':
    return 'lax'
  _, height, width, in_channels = x_shape
  window_exceeds_input = kernel_shape[0] > height or kernel_shape[1] > width
  if (_winograd_applies(kernel_shape, stride, groups)
      and jnp.dtype(dtype) in (jnp.float32, jnp.float64)
      and min(height, width) >= 2
      and (window_exceeds_input or (in_channels >= 128 and max(height, width) <= 8))):
    return 'winograd'
  return 'im2col' if window_exceeds_input else 'lax'


class Conv2D(nn.Module):
  """2D convolution (cross-correlation) with explicit channels, as `torch.nn.Conv2d`.

  Parameters are named and shaped as `nn.Conv`'s: 'kernel' [kh, kw, in_channels // groups,
  out_channels] and 'bias' [out_channels], so checkpoints and parameter counts match.

  Attributes:
    in_channels: channels of the input; checked against the input.
    out_channels: number of filters.
    kernel_size: int or (height, width).
    stride: int or (height, width).
    padding: int, (height, width), ((top, bottom), (left, right)), 'SAME' or 'VALID'.
    groups: feature groups; in and out channels must both be divisible by it.
    use_bias: whether to add a bias.
    dtype: computation dtype (inferred from inputs and parameters if None).
    param_dtype: parameter dtype.
    precision: precision of the convolution or matrix product.
    kernel_init: initialiser of the kernel.
    bias_init: initialiser of the bias.
    method: 'auto' (the path measured fastest on CPU for this layer's shape, see `conv_method`),
      or 'lax' (the library convolution), 'im2col' or 'winograd' (3x3, stride 1, no groups) to
      force one path. Every path computes the same function with the same parameters.
  """
  in_channels: int
  out_channels: int
  kernel_size: IntOrPair
  stride: IntOrPair = 1
  padding: PaddingLike = 0
  groups: int = 1
  use_bias: bool = True
  dtype: Dtype | None = None
  param_dtype: Dtype = jnp.float32
  precision: PrecisionLike = None
  kernel_init: Callable[..., Array] = nn.initializers.lecun_normal()
  bias_init: Callable[..., Array] = nn.initializers.zeros_init()
  method: str = 'auto'

  @nn.compact
  def __call__(self, x: Array) -> Array:
    """Applies the convolution.

    Args:
      x: [batch, height, width, in_channels].

    Returns:
      [batch, out_height, out_width, out_channels].
    """
    layer = _layer_name(self)
    for what, value in (('in_channels', self.in_channels), ('out_channels', self.out_channels),
                        ('groups', self.groups)):
      if not isinstance(value, int) or value <= 0:
        raise ValueError(f'{what} must be a positive int at layer {layer}, got {value!r}')
    if self.in_channels % self.groups or self.out_channels % self.groups:
      raise ValueError(f'in_channels {self.in_channels} and out_channels {self.out_channels} must '
                       f'both be divisible by groups {self.groups} at layer {layer}')
    if self.method not in ('auto',) + CONV_METHODS:
      raise ValueError(f"method must be 'auto', {', '.join(map(repr, CONV_METHODS))} at layer "
                       f'{layer}, got {self.method!r}')
    kernel_size = _pair(self.kernel_size, 'kernel_size', layer)
    stride = _pair(self.stride, 'stride', layer)
    _check_images(x, layer, 'Conv2D')
    if x.shape[-1] != self.in_channels:
      raise ValueError(f'Conv2D at layer {layer} expects input [batch, height, width, '
                       f'{self.in_channels}], got shape {tuple(x.shape)}')
    pads = _resolve_padding(self.padding, x.shape[1:3], kernel_size, stride, layer)
    _output_size(x, kernel_size, stride, pads, layer, 'kernel')

    kernel = self.param('kernel', self.kernel_init,
                        (*kernel_size, self.in_channels // self.groups, self.out_channels),
                        self.param_dtype)
    bias = (self.param('bias', self.bias_init, (self.out_channels,), self.param_dtype)
            if self.use_bias else None)
    x, kernel, bias = promote_dtype(x, kernel, bias, dtype=self.dtype)

    method = self.method
    if method == 'auto':
      method = conv_method(x.shape, kernel.shape, stride, self.groups, x.dtype)
    elif method == 'winograd' and not _winograd_applies(kernel.shape, stride, self.groups):
      raise ValueError(f"method 'winograd' needs a 3x3 kernel, stride 1 and groups 1 at layer "
                       f'{layer}, got kernel {kernel_size}, stride {stride}, groups {self.groups}')
    if method == 'winograd':
      y = winograd_conv(x, kernel, pads, self.precision)
    elif method == 'im2col':
      y = im2col_conv(x, kernel, stride, pads, self.groups, self.precision)
    else:
      y = lax.conv_general_dilated(x, kernel, stride, pads,
                                   dimension_numbers=('NHWC', 'HWIO', 'NHWC'),
                                   feature_group_count=self.groups, precision=self.precision)
    if bias is not None:
      y = y + bias
    return y


class _Pool2D(nn.Module):
  """Shared checks of the pooling layers."""
  window: IntOrPair = 2
  stride: IntOrPair | None = None
  padding: PaddingLike = 0

  def _prepare(self, x: Array, kind: str):
    layer = _layer_name(self)
    window = _pair(self.window, 'window', layer)
    stride = window if self.stride is None else _pair(self.stride, 'stride', layer)
    _check_images(x, layer, kind)
    pads = _resolve_padding(self.padding, x.shape[1:3], window, stride, layer)
    _output_size(x, window, stride, pads, layer, 'window')
    reshape = (window == stride and not any(p for pair in pads for p in pair)
               and x.shape[1] % window[0] == 0 and x.shape[2] % window[1] == 0)
    return window, stride, pads, reshape


def _tiled_max(x: Array, window: tuple[int, int]) -> Array:
  return _blocks(x, window).max(axis=(2, 4))


def _tiled_mean(x: Array, window: tuple[int, int]) -> Array:
  return _blocks(x, window).mean(axis=(2, 4))


def _blocks(x: Array, window: tuple[int, int]) -> Array:
  """[N, H, W, C] -> [N, H // wh, wh, W // ww, ww, C]."""
  n, h, w, c = x.shape
  return x.reshape(n, h // window[0], window[0], w // window[1], window[1], c)


class MaxPool2D(_Pool2D):
  """Max pooling, as `torch.nn.MaxPool2d` (floor mode; padding counts as -inf).

  Attributes:
    window: int or (height, width).
    stride: int or (height, width); defaults to the window.
    padding: int, (height, width), ((top, bottom), (left, right)), 'SAME' or 'VALID'.
  """

  def __call__(self, x: Array) -> Array:
    """Pools [batch, height, width, channels] to [batch, out_height, out_width, channels].

    Where the window tiles the map exactly it is a reshape and a max; a tie within a window then
    shares the gradient between the tied entries instead of giving it to the first one.
    """
    window, stride, pads, reshape = self._prepare(x, 'MaxPool2D')
    if reshape:
      return _tiled_max(x, window)
    return nn.max_pool(x, window, stride, pads)


class AvgPool2D(_Pool2D):
  """Average pooling, as `torch.nn.AvgPool2d` (floor mode).

  Attributes:
    window: int or (height, width).
    stride: int or (height, width); defaults to the window.
    padding: int, (height, width), ((top, bottom), (left, right)), 'SAME' or 'VALID'.
    count_include_pad: whether zero padding counts in the divisor.
  """
  count_include_pad: bool = True

  def __call__(self, x: Array) -> Array:
    """Pools [batch, height, width, channels] to [batch, out_height, out_width, channels]."""
    window, stride, pads, reshape = self._prepare(x, 'AvgPool2D')
    if reshape:
      return _tiled_mean(x, window)
    return nn.avg_pool(x, window, stride, pads, count_include_pad=self.count_include_pad)


def _adaptive_matrix(size: int, out: int, dtype: Dtype) -> Array:
  """[out, size] averaging weights of torch's adaptive pooling along one axis."""
  rows = []
  for i in range(out):
    start, end = (i * size) // out, -((-(i + 1) * size) // out)
    rows.append([1.0 / (end - start) if start <= j < end else 0.0 for j in range(size)])
  return jnp.asarray(rows, dtype)


class AdaptiveAvgPool2D(nn.Module):
  """Average pooling to a fixed output map, as `torch.nn.AdaptiveAvgPool2d`.

  The identity when the map already has the output size; a plain average pool when the map
  divides evenly; otherwise torch's overlapping windows [floor(i*H/out), ceil((i+1)*H/out)).

  Attributes:
    output_size: int or (height, width).
  """
  output_size: IntOrPair

  def __call__(self, x: Array) -> Array:
    """Pools [batch, height, width, channels] to [batch, out_height, out_width, channels]."""
    layer = _layer_name(self)
    out = _pair(self.output_size, 'output_size', layer)
    _check_images(x, layer, 'AdaptiveAvgPool2D')
    size = tuple(x.shape[1:3])
    if size == out:
      return x
    if size[0] % out[0] == 0 and size[1] % out[1] == 0:
      return _blocks(x, (size[0] // out[0], size[1] // out[1])).mean(axis=(2, 4))
    rows = _adaptive_matrix(size[0], out[0], x.dtype)
    cols = _adaptive_matrix(size[1], out[1], x.dtype)
    return jnp.einsum('nhwc,ih,jw->nijc', x, rows, cols)


class Flatten(nn.Module):
  """[batch, ...] -> [batch, features]."""

  def __call__(self, x: Array) -> Array:
    return x.reshape(x.shape[0], -1)


class Dropout(nn.Module):
  """Inverted dropout active only when `train` is true; draws from the 'dropout' rng.

  Attributes:
    rate: probability of dropping an element.
  """
  rate: float

  @nn.compact
  def __call__(self, x: Array, train: bool = False) -> Array:
    return nn.Dropout(self.rate, deterministic=not train)(x)


class BatchNorm(nn.BatchNorm):
  """`nn.BatchNorm` with PyTorch's defaults (momentum 0.1 in torch's convention, epsilon 1e-5).

  Statistics are taken over every axis but the last; running averages live in 'batch_stats'
  ('mean', 'var'), parameters are 'scale' and 'bias'. One difference from torch remains: the
  running variance averages the biased batch variance, torch the unbiased one (a factor
  n / (n - 1) with n = batch * height * width).
  """
  momentum: float = 0.9
  epsilon: float = 1e-5

  def __call__(self, x: Array, train: bool = False) -> Array:
    """Normalises [..., features] with batch statistics if `train`, else running averages."""
    return super().__call__(x, use_running_average=not train)


class LocalResponseNorm(nn.Module):
  """Local response normalisation across channels (Krizhevsky et al. 2012, section 3.3).

  b_c = a_c / (k + alpha * sum_{c' in window(c)} a_{c'}^2) ** beta, where the window holds the
  `size` channels c - size // 2 ... c + (size - 1) // 2 that exist. torch.nn.LocalResponseNorm
  computes the same with its alpha divided by `size`: torch's alpha = size * this alpha.

  Attributes:
    size: channels in the window (n in the paper).
    alpha: scale of the sum of squares.
    beta: exponent.
    k: additive constant.
  """
  size: int = 5
  alpha: float = 1e-4
  beta: float = 0.75
  k: float = 2.0

  def __call__(self, x: Array) -> Array:
    """Normalises [batch, height, width, channels]; returns the same shape."""
    layer = _layer_name(self)
    if not isinstance(self.size, int) or self.size <= 0:
      raise ValueError(f'size must be a positive int at layer {layer}, got {self.size!r}')
    _check_images(x, layer, 'LocalResponseNorm')
    channels = x.shape[-1]
    squares = jnp.pad(jnp.square(x), ((0, 0), (0, 0), (0, 0),
                                      (self.size // 2, (self.size - 1) // 2)))
    window_sum = sum(squares[..., i:i + channels] for i in range(self.size))
    return x / (self.k + self.alpha * window_sum) ** self.beta
