"""End-to-end tests of the one trainer on the real digits data (tiny step counts)."""

import json
import os
import subprocess
import sys

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

from configs import default
from data import digits, pipeline
from train import trainer
from train.metrics_writer import read_metrics

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def small_config(**overrides):
  config = default.get_config()
  config.num_train_steps = 60
  config.log_every_steps = 20
  config.eval_every_steps = 30
  config.checkpoint_every_steps = 30
  config.warmup_steps = 5
  for key, value in overrides.items():
    config[key] = value
  return config


def restore_params(workdir, step):
  manager = ocp.CheckpointManager(os.path.join(workdir, 'checkpoints'))
  restored = manager.restore(step, args=ocp.args.StandardRestore())
  manager.close()
  return restored['params'], restored


def test_trains_to_high_accuracy_and_writes_metrics(tmp_path):
  config = small_config(num_train_steps=400, eval_every_steps=200, checkpoint_every_steps=200)
  final = trainer.train_and_evaluate(config, str(tmp_path))
  assert final['eval_accuracy'] > 0.93  # chance is 0.1; the full default run reaches ~0.99
  records = read_metrics(str(tmp_path))
  eval_steps = [r['step'] for r in records if 'eval_accuracy' in r]
  assert eval_steps == [200, 400]
  train = [r for r in records if 'train_loss' in r]
  assert [r['step'] for r in train] == list(range(20, 401, 20))
  assert train[-1]['train_loss'] < train[0]['train_loss'] / 4
  assert json.loads((tmp_path / 'config.json').read_text())['model'] == 'convnet'

  from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
  events = EventAccumulator(str(tmp_path / 'tensorboard'))
  events.Reload()
  scalars = events.Scalars('eval_accuracy')
  assert [s.step for s in scalars] == [200, 400]
  assert scalars[-1].value == pytest.approx(final['eval_accuracy'])


def test_resumed_run_is_identical_to_uninterrupted(tmp_path):
  straight, interrupted = str(tmp_path / 'straight'), str(tmp_path / 'interrupted')
  trainer.train_and_evaluate(small_config(), straight)
  trainer.train_and_evaluate(small_config(), interrupted)
  # Lose everything after step 30, as if the process had been killed there, and resume.
  ocp_dir = os.path.join(interrupted, 'checkpoints')
  import shutil
  shutil.rmtree(os.path.join(ocp_dir, '60'))
  trainer.train_and_evaluate(small_config(), interrupted)
  a, state_a = restore_params(straight, 60)
  b, state_b = restore_params(interrupted, 60)
  for x, y in zip(jax.tree.leaves(state_a), jax.tree.leaves(state_b)):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
  # ...and the parameters really moved between the two checkpoints.
  c, _ = restore_params(straight, 30)
  assert any(not np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(c)))


def test_every_parameter_changes_after_training(tmp_path):
  trainer.train_and_evaluate(small_config(num_train_steps=2, checkpoint_every_steps=1,
                                          eval_every_steps=2, log_every_steps=1), str(tmp_path))
  before, _ = restore_params(str(tmp_path), 1)
  after, _ = restore_params(str(tmp_path), 2)
  for path, x in jax.tree_util.tree_leaves_with_path(before):
    y = after
    for key in path:
      y = y[key.key]
    assert not np.allclose(x, y), f'parameter {jax.tree_util.keystr(path)} did not change'


def test_evaluation_is_exact_whatever_the_batch_size(tmp_path):
  config = small_config(num_train_steps=30)
  trainer.train_and_evaluate(config, str(tmp_path))
  # Re-evaluate the checkpoint with a batch size that leaves a remainder (360 = 51 * 7 + 3) and
  # with one that divides; both must see all 360 examples once.
  results = []
  for eval_batch_size in (7, 360):
    config = small_config(num_train_steps=30, eval_batch_size=eval_batch_size)
    results.append(trainer.train_and_evaluate(config, str(tmp_path)))
  assert results[0]['eval_accuracy'] == pytest.approx(results[1]['eval_accuracy'], abs=1e-9)
  assert results[0]['eval_loss'] == pytest.approx(results[1]['eval_loss'], rel=1e-5)
  # 360 examples: accuracy is a multiple of 1/360.
  assert abs(results[0]['eval_accuracy'] * 360 - round(results[0]['eval_accuracy'] * 360)) < 1e-6


def test_training_order_is_a_function_of_seed_and_step():
  first = pipeline.train_indices(1437, 32, seed=0, step=50)
  assert np.array_equal(first, pipeline.train_indices(1437, 32, seed=0, step=50))
  assert not np.array_equal(first, pipeline.train_indices(1437, 32, seed=1, step=50))
  # One epoch visits 44 * 32 distinct examples.
  epoch = np.concatenate([pipeline.train_indices(1437, 32, 0, s) for s in range(44)])
  assert len(np.unique(epoch)) == 44 * 32


def test_eval_batches_pad_and_mask():
  train, test = digits.load_split()
  source = pipeline.ArraySource(test)
  batches = list(pipeline.eval_batches(source, 100))
  assert [len(b['label']) for b in batches] == [100, 100, 100, 100]
  assert [int(b['mask'].sum()) for b in batches] == [100, 100, 100, 60]
  labels = np.concatenate([b['label'][b['mask']] for b in batches])
  np.testing.assert_array_equal(labels, test['label'])


def test_nan_loss_stops_with_the_step_and_last_checkpoint(tmp_path):
  config = small_config(learning_rate=1e30, optimizer='sgd', momentum=0.0, log_every_steps=1,
                        checkpoint_every_steps=1000)
  with pytest.raises(FloatingPointError, match=r'NaN/Inf at step \d+; no checkpoint was saved yet'):
    trainer.train_and_evaluate(config, str(tmp_path))


def test_skip_nonfinite_updates_keeps_training(tmp_path):
  config = small_config(learning_rate=1e30, optimizer='sgd', momentum=0.0,
                        skip_nonfinite_updates=True, num_train_steps=4, log_every_steps=2)
  final = trainer.train_and_evaluate(config, str(tmp_path))
  assert final['train_nonfinite_steps'] >= 1


@pytest.mark.parametrize('key, value, message', [
    ('batch_size', 0, "'batch_size' must be positive"),
    ('learning_rate', 'fast', "'learning_rate' must be float"),
    ('batch_size', 5000, 'larger than the training split'),
    ('model', 'vgg17', "Unknown model 'vgg17'"),
    ('dataset', 'digitz', "Did you mean 'digits'"),
])
def test_bad_config_values_are_explained(tmp_path, key, value, message):
  config = small_config()
  with config.unlocked():
    del config[key]  # as a config file would write it, of any type
    config[key] = value
  with pytest.raises(ValueError, match=message):
    trainer.train_and_evaluate(config, str(tmp_path))


def _run_main(*flags, cwd=REPO):
  return subprocess.run([sys.executable, '-m', 'train.main', *flags], cwd=cwd,
                        capture_output=True, text=True, timeout=300)


def test_command_line_trains_and_resumes(tmp_path):
  flags = [f'--workdir={tmp_path}', '--config.num_train_steps=40', '--config.log_every_steps=10',
           '--config.eval_every_steps=20', '--config.checkpoint_every_steps=20']
  result = _run_main(*flags)
  assert result.returncode == 0, result.stderr
  assert 'step 40/40 (100%)' in result.stdout and 'ETA' in result.stdout
  assert 'Final: eval_accuracy' in result.stdout
  resumed = _run_main(*flags[:1], '--config.num_train_steps=60', *flags[2:])
  assert resumed.returncode == 0, resumed.stderr
  assert 'Resuming from checkpoint at step 40.' in resumed.stdout


def test_command_line_errors_are_one_line(tmp_path):
  result = _run_main(f'--workdir={tmp_path}', '--config.model=vgg17')
  assert result.returncode == 1
  assert result.stderr.strip().splitlines()[-1].startswith("error: Unknown model 'vgg17'")
  assert 'Traceback' not in result.stderr
