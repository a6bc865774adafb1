"""train.sweep: points and names, thread limits, skipping and resuming, a real sweep of the
digits config run locally and through submitit's local executor, a failing point, SIGTERM."""

import io
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from train import report
from train import sweep

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ['--config.num_train_steps=20', '--config.eval_every_steps=20',
        '--config.checkpoint_every_steps=20', '--config.log_every_steps=10',
        '--config.tensorboard_images=False']


def run_sweep(*args, **kwargs):
  return subprocess.run([sys.executable, '-m', 'train.sweep', '--config=configs/default.py',
                         *args], cwd=REPO, capture_output=True, text=True, timeout=300, **kwargs)


def test_product_points_and_names():
  points = sweep.product_points([sweep.parse_sweep_flag('learning_rate=0.01,0.1'),
                                 sweep.parse_sweep_flag('config.seed=0,1')])
  assert [p.name for p in points] == ['learning_rate=0.01,seed=0', 'learning_rate=0.01,seed=1',
                                      'learning_rate=0.1,seed=0', 'learning_rate=0.1,seed=1']
  assert points[1].overrides == (('learning_rate', '0.01'), ('seed', '1'))
  assert sweep.point_name([('data.name', 'a/b c'), ('x', '(1, 2)')]) == 'data.name=a_b_c,x=_1__2_'
  long = sweep.point_name([('k', 'v' * 300)])
  assert len(long) == 200 and long != sweep.point_name([('k', 'v' * 301)])
  for bad in ('seed', 'seed=', 'seed=1,,2', 'seed=1,1', '1x=2'):
    with pytest.raises(ValueError):
      sweep.parse_sweep_flag(bad)
  with pytest.raises(ValueError, match='twice'):
    sweep.product_points([('seed', ['0']), ('seed', ['1'])])
  with pytest.raises(ValueError, match='same name: name=a_b'):
    sweep.product_points([('name', ['a b', 'a/b'])])


def test_get_sweep_of_a_config_file(tmp_path):
  path = tmp_path / 'cfg.py'
  path.write_text('def get_config(variant=""):\n  pass\n'
                  'def get_sweep(variant=""):\n'
                  '  return [dict(learning_rate=lr, seed=s, model_kwargs={"x": 1}.get("x"),\n'
                  '               decay_boundaries=(0.5, 0.75)) for lr in (0.1,) for s in (0, 1)]\n')
  points = sweep.config_sweep(f'{path}:small')
  assert [p.overrides for p in points] == [
      (('learning_rate', '0.1'), ('seed', str(s)), ('model_kwargs', '1'),
       ('decay_boundaries', '(0.5, 0.75)')) for s in (0, 1)]
  assert sweep.config_sweep(os.path.join(REPO, 'configs', 'default.py')) is None
  with pytest.raises(ValueError, match='same name'):
    sweep.dict_points([{'seed': 1}, {'seed': 1}], 'x')


def test_a_finished_run_is_recognised_through_another_path_to_its_root(tmp_path):
  """The recorded command is compared without --workdir: a moved or linked sweep root is not
  trained again, while a changed override still is."""
  workdir = tmp_path / 'moved' / 'seed=0'
  workdir.mkdir(parents=True)
  (workdir / 'run.json').write_text(json.dumps({'finished': True, 'step': 20}))
  old = ['-m', 'train.main', '--config=configs/default.py', '--workdir=/old/root/seed=0',
         '--config.seed=0']
  (workdir / sweep.RECORD).write_text(json.dumps({'command': old, 'overrides': {'seed': '0'}}))
  now = [*old[:3], f'--workdir={workdir}', '--config.seed=0']
  assert sweep.is_finished(str(workdir), now)
  assert sweep.is_finished(str(workdir), [*old[:3], '--workdir', str(workdir), '--config.seed=0'])
  assert not sweep.is_finished(str(workdir), [*now[:-1], '--config.seed=1'])
  (workdir / 'run.json').write_text(json.dumps({'finished': False, 'step': 10}))
  assert not sweep.is_finished(str(workdir), now)


def test_cores_and_thread_limits():
  assert sweep.core_shares([0, 1, 2, 3], 2) == [[0, 1], [2, 3]]
  assert sweep.core_shares([3, 1], 3) == [[1], [3], [1]]
  assert sweep.core_shares(range(5), 2) == [[0, 1], [2, 3]]
  env = sweep.thread_env(1, {'XLA_FLAGS': '--xla_foo=1'})
  assert env['XLA_FLAGS'] == ('--xla_foo=1 --xla_cpu_multi_thread_eigen=false '
                              'intra_op_parallelism_threads=1')
  assert env['OMP_NUM_THREADS'] == env['MKL_NUM_THREADS'] == env['OPENBLAS_NUM_THREADS'] == '1'
  assert 'XLA_FLAGS' not in sweep.thread_env(4, {})


def test_non_tty_display_prints_a_line_per_state_change(tmp_path):
  runs = [sweep.Run(sweep.Point(f'seed={s}', (('seed', str(s)),)), str(tmp_path), [])
          for s in (0, 1)]
  out = io.StringIO()
  display = sweep.Display(runs, out)
  display.update()
  runs[0].state, runs[0].step, runs[0].total, runs[0].metric = 'running', 5, 20, 'train_loss 1.5'
  display.update()
  display.update()
  assert out.getvalue().splitlines() == [
      '[1/2] seed=0  queued', '[2/2] seed=1  queued',
      '[1/2] seed=0  running  step 5/20  train_loss 1.5']


def test_local_sweep_two_learning_rates_two_seeds(tmp_path):
  root = str(tmp_path / 'sweep')
  result = run_sweep(f'--workdir={root}', '--sweep=learning_rate=0.002,0.001',
                     '--sweep=seed=0,1', '--parallel=2', *TINY)
  assert result.returncode == 0, result.stderr + result.stdout
  names = ['learning_rate=0.002,seed=0', 'learning_rate=0.002,seed=1',
           'learning_rate=0.001,seed=0', 'learning_rate=0.001,seed=1']
  assert sorted(os.listdir(root)) == sorted(names)
  for name in names:
    workdir = os.path.join(root, name)
    with open(os.path.join(workdir, 'config.json')) as f:
      saved = json.load(f)
    lr, seed = name.split(',')
    assert (saved['learning_rate'], saved['seed']) == (float(lr.split('=')[1]), int(seed[-1]))
    assert saved['num_train_steps'] == 20
    with open(os.path.join(workdir, 'run.json')) as f:
      assert json.load(f)['finished'] is True
    with open(os.path.join(workdir, sweep.STDOUT)) as f:
      assert 'step 20/20' in f.read()
    assert f'] {name}  done  step 20/20  eval_accuracy ' in result.stdout
  assert 'Sweep: 4 runs: 4 done.' in result.stdout
  groups = report.collect([root])
  assert [(g.label, len(g.finished)) for g in groups] == [  # in the order of the names
      ({'learning_rate': 0.001}, 2), ({'learning_rate': 0.002}, 2)]


def test_submitit_local_executor_and_a_failing_point(tmp_path):
  pytest.importorskip('submitit')
  root = str(tmp_path / 'sweep')
  result = run_sweep(f'--workdir={root}', '--sweep=learning_rate=oops,0.002',
                     '--executor=submitit_local', *TINY)
  assert result.returncode == 1, result.stderr + result.stdout
  assert 'Sweep: 2 runs: 1 done, 1 failed.' in result.stdout
  assert ("failed: learning_rate=oops: error: --config.learning_rate=oops: could not convert "
          "string to float: 'oops'") in result.stdout
  with open(os.path.join(root, 'learning_rate=0.002', 'run.json')) as f:
    assert json.load(f)['finished'] is True
  assert not os.path.exists(os.path.join(root, 'learning_rate=oops', 'config.json'))


def _mtimes(workdir):
  return {name: os.stat(os.path.join(workdir, name)).st_mtime_ns
          for name in ('metrics.jsonl', 'run.json', 'checkpoints', sweep.STDOUT)}


def test_sigterm_stops_the_sweep_and_a_rerun_skips_finished_and_resumes(tmp_path):
  # Two points run at once: a short one that finishes, a long one stopped after its first
  # checkpoint.
  root = str(tmp_path / 'sweep')
  args = [f'--workdir={root}', '--sweep=num_train_steps=20,1000', '--parallel=2',
          '--config.checkpoint_every_steps=100', '--config.eval_every_steps=1000',
          '--config.log_every_steps=100', '--config.tensorboard_images=False']
  process = subprocess.Popen([sys.executable, '-m', 'train.sweep', '--config=configs/default.py',
                              *args], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
  short, long = os.path.join(root, 'num_train_steps=20'), os.path.join(root, 'num_train_steps=1000')
  deadline = time.monotonic() + 240
  while time.monotonic() < deadline and process.poll() is None:
    checkpoints = os.path.join(long, 'checkpoints')
    info = os.path.join(short, 'run.json')
    if (os.path.isdir(checkpoints) and any(n.isdigit() for n in os.listdir(checkpoints))
        and os.path.exists(info) and '"finished": true' in open(info).read()):
      break
    time.sleep(0.05)
  process.send_signal(signal.SIGTERM)
  out, err = process.communicate(timeout=120)
  assert process.returncode == 143, out + err
  assert 'SIGTERM received: stopped; run the same command to resume.' in out
  assert 'num_train_steps=1000  stopped' in out and 'num_train_steps=20  done' in out
  with open(os.path.join(long, 'run.json')) as f:
    stopped = json.load(f)
  assert stopped['finished'] is False and 0 < stopped['step'] < 1000
  before = _mtimes(short)

  result = run_sweep(*args)
  assert result.returncode == 0, result.stderr + result.stdout
  assert '[1/2] num_train_steps=20  skipped  step 20/20' in result.stdout
  assert 'Sweep: 2 runs: 1 done, 1 skipped.' in result.stdout
  assert _mtimes(short) == before  # not retrained, not even re-evaluated
  with open(os.path.join(long, sweep.STDOUT)) as f:
    assert f'Resuming from checkpoint at step {stopped["step"]}.' in f.read()
  with open(os.path.join(long, 'run.json')) as f:
    assert json.load(f)['finished'] is True
