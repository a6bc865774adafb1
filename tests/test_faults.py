"""Nothing is lost: damaged checkpoints cost only themselves, one run owns a workdir, and the
metrics agree with the checkpoints after a resume. Each case runs `python -m train.main` in
subprocesses on real files and compares with one uninterrupted reference run."""

import errno
import json
import os
import shutil
import signal
import time

import pytest

from test_robustness import assert_same_state, final_state, run_main, start_main
from test_robustness import wait_for_progress
from train import metrics_writer
from train import workdir as workdir_lib

STEPS = 300
CHECKPOINTS = [str(step) for step in range(25, STEPS + 1, 25)]
FLAGS = [f'--config.num_train_steps={STEPS}', '--config.checkpoint_every_steps=25',
         '--config.keep_checkpoints=20',
         '--config.log_every_steps=10', '--config.eval_every_steps=50',
         '--config.tensorboard_images=False']


def rows(workdir):
  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    return [json.loads(line) for line in f]


def eval_rows(workdir):
  return [r for r in rows(workdir) if any(k.startswith('eval_') for k in r)]


def logged_steps(workdir):
  """(step, kind) of every row, kind 'train' or 'eval'."""
  return sorted((r['step'], 'eval' if 'eval_loss' in r else 'train') for r in rows(workdir))


@pytest.fixture(scope='module')
def reference(tmp_path_factory):
  """An uninterrupted run: checkpoints every 25 steps, 25 to 300."""
  workdir = str(tmp_path_factory.mktemp('reference'))
  result = run_main(f'--workdir={workdir}', *FLAGS)
  assert result.returncode == 0, result.stderr
  assert sorted(os.listdir(os.path.join(workdir, 'checkpoints')), key=int) == CHECKPOINTS
  return workdir


def copy_of(reference, tmp_path):
  workdir = str(tmp_path / 'run')
  shutil.copytree(reference, workdir, ignore=shutil.ignore_patterns('.lock'))
  return workdir


def files_of(path):
  return [os.path.join(d, f) for d, _, fs in os.walk(path) for f in fs]


def _empty(path):
  for entry in os.listdir(path):
    shutil.rmtree(os.path.join(path, entry), ignore_errors=True)
    if os.path.exists(os.path.join(path, entry)):
      os.remove(os.path.join(path, entry))


def _truncate_largest(path):
  with open(max(files_of(path), key=os.path.getsize), 'r+b') as f:
    f.truncate(64)


def _truncate_all(path):
  for name in files_of(path):
    os.truncate(name, 0)


def _garbage(path):
  for i, name in enumerate(files_of(path)):
    with open(name, 'wb') as f:
      f.write(bytes((i * 37 + k * 11) % 256 for k in range(100)))


def _only_metadata(path):
  for entry in os.listdir(path):
    if entry != '_CHECKPOINT_METADATA':
      full = os.path.join(path, entry)
      shutil.rmtree(full) if os.path.isdir(full) else os.remove(full)


def _not_a_checkpoint(path):
  shutil.rmtree(path)
  os.makedirs(os.path.join(path, 'notes'))
  with open(os.path.join(path, 'notes', 'README'), 'w') as f:
    f.write('not a checkpoint\n')


def _a_file(path):
  shutil.rmtree(path)
  with open(path, 'w') as f:
    f.write('300\n')


def _leftover_of_a_save(path):
  """What a save killed before its rename leaves: a temporary directory, no step directory."""
  leftover = f'{path}.orbax-checkpoint-tmp-1764000000'
  os.rename(path, leftover)
  _truncate_largest(leftover)


DAMAGE = {
    'emptied': _empty,
    'subdirectory deleted': lambda path: shutil.rmtree(os.path.join(path, 'default')),
    'only its metadata file left': _only_metadata,
    'largest file truncated': _truncate_largest,
    'every file truncated to 0 bytes': _truncate_all,
    'garbage written over every file': _garbage,
    'a directory that is no checkpoint': _not_a_checkpoint,
    'a file named like a step': _a_file,
    'leftover of an interrupted save': _leftover_of_a_save,
}


def test_damaged_checkpoints_cost_only_themselves(tmp_path, reference):
  """Every kind of damage at once, one per checkpoint 100..300, newest first in the table's order:
  resume tries each, moves aside exactly the damaged ones, and resumes from intact step 75."""
  workdir = copy_of(reference, tmp_path)
  checkpoints = os.path.join(workdir, 'checkpoints')
  damaged = dict(zip(reversed(CHECKPOINTS), DAMAGE))  # step -> kind, 300 down to 100
  for step, kind in damaged.items():
    DAMAGE[kind](os.path.join(checkpoints, step))
  result = run_main(f'--workdir={workdir}', *FLAGS)
  assert result.returncode == 0, result.stderr
  warnings = [line for line in result.stderr.splitlines() if line.startswith('warning:')]
  expected = [f'warning: checkpoint {checkpoints}/{step} ' for step, kind in damaged.items()
              if kind != 'leftover of an interrupted save']
  assert len(warnings) == len(expected), result.stderr
  for line, start in zip(sorted(warnings), sorted(expected)):
    assert line.startswith(start) and 'moved it to' in line, (line, start)
  assert 'Traceback' not in result.stderr and 'E1' not in result.stderr  # no orbax log lines
  assert 'Resuming from checkpoint at step 75.' in result.stdout
  assert len(os.listdir(os.path.join(workdir, 'damaged_checkpoints'))) == len(expected)
  assert sorted(os.listdir(checkpoints), key=int) == CHECKPOINTS  # leftover removed, all saved
  assert_same_state(reference, workdir)  # trained again from the intact step 75
  assert eval_rows(workdir) == eval_rows(reference)


def test_a_checkpoint_of_other_shapes_is_refused_and_left_in_place(tmp_path, reference):
  """Intact checkpoints of another model are no damage: nothing is moved aside."""
  import jax
  import numpy as np
  from train import checkpoint
  workdir = copy_of(reference, tmp_path)
  step, state = final_state(workdir)
  wider = dict(state, params=jax.tree.map(lambda x: np.zeros(x.shape + (2,), x.dtype),
                                          state['params']))
  checkpointer = checkpoint.Checkpointer(workdir)
  with pytest.raises(checkpoint.CheckpointError, match=r'checkpoints/300 holds arrays of other '
                     r'shapes .* expected float32\[3, 3, 1, 32, 2\]\); it was left in place'):
    checkpointer.restore(wider)
  assert not os.path.exists(os.path.join(workdir, 'damaged_checkpoints'))
  restored, restored_step = checkpointer.restore(state)
  checkpointer.close()
  assert restored_step == step == STEPS
  for x, y in zip(jax.tree.leaves(restored), jax.tree.leaves(state)):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_a_workdir_with_no_intact_checkpoint_is_refused_on_every_run(tmp_path, reference):
  workdir = copy_of(reference, tmp_path)
  for step in CHECKPOINTS:
    shutil.rmtree(os.path.join(workdir, 'checkpoints', step, 'default'))
  for attempt in range(2):  # the second run finds only damaged_checkpoints/: still refused
    result = run_main(f'--workdir={workdir}', *FLAGS)
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len([l for l in lines if l.startswith('warning:')]) == (len(CHECKPOINTS) if attempt == 0 else 0)
    assert lines[-1].startswith(f'error: no intact checkpoint in {workdir}/checkpoints'), lines
    assert 'use a new --workdir' in lines[-1] and 'Traceback' not in result.stderr
    assert 'step 10/' not in result.stdout  # it never trained from step 0
    assert os.listdir(os.path.join(workdir, 'checkpoints')) == []
    assert len(os.listdir(os.path.join(workdir, 'damaged_checkpoints'))) == len(CHECKPOINTS)


def test_a_second_run_on_a_workdir_is_refused_and_the_first_finishes(tmp_path, reference):
  workdir = str(tmp_path / 'run')
  first = start_main(f'--workdir={workdir}', *FLAGS)
  try:
    wait_for_progress(first, 10)
    first.send_signal(signal.SIGSTOP)  # it holds the workdir, mid-training, while the second runs
    start = time.monotonic()
    second = run_main(f'--workdir={workdir}', *FLAGS, '--config.learning_rate=0.5', timeout=120)
    elapsed = time.monotonic() - start
  finally:
    first.send_signal(signal.SIGCONT)
  stdout, stderr = first.communicate(timeout=300)
  assert second.returncode == 1, second.stdout + second.stderr
  lines = second.stderr.strip().splitlines()
  assert len(lines) == 1, second.stderr
  assert lines[0].startswith(f'error: workdir {workdir} is in use by another run (host ')
  assert f'PID {first.pid}, started ' in lines[0]
  assert 'parameters) on' not in second.stdout and elapsed < 60  # refused before any work
  assert first.returncode == 0, stderr
  with open(os.path.join(workdir, 'config.json')) as f:
    assert json.load(f)['learning_rate'] != 0.5  # the second run wrote nothing
  assert_same_state(reference, workdir)
  assert eval_rows(workdir) == eval_rows(reference)


def test_sigkill_leaves_no_stale_lock_and_metrics_match_the_checkpoints(tmp_path, reference):
  workdir = str(tmp_path / 'run')
  process = start_main(f'--workdir={workdir}', *FLAGS)
  wait_for_progress(process, 160)  # rows, and an eval row at 150, after a checkpoint
  process.kill()
  process.communicate()  # also closes its pipes
  assert final_state(workdir)[0] < STEPS
  last_checkpoint = final_state(workdir)[0]
  with open(os.path.join(workdir, 'metrics.jsonl'), 'a') as f:  # surely one row to drop
    f.write(json.dumps({'step': last_checkpoint + 5, 'train_loss': 9.9}) + '\n')
  with open(os.path.join(workdir, '.lock')) as f:
    assert json.load(f)['pid'] == process.pid  # the file stays; the lock died with the process
  with open(os.path.join(workdir, 'metrics.jsonl'), 'a') as f:
    f.write('{"step": 999, "train_lo')  # a write torn by the kill
  resumed = run_main(f'--workdir={workdir}', *FLAGS)
  assert resumed.returncode == 0, resumed.stderr
  assert f'Resuming from checkpoint at step {last_checkpoint}.' in resumed.stdout
  assert 'metrics.jsonl line ' in resumed.stderr and 'not a valid metrics row' in resumed.stderr
  assert logged_steps(workdir) == logged_steps(reference)  # each step once, as uninterrupted
  assert eval_rows(workdir) == eval_rows(reference)
  assert_same_state(reference, workdir)
  train_steps = [r['step'] for r in rows(reference) if 'train_loss' in r]
  assert tensorboard_steps(workdir, 'train_loss') == train_steps  # the killed run's are purged


def tensorboard_steps(workdir, tag):
  """The steps TensorBoard shows for `tag` (after purges)."""
  from tensorboard.backend.event_processing import event_accumulator
  accumulator = event_accumulator.EventAccumulator(os.path.join(workdir, 'tensorboard'))
  accumulator.Reload()
  return [event.step for event in accumulator.Scalars(tag)]


def test_sigkill_during_a_save_then_resume_matches_the_uninterrupted_run(tmp_path, reference):
  workdir = str(tmp_path / 'run')
  checkpoints = os.path.join(workdir, 'checkpoints')
  process = start_main(f'--workdir={workdir}', *FLAGS, '--config.checkpoint_every_steps=1')
  wait_for_progress(process, 20)
  deadline = time.monotonic() + 60
  while process.poll() is None and time.monotonic() < deadline:
    if any('.orbax-checkpoint-tmp' in name for name in os.listdir(checkpoints)):
      process.kill()  # a save is in progress
      break
    time.sleep(0.002)
  process.communicate()  # also closes its pipes
  assert process.returncode == -signal.SIGKILL
  resumed = run_main(f'--workdir={workdir}', *FLAGS)
  assert resumed.returncode == 0, resumed.stderr
  assert 'Resuming from checkpoint at step' in resumed.stdout
  assert not any('.orbax-checkpoint-tmp' in name for name in os.listdir(checkpoints))
  assert_same_state(reference, workdir)
  assert eval_rows(workdir) == eval_rows(reference)


def test_torn_and_garbage_metrics_lines_are_reported_and_never_glued(tmp_path, capsys):
  workdir = str(tmp_path)
  path = os.path.join(workdir, 'metrics.jsonl')
  with open(path, 'w') as f:
    f.write('{"step": 10, "train_loss": 1.5}\n\x00\x01garbage\n{"step": 20, "train_lo')
  assert metrics_writer.read_metrics(workdir) == [{'step': 10, 'train_loss': 1.5}]
  warnings = capsys.readouterr().err.splitlines()
  assert [w.split(' is ')[0] for w in warnings] == [
      f'warning: {path} line 2', f'warning: {path} line 3']
  writer = metrics_writer.MetricWriter(workdir)  # no resume step: appends to what is there
  writer.write(30, {'train_loss': 0.5})
  writer.close()
  assert metrics_writer.read_metrics(workdir) == [{'step': 10, 'train_loss': 1.5},
                                                  {'step': 30, 'train_loss': 0.5}]
  capsys.readouterr()
  writer = metrics_writer.MetricWriter(workdir, resume_step=20)  # drops bad lines and step 30
  writer.close()
  with open(path) as f:
    assert f.read() == '{"step": 10, "train_loss": 1.5}\n'
  assert 'line 2' in capsys.readouterr().err


def test_workdir_creation_errors_are_one_correct_line(tmp_path):
  blocker = tmp_path / 'a_file'
  blocker.write_text('x')
  result = run_main(f'--workdir={blocker}/run', *FLAGS, timeout=120)
  assert result.returncode == 1
  assert result.stderr.strip() == (
      f'error: cannot write to workdir {blocker}/run: {blocker} is a file, not a directory')
  result = run_main('--workdir=/sys/convrec-test/run', *FLAGS, timeout=120)  # even root may not
  assert result.returncode == 1
  line, = result.stderr.strip().splitlines()
  assert line.startswith('error: cannot write to workdir /sys/convrec-test/run: permission denied')
  assert 'disk space' not in line


@pytest.mark.parametrize('number, expected', [
    (errno.ENOSPC, 'no space left on device; free some disk space'),
    (errno.EDQUOT, 'disk quota exceeded; free some space in your quota'),
    (errno.EACCES, 'permission denied on /x; use a --workdir you can write to'),
    (errno.EROFS, 'read-only file system on /x'),
    (errno.EIO, 'Input/output error on /x'),
])
def test_disk_space_is_advised_only_for_a_full_disk(number, expected):
  message = workdir_lib.describe_os_error(OSError(number, os.strerror(number), '/x'))
  assert message.startswith(expected)
  assert ('disk space' in message) == (number == errno.ENOSPC)
  wrapped = ValueError(f'write failed: [Errno {number}] {os.strerror(number)}')  # as orbax wraps
  assert ('disk space' in workdir_lib.describe_os_error(wrapped)) == (number == errno.ENOSPC)
