"""Mixed precision (`config.compute_dtype`): bf16 compute, float32 parameters, loss and metrics."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import default, reversal_seq2seq
from data import digits
from train import evaluate, experiment, optim, platform, trainer
from train.metrics_writer import read_metrics
from train import tasks as tasks_lib
import models


def _digits_state_and_batch(config):
  dataset = digits.create(digits.Options(**config.data))
  task = tasks_lib.create('classification')
  model = models.create(config.model, num_classes=10)
  batch = dataset.train.fetch(np.arange(config.batch_size), None)
  state, _ = experiment.create_train_state(config, model, optim.create_optimizer(config), batch,
                                        task, platform.make_mesh())
  return state, {k: jnp.asarray(v) for k, v in batch.items()}, task


def _dtypes_of(jaxpr, primitive):
  return {str(v.aval.dtype) for eqn in jaxpr.eqns if eqn.primitive.name == primitive
          for v in eqn.outvars}


def test_bfloat16_step_computes_in_bf16_and_keeps_float32_state():
  config = default.get_config()
  state, batch, task = _digits_state_and_batch(config)
  step32 = jax.jit(experiment.make_train_step(task))
  step16 = jax.jit(experiment.make_train_step(task, dtype=jnp.bfloat16))

  jaxpr = jax.make_jaxpr(experiment.make_train_step(task, dtype=jnp.bfloat16))(state, batch).jaxpr
  inner = [e.params['jaxpr'].jaxpr for e in jaxpr.eqns if 'jaxpr' in e.params]
  found = set()
  for sub in [jaxpr] + inner:
    found |= _dtypes_of(sub, 'dot_general') | _dtypes_of(sub, 'conv_general_dilated')
  assert 'bfloat16' in found, found

  new32, sums32, _ = step32(state, batch)
  new16, sums16, _ = step16(state, batch)
  for leaf in jax.tree.leaves((new16.params, new16.opt_state, new16.model_state)):
    if jnp.issubdtype(leaf.dtype, jnp.floating):
      assert leaf.dtype == jnp.float32
  assert sums16['loss'].dtype == jnp.float32
  # Same loss to bf16 precision (8 bits of mantissa), but not bit-equal: bf16 really computed it.
  loss32, loss16 = float(sums32['loss']), float(sums16['loss'])
  assert loss16 == pytest.approx(loss32, rel=3e-2)
  assert loss16 != loss32
  # The updates point the same way as float32's.
  for a, b, old in zip(jax.tree.leaves(new32.params), jax.tree.leaves(new16.params),
                       jax.tree.leaves(state.params)):
    d32, d16 = np.ravel(a - old), np.ravel(b - old)
    if np.linalg.norm(d32) > 0:
      cosine = d32 @ d16 / (np.linalg.norm(d32) * np.linalg.norm(d16))
      assert cosine > 0.9


def test_bfloat16_trains_the_convnet(tmp_path):
  config = default.get_config()
  config.compute_dtype = 'bfloat16'
  config.num_train_steps = 300
  config.eval_every_steps = config.checkpoint_every_steps = 300
  final = trainer.train_and_evaluate(config, str(tmp_path))
  assert final['eval_accuracy'] > 0.9  # chance is 0.1
  # Re-evaluating the bf16 run (the experiment API, as train.evaluate does) gives exactly the
  # numbers training logged: the same compiled eval step, in bf16, on the same mesh.
  logged = [row for row in read_metrics(str(tmp_path)) if 'eval_loss' in row][-1]
  again = experiment.restore(str(tmp_path)).evaluate()
  assert {f'eval_{k}': v for k, v in again.items()} == {k: v for k, v in logged.items()
                                                        if k != 'step'}
  assert evaluate.evaluate(_Args(str(tmp_path)))['metrics'] == again  # the command
  # In float32 the same checkpoint gives other numbers: the check above can tell them apart.
  float32 = experiment.restore(str(tmp_path), config_overrides={'compute_dtype': 'float32'})
  assert float32.evaluate()['loss'] != again['loss']


class _Args:
  def __init__(self, workdir):
    self.workdir, self.bucket, self.batch_size, self.json, self.beam_size = workdir, 10, None, None, 0
    self.alpha = 0.6


def test_bfloat16_trains_an_lstm_encoder_decoder(tmp_path):
  config = reversal_seq2seq.get_config()
  config.data.update({'max_length': 5, 'train_size': 2000, 'test_size': 64})
  config.update({'compute_dtype': 'bfloat16', 'eval_batch_size': 64, 'batch_size': 32,
                 'num_train_steps': 200, 'log_every_steps': 50, 'eval_every_steps': 200,
                 'checkpoint_every_steps': 200, 'warmup_steps': 10})
  config.model_kwargs.update({'embed_dim': 16, 'hidden_size': 64})
  final = trainer.train_and_evaluate(config, str(tmp_path))
  # Teacher-forced next-character accuracy; chance over the alphabet is ~0.1.
  assert final['eval_accuracy'] > 0.6


def test_unknown_compute_dtype_is_explained(tmp_path):
  config = default.get_config()
  config.compute_dtype = 'float8'
  with pytest.raises(ValueError, match='compute_dtype must be one of float32, bfloat16'):
    trainer.train_and_evaluate(config, str(tmp_path))
