"""The benchmark command runs and writes its records; the PyTorch twins are the same networks."""

import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import models
from train import benchmark, tasks

try:  # the tests marked `torch` compare against PyTorch; the Python 3.12 CI leg has none
  from train import torch_reference
except ImportError:
  torch_reference = None

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.torch
@pytest.mark.parametrize('model, batch_size, repeats, unit', [
    ('convnet', 16, 2, 'images/s'),
    ('rnn_lm_small', 4, 1, 'tokens/s'),  # a recurrent entry against its PyTorch twin
])
def test_benchmark_command_writes_records(tmp_path, model, batch_size, repeats, unit):
  path = tmp_path / 'bench.json'
  result = subprocess.run(
      [sys.executable, '-m', 'train.benchmark', f'--model={model}', f'--batch_size={batch_size}',
       f'--repeats={repeats}', '--steps=1', f'--json={path}'], cwd=REPO, capture_output=True,
      text=True, timeout=300)
  assert result.returncode == 0, result.stderr
  records = json.loads(path.read_text())
  assert [(r['model'], r['step']) for r in records] == [(model, 'train'), (model, 'inference')]
  for record in records:
    for key in ('model', 'unit', 'ours', 'reference', 'ratio', 'compile_s', 'device'):
      assert key in record
    assert record['unit'] == unit
    assert record['ours'] > 0 and record['reference'] > 0
    assert record['ratio'] == pytest.approx(record['ours'] / record['reference'])
    assert record['reference_impl'].startswith('torch')
    assert record['flops_per_s'] > 0 and 0 < record['peak_fraction']
    # The same FLOP count over each side's time: the two fractions stand in the speed ratio.
    assert record['peak_fraction'] / record['reference_peak_fraction'] == \
        pytest.approx(record['ratio'])
  assert model in result.stdout and 'ratio' in result.stdout


def test_unknown_benchmark_is_one_line():
  result = subprocess.run([sys.executable, '-m', 'train.benchmark', '--model=resnet'], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
  assert result.returncode == 2
  assert result.stderr.strip().startswith("error: no benchmark for 'resnet'")


def _param_count(tree) -> int:
  return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(tree))


@pytest.mark.torch
@pytest.mark.parametrize('name', sorted(benchmark.BENCHMARKS))
def test_twin_has_the_same_parameter_count(name):
  spec = benchmark.BENCHMARKS[name]
  model = models.create(spec.model, **benchmark.model_kwargs(spec))
  batch = benchmark.make_batch(spec, 2)
  task = tasks.create(spec.task)

  def count(module):
    shapes = jax.eval_shape(lambda: module.init(jax.random.PRNGKey(0), *task.model_inputs(batch)))
    return _param_count(shapes['params'])

  ours = count(model)
  twin = spec.torch_model()
  theirs = count(twin) if spec.reference == 'flax' else torch_reference.count_parameters(twin)
  assert theirs == ours


def _torch_lm_loss(twin, ours_params, inputs, targets):
  """Loads our LM's parameters into the PyTorch twin and returns its mean cross-entropy."""
  import torch
  params = jax.tree.map(np.asarray, ours_params)
  state = {'embed.weight': params['embed']['embedding'],
           'output.weight': params['output']['kernel'].T, 'output.bias': params['output']['bias']}
  for layer in range(2):
    cell = params[f'l{layer}']
    state[f'rnn.weight_ih_l{layer}'] = cell['input_projection']['kernel'].T
    state[f'rnn.weight_hh_l{layer}'] = cell['recurrent_kernel'].T
    state[f'rnn.bias_ih_l{layer}'] = cell['input_projection']['bias']
    if 'recurrent_bias' in cell:
      state[f'rnn.bias_hh_l{layer}'] = cell['recurrent_bias']
  own = twin.state_dict()
  for key, value in state.items():
    own[key] = torch.from_numpy(np.array(value))
  twin.load_state_dict(own)
  with torch.no_grad():
    logits, _ = twin(torch.from_numpy(inputs.T.astype(np.int64)))
    return float(torch.nn.functional.cross_entropy(
        logits.reshape(-1, logits.shape[-1]),
        torch.from_numpy(targets.T.astype(np.int64)).reshape(-1)))


@pytest.mark.torch
@pytest.mark.parametrize('cell_type', ['lstm', 'gru', 'rnn'])
def test_torch_language_model_twin_computes_the_same_loss(cell_type):
  """The twins are the same function, not only the same size: equal loss on shared weights."""
  import torch
  model = models.create(f'{cell_type}_lm', vocab_size=50, hidden_size=8, num_layers=2)
  rng = np.random.default_rng(0)
  tokens = rng.integers(0, 50, (3, 7)).astype(np.int32)
  variables = model.init(jax.random.PRNGKey(0), tokens[:, :-1])
  logits = model.apply(variables, tokens[:, :-1])
  ours = float(optax.softmax_cross_entropy_with_integer_labels(logits, tokens[:, 1:]).mean())
  torch.manual_seed(0)
  twin = torch_reference.language_model(cell_type, 50, 8, 2)
  assert _torch_lm_loss(twin, variables['params'], tokens[:, :-1], tokens[:, 1:]) == \
      pytest.approx(ours, rel=1e-5)


def test_argmax_matches_is_argmax_equals_target_including_ties_and_bad_targets():
  from train import tasks
  logits = jnp.array([[0.0, 0.0, 0.0], [1.0, 3.0, 3.0], [-2.0, -1.0, -5.0], [7.0, 7.0, 1.0],
                      [-jnp.inf, -jnp.inf, -jnp.inf], [jnp.inf, 1.0, jnp.inf]])
  for target in range(-1, 5):  # -1 and 3, 4 lie outside the 3-word vocabulary
    targets = jnp.full(logits.shape[0], target, jnp.int32)
    np.testing.assert_array_equal(tasks.argmax_matches(logits, targets),
                                  jnp.argmax(logits, -1) == targets)
  random = jax.random.normal(jax.random.PRNGKey(0), (4, 5, 300))
  argmax = jnp.argmax(random, -1)
  for targets in (argmax, jax.random.randint(jax.random.PRNGKey(1), (4, 5), 0, 300),
                  jnp.where(jnp.arange(5) % 2 == 0, argmax, (argmax + 1) % 300)):
    np.testing.assert_array_equal(tasks.argmax_matches(random, targets), argmax == targets)
  assert 0 < int(tasks.argmax_matches(random, argmax).sum()) == 20


@pytest.mark.parametrize('cell_type', ['lstm', 'gru', 'rnn'])
def test_fused_scan_matches_autodiff_of_scan_steps(cell_type):
  """`cell.scan`'s hand-written backward gives autodiff's values and gradients (masked, both
  directions, from a non-zero carry)."""
  from models import rnn
  x = jax.random.normal(jax.random.PRNGKey(0), (6, 3, 4))  # [time, batch, features]
  mask = jnp.arange(6)[:, None] < jnp.array([6, 2, 4])[None, :]
  cell = rnn.make_cell(cell_type, 5)
  carry = jax.tree.map(lambda z: z + 0.3, cell.zero_carry(3))
  params = cell.init(jax.random.PRNGKey(1), carry, x[0])

  def loss(params, carry, x, mask, reverse, fused):
    def run(module):
      projected = module.project(x)
      if fused:
        return module.scan(carry, projected, mask, reverse=reverse, unroll=2)
      return rnn.scan_steps(module.step_fn(), carry, projected, mask, reverse=reverse)
    final, outputs = cell.apply(params, method=run)
    return (outputs ** 2).sum() + sum((leaf ** 3).sum() for leaf in jax.tree.leaves(final))

  grad = jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2)), static_argnums=(4, 5))
  for m in (None, mask):
    for reverse in (False, True):
      expected, got = grad(params, carry, x, m, reverse, False), grad(params, carry, x, m, reverse,
                                                                     True)
      for a, b in zip(jax.tree.leaves(expected), jax.tree.leaves(got)):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-5)


def test_keep_freed_memory_is_accepted_by_glibc():
  """train.main and the benchmark tune glibc malloc; a refused setting would silently cost speed."""
  code = 'from train import platform; print(platform.keep_freed_memory())'
  result = subprocess.run([sys.executable, '-c', code], cwd=REPO, capture_output=True, text=True,
                          timeout=120)
  assert result.returncode == 0, result.stderr
  import platform as host
  expected = 'True' if host.libc_ver()[0] == 'glibc' else 'False'
  assert result.stdout.strip() == expected
