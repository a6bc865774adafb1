"""train.report on hand-made workdirs: grouping by seed, statistics against NumPy, unfinished and
failed runs kept apart, the output formats."""

import csv
import io
import json
import os

import numpy as np
import pytest

from train import report


def make_workdir(root, name, config, rows, finished=True, stderr=None, wall=10.0):
  workdir = os.path.join(root, name)
  os.makedirs(workdir)
  if config is not None:
    with open(os.path.join(workdir, 'config.json'), 'w') as f:
      json.dump(config, f)
  with open(os.path.join(workdir, 'metrics.jsonl'), 'w') as f:
    for row in rows:
      f.write(json.dumps(row) + '\n')
  if finished is not None:
    with open(os.path.join(workdir, 'run.json'), 'w') as f:
      json.dump({'platform': 'cpu', 'device_kind': 'cpu', 'device_count': 1,
                 'host_cpu': 'Test CPU', 'wall_seconds': wall, 'finished': finished}, f)
  if stderr is not None:
    with open(os.path.join(workdir, 'stderr.log'), 'w') as f:
      f.write(stderr)
  return workdir


def config(lr, seed, steps=100):
  return {'learning_rate': lr, 'seed': seed, 'num_train_steps': steps, 'model': 'convnet',
          'model_kwargs': {'dropout': 0.1}}


def rows(accuracies, losses):
  """Eval rows at steps 50, 100, ... with train rows between."""
  out = []
  for i, (acc, loss) in enumerate(zip(accuracies, losses)):
    out.append({'step': 50 * (i + 1), 'train_loss': loss + 0.1})
    out.append({'step': 50 * (i + 1), 'eval_accuracy': acc, 'eval_loss': loss})
  return out


@pytest.fixture
def sweep_root(tmp_path):
  """lr 0.1 with seeds 0-2 and lr 0.2 with seeds 0-1; curves of two evals each."""
  rng = np.random.default_rng(0)
  final = {}
  for lr, seeds in ((0.1, 3), (0.2, 2)):
    for seed in range(seeds):
      acc = rng.uniform(0.5, 1.0, size=2)
      loss = rng.uniform(0.1, 1.0, size=2)
      make_workdir(tmp_path, f'lr={lr},seed={seed}', config(lr, seed), rows(acc, loss),
                   wall=10.0 + seed)
      final[(lr, seed)] = (acc, loss)
  return tmp_path, final


def test_a_key_only_another_experiment_has_does_not_label_a_group(tmp_path):
  lstm = {**config(0.1, 0), 'model': 'lstm', 'model_kwargs': {'hidden_size': 64}}
  make_workdir(tmp_path, 'convnet', config(0.1, 0), rows([0.9], [0.3]))
  make_workdir(tmp_path, 'lstm', lstm, rows([0.8], [0.4]))
  groups = report.collect([str(tmp_path)])
  assert [g.label for g in groups] == [{'model': 'convnet'}, {'model': 'lstm'}]
  assert report.label_text(groups[1]) == 'model=lstm'


def test_groups_of_different_experiments_are_labelled_by_experiment_then_their_own_keys(tmp_path):
  """Two experiments (different dataset and model), each a sweep: an experiment's label has the
  keys that tell experiments apart, then the keys its own sweep varies (None included), never the
  settings in which only the two config files differ."""
  def lstm(lr, dropout, seed):
    return {'dataset': 'movie_reviews', 'model': 'lstm', 'learning_rate': lr, 'seed': seed,
            'num_train_steps': 50, 'model_kwargs': {'hidden_size': 64, 'dropout': dropout}}
  def cnn(lr, seed):
    return {**config(lr, seed), 'dataset': 'digits', 'data': {'augment': True}}
  for seed in (0, 1):
    make_workdir(tmp_path, f'cnn/lr=0.1,seed={seed}', cnn(0.1, seed), rows([0.9], [0.3]))
    make_workdir(tmp_path, f'cnn/lr=0.2,seed={seed}', cnn(0.2, seed), rows([0.8], [0.4]))
  make_workdir(tmp_path, 'lstm/a', lstm(0.01, None, 0), rows([0.7], [0.5]))
  make_workdir(tmp_path, 'lstm/b', lstm(0.01, 0.5, 0), rows([0.75], [0.5]))
  groups = report.collect([str(tmp_path)])
  assert [(g.label, len(g.runs)) for g in groups] == [
      ({'dataset': 'digits', 'model': 'convnet', 'learning_rate': 0.1}, 2),
      ({'dataset': 'digits', 'model': 'convnet', 'learning_rate': 0.2}, 2),
      ({'dataset': 'movie_reviews', 'model': 'lstm', 'model_kwargs.dropout': None}, 1),
      ({'dataset': 'movie_reviews', 'model': 'lstm', 'model_kwargs.dropout': 0.5}, 1)]
  assert report.label_text(groups[2]) == (
      'dataset=movie_reviews, model=lstm, model_kwargs.dropout=None')


def test_groups_differ_only_in_seed_and_stats_match_numpy(sweep_root):
  root, final = sweep_root
  groups = report.collect([str(root)])
  assert [g.label for g in groups] == [{'learning_rate': 0.1}, {'learning_rate': 0.2}]
  for group, lr in zip(groups, (0.1, 0.2)):
    seeds = sorted(s for (l, s) in final if l == lr)
    acc = np.array([final[(lr, s)][0][-1] for s in seeds])
    best_acc = np.array([final[(lr, s)][0].max() for s in seeds])
    best_loss = np.array([final[(lr, s)][1].min() for s in seeds])
    assert sorted(group.seeds()) == seeds
    for name, values in (('eval_accuracy', acc), ('best_eval_accuracy', best_acc),
                         ('best_eval_loss', best_loss)):
      stats = group.stats(name)
      assert stats['n'] == len(seeds)
      np.testing.assert_allclose(stats['mean'], values.mean())
      np.testing.assert_allclose(stats['std'], values.std(ddof=1))
      np.testing.assert_allclose([stats['min'], stats['max']], [values.min(), values.max()])
    wall = group.wall_seconds()
    np.testing.assert_allclose(wall['mean'], np.mean([10.0 + s for s in seeds]))
    assert group.steps() == [100]
    assert group.hardware() == ['1x CPU (Test CPU)']  # no host_cores recorded


def test_single_run_has_no_std_and_the_table_shows_one_value(tmp_path):
  make_workdir(tmp_path, 'a', config(0.1, 0), rows([0.75], [0.5]))
  groups = report.collect([str(tmp_path)])
  assert groups[0].stats('eval_accuracy') == {'mean': 0.75, 'std': None, 'min': 0.75,
                                              'max': 0.75, 'n': 1}
  text = report.markdown(groups, 'eval_accuracy')
  assert '| (all runs) | 1 | 0.75 | 0.75 |' in text
  assert '±' not in text


def test_unfinished_and_failed_runs_are_listed_not_averaged(tmp_path):
  make_workdir(tmp_path, 'seed=0', config(0.1, 0), rows([0.9, 0.8], [0.3, 0.4]))
  make_workdir(tmp_path, 'seed=1', config(0.1, 1), rows([0.1], [2.0]), finished=False)
  make_workdir(tmp_path, 'seed=2', config(0.1, 2), rows([0.2], [2.0]), finished=False,
               stderr='step 50/100\nerror: Loss or gradients became NaN/Inf at step 51\n')
  # Failed before training: no config.json, only the sweep's record and its stderr.
  failed = os.path.join(tmp_path, 'seed=3')
  os.makedirs(failed)
  with open(os.path.join(failed, 'sweep.json'), 'w') as f:
    json.dump({'command': [], 'overrides': {'learning_rate': 'oops', 'seed': '3'}}, f)
  with open(os.path.join(failed, 'stderr.log'), 'w') as f:
    f.write("error: --config.learning_rate=oops: could not convert string to float: 'oops'\n")

  groups = report.collect([str(tmp_path)])
  states = {os.path.basename(r.workdir): r.state for g in groups for r in g.runs}
  assert states == {'seed=0': 'finished', 'seed=1': 'unfinished', 'seed=2': 'failed',
                    'seed=3': 'failed'}
  main = groups[0]
  assert main.stats('eval_accuracy') == {'mean': 0.8, 'std': None, 'min': 0.8, 'max': 0.8,
                                         'n': 1}
  assert main.stats('best_eval_accuracy')['mean'] == 0.9
  text = report.markdown(groups)
  assert 'Unfinished runs (not averaged):' in text and 'seed=1: step 50/100' in text
  assert 'seed=2: step 50/100: error: Loss or gradients became NaN/Inf at step 51' in text
  assert "seed=3: step 0: error: --config.learning_rate=oops" in text
  as_json = report.to_json(groups)
  assert as_json[0]['n'] == 1 and as_json[0]['unfinished'] == [os.path.join(tmp_path, 'seed=1')]
  assert [f['workdir'] for f in as_json[0]['failed']] == [os.path.join(tmp_path, 'seed=2')]
  assert as_json[1]['n'] == 0 and as_json[1]['group'] == {'learning_rate': 'oops'}


def test_workdir_without_run_json_is_finished_by_its_final_eval_row(tmp_path):
  make_workdir(tmp_path, 'done', config(0.1, 0), rows([0.5, 0.6], [1.0, 0.9]), finished=None)
  make_workdir(tmp_path, 'half', config(0.1, 1), rows([0.5], [1.0]), finished=None)
  states = {os.path.basename(r.workdir): r.state for g in report.collect([str(tmp_path)])
            for r in g.runs}
  assert states == {'done': 'finished', 'half': 'unfinished'}


def test_command_json_csv_and_plot(sweep_root, capsys, tmp_path_factory):
  root, final = sweep_root
  assert report.main([str(root), '--format=json']) == 0
  groups = json.loads(capsys.readouterr().out)
  assert [g['n'] for g in groups] == [3, 2]
  acc = np.array([final[(0.2, s)][0][-1] for s in range(2)])
  stats = groups[1]['metrics']['eval_accuracy']
  np.testing.assert_allclose([stats['mean'], stats['std'], stats['min'], stats['max']],
                             [acc.mean(), acc.std(ddof=1), acc.min(), acc.max()])
  assert sorted(groups[1]['workdirs']) == [os.path.join(root, f'lr=0.2,seed={s}') for s in (0, 1)]

  plot = os.path.join(tmp_path_factory.mktemp('plot'), 'curves.png')
  assert report.main([str(root), '--format=csv', '--metric=eval_loss', f'--plot={plot}']) == 0
  table = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
  assert [row['group'] for row in table] == ['learning_rate=0.1', 'learning_rate=0.2']
  loss = np.array([final[(0.1, s)][1][-1] for s in range(3)])
  np.testing.assert_allclose(float(table[0]['eval_loss_std']), loss.std(ddof=1))
  with open(plot, 'rb') as f:
    assert f.read(8) == b'\x89PNG\r\n\x1a\n'


def test_missing_root_is_one_line_error(tmp_path, capsys):
  assert report.main([str(tmp_path / 'nope')]) == 1
  assert capsys.readouterr().err.strip() == f'error: {tmp_path / "nope"} is not a directory'
