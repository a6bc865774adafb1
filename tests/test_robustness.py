"""Faults and bad input, on real processes and real files: signals, kills, mismatched workdirs,
many devices and many processes, and one-line errors for every bad input. Damaged checkpoints,
workdir locks and metrics after a resume: tests/test_faults.py."""

import os
import random
import resource
import signal
import socket
import subprocess
import sys

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHORT = ['--config.log_every_steps=10', '--config.eval_every_steps=1000']
# The runs the signal tests interrupt and compare with an uninterrupted one.
INTERRUPTED = ['--config.num_train_steps=600', '--config.checkpoint_every_steps=100', *SHORT]


def run_main(*flags, env=None, timeout=300, preexec_fn=None):
  return subprocess.run([sys.executable, '-m', 'train.main', *flags], cwd=REPO, env=env,
                        capture_output=True, text=True, timeout=timeout, preexec_fn=preexec_fn)


def start_main(*flags):
  return subprocess.Popen([sys.executable, '-m', 'train.main', *flags], cwd=REPO,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_progress(process, min_step):
  """Reads the child's stdout until it reports a step >= min_step."""
  for line in process.stdout:
    if line.startswith('step ') and int(line.split()[1].split('/')[0]) >= min_step:
      return
  raise AssertionError(f'process ended before step {min_step}: {process.stderr.read()}')


def final_state(workdir):
  """The newest checkpoint, restored onto this process's first device whatever saved it."""
  manager = ocp.CheckpointManager(os.path.join(workdir, 'checkpoints'),
                                 item_handlers=ocp.StandardCheckpointHandler())
  step = manager.latest_step()
  device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
  target = jax.tree.map(lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=device),
                        manager.item_metadata(step))
  state = manager.restore(step, args=ocp.args.StandardRestore(target))
  manager.close()
  return step, state


def assert_same_state(workdir_a, workdir_b, exact=True, rtol=0.0, atol=0.0):
  step_a, a = final_state(workdir_a)
  step_b, b = final_state(workdir_b)
  assert step_a == step_b
  leaves_a, leaves_b = jax.tree.leaves(a), jax.tree.leaves(b)
  assert len(leaves_a) == len(leaves_b) > 0
  for x, y in zip(leaves_a, leaves_b):
    if exact:
      np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    else:
      np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=rtol, atol=atol)


@pytest.fixture(scope='module')
def uninterrupted(tmp_path_factory):
  """The reference: 600 steps of the default experiment without interruption."""
  workdir = str(tmp_path_factory.mktemp('uninterrupted'))
  result = run_main(f'--workdir={workdir}', *INTERRUPTED)
  assert result.returncode == 0, result.stderr
  return workdir


def test_sigterm_saves_and_resume_is_bit_identical(tmp_path, uninterrupted):
  flags = [f'--workdir={tmp_path}', *INTERRUPTED]
  process = start_main(*flags)
  wait_for_progress(process, 30)
  process.send_signal(signal.SIGTERM)
  stdout, stderr = process.communicate(timeout=120)
  assert process.returncode == 0, stderr
  assert 'SIGTERM received' in stderr and 'Stopped at step' in stdout
  stopped_at = int(stdout.split('Stopped at step ')[1].split()[0])
  assert 0 < stopped_at < 600
  assert final_state(str(tmp_path))[0] == stopped_at  # saved at the current step, not an older one
  resumed = run_main(*flags)
  assert resumed.returncode == 0, resumed.stderr
  assert f'Resuming from checkpoint at step {stopped_at}.' in resumed.stdout
  assert_same_state(uninterrupted, str(tmp_path))


def test_sigkill_at_a_random_step_loses_only_steps_since_the_checkpoint(tmp_path, uninterrupted):
  flags = [f'--workdir={tmp_path}', *INTERRUPTED]
  process = start_main(*flags)
  wait_for_progress(process, random.Random(0).randrange(150, 550, 10))
  process.kill()
  process.communicate()  # also closes its pipes
  resumed = run_main(*flags)
  assert resumed.returncode == 0, resumed.stderr
  assert 'Resuming from checkpoint at step' in resumed.stdout
  assert_same_state(uninterrupted, str(tmp_path))


def test_workdir_of_another_experiment_is_refused(tmp_path):
  assert run_main(f'--workdir={tmp_path}', '--config.num_train_steps=20', *SHORT).returncode == 0
  result = run_main(f'--workdir={tmp_path}', '--config.num_train_steps=40',
                    '--config.model=vgg_tiny', *SHORT)
  assert result.returncode == 1
  assert result.stderr.strip() == (
      f"error: workdir {tmp_path} holds checkpoints of a run with model='convnet', but this "
      "config has model='vgg_tiny'; use a new --workdir, or the original config.")
  result = run_main(f'--workdir={tmp_path}', '--config.model_kwargs.hidden=64', *SHORT)
  assert 'model_kwargs.hidden=None, but this config has model_kwargs.hidden=64' in result.stderr


def _fill_disk_limit():
  # The child may write files of at most 200 kB: a workdir on a full disk, as far as it can tell.
  signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
  resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))


@pytest.mark.parametrize('flags, code, expected', [
    (['--config.model=vgg17'], 1, "error: Unknown model 'vgg17'. Did you mean 'vgg19'?"),
    (['--config=configs/defualt.py'], 2, 'error: config file configs/defualt.py not found. '
     'Did you mean configs/default.py?'),
    (['--config.num_train_stepz=5'], 2,
     "error: unknown config key 'num_train_stepz'; did you mean 'num_train_steps'?"),
    (['--config.model_kwargs.hiden=5'], 2,
     "error: unknown config key 'hiden'; did you mean 'hidden'?"),
    (['--config.batch_size=many'], 2, "error: --config.batch_size=many: invalid literal"),
    (['--config.model=alexnet'], 1, 'error: kernel 11x11 is larger than the padded input 8x8'),
    (['--config.batch_size=5000'], 1, 'error: batch_size 5000 is larger than the training split'),
    (['--config=configs/mnist_convnet.py', '--config.data_dir=/nonexistent'], 1, 'error: '),
    (['--workdir=/etc/hostname/run'], 1, 'error: cannot write to workdir /etc/hostname/run'),
    (['--config.learning_rate=-1.0'], 1, 'error: learning_rate must be positive'),
    (['extra'], 2, 'error: unexpected arguments: extra'),
])
def test_bad_input_is_one_line_and_nonzero(tmp_path, flags, code, expected):
  if not any(f.startswith('--workdir') for f in flags):
    flags = [f'--workdir={tmp_path}', *flags]
  result = run_main(*flags, '--config.num_train_steps=5', timeout=120)
  assert result.returncode == code, result.stdout + result.stderr
  lines = [l for l in result.stderr.splitlines() if l.strip()]
  assert len(lines) == 1, result.stderr
  assert lines[0].startswith(expected), lines[0]
  assert 'Traceback' not in result.stderr


def test_missing_dataset_names_the_fix(tmp_path):
  result = run_main(f'--workdir={tmp_path}', '--config=configs/mnist_convnet.py',
                    f'--config.data_dir={tmp_path}/tfds', timeout=120)
  assert result.returncode == 1
  assert '--config.data_dir' in result.stderr and 'Traceback' not in result.stderr


def test_full_disk_is_one_line(tmp_path):
  result = run_main(f'--workdir={tmp_path}', '--config.num_train_steps=20', *SHORT,
                    preexec_fn=_fill_disk_limit)
  assert result.returncode == 1, result.stdout + result.stderr
  assert result.stderr.strip().splitlines() == [
      f'error: cannot write checkpoint 20 in {tmp_path}/checkpoints: file too large (the file '
      "size limit, see ulimit -f, or the file system's largest file); use another --workdir"
  ], result.stderr


# --- Many devices and many processes. -----------------------------------------------------------

_DUMP = '''
import sys, numpy as np, jax
from train import trainer
if sys.argv[3] == 'cnn':  # a ConvNet with batch norm on the digits
  from configs import default
  config = default.get_config()
  config.model_kwargs.batch_norm = True
else:  # an LSTM encoder-decoder with attention on the addition problems
  from configs import addition_seq2seq
  config = addition_seq2seq.get_config()
  config.data.train_size, config.data.test_size, config.eval_batch_size = 512, 64, 64
  config.model_kwargs.hidden_size, config.model_kwargs.embed_dim = 32, 8
  config.grad_clip_norm = None
config.num_train_steps = 10
config.batch_size = 64
config.log_every_steps = 10
config.eval_every_steps = 10
config.checkpoint_every_steps = 10
config.warmup_steps = 0
config.optimizer = 'sgd'  # Adam's 1/sqrt(v) would amplify float rounding differences early on
config.learning_rate = 0.05
config.shard_params = sys.argv[2] == 'fsdp'
metrics = trainer.train_and_evaluate(config, sys.argv[1])
import orbax.checkpoint as ocp
manager = ocp.CheckpointManager(sys.argv[1] + '/checkpoints')
state = manager.restore(10, args=ocp.args.StandardRestore())
np.savez(sys.argv[1] + '/state.npz', *[np.asarray(x) for x in jax.tree.leaves(state)])
print('DEVICES', jax.device_count(), 'LOSS', repr(metrics['train_loss']))
'''


def _train_on_devices(workdir, devices, mode, model):
  env = dict(os.environ, XLA_FLAGS=f'--xla_force_host_platform_device_count={devices}')
  result = subprocess.run([sys.executable, '-c', _DUMP, workdir, mode, model], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr
  line = [l for l in result.stdout.splitlines() if l.startswith('DEVICES')][-1]
  assert int(line.split()[1]) == devices
  return float(line.split()[3])


@pytest.mark.parametrize('model', ['cnn', 'lstm'])
def test_eight_devices_match_one_device(tmp_path, model):
  one = _train_on_devices(str(tmp_path / 'one'), 1, 'replicated', model)
  eight = _train_on_devices(str(tmp_path / 'eight'), 8, 'replicated', model)
  fsdp = _train_on_devices(str(tmp_path / 'fsdp'), 8, 'fsdp', model)
  assert eight == pytest.approx(one, rel=1e-4) and fsdp == pytest.approx(one, rel=1e-4)
  reference = np.load(tmp_path / 'one' / 'state.npz')
  for other in ('eight', 'fsdp'):
    state = np.load(tmp_path / other / 'state.npz')
    assert len(state.files) == len(reference.files)
    for name in reference.files:
      np.testing.assert_allclose(state[name], reference[name], rtol=1e-3, atol=1e-4)


def _free_port():
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


def test_two_processes_with_jax_distributed_agree_with_one(tmp_path):
  # Augmentation draws are per process (data/pipeline.py), so the global batch equals the
  # single-process one only without augmentation.
  flags = ['--config.data.augment=False', '--config.num_train_steps=40',
           '--config.log_every_steps=20',
           '--config.eval_every_steps=40', '--config.checkpoint_every_steps=20',
           '--config.optimizer=sgd', '--config.learning_rate=0.05']
  single = run_main(f'--workdir={tmp_path / "single"}', *flags)
  assert single.returncode == 0, single.stderr
  port = _free_port()
  processes = [subprocess.Popen(
      [sys.executable, '-m', 'train.main', f'--workdir={tmp_path / "multi"}', *flags,
       '--num_processes=2', f'--process_id={i}', f'--coordinator_address=127.0.0.1:{port}'],
      cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(2)]
  outputs = [p.communicate(timeout=300) for p in processes]
  for process, (stdout, stderr) in zip(processes, outputs):
    assert process.returncode == 0, stderr
  finals = [[l for l in stdout.splitlines() if l.startswith('Final:')][0]
            for stdout, _ in outputs]
  assert finals[0] == finals[1]  # both processes computed the same global metrics
  assert 'step 40/40' in outputs[0][0] and 'step 40/40' not in outputs[1][0]  # only 0 logs
  single_final = [l for l in single.stdout.splitlines() if l.startswith('Final:')][0]
  eval_single = float(single_final.split('eval_accuracy ')[1].split(',')[0])
  eval_multi = float(finals[0].split('eval_accuracy ')[1].split(',')[0])
  assert eval_multi == pytest.approx(eval_single, abs=1e-4)
  assert_same_state(str(tmp_path / 'single'), str(tmp_path / 'multi'), exact=False,
                    rtol=1e-3, atol=1e-5)
