"""`python -m train.evaluate`: re-evaluating a workdir reproduces training's numbers, and more."""

import json

import numpy as np
import pytest

from configs import default, reversal_seq2seq
from train import evaluate, trainer


@pytest.fixture(scope='module')
def reversal_run(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp('reversal'))
  config = reversal_seq2seq.get_config()
  config.data.update({'max_length': 8, 'train_size': 2000, 'test_size': 90})
  config.update({'eval_batch_size': 32, 'batch_size': 32, 'num_train_steps': 150,
                 'log_every_steps': 50, 'eval_every_steps': 150, 'checkpoint_every_steps': 150,
                 'warmup_steps': 10})
  config.model_kwargs.update({'embed_dim': 16, 'hidden_size': 64})
  return workdir, trainer.train_and_evaluate(config, workdir)


def test_seq2seq_breakdown_matches_training_metrics(reversal_run, tmp_path, capsys):
  workdir, final = reversal_run
  out = tmp_path / 'eval.json'
  assert evaluate.main([f'--workdir={workdir}', '--beam_size=3', '--bucket=3',
                        f'--json={out}', '--batch_size=7']) == 0
  result = json.loads(out.read_text())
  assert result['step'] == 150
  for name, value in result['metrics'].items():
    assert value == pytest.approx(final[f'eval_{name}'], rel=1e-5, abs=1e-7)
  assert result['greedy_exact_match'] == pytest.approx(final['eval_exact_match'], abs=1e-9)
  assert 0 < final['eval_exact_match'] < 1  # a partly trained model: the breakdown is informative
  rows = result['by_length']
  assert [r['lengths'] for r in rows] == [[1, 3], [4, 6], [7, 9]]
  assert sum(r['count'] for r in rows) == 90
  weighted = sum(r['count'] * r['greedy_exact_match'] for r in rows) / 90
  assert weighted == pytest.approx(result['greedy_exact_match'])
  assert 0 <= result['beam_exact_match'] <= 1 and all('beam_exact_match' in r for r in rows)
  printed = capsys.readouterr().out
  assert 'greedy exact' in printed and 'beam 3 exact' in printed


def test_bucket_table_by_hand():
  results = {'lengths': np.array([1, 2, 2, 5, 9, 9]),
             'greedy': np.array([True, False, True, True, False, False]),
             'beam': np.array([True, True, True, True, True, False])}
  rows = evaluate.bucket_table(results, width=4)
  assert rows == [{'lengths': [1, 4], 'count': 3, 'greedy_exact_match': 2 / 3,
                   'beam_exact_match': 1.0},
                  {'lengths': [5, 8], 'count': 1, 'greedy_exact_match': 1.0,
                   'beam_exact_match': 1.0},
                  {'lengths': [9, 12], 'count': 2, 'greedy_exact_match': 0.0,
                   'beam_exact_match': 0.5}]


def test_classifier_metrics_match_training(tmp_path):
  config = default.get_config()
  config.num_train_steps = config.eval_every_steps = config.checkpoint_every_steps = 40
  final = trainer.train_and_evaluate(config, str(tmp_path))
  out = tmp_path / 'eval.json'
  assert evaluate.main([f'--workdir={tmp_path}', f'--json={out}']) == 0
  metrics = json.loads(out.read_text())['metrics']
  assert metrics['accuracy'] == pytest.approx(final['eval_accuracy'], abs=1e-9)
  assert metrics['loss'] == pytest.approx(final['eval_loss'], rel=1e-5)
  assert 'by_length' not in json.loads(out.read_text())


def test_errors_are_one_line(tmp_path, capsys):
  assert evaluate.main([f'--workdir={tmp_path / "missing"}']) == 2
  assert evaluate.main([f'--workdir={tmp_path}']) == 2
  (tmp_path / 'config.json').write_text('{"model": "convnet", "dataset": "digits"}')
  assert evaluate.main([f'--workdir={tmp_path}']) == 2
  errors = capsys.readouterr().err.strip().splitlines()
  assert errors == [f'error: workdir {tmp_path / "missing"} does not exist',
                    f'error: {tmp_path / "config.json"} not found (is {tmp_path} a training '
                    'workdir?); nothing to evaluate',
                    f'error: {tmp_path} has no checkpoint; nothing to evaluate']


def test_a_damaged_newest_checkpoint_falls_back_read_only(tmp_path, capsys):
  """Without --step the newest intact checkpoint is evaluated; the damaged one is reported and
  left where it is (evaluation never changes a workdir)."""
  import os

  from train.metrics_writer import read_metrics
  config = default.get_config()
  config.update({'num_train_steps': 20, 'log_every_steps': 10, 'eval_every_steps': 10,
                 'checkpoint_every_steps': 10})
  trainer.train_and_evaluate(config, str(tmp_path))
  newest = tmp_path / 'checkpoints' / '20'
  for directory, _, files in os.walk(newest):
    for name in files:
      with open(os.path.join(directory, name), 'wb') as f:
        f.write(b'garbage')
  before = sorted(os.listdir(tmp_path / 'checkpoints'))
  assert evaluate.main([f'--workdir={tmp_path}']) == 0
  out, err = capsys.readouterr()
  assert f'warning: checkpoint {newest} cannot be restored' in err
  assert 'checkpoint step 10,' in out
  logged = [row for row in read_metrics(str(tmp_path)) if row['step'] == 10 and 'eval_loss' in row]
  assert f'eval_loss {logged[0]["eval_loss"]:.4f}' in out
  assert sorted(os.listdir(tmp_path / 'checkpoints')) == before
  assert not (tmp_path / 'damaged_checkpoints').exists()
