"""Tests of models/layers.py against hand-written examples, PyTorch and Flax's own layers."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from models import layers

torch.set_num_threads(1)


def _rng(seed=0):
  return np.random.default_rng(seed)


def _to_torch(x):
  """[N, H, W, C] NumPy -> NCHW torch tensor that records gradients."""
  return torch.tensor(np.asarray(x).transpose(0, 3, 1, 2), requires_grad=True)


def _from_torch(t):
  return t.detach().numpy().transpose(0, 2, 3, 1)


def _random_like(shapes, seed=0):
  """Standard-normal arrays with the shapes and dtypes of `shapes` (no jax.random compile)."""
  rng = _rng(seed)
  return jax.tree.map(lambda s: jnp.asarray(rng.standard_normal(s.shape), s.dtype), shapes)


def _conv_params(kernel, bias=None):
  params = {'kernel': jnp.asarray(kernel)}
  if bias is not None:
    params['bias'] = jnp.asarray(bias)
  return {'params': params}


# The two worked examples.


def test_worked_example_vertical_edge_filter():
  image = np.array([[10, 10, 10, 0, 0, 0]] * 3 + [[0, 0, 0, 10, 10, 10]] * 3, np.float32)
  image[2, 1], image[4, 4] = 5.0, 7.0
  edge = np.array([[1, 0, -1], [1, 0, -1], [1, 0, -1]], np.float32)
  padded = np.pad(image, 1)
  assert padded.shape == (8, 8)
  expected = np.zeros((6, 6), np.float32)
  for i in range(6):
    for j in range(6):
      total = 0.0
      for u in range(3):
        for v in range(3):
          total += padded[i + u, j + v] * edge[u, v]
      expected[i, j] = total
  variables = _conv_params(edge[:, :, None, None])
  for method in ('lax', 'im2col', 'winograd', 'auto'):
    conv = layers.Conv2D(1, 1, 3, padding=1, use_bias=False, method=method)
    out = conv.apply(variables, jnp.asarray(image)[None, :, :, None])
    assert out.shape == (1, 6, 6, 1)
    np.testing.assert_array_equal(np.asarray(out)[0, :, :, 0], expected)


@pytest.mark.parametrize('window,stride', [(2, None), (2, 2), ((2, 2), (2, 2))])
def test_worked_example_max_pool(window, stride):
  x = jnp.array([[5, 7, 2, 6], [1, 9, 3, 1], [2, 4, 2, 0], [0, 3, 8, 5]], jnp.float32)
  out = layers.MaxPool2D(window, stride).apply({}, x[None, :, :, None])
  np.testing.assert_array_equal(np.asarray(out)[0, :, :, 0], [[9, 6], [4, 8]])


# Conv2D.

CONV_CASES = [
    # in, out, kernel, stride, padding, groups, height, width
    (3, 8, 3, 1, 1, 1, 7, 7),
    (4, 6, 3, 2, 0, 2, 9, 8),
    (4, 8, (5, 3), (2, 1), (2, 1), 4, 10, 7),
    (6, 6, 1, 1, 0, 6, 5, 5),
    (3, 4, 11, 4, 2, 1, 23, 23),
    (2, 4, 3, 1, ((0, 1), (2, 1)), 2, 6, 5),
    (5, 3, 3, 1, 1, 1, 2, 2),
    (5, 3, 3, 2, 1, 1, 1, 1),
]


@pytest.mark.parametrize(
    'method,cin,cout,kernel_size,stride,padding,groups,h,w',
    [(method, *case) for case in CONV_CASES for method in ('lax', 'im2col', 'winograd')
     if not (method == 'im2col' and case[2] == 11)  # 121 slices compile slowly.
     and not (method == 'winograd' and (case[2:6] != (3, 1, 1, 1) or case[6] < 3))])
def test_conv_matches_torch(method, cin, cout, kernel_size, stride, padding, groups, h, w):
  rng = _rng(1)
  kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
  x = rng.standard_normal((2, h, w, cin), np.float32)
  kernel = rng.standard_normal((kh, kw, cin // groups, cout), np.float32)
  bias = rng.standard_normal((cout,), np.float32)
  conv = layers.Conv2D(cin, cout, kernel_size, stride, padding, groups, method=method)

  def loss(variables, x, cotangent):
    y = conv.apply(variables, x)
    return jnp.sum(y * cotangent), y

  if isinstance(padding, int):
    pads = ((padding, padding), (padding, padding))
  elif isinstance(padding[0], int):
    pads = ((padding[0], padding[0]), (padding[1], padding[1]))
  else:
    pads = padding
  xt = _to_torch(x)
  wt = torch.tensor(kernel.transpose(3, 2, 0, 1), requires_grad=True)
  bt = torch.tensor(bias, requires_grad=True)
  yt = F.conv2d(F.pad(xt, (*pads[1], *pads[0])), wt, bt, stride=stride, groups=groups)
  cotangent = rng.standard_normal(yt.shape, np.float32)
  (yt * torch.tensor(cotangent)).sum().backward()

  grads, y = jax.jit(jax.grad(loss, argnums=(0, 1), has_aux=True))(
      _conv_params(kernel, bias), jnp.asarray(x), jnp.asarray(cotangent.transpose(0, 2, 3, 1)))
  np.testing.assert_allclose(y, _from_torch(yt), rtol=1e-5, atol=1e-4)
  np.testing.assert_allclose(grads[1], _from_torch(xt.grad), rtol=1e-5, atol=1e-4)
  np.testing.assert_allclose(grads[0]['params']['kernel'],
                             wt.grad.numpy().transpose(2, 3, 1, 0), rtol=1e-5, atol=1e-4)
  np.testing.assert_allclose(grads[0]['params']['bias'], bt.grad.numpy(), rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize('stride,groups,size', [(1, 1, 5), (2, 2, 7), (1, 1, 2), (2, 1, 1)])
def test_conv_same_padding_and_params_match_nn_conv(stride, groups, size):
  x = jnp.asarray(_rng(2).standard_normal((2, size, size, 4), np.float32))
  ours = layers.Conv2D(4, 6, 3, stride, 'SAME', groups)
  flax_conv = nn.Conv(6, (3, 3), stride, 'SAME', feature_group_count=groups)
  shapes = jax.eval_shape(ours.init, jax.random.key(0), x)
  assert shapes == jax.eval_shape(flax_conv.init, jax.random.key(0), x)
  variables = _random_like(shapes)
  np.testing.assert_allclose(ours.apply(variables, x), flax_conv.apply(variables, x),
                             rtol=1e-5, atol=1e-5)


IM2COL_CASES = [
    # in, out, stride, padding, groups, height, width: windows larger than the map first.
    (3, 5, 1, 'SAME', 1, 2, 2),
    (3, 5, 1, 'SAME', 1, 1, 1),
    (4, 6, 1, 1, 2, 2, 3),
    (4, 4, 2, 'SAME', 1, 2, 2),
    (3, 5, 1, 'SAME', 1, 6, 6),
    (4, 6, 2, 0, 2, 7, 8),
]


@pytest.mark.parametrize('cin,cout,stride,padding,groups,h,w', IM2COL_CASES)
def test_im2col_matches_library_conv_in_float64(cin, cout, stride, padding, groups, h, w):
  with jax.enable_x64(True):
    rng = _rng(3)
    x = jnp.asarray(rng.standard_normal((3, h, w, cin)))
    convs = {method: layers.Conv2D(cin, cout, 3, stride, padding, groups, param_dtype=jnp.float64,
                                   method=method) for method in ('lax', 'im2col')}
    variables = _random_like(jax.eval_shape(convs['lax'].init, jax.random.key(0), x))
    cotangent = jnp.asarray(rng.standard_normal(convs['lax'].apply(variables, x).shape))

    def value_and_grads(method):
      def loss(variables, x):
        return jnp.sum(convs[method].apply(variables, x) * cotangent)
      return jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))(variables, x)

    expected, actual = value_and_grads('lax'), value_and_grads('im2col')
    assert actual[0].dtype == jnp.float64
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12),
                 actual, expected)


@pytest.mark.parametrize('size,uses_library', [(1, False), (2, False), (3, True), (8, True)])
def test_auto_uses_the_library_conv_only_where_it_is_fastest(size, uses_library):
  conv = layers.Conv2D(2, 2, 3, padding='SAME')
  x = jnp.ones((1, size, size, 2))
  variables = jax.eval_shape(conv.init, jax.random.key(0), x)
  jaxpr = str(jax.make_jaxpr(jax.grad(lambda v: conv.apply(v, x).sum()))(variables))
  assert ('conv_general_dilated' in jaxpr) == uses_library


# Winograd F(2x2, 3x3) and F(4x4, 3x3) against XLA's convolution.

WINOGRAD_CASES = [
    # tile, batch, height, width, in, out, padding: even and odd maps, a map smaller than a tile,
    # uneven and no padding.
    (2, 1, 8, 8, 4, 6, ((1, 1), (1, 1))),
    (2, 2, 7, 5, 3, 5, ((1, 1), (1, 1))),
    (2, 3, 1, 1, 5, 2, ((1, 1), (1, 1))),
    (2, 2, 9, 6, 2, 1, ((0, 1), (2, 1))),
    (4, 2, 7, 5, 3, 5, ((1, 1), (1, 1))),
    (4, 1, 6, 6, 1, 8, ((0, 0), (0, 0))),
]


def _lax_conv(x, kernel, pads):
  return jax.lax.conv_general_dilated(x, kernel, (1, 1), pads,
                                      dimension_numbers=('NHWC', 'HWIO', 'NHWC'))


def _winograd_and_xla(x, kernel, cotangent, pads, tile):
  """((y, dL/dx, dL/dkernel) by Winograd, the same by XLA's conv) for L = sum(y * cotangent)."""
  def value_and_grads(conv):
    y, vjp = jax.vjp(conv, x, kernel)
    return (y, *vjp(cotangent))

  @jax.jit
  def both():
    return (value_and_grads(lambda x, k: layers.winograd_conv(x, k, pads, tile=tile)),
            value_and_grads(lambda x, k: _lax_conv(x, k, pads)))
  return both()


@pytest.mark.parametrize('tile,n,h,w,cin,cout,pads', WINOGRAD_CASES)
def test_winograd_equals_xla_conv_in_float64(tile, n, h, w, cin, cout, pads):
  with jax.enable_x64(True):
    rng = _rng(5)
    x = jnp.asarray(rng.standard_normal((n, h, w, cin)))
    kernel = jnp.asarray(rng.standard_normal((3, 3, cin, cout)))
    out_shape = (n, h + sum(pads[0]) - 2, w + sum(pads[1]) - 2, cout)
    cotangent = jnp.asarray(rng.standard_normal(out_shape))
    actual, expected = _winograd_and_xla(x, kernel, cotangent, pads, tile)
    for a, e in zip(actual, expected):
      assert a.dtype == jnp.float64 and a.shape == e.shape
      np.testing.assert_allclose(a, e, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize('tile,tolerance,n,size,cin,cout', [
    (2, 1e-5, 1, 8, 64, 32), (2, 1e-5, 2, 5, 128, 16), (4, 1e-4, 1, 8, 64, 32)])
def test_winograd_float32_error_is_small(tile, tolerance, n, size, cin, cout):
  """Error relative to the largest value, against a float64 reference."""
  rng = _rng(6)
  x = rng.standard_normal((n, size, size, cin)).astype(np.float32)
  kernel = (rng.standard_normal((3, 3, cin, cout)) / np.sqrt(9 * cin)).astype(np.float32)
  cotangent = rng.standard_normal((n, size, size, cout)).astype(np.float32)
  pads = ((1, 1), (1, 1))
  with jax.enable_x64(True):
    exact = _winograd_and_xla(*(jnp.asarray(a, jnp.float64) for a in (x, kernel, cotangent)),
                              pads, tile)[1]
  ours, xla = _winograd_and_xla(jnp.asarray(x), jnp.asarray(kernel), jnp.asarray(cotangent),
                                pads, tile)
  for name, a, b, e in zip(('output', 'input gradient', 'kernel gradient'), ours, xla, exact):
    assert a.dtype == jnp.float32
    scale = np.abs(np.asarray(e)).max()
    error = np.abs(np.asarray(a, np.float64) - np.asarray(e)).max() / scale
    xla_error = np.abs(np.asarray(b, np.float64) - np.asarray(e)).max() / scale
    assert error < tolerance, (name, error, xla_error)


def test_conv2d_winograd_keeps_nn_conv_parameters_and_values():
  x = jnp.asarray(_rng(7).standard_normal((2, 6, 5, 8), np.float32))
  ours = layers.Conv2D(8, 12, 3, padding='SAME', method='winograd')
  flax_conv = nn.Conv(12, (3, 3), padding='SAME')
  shapes = jax.eval_shape(ours.init, jax.random.key(0), x)
  assert shapes == jax.eval_shape(flax_conv.init, jax.random.key(0), x)
  variables = _random_like(shapes)
  jaxpr = str(jax.make_jaxpr(ours.apply)(variables, x))
  assert 'conv_general_dilated' not in jaxpr and jaxpr.count('dot_general') == 16
  np.testing.assert_allclose(ours.apply(variables, x), flax_conv.apply(variables, x),
                             rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('x_shape,kernel_shape,stride,groups,dtype,expected', [
    ((128, 4, 4, 512), (3, 3, 512, 512), (1, 1), 1, jnp.float32, 'winograd'),
    ((128, 8, 8, 256), (3, 3, 256, 256), (1, 1), 1, jnp.float32, 'winograd'),
    ((128, 4, 4, 512), (3, 3, 512, 512), (1, 1), 1, jnp.bfloat16, 'lax'),
    ((128, 16, 16, 64), (3, 3, 64, 128), (1, 1), 1, jnp.float32, 'lax'),
    ((128, 32, 32, 3), (3, 3, 3, 64), (1, 1), 1, jnp.float32, 'lax'),
    ((128, 8, 8, 256), (3, 3, 256, 256), (2, 2), 1, jnp.float32, 'lax'),
    ((128, 8, 8, 256), (3, 3, 128, 256), (1, 1), 2, jnp.float32, 'lax'),
    ((128, 8, 8, 256), (5, 5, 256, 256), (1, 1), 1, jnp.float32, 'lax'),
    ((128, 2, 2, 512), (3, 3, 512, 512), (1, 1), 1, jnp.float32, 'winograd'),
    ((128, 2, 2, 512), (3, 3, 512, 512), (1, 1), 1, jnp.bfloat16, 'im2col'),
    ((128, 2, 2, 512), (3, 3, 256, 512), (1, 1), 2, jnp.float32, 'im2col'),
    ((128, 1, 1, 512), (3, 3, 512, 512), (1, 1), 1, jnp.float32, 'im2col'),
])
def test_conv_method_rule(x_shape, kernel_shape, stride, groups, dtype, expected):
  assert layers.conv_method(x_shape, kernel_shape, stride, groups, dtype, 'cpu') == expected
  # Accelerators: always the library convolution.
  for platform in ('gpu', 'tpu'):
    assert layers.conv_method(x_shape, kernel_shape, stride, groups, dtype, platform) == 'lax'


@pytest.mark.parametrize('name,shape', [('vgg_tiny', (2, 8, 8, 1)), ('convnet', (2, 12, 12, 1))])
def test_models_compute_the_same_with_every_conv_method(name, shape):
  import models
  x = jnp.asarray(_rng(8).standard_normal(shape, np.float32))
  outputs = {}
  for method in ('lax', 'winograd', 'im2col'):
    model = models.create(name, num_classes=10, conv_method=method)
    variables = model.init(jax.random.key(0), x)
    outputs[method] = model.apply(variables, x)
  for method in ('winograd', 'im2col'):
    np.testing.assert_allclose(outputs[method], outputs['lax'], rtol=1e-4, atol=1e-5)


# Pooling.

POOL_CASES = [
    # kind, window, stride, padding, count_include_pad, height, width
    ('max', 2, None, 0, True, 8, 6),
    ('max', 3, 2, 0, True, 13, 13),
    ('max', 3, 2, 1, True, 7, 8),
    ('max', (3, 2), (1, 2), (1, 0), True, 5, 6),
    ('max', 2, 2, 0, True, 7, 7),
    ('avg', 2, None, 0, True, 8, 6),
    ('avg', 3, 2, 1, True, 7, 8),
    ('avg', 3, 2, 1, False, 7, 8),
    ('avg', 3, 1, 1, False, 5, 5),
    ('avg', 2, 2, 0, True, 5, 5),
]


@pytest.mark.parametrize('kind,window,stride,padding,count_include_pad,h,w', POOL_CASES)
def test_pooling_matches_torch(kind, window, stride, padding, count_include_pad, h, w):
  rng = _rng(4)
  x = rng.standard_normal((2, h, w, 3), np.float32)
  xt = _to_torch(x)
  if kind == 'max':
    pool = layers.MaxPool2D(window, stride, padding)
    yt = F.max_pool2d(xt, window, stride, padding)
  else:
    pool = layers.AvgPool2D(window, stride, padding, count_include_pad)
    yt = F.avg_pool2d(xt, window, stride, padding, count_include_pad=count_include_pad)
  cotangent = rng.standard_normal(yt.shape, np.float32)
  (yt * torch.tensor(cotangent)).sum().backward()

  def loss(x):
    y = pool.apply({}, x)
    return jnp.sum(y * cotangent.transpose(0, 2, 3, 1)), y

  grad, y = jax.jit(jax.grad(loss, has_aux=True))(jnp.asarray(x))
  np.testing.assert_allclose(y, _from_torch(yt), rtol=1e-6, atol=1e-6)
  np.testing.assert_allclose(grad, _from_torch(xt.grad), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize('pool,library', [(layers.MaxPool2D, nn.max_pool),
                                          (layers.AvgPool2D, nn.avg_pool)])
def test_reshape_pooling_equals_reduce_window(pool, library):
  x = jnp.asarray(_rng(5).standard_normal((2, 8, 6, 3), np.float32))
  grad = jax.grad(lambda x: jnp.sum(pool(2).apply({}, x) ** 2))(x)
  expected = jax.grad(lambda x: jnp.sum(library(x, (2, 2), (2, 2)) ** 2))(x)
  np.testing.assert_array_equal(grad, expected)
  jaxpr = str(jax.make_jaxpr(jax.grad(lambda x: pool(2).apply({}, x).sum()))(x))
  assert 'reduce_window' not in jaxpr and 'select_and_scatter' not in jaxpr
  odd = jnp.ones((1, 7, 7, 1))
  assert 'reduce_window' in str(jax.make_jaxpr(lambda x: pool(2).apply({}, x))(odd))


@pytest.mark.parametrize('size,out', [(13, 6), (12, 6), (6, 6), ((7, 5), (3, 2))])
def test_adaptive_avg_pool_matches_torch(size, out):
  h, w = (size, size) if isinstance(size, int) else size
  x = _rng(6).standard_normal((2, h, w, 3), np.float32)
  y = layers.AdaptiveAvgPool2D(out).apply({}, jnp.asarray(x))
  expected = F.adaptive_avg_pool2d(_to_torch(x), out)
  np.testing.assert_allclose(y, _from_torch(expected), rtol=1e-6, atol=1e-6)


# Normalisation, dropout, flatten.


@pytest.mark.parametrize('size,alpha,beta,k', [(5, 1e-4, 0.75, 2.0), (4, 0.1, 0.5, 1.0),
                                               (3, 0.3, 0.75, 1.0)])
def test_local_response_norm_matches_torch_with_scaled_alpha(size, alpha, beta, k):
  x = _rng(7).standard_normal((2, 3, 4, 7), np.float32) * 3
  y = layers.LocalResponseNorm(size, alpha, beta, k).apply({}, jnp.asarray(x))
  expected = F.local_response_norm(_to_torch(x), size, alpha * size, beta, k)
  np.testing.assert_allclose(y, _from_torch(expected), rtol=1e-6, atol=1e-6)


def test_local_response_norm_formula():
  x = jnp.arange(1.0, 4.0).reshape(1, 1, 1, 3)
  y = layers.LocalResponseNorm(size=3, alpha=1.0, beta=1.0, k=0.0).apply({}, x)
  np.testing.assert_allclose(y[0, 0, 0], [1 / 5, 2 / 14, 3 / 13], rtol=1e-6)


def test_batch_norm_matches_torch_in_train_and_eval():
  rng = _rng(8)
  x = rng.standard_normal((4, 3, 5, 6), np.float32) * 2 + 1
  scale = rng.standard_normal(6, np.float32)
  bias = rng.standard_normal(6, np.float32)
  torch_bn = torch.nn.BatchNorm2d(6)
  with torch.no_grad():
    torch_bn.weight.copy_(torch.tensor(scale))
    torch_bn.bias.copy_(torch.tensor(bias))
  bn = layers.BatchNorm()
  variables = bn.init(jax.random.key(0), jnp.asarray(x))
  variables = {'params': {'scale': jnp.asarray(scale), 'bias': jnp.asarray(bias)},
               'batch_stats': variables['batch_stats']}

  torch_bn.train()
  expected = torch_bn(_to_torch(x))
  y, updates = bn.apply(variables, jnp.asarray(x), train=True, mutable=['batch_stats'])
  np.testing.assert_allclose(y, _from_torch(expected), rtol=1e-5, atol=1e-5)
  stats = updates['batch_stats']
  np.testing.assert_allclose(stats['mean'], torch_bn.running_mean.numpy(), rtol=1e-6, atol=1e-6)
  n = x.size // x.shape[-1]
  torch_var_biased = 0.9 + (torch_bn.running_var.numpy() - 0.9) * (n - 1) / n
  np.testing.assert_allclose(stats['var'], torch_var_biased, rtol=1e-5)

  torch_bn.eval()
  x_eval = rng.standard_normal((2, 3, 5, 6), np.float32)
  torch_bn.running_var.copy_(torch.tensor(np.asarray(stats['var'])))
  expected = torch_bn(_to_torch(x_eval))
  y = bn.apply({**variables, 'batch_stats': stats}, jnp.asarray(x_eval), train=False)
  np.testing.assert_allclose(y, _from_torch(expected), rtol=1e-5, atol=1e-5)


def test_dropout_is_identity_in_eval_and_scaled_in_train():
  x = jnp.ones((4, 100))
  drop = layers.Dropout(0.5)
  np.testing.assert_array_equal(drop.apply({}, x), x)
  y = drop.apply({}, x, train=True, rngs={'dropout': jax.random.key(0)})
  assert set(np.unique(np.asarray(y))) == {0.0, 2.0}
  other = drop.apply({}, x, train=True, rngs={'dropout': jax.random.key(1)})
  assert not np.array_equal(y, other)


def test_flatten_and_dense():
  x = jnp.ones((3, 2, 4, 5))
  assert layers.Flatten().apply({}, x).shape == (3, 40)
  assert layers.Dense is nn.Dense


def test_folded_bias_dense_equals_nn_dense_in_values_and_gradients():
  with jax.enable_x64(True):
    x = jax.random.normal(jax.random.PRNGKey(0), (4, 3, 6), jnp.float64)
    folded = layers.FoldedBiasDense(7, param_dtype=jnp.float64,
                                    bias_init=nn.initializers.normal(1.0))
    params = folded.init(jax.random.PRNGKey(1), x)
    reference = nn.Dense(7, param_dtype=jnp.float64)
    assert jax.tree.map(jnp.shape, params) == jax.tree.map(
        jnp.shape, reference.init(jax.random.PRNGKey(1), x))
    loss = lambda module: lambda p, x: jnp.sum(jnp.sin(module.apply(p, x)))
    out = folded.apply(params, x)
    assert out.dtype == jnp.float64
    np.testing.assert_allclose(out, reference.apply(params, x), rtol=1e-13)
    grads = jax.grad(loss(folded), argnums=(0, 1))(params, x)
    expected = jax.grad(loss(reference), argnums=(0, 1))(params, x)
    for got, want in zip(jax.tree.leaves(grads), jax.tree.leaves(expected)):
      np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-13)
  precise = layers.FoldedBiasDense(3, precision='highest')
  x32 = jnp.ones((2, 4))
  assert 'HIGHEST' in str(jax.make_jaxpr(precise.apply)(precise.init(jax.random.PRNGKey(0), x32),
                                                        x32))
  with pytest.raises(ValueError, match='use_bias=True'):
    layers.FoldedBiasDense(3, use_bias=False).init(jax.random.PRNGKey(0), x)


# Validation.

VALIDATION_CASES = [
    (layers.Conv2D(3, 8, 3), (1, 8, 8, 1),
     r'^Conv2D at layer Conv2D expects input \[batch, height, width, 3\], got shape '
     r'\(1, 8, 8, 1\)'),
    (layers.Conv2D(3, 8, 3), (8, 8, 3), r'expects \[batch, height, width, channels\]'),
    (layers.Conv2D(3, 8, 3, groups=2), (1, 8, 8, 3),
     r'^in_channels 3 and out_channels 8 must both be divisible by groups 2 at layer Conv2D'),
    (layers.Conv2D(4, 6, 3, groups=4), (1, 8, 8, 4), r'divisible by groups 4'),
    (layers.Conv2D(1, 1, 5, padding='VALID'), (1, 3, 3, 1),
     r'^kernel 5x5 is larger than the padded input 3x3 at layer Conv2D; lower the kernel size '
     r'or use a larger input'),
    (layers.Conv2D(1, 1, (3, 7), padding=1), (1, 3, 3, 1), r'kernel 3x7 is larger than the padded'
     r' input 5x5'),
    (layers.Conv2D(0, 1, 3), (1, 3, 3, 0), r'^in_channels must be a positive int at layer Conv2D,'
     r' got 0'),
    (layers.Conv2D(1, -2, 3), (1, 3, 3, 1), r'out_channels must be a positive int'),
    (layers.Conv2D(1, 1, 0), (1, 3, 3, 1), r'^kernel_size must be positive at layer Conv2D, '
     r'got 0'),
    (layers.Conv2D(1, 1, 3, stride=(1, 0)), (1, 3, 3, 1), r'stride must be positive'),
    (layers.Conv2D(1, 1, 3, padding=-1), (1, 3, 3, 1), r'padding must be non-negative'),
    (layers.Conv2D(1, 1, 3, padding='FULL'), (1, 3, 3, 1), r"padding must be 'SAME', 'VALID'"),
    (layers.Conv2D(1, 1, 3, method='fft'), (1, 3, 3, 1),
     r"^method must be 'auto', 'lax', 'im2col', 'winograd' at layer Conv2D, got 'fft'"),
    (layers.Conv2D(2, 2, 3, stride=2, method='winograd'), (1, 8, 8, 2),
     r"^method 'winograd' needs a 3x3 kernel, stride 1 and groups 1 at layer Conv2D, got kernel "
     r'\(3, 3\), stride \(2, 2\), groups 1'),
    (layers.Conv2D(2, 2, 5, method='winograd'), (1, 8, 8, 2), r"method 'winograd' needs a 3x3"),
    (layers.Conv2D(2, 2, 3, groups=2, method='winograd'), (1, 8, 8, 2), r'stride \(1, 1\), groups 2'),
    (layers.MaxPool2D(3, 2), (1, 2, 2, 1),
     r'^window 3x3 is larger than the padded input 2x2 at layer MaxPool2D; lower the window size'
     r' or use a larger input'),
    (layers.AvgPool2D(2), (1, 1, 1, 4), r'window 2x2 is larger than the padded input 1x1 at '
     r'layer AvgPool2D'),
    (layers.Conv2D(1, 4, 99, padding='SAME'), (1, 8, 8, 1),
     r'^kernel 99x99 is larger than the 8x8 map at layer Conv2D, whatever the padding \(a window '
     r'may overhang the map by at most one pixel per side\); lower the kernel size'),
    (layers.Conv2D(1, 4, (3, 5), padding=2), (1, 3, 2, 1), r'kernel 3x5 is larger than the 3x2 map'),
    (layers.Conv2D(1, 4, 3, padding=((2, 0), (1, 1))), (1, 1, 4, 1),
     r'kernel 3x3 is larger than the 1x4 map'),
    (layers.MaxPool2D(6, 1, 'SAME'), (1, 3, 3, 1), r'^window 6x6 is larger than the 3x3 map at '
     r'layer MaxPool2D, whatever the padding'),
    (layers.AvgPool2D(4, 2, 2), (1, 1, 2, 1), r'window 4x4 is larger than the 1x2 map'),
    (layers.MaxPool2D(0), (1, 4, 4, 1), r'window must be positive'),
    (layers.AvgPool2D(2, -1), (1, 4, 4, 1), r'stride must be positive'),
    (layers.MaxPool2D(2), (4, 4, 1), r'MaxPool2D at layer MaxPool2D expects \[batch, height'),
    (layers.AdaptiveAvgPool2D(0), (1, 4, 4, 1), r'output_size must be positive'),
    (layers.LocalResponseNorm(0), (1, 4, 4, 1), r'size must be a positive int'),
]


@pytest.mark.parametrize('module,shape,message', VALIDATION_CASES)
def test_validation_errors(module, shape, message):
  with pytest.raises(ValueError, match=message):
    module.init(jax.random.key(0), jnp.ones(shape))


@pytest.mark.parametrize('module,shape,out', [
    (layers.Conv2D(2, 3, 3, padding=1), (1, 1, 1, 2), (1, 1, 1, 3)),
    (layers.Conv2D(2, 3, 3, padding='SAME'), (1, 2, 2, 2), (1, 2, 2, 3)),
    (layers.Conv2D(2, 3, 3, stride=2, padding=1), (1, 2, 2, 2), (1, 1, 1, 3)),
    (layers.Conv2D(2, 3, 5, padding=2), (1, 3, 3, 2), (1, 3, 3, 3)),
    (layers.MaxPool2D(3, 2, 1), (1, 1, 1, 2), (1, 1, 1, 2)),
])
def test_windows_overhanging_the_map_by_one_pixel_into_padding_are_allowed(module, shape, out):
  """A 3x3 'same' conv on a 1x1 or 2x2 map (VGG and ResNet blocks on CIFAR-sized inputs)."""
  variables = jax.eval_shape(module.init, jax.random.key(0), jnp.ones(shape))
  assert jax.eval_shape(module.apply, variables, jnp.ones(shape)).shape == out


def test_oversized_kernel_on_the_command_line_is_one_error_line_quickly(tmp_path):
  """The default digits run with a 99x99 kernel: refused at trace time, not compiled."""
  import os
  import subprocess
  import sys
  repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  result = subprocess.run(
      [sys.executable, '-m', 'train.main', '--config.model_kwargs.kernel_size=99',
       f'--workdir={tmp_path / "run"}'], cwd=repo, capture_output=True, text=True, timeout=20)
  assert result.returncode == 1, result.stderr
  errors = [line for line in result.stderr.splitlines() if line.startswith('error:')]
  assert len(errors) == 1, result.stderr
  assert 'kernel 99x99 is larger than the 8x8 map at layer conv1' in errors[0]
  assert 'Traceback' not in result.stderr + result.stdout


def test_validation_error_names_the_nested_layer():

  class Net(nn.Module):

    @nn.compact
    def __call__(self, x):
      x = layers.Conv2D(1, 4, 3, name='block1_conv1')(x)
      return layers.Conv2D(3, 4, 3, name='block1_conv2')(x)

  with pytest.raises(ValueError, match=r'^Conv2D at layer block1_conv2 expects input \[batch, '
                     r'height, width, 3\], got shape \(1, 6, 6, 4\)'):
    Net().init(jax.random.key(0), jnp.ones((1, 8, 8, 1)))
