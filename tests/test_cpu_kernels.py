"""Tests of models/cpu_kernels.py: each CPU form computes what its plain counterpart computes.

References: XLA's own convolution (in float64 to 1e-12, and float32 against a float64 reference),
`nn.Dense`, the logistic function in float64, slicing, the plain `rnn.CellOps`, and the registry's
platform choice.
"""

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import models
from models import cpu_kernels
from models import heads
from models import layers
from models import rnn


def _rng(seed=0):
  return np.random.default_rng(seed)


def _random_like(shapes, seed=0):
  """Standard-normal arrays with the shapes and dtypes of `shapes` (no jax.random compile)."""
  rng = _rng(seed)
  return jax.tree.map(lambda s: jnp.asarray(rng.standard_normal(s.shape), s.dtype), shapes)


# Convolutions.

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
    convs = {method: cpu_kernels.CpuConv2D(cin, cout, 3, stride, padding, groups,
                                           param_dtype=jnp.float64, method=method)
             for method in ('lax', 'im2col')}
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
  conv = cpu_kernels.CpuConv2D(2, 2, 3, padding='SAME')
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
    return (value_and_grads(lambda x, k: cpu_kernels.winograd_conv(x, k, pads, tile=tile)),
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
  ours = cpu_kernels.CpuConv2D(8, 12, 3, padding='SAME', method='winograd')
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
  assert cpu_kernels.conv_method(x_shape, kernel_shape, stride, groups, dtype) == expected


@pytest.mark.parametrize('name,shape', [('vgg_tiny', (2, 8, 8, 1)), ('convnet', (2, 12, 12, 1))])
def test_models_compute_the_same_with_every_conv_method(name, shape):
  x = jnp.asarray(_rng(8).standard_normal(shape, np.float32))
  outputs = {}
  for method in ('lax', 'winograd', 'im2col'):
    conv = functools.partial(cpu_kernels.CpuConv2D, method=method)
    model = models.create(name, num_classes=10, conv=conv)
    variables = model.init(jax.random.key(0), x)
    outputs[method] = model.apply(variables, x)
  for method in ('winograd', 'im2col'):
    np.testing.assert_allclose(outputs[method], outputs['lax'], rtol=1e-4, atol=1e-5)



def test_folded_bias_dense_equals_nn_dense_in_values_and_gradients():
  with jax.enable_x64(True):
    x = jax.random.normal(jax.random.PRNGKey(0), (4, 3, 6), jnp.float64)
    folded = cpu_kernels.FoldedBiasDense(7, param_dtype=jnp.float64,
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
  precise = cpu_kernels.FoldedBiasDense(3, precision='highest')
  x32 = jnp.ones((2, 4))
  assert 'HIGHEST' in str(jax.make_jaxpr(precise.apply)(precise.init(jax.random.PRNGKey(0), x32),
                                                        x32))
  with pytest.raises(ValueError, match='use_bias=True'):
    cpu_kernels.FoldedBiasDense(3, use_bias=False).init(jax.random.PRNGKey(0), x)


# Validation of the CPU convolution's method.

METHOD_CASES = [
    (cpu_kernels.CpuConv2D(1, 1, 3, method='fft'), (1, 3, 3, 1),
     r"^method must be 'auto', 'lax', 'im2col', 'winograd' at layer CpuConv2D, got 'fft'"),
    (cpu_kernels.CpuConv2D(2, 2, 3, stride=2, method='winograd'), (1, 8, 8, 2),
     r"^method 'winograd' needs a 3x3 kernel, stride 1 and groups 1 at layer CpuConv2D, got kernel "
     r'\(3, 3\), stride \(2, 2\), groups 1'),
    (cpu_kernels.CpuConv2D(2, 2, 5, method='winograd'), (1, 8, 8, 2),
     r"method 'winograd' needs a 3x3"),
    (cpu_kernels.CpuConv2D(2, 2, 3, groups=2, method='winograd'), (1, 8, 8, 2),
     r'stride \(1, 1\), groups 2'),
]


@pytest.mark.parametrize('module,shape,message', METHOD_CASES)
def test_method_validation_errors(module, shape, message):
  with pytest.raises(ValueError, match=message):
    module.init(jax.random.key(0), jnp.ones(shape))


# Recurrent cells.

def test_sigmoid_is_the_logistic_function():
  x = np.linspace(-30, 30, 20_001).astype(np.float32)
  exact = 1 / (1 + np.exp(-x.astype(np.float64)))
  np.testing.assert_allclose(cpu_kernels.tanh_sigmoid(jnp.asarray(x)), exact, rtol=0, atol=2e-7)
  np.testing.assert_allclose(jax.vmap(jax.grad(cpu_kernels.tanh_sigmoid))(jnp.asarray(x)),
                             exact * (1 - exact), rtol=0, atol=2e-7)


def test_split_gates_is_slicing_in_values_and_gradients():
  x = jnp.arange(2 * 9, dtype=jnp.float32).reshape(2, 9)
  blocks = cpu_kernels.split_gates(x, (2, 4, 3))
  for block, (start, stop) in zip(blocks, [(0, 2), (2, 6), (6, 9)]):
    np.testing.assert_array_equal(block, x[:, start:stop])
  weights = [jnp.full((2, n), w) for n, w in [(2, 1.0), (4, -2.0), (3, 3.0)]]
  loss = lambda x: sum(jnp.sum(w * jnp.sin(b))
                       for w, b in zip(weights, cpu_kernels.split_gates(x, (2, 4, 3))))
  expected = jnp.concatenate(weights, -1) * jnp.cos(x)
  np.testing.assert_allclose(jax.grad(loss)(x), expected, rtol=1e-6)


@pytest.mark.parametrize('cell_type', ['lstm', 'gru', 'rnn'])
def test_cpu_cell_ops_give_the_plain_values_and_gradients(cell_type):
  """A masked, bidirectional RNN with `CELL_OPS` against the same with plain ops."""
  x = jnp.asarray(_rng(10).standard_normal((3, 6, 4), np.float32))
  lengths = jnp.array([6, 2, 4])
  plain = rnn.RNN(5, cell_type, bidirectional=True)
  cpu = rnn.RNN(5, cell_type, bidirectional=True, cell_ops=cpu_kernels.CELL_OPS)
  variables = plain.init(jax.random.PRNGKey(0), x, lengths)

  def loss(layer):
    def value(variables, x):
      outputs, carries = layer.apply(variables, x, lengths)
      return jnp.sum(jnp.sin(outputs)) + sum(jnp.sum(c) for c in jax.tree.leaves(carries))
    return jax.jit(jax.value_and_grad(value, argnums=(0, 1)))(variables, x)

  for got, want in zip(jax.tree.leaves(loss(cpu)), jax.tree.leaves(loss(plain))):
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
  jaxpr = str(jax.make_jaxpr(lambda v: jax.grad(lambda v: cpu.apply(v, x)[0].sum())(v))(variables))
  assert 'optimization_barrier' in jaxpr
  plain_jaxpr = str(jax.make_jaxpr(lambda v: jax.grad(
      lambda v: plain.apply(v, x)[0].sum())(v))(variables))
  assert 'optimization_barrier' not in plain_jaxpr


def test_language_model_output_layer_folded_or_plain_gives_the_same_logits():
  tokens = jnp.array([[1, 2, 3], [4, 5, 6]])
  for tie in (False, True):
    kwargs = dict(vocab_size=7, hidden_size=5, num_layers=1, init_scale=0.3, tie_weights=tie)
    plain = heads.LanguageModel(**kwargs)
    cpu = heads.LanguageModel(**kwargs, **models.platform_arguments('lstm_lm', 'cpu'))
    variables = plain.init(jax.random.PRNGKey(0), tokens)
    assert jax.tree.map(jnp.shape, cpu.init(jax.random.PRNGKey(0), tokens)) == \
        jax.tree.map(jnp.shape, variables)
    np.testing.assert_allclose(cpu.apply(variables, tokens), plain.apply(variables, tokens),
                               rtol=1e-5, atol=1e-6)


# The platform is decided once, in models.create.


def test_create_passes_the_cpu_kernels_on_cpu_only():
  on_cpu = models.create('vgg_tiny', platform='cpu')
  assert on_cpu.conv is cpu_kernels.CpuConv2D
  for platform in ('gpu', 'tpu'):
    assert models.create('vgg_tiny', platform=platform).conv is layers.Conv2D
    lm = models.create('lstm_lm', platform=platform, vocab_size=5)
    assert lm.cell_ops == rnn.CellOps() and lm.output_dense is nn.Dense
  lm = models.create('lstm_lm', platform='cpu', vocab_size=5)
  assert lm.cell_ops is cpu_kernels.CELL_OPS
  assert lm.output_dense is cpu_kernels.FoldedBiasDense
  assert lm.output_affine is cpu_kernels.folded_affine
  assert models.create('bilstm_classifier', platform='cpu', vocab_size=5,
                       num_classes=2).cell_ops is cpu_kernels.CELL_OPS
  # Explicit arguments win; models without such arguments get none.
  assert models.create('convnet', platform='cpu', conv=layers.Conv2D).conv is layers.Conv2D
  assert models.platform_arguments('lenet5', 'cpu') == {'conv': cpu_kernels.CpuConv2D}
  assert models.platform_arguments('lenet5', 'gpu') == {}
  with pytest.raises(ValueError, match='platform must be a string'):
    models.create('convnet', platform=0)
