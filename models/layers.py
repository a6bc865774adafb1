"""Convolutional building blocks as the textbook describes them (Flax linen, NHWC).

Every layer takes images as [batch, height, width, channels] and checks its input at trace time
with a one-line `ValueError` that names the layer: wrong channels or rank, bad sizes, and a window
larger than the map it slides over (it may overhang the map by one pixel per side, into padding).

`Conv2D` is `lax.conv_general_dilated` with `nn.Conv`'s parameters; models take it as their `conv`
argument, and on CPU `models.create` gives them `cpu_kernels.CpuConv2D` instead (same parameters,
faster algorithms there). `MaxPool2D` and `AvgPool2D` compute non-overlapping, unpadded pooling
(window == stride, map divisible by the window) as a reshape and a reduction, whose backward pass
is cheaper than `reduce_window`'s select-and-scatter; other pooling is `reduce_window`.
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


def affine(x: Array, kernel: Array, bias: Array, precision: PrecisionLike = None) -> Array:
  """`x @ kernel + bias`: `[..., in_features]` -> `[..., out_features]` (kernel `[in, out]`)."""
  return jnp.matmul(x, kernel, precision=precision) + bias.astype(kernel.dtype)


def layer_name(module: nn.Module) -> str:
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

  @nn.compact
  def __call__(self, x: Array) -> Array:
    """Applies the convolution.

    Args:
      x: [batch, height, width, in_channels].

    Returns:
      [batch, out_height, out_width, out_channels].
    """
    layer = layer_name(self)
    for what, value in (('in_channels', self.in_channels), ('out_channels', self.out_channels),
                        ('groups', self.groups)):
      if not isinstance(value, int) or value <= 0:
        raise ValueError(f'{what} must be a positive int at layer {layer}, got {value!r}')
    if self.in_channels % self.groups or self.out_channels % self.groups:
      raise ValueError(f'in_channels {self.in_channels} and out_channels {self.out_channels} must '
                       f'both be divisible by groups {self.groups} at layer {layer}')
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

    y = self.convolve(x, kernel, stride, pads)
    if bias is not None:
      y = y + bias
    return y

  def convolve(self, x: Array, kernel: Array, stride: tuple[int, int],
               pads: tuple[tuple[int, int], ...]) -> Array:
    """The cross-correlation without bias, after the checks and the dtype promotion.

    Args:
      x: [batch, height, width, in_channels].
      kernel: [kh, kw, in_channels // groups, out_channels].
      stride: (height, width) strides.
      pads: ((top, bottom), (left, right)) zero padding.

    Returns:
      [batch, out_height, out_width, out_channels].
    """
    return lax.conv_general_dilated(x, kernel, stride, pads,
                                    dimension_numbers=('NHWC', 'HWIO', 'NHWC'),
                                    feature_group_count=self.groups, precision=self.precision)


class _Pool2D(nn.Module):
  """Shared checks of the pooling layers."""
  window: IntOrPair = 2
  stride: IntOrPair | None = None
  padding: PaddingLike = 0

  def _prepare(self, x: Array, kind: str):
    layer = layer_name(self)
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
    layer = layer_name(self)
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
    layer = layer_name(self)
    if not isinstance(self.size, int) or self.size <= 0:
      raise ValueError(f'size must be a positive int at layer {layer}, got {self.size!r}')
    _check_images(x, layer, 'LocalResponseNorm')
    channels = x.shape[-1]
    squares = jnp.pad(jnp.square(x), ((0, 0), (0, 0), (0, 0),
                                      (self.size // 2, (self.size - 1) // 2)))
    window_sum = sum(squares[..., i:i + channels] for i in range(self.size))
    return x / (self.k + self.alpha * window_sum) ** self.beta
