"""Tests of models/layers.py against hand-written examples, PyTorch and Flax's own layers."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from models import cpu_kernels
from models import layers

try:  # the tests marked `torch` compare against PyTorch; the Python 3.12 CI leg has none
  import torch
  import torch.nn.functional as F
  torch.set_num_threads(1)
except ImportError:
  torch = F = None


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


def _conv(*args, method='plain', **kwargs):
  """`layers.Conv2D` for method 'plain', else `cpu_kernels.CpuConv2D` with that method."""
  if method == 'plain':
    return layers.Conv2D(*args, **kwargs)
  return cpu_kernels.CpuConv2D(*args, method=method, **kwargs)


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
  for method in ('plain', 'lax', 'im2col', 'winograd', 'auto'):
    conv = _conv(1, 1, 3, padding=1, use_bias=False, method=method)
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


@pytest.mark.torch
@pytest.mark.parametrize(
    'method,cin,cout,kernel_size,stride,padding,groups,h,w',
    [(method, *case) for case in CONV_CASES for method in ('plain', 'im2col', 'winograd')
     if not (method == 'im2col' and case[2] == 11)  # 121 slices compile slowly.
     and not (method == 'winograd' and (case[2:6] != (3, 1, 1, 1) or case[6] < 3))])
def test_conv_matches_torch(method, cin, cout, kernel_size, stride, padding, groups, h, w):
  rng = _rng(1)
  kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
  x = rng.standard_normal((2, h, w, cin), np.float32)
  kernel = rng.standard_normal((kh, kw, cin // groups, cout), np.float32)
  bias = rng.standard_normal((cout,), np.float32)
  conv = _conv(cin, cout, kernel_size, stride, padding, groups, method=method)

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


@pytest.mark.torch
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


@pytest.mark.torch
@pytest.mark.parametrize('size,out', [(13, 6), (12, 6), (6, 6), ((7, 5), (3, 2))])
def test_adaptive_avg_pool_matches_torch(size, out):
  h, w = (size, size) if isinstance(size, int) else size
  x = _rng(6).standard_normal((2, h, w, 3), np.float32)
  y = layers.AdaptiveAvgPool2D(out).apply({}, jnp.asarray(x))
  expected = F.adaptive_avg_pool2d(_to_torch(x), out)
  np.testing.assert_allclose(y, _from_torch(expected), rtol=1e-6, atol=1e-6)


# Normalisation, dropout, flatten.


@pytest.mark.torch
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


@pytest.mark.torch
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


def test_flatten_dense_and_affine():
  x = jnp.ones((3, 2, 4, 5))
  assert layers.Flatten().apply({}, x).shape == (3, 40)
  assert layers.Dense is nn.Dense
  rng = _rng(9)
  x, kernel, bias = (rng.standard_normal(shape) for shape in ((2, 3, 4), (4, 5), (5,)))
  np.testing.assert_allclose(layers.affine(jnp.asarray(x), jnp.asarray(kernel), jnp.asarray(bias)),
                             x @ kernel + bias, rtol=1e-5, atol=1e-5)


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
    (layers.MaxPool2D(3, 2), (1, 2, 2, 1),
     r'^window 3x3 is larger than the padded input 2x2 at layer MaxPool2D; lower the window size'
     r' or use a larger input'),
    (layers.AvgPool2D(2), (1, 1, 1, 4), r'window 2x2 is larger than the padded input 1x1 at '
     r'layer AvgPool2D'),
    (layers.Conv2D(1, 4, 99, padding='SAME'), (1, 8, 8, 1),
     r'^kernel 99x99 is larger than the 8x8 map at layer Conv2D, whatever the padding \(a window '
     r'may overhang the map by at most one pixel per side\); lower the kernel size'),
    (layers.Conv2D(1, 4, (3, 5), padding=2), (1, 3, 2, 1),
     r'kernel 3x5 is larger than the 3x2 map'),
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
