"""Tests of the language model (models/heads.py), its task (train/lm_tasks.py), sampling, and a tiny
end-to-end TBPTT run with exact resume."""

import math
import os
import shutil

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import pytest

import models
from configs import shakespeare_char_lstm
from data import shakespeare
from models import heads
from train import lm_tasks, sample, tasks, trainer
from train.metrics_writer import read_metrics


def _lm(**overrides):
  kwargs = dict(vocab_size=7, hidden_size=6, embedding_size=5, num_layers=2)
  kwargs.update(overrides)
  return heads.LanguageModel(**kwargs)


@pytest.fixture(scope='module')
def lm():
  model = _lm()
  tokens = jnp.array(np.random.default_rng(0).integers(0, 7, (3, 8)), jnp.int32)
  variables = jax.jit(model.init)(jax.random.PRNGKey(0), tokens[:, :4])
  apply = jax.jit(model.apply, static_argnames=('train', 'mutable', 'return_carry'))
  return model, variables, tokens, apply


def test_carried_state_makes_two_windows_equal_one_long_pass(lm):
  model, variables, tokens, apply = lm
  assert jax.tree.map(jnp.shape, variables['carry']['state']) == (((3, 6), (3, 6)),) * 2
  assert not any(np.asarray(x).any() for x in jax.tree.leaves(variables['carry']))
  whole = apply(variables, tokens, train=False)  # from zeros, 8 steps
  first, state = apply(variables, tokens[:, :4], train=True, mutable=('carry',))
  second, _ = apply({**variables, **state}, tokens[:, 4:], train=True, mutable=('carry',))
  np.testing.assert_allclose(jnp.concatenate([first, second], 1), whole, atol=1e-5)
  # A row flagged `reset` starts afresh; the others continue.
  reset = jnp.array([False, True, False])
  again = apply({**variables, **state}, tokens[:, 4:], reset, train=True, mutable=('carry',))[0]
  fresh = apply(variables, tokens[:, 4:], train=False)
  np.testing.assert_allclose(again[1], fresh[1], atol=1e-6)
  np.testing.assert_allclose(again[0], second[0], atol=1e-6)
  # Evaluation ignores the carried state.
  np.testing.assert_allclose(apply({**variables, **state}, tokens[:, 4:], train=False), fresh,
                             atol=1e-6)
  # return_carry gives the state that continues the sequence.
  _, carry = apply(variables, tokens[:, :4], return_carry=True)
  np.testing.assert_allclose(model.apply(variables, tokens[:, 4:], initial_carry=carry), second,
                             atol=1e-5)


def test_output_layer_with_its_folded_bias_is_dense_or_tied_embedding():
  tokens = jnp.array([[1, 2, 3], [4, 5, 6]])
  untied = _lm(hidden_size=5, embedding_size=5, init_scale=0.3)
  variables = untied.init(jax.random.PRNGKey(0), tokens)
  captured = {}

  def capture_input(next_fun, args, kwargs, context):
    if isinstance(context.module, nn.Dense) and context.module.name == 'output':
      captured['x'] = args[0]
    return next_fun(*args, **kwargs)

  with nn.intercept_methods(capture_input):
    logits = untied.apply(variables, tokens)
  output = variables['params']['output']
  assert float(jnp.abs(output['bias']).min()) > 0  # init_scale: a nonzero bias to fold
  np.testing.assert_allclose(logits.reshape(-1, 7),
                             captured['x'] @ output['kernel'] + output['bias'], rtol=1e-5,
                             atol=1e-6)
  # Tied: the untied model whose output kernel is the transposed embedding.
  embedding = variables['params']['embed']['embedding']
  tied_params = {k: v for k, v in variables['params'].items() if k != 'output'}
  tied_params['output_bias'] = output['bias']
  as_untied = dict(variables['params'], output={'kernel': embedding.T, 'bias': output['bias']})
  tied = _lm(hidden_size=5, embedding_size=5, init_scale=0.3, tie_weights=True)
  np.testing.assert_allclose(tied.apply({**variables, 'params': tied_params}, tokens),
                             untied.apply({**variables, 'params': as_untied}, tokens),
                             rtol=1e-5, atol=1e-6)


def test_zaremba_initialisation_weight_tying_and_registry():
  model = _lm(init_scale=0.1, forget_bias=0.0, hidden_size=5)
  params = jax.jit(model.init)(jax.random.PRNGKey(0), jnp.zeros((2, 3), jnp.int32))['params']
  leaves = jax.tree.leaves(params)
  assert all(float(jnp.abs(x).max()) <= 0.1 for x in leaves)
  assert min(float(jnp.abs(x).max()) for x in leaves) > 0.05  # really uniform, biases too
  tied = _lm(tie_weights=True, hidden_size=5)
  tied_params = jax.eval_shape(tied.init, jax.random.PRNGKey(0), jnp.zeros((2, 3), jnp.int32))
  assert 'output' not in tied_params['params']
  assert tied_params['params']['output_bias'].shape == (7,)
  count = lambda p: sum(x.size for x in jax.tree.leaves(p['params']))
  untied = jax.eval_shape(_lm(hidden_size=5).init, jax.random.PRNGKey(0),
                          jnp.zeros((2, 3), jnp.int32))
  assert count(untied) - count(tied_params) == 5 * 7
  with pytest.raises(ValueError, match='tie_weights'):
    _lm(tie_weights=True).init(jax.random.PRNGKey(0), jnp.zeros((1, 2), jnp.int32))
  # Zaremba et al.'s small model: 2 x 200 LSTM, 10k words: 4.65 M parameters (one bias per
  # gate; PyTorch's two would add 1,600).
  small = models.create('lstm_lm', vocab_size=10_000, hidden_size=200, num_layers=2)
  shapes = jax.eval_shape(small.init, jax.random.PRNGKey(0), jnp.zeros((1, 2), jnp.int32))
  lstm = 4 * 200 * (200 + 200) + 4 * 200
  assert count(shapes) == 10_000 * 200 + 2 * lstm + 200 * 10_000 + 10_000 == 4_651_600
  assert models.create('gru_lm', vocab_size=3).cell_type == 'gru'


def test_language_model_task_metrics_by_hand():
  task = tasks.create('language_model', bits_per_char=True)
  assert isinstance(task, lm_tasks.LanguageModel)
  logits = jnp.log(jnp.array([[[0.5, 0.25, 0.25], [0.1, 0.8, 0.1]],
                              [[0.2, 0.2, 0.6], [1 / 3, 1 / 3, 1 / 3]]]))
  batch = {'inputs': jnp.zeros((2, 2), jnp.int32), 'targets': jnp.array([[0, 1], [2, 0]]),
           'weights': jnp.array([[1.0, 1.0], [1.0, 0.0]]), 'mask': jnp.array([True, True])}
  assert task.model_inputs(batch)[1] is None
  loss, sums = task.loss_and_sums(logits, batch)
  nll = -(math.log(0.5) + math.log(0.8) + math.log(0.6))
  np.testing.assert_allclose(float(sums['loss']), nll, rtol=1e-6)
  assert float(sums['count']) == 3.0 and float(sums['accuracy']) == 3.0
  np.testing.assert_allclose(float(loss), nll / 3, rtol=1e-6)
  # A padding row (mask False) counts for nothing.
  _, masked = task.loss_and_sums(logits, {**batch, 'mask': jnp.array([True, False])})
  assert float(masked['count']) == 2.0
  metrics = task.finalize({'loss': 6.0, 'accuracy': 1.0, 'count': 4.0})
  assert metrics['loss'] == 1.5 and metrics['accuracy'] == 0.25
  assert metrics['perplexity'] == pytest.approx(math.exp(1.5))
  assert metrics['bits_per_char'] == pytest.approx(1.5 / math.log(2))
  # Uniform over 4 symbols: 2 bits per character, perplexity 4.
  uniform = task.finalize({'loss': 10 * math.log(4), 'accuracy': 0.0, 'count': 10.0})
  assert uniform['bits_per_char'] == pytest.approx(2.0)
  assert uniform['perplexity'] == pytest.approx(4.0)
  assert 'bits_per_char' not in tasks.create('language_model').finalize({'loss': 1.0, 'count': 1.0})


def test_sample_is_seeded_and_greedy_at_temperature_zero(lm):
  model, variables, _, _ = lm
  params = variables['params']
  a = heads.sample(model, params, [1, 2, 3], 12, temperature=1.0, seed=0)
  assert a.shape == (12,) and a.dtype == np.int32 and ((0 <= a) & (a < 7)).all()
  np.testing.assert_array_equal(a, heads.sample(model, params, [1, 2, 3], 12, 1.0, seed=0))
  assert not np.array_equal(a, heads.sample(model, params, [1, 2, 3], 12, 1.0, seed=1))
  greedy = heads.sample(model, params, [1, 2, 3], 5, temperature=0.0)
  sequence = [1, 2, 3]
  for _ in range(5):  # the same by hand: rerun the whole sequence, take the argmax
    logits = model.apply(variables, jnp.array([sequence]))
    sequence.append(int(jnp.argmax(logits[0, -1])))
  np.testing.assert_array_equal(greedy, sequence[3:])


_PLAY = ('To be, or not to be: that is the question.\n' * 30)


def _tiny_config(tmp_path):
  manual = tmp_path / 'manual'
  os.makedirs(manual, exist_ok=True)
  for name, text in [('hamlet', _PLAY), ('macbeth', _PLAY[:300]), ('lear', _PLAY * 2)]:
    with open(manual / f'{name}{shakespeare.SUFFIX}', 'w') as f:
      f.write(text)
  config = shakespeare_char_lstm.get_config()
  with config.unlocked():
    config.data_dir = os.fspath(tmp_path / 'tfds')
    config.data.manual_dir = os.fspath(manual)
    config.data.seq_len = 20
    config.data.eval_row_length = 50
    config.data.eval_context = 10
    config.batch_size = 8
    config.eval_batch_size = 8
    config.model_kwargs.hidden_size = 32
    config.model_kwargs.embedding_size = 8
    config.learning_rate = 1e-2
    config.warmup_steps = 0
    config.num_train_steps = 40
    config.log_every_steps = 10
    config.eval_every_steps = 20
    config.checkpoint_every_steps = 20
  return config


def test_train_and_evaluate_tbptt_learns_and_resumes_exactly(tmp_path, capsys):
  config = _tiny_config(tmp_path)
  straight = os.fspath(tmp_path / 'straight')
  final = trainer.train_and_evaluate(config, straight)
  # 3,872 training characters in 8 rows of 484: 24 windows of 20 per epoch.
  assert final['eval_bits_per_char'] < 2.5  # the text repeats; uniform over 19 symbols is 4.2
  assert final['eval_perplexity'] == pytest.approx(2 ** final['eval_bits_per_char'], rel=1e-6)
  assert final['eval_loss'] == pytest.approx(final['eval_bits_per_char'] * math.log(2), rel=1e-6)
  assert 0 <= final['eval_accuracy'] <= 1
  records = read_metrics(straight)
  evals = [r for r in records if 'eval_perplexity' in r]
  assert [r['step'] for r in evals] == [20, 40]
  assert evals[1]['eval_bits_per_char'] < evals[0]['eval_bits_per_char']
  assert any('train_perplexity' in r for r in records)
  # Interrupted after step 20 and resumed: bit-identical parameters and carried state.
  resumed = os.fspath(tmp_path / 'resumed')
  shutil.copytree(straight, resumed)
  shutil.rmtree(os.path.join(resumed, 'checkpoints', '40'))
  trainer.train_and_evaluate(config, resumed)

  def restore(workdir):
    manager = ocp.CheckpointManager(os.path.join(workdir, 'checkpoints'))
    state = manager.restore(40, args=ocp.args.StandardRestore())
    manager.close()
    return state

  a, b = restore(straight), restore(resumed)
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
  carry = jax.tree.leaves(a['model_state'])
  assert carry and carry[0].shape == (8, 32) and np.abs(carry[0]).max() > 0
  # Sampling from the workdir.
  capsys.readouterr()
  assert sample.main(['--workdir', straight, '--prompt', 'To be', '--length', '30']) == 0
  text = capsys.readouterr().out
  assert text.startswith('To be') and len(text) == len('To be') + 30 + 1
