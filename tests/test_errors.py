"""Every command's answer to what a user can get wrong: one line `error: ...` and a non-zero exit
code (2 for the command line), never a traceback; and signals that end a run promptly when
nothing has been trained yet. Most cases fail before anything is compiled."""

import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import time
import zlib

import ml_collections
import pytest

from train import config_checks

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FASHION_MNIST = os.path.expanduser('~/tensorflow_datasets/fashion_mnist_idx')


def command(*args, env=None, timeout=120):
  return subprocess.run([sys.executable, '-m', *args], cwd=REPO, capture_output=True, text=True,
                        timeout=timeout, env=None if env is None else {**os.environ, **env})


def assert_one_line(result, code, *words):
  """`result` exited with `code` after exactly one stderr line `error: ...` holding `words`."""
  assert result.returncode == code, result.stdout + result.stderr
  assert 'Traceback' not in result.stderr
  lines = [line for line in result.stderr.splitlines() if line.strip()]
  assert len(lines) == 1, result.stderr
  assert lines[0].startswith('error: '), lines[0]
  for word in words:
    assert word in lines[0], lines[0]
  return lines[0]


def write(path, text):
  with open(path, 'w') as f:
    f.write(text)
  return str(path)


# --- train.main: flags and config files (exit code 2, before anything is built). --------------

@pytest.mark.parametrize('flags, words', [
    (['--config=configs/cifar10_vgg16_bn.py:nope'], ["Unknown variant 'nope'", ':quick']),
    (['--config=configs/default.py:nope'], ['has no variants', '--config=configs/default.py']),
    (['--config.model_kwargs.num_layers=2'],
     ["'model_kwargs.num_layers'", "model 'convnet' takes", 'hidden, in_channels']),
    (['--process_id=1'], ['--process_id needs --num_processes']),
    (['--coordinator_address=localhost:1234'], ['--coordinator_address needs --num_processes']),
    (['--num_processes=2', '--process_id=2'], ['--process_id must be in 0..1']),
])
def test_bad_flags_are_one_line(tmp_path, flags, words):
  assert_one_line(command('train.main', f'--workdir={tmp_path}', *flags), 2, *words)


@pytest.mark.parametrize('name, text, words', [
    ('config.json', '{"model": "convnet"}', ['not a Python config file', 'configs/NAME.py']),
    ('notes.txt', 'batch size 32\n', ['not a Python config file']),
    ('empty.py', 'BATCH_SIZE = 32\n', ['defines no get_config()']),
    ('broken.py', 'def get_config(:\n', ['cannot load', 'SyntaxError']),
])
def test_bad_config_files_are_one_line(tmp_path, name, text, words):
  path = write(tmp_path / name, text)
  result = command('train.main', f'--workdir={tmp_path}/run', f'--config={path}')
  assert_one_line(result, 2, path, *words)
  assert not os.path.exists(tmp_path / 'run')


# --- train.main: values out of range (exit code 1, before compiling). -----------------------

@pytest.mark.parametrize('flag, words', [
    ('--config.log_every_steps=0', ["'log_every_steps' must be positive"]),
    ('--config.model_kwargs.dropout=1.5', ["'model_kwargs.dropout' is a rate", '[0, 1)']),
])
def test_out_of_range_values_fail_before_compiling(tmp_path, flag, words):
  result = command('train.main', f'--workdir={tmp_path}', flag)
  assert_one_line(result, 1, *words)
  assert 'Compiled' not in result.stdout and 'parameters' not in result.stdout


def _config(**overrides):
  from configs import default
  config = default.get_config()
  for key, value in overrides.items():
    target = config
    *parents, last = key.split('.')
    for parent in parents:
      target = target[parent]
    target[last] = value
  return config


@pytest.mark.parametrize('key, value, words', [
    ('log_every_steps', 0, 'must be positive'),
    ('eval_every_steps', -1, 'must be positive'),
    ('checkpoint_every_steps', 0, 'must be positive'),
    ('num_train_steps', 0, 'must be positive'),
    ('batch_size', -32, 'must be positive'),
    ('eval_batch_size', 0, 'must be positive'),
    ('keep_checkpoints', 0, 'must be positive'),
    ('warmup_steps', -1, 'must be zero or positive'),
    ('decay_boundaries', (100, -1), 'must be zero or positive'),
    ('weight_decay', -1e-4, 'must be zero or positive'),
    ('momentum', 1.0, 'is a rate'),
    ('grad_clip_norm', 0.0, 'must be positive'),
    ('learning_rate', 0.0, 'must be positive'),
    ('model_kwargs.hidden', 0, "'model_kwargs.hidden' must be positive"),
    ('model_kwargs.features', (32, 0), "'model_kwargs.features' must be positive"),
    ('model_kwargs.dropout', -0.1, 'is a rate'),
    ('model_kwargs.dropout', 1.0, 'is a rate'),
])
def test_validate_config_refuses(key, value, words):
  with pytest.raises(ValueError, match=words.replace('[', r'\[').replace('(', r'\(')):
    config_checks.validate_config(_config(**{key: value}))


def test_validate_config_accepts_edge_values():
  config_checks.validate_config(_config(**{'warmup_steps': 0, 'model_kwargs.dropout': 0.0,
                                           'momentum': 0.0, 'weight_decay': 0.0}))
  nested = _config()
  nested.model_kwargs.num_layers = None  # unset placeholders are not checked
  config_checks.validate_config(nested)


def test_validate_config_checks_unknown_keys_by_name():
  config = _config()
  config.task_kwargs = ml_collections.ConfigDict({'num_heads': 0})
  with pytest.raises(ValueError, match="'task_kwargs.num_heads' must be positive"):
    config_checks.validate_config(config)


# --- Workdirs, data files and images. -------------------------------------------------------

@pytest.mark.parametrize('text', ['{"model": "convnet", "batch', 'garbage\x00\x01', '[1, 2]'])
def test_read_workdir_config_names_a_damaged_file(tmp_path, text):
  path = write(tmp_path / 'config.json', text)
  with pytest.raises(ValueError, match='is damaged') as raised:
    config_checks.read_workdir_config(str(tmp_path))
  assert path in str(raised.value) and 'restore it' in str(raised.value)


def test_read_workdir_config_reads_what_training_saved(tmp_path):
  config = _config()
  write(tmp_path / 'config.json', config.to_json_best_effort())
  assert config_checks.read_workdir_config(str(tmp_path)).model_kwargs.to_dict() == \
      json.loads(config.model_kwargs.to_json_best_effort())
  with pytest.raises(FileNotFoundError, match='config.json not found'):
    config_checks.read_workdir_config(str(tmp_path / 'missing'))


def test_resuming_with_a_damaged_config_json_is_one_line(tmp_path):
  write(tmp_path / 'config.json', '{"model": "conv')
  os.makedirs(tmp_path / 'checkpoints' / '5')
  result = command('train.main', f'--workdir={tmp_path}')
  assert_one_line(result, 1, f'{tmp_path}/config.json is damaged')


@pytest.mark.skipif(not os.path.isdir(FASHION_MNIST), reason='fashion_mnist_idx not prepared')
def test_damaged_dataset_shard_names_the_file_and_the_fix(tmp_path):
  copy = tmp_path / 'tfds' / 'fashion_mnist_idx'
  shutil.copytree(FASHION_MNIST, copy)
  shard = next(os.path.join(root, name) for root, _, names in os.walk(copy) for name in names
               if name.startswith('fashion_mnist_idx-train.array_record'))
  with open(shard, 'r+b') as f:  # garble the first records
    f.seek(1000)
    f.write(b'\xff' * 4000)
  result = command('train.main', f'--workdir={tmp_path}/run',
                   '--config=configs/fashion_mnist_convnet.py',
                   f'--config.data_dir={tmp_path}/tfds', timeout=300)
  assert_one_line(result, 1, shard, 'is damaged',
                  f'python -m data.prepare fashion_mnist --data_dir={tmp_path}/tfds')


def _png_header(width, height):
  def chunk(kind, payload):
    return struct.pack('>I', len(payload)) + kind + payload + struct.pack(
        '>I', zlib.crc32(kind + payload))
  return (b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', width, height, 8, 0, 0,
                                                            0, 0))
          + chunk(b'IDAT', zlib.compress(b'')) + chunk(b'IEND', b''))


def test_image_too_large_to_decode_is_one_line(tmp_path):
  image = tmp_path / 'huge.png'
  image.write_bytes(_png_header(100_000, 100_000))  # 65 bytes declaring 10^10 pixels
  result = command('train.visualize', 'features', '--config=configs/default.py',
                   f'--image={image}', f'--out={tmp_path}/out')
  assert_one_line(result, 1, 'image too large to decode safely', 'pixels')


# --- Platforms and optional packages. -------------------------------------------------------

@pytest.mark.skipif(os.path.exists('/dev/nvidia0'), reason='a GPU is visible here')
@pytest.mark.parametrize('args', [['train.main'], ['train.evaluate', '--workdir=.']])
def test_unavailable_platform_is_one_line(tmp_path, args):
  if args == ['train.main']:
    args = [*args, f'--workdir={tmp_path}']
  result = command(*args, env={'JAX_PLATFORMS': 'cuda'})
  assert_one_line(result, 1, "platform 'cuda'", 'not available here', 'unset JAX_PLATFORMS',
                  'jax[cuda12]')


def test_benchmark_without_torch_is_one_line(tmp_path):
  stub = tmp_path / 'torch'
  stub.mkdir()
  write(stub / '__init__.py', 'raise ImportError("No module named \'torch\'")\n')
  path = os.pathsep.join([str(tmp_path), os.environ.get('PYTHONPATH', '')]).rstrip(os.pathsep)
  result = command('train.benchmark', '--model=convnet', env={'PYTHONPATH': path})
  assert_one_line(result, 1, "pip install -e '.[bench]'", '--noreference')


def test_prepare_command_line_error_is_one_line():
  assert_one_line(command('data.prepare', 'nope'), 2, "invalid choice: 'nope'", 'fashion_mnist')


# --- Signals. -------------------------------------------------------------------------------

def test_sigterm_during_compilation_exits_at_once(tmp_path):
  process = subprocess.Popen(
      [sys.executable, '-m', 'train.main', f'--workdir={tmp_path}',
       '--config.model_kwargs.features=(128, 256)'],
      cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
  first = process.stdout.readline()  # printed just before the steps are compiled
  assert 'parameters' in first, first + process.stderr.read()
  process.send_signal(signal.SIGTERM)
  start = time.monotonic()
  out, err = process.communicate(timeout=60)
  assert time.monotonic() - start < 10
  assert process.returncode == 0, err
  assert 'Compiled' not in out and 'Traceback' not in err
  assert [line for line in err.splitlines() if line.strip()] == [
      'SIGTERM received before training started: nothing to save; stopped.']
  assert not os.listdir(tmp_path / 'checkpoints') if (tmp_path / 'checkpoints').exists() else True


def test_ctrl_c_during_a_command_exits_130_quietly(tmp_path):
  process = subprocess.Popen(
      [sys.executable, '-m', 'train.visualize', 'features', '--config=configs/fashion_mnist_vgg.py',
       f'--out={tmp_path}'], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
  # After 3 s it is importing or building the model (the whole command takes over 10 s): both
  # end the same way.
  time.sleep(3)
  process.send_signal(signal.SIGINT)
  out, err = process.communicate(timeout=60)
  assert process.returncode == 130, out + err
  assert err.strip() == ''


class _Exit(Exception):
  pass


def _stopper(monkeypatch):
  from train import cli, main

  def exit_now(code, message=None):
    raise _Exit(code, message)

  monkeypatch.setattr(cli, 'exit_now', exit_now)
  return main.Stopper()


@pytest.mark.parametrize('signum, code', [(signal.SIGINT, 130), (signal.SIGTERM, 0)])
def test_signal_before_training_exits_at_once(monkeypatch, signum, code):
  stopper = _stopper(monkeypatch)
  with pytest.raises(_Exit) as exited:
    stopper.on_signal(signum)
  assert exited.value.args[0] == code and 'nothing to save' in exited.value.args[1]


def test_signals_during_training_checkpoint_then_second_ctrl_c_exits(monkeypatch, capsys):
  stopper = _stopper(monkeypatch)
  assert not stopper.should_stop()  # the trainer's first poll: training has started
  stopper.on_signal(signal.SIGTERM)
  assert stopper.should_stop() and 'saving a checkpoint' in capsys.readouterr().err
  stopper.on_signal(signal.SIGTERM)  # a repeated SIGTERM changes nothing
  with pytest.raises(_Exit) as exited:
    stopper.on_signal(signal.SIGINT)
  assert exited.value.args == (130, None)


def test_sigterm_when_every_step_is_a_checkpoint_stops_with_one(tmp_path):
  """SIGTERM is honoured on checkpoint steps too: with a checkpoint at every step the run still
  stops at the end of the current step, saved, and exits 0."""
  process = subprocess.Popen(
      [sys.executable, '-m', 'train.main', f'--workdir={tmp_path}',
       '--config.checkpoint_every_steps=1', '--config.log_every_steps=5',
       '--config.eval_every_steps=1000', '--config.keep_checkpoints=2'],
      cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
  for line in process.stdout:
    if line.startswith('step ') and int(line.split()[1].split('/')[0]) >= 10:
      break
  process.send_signal(signal.SIGTERM)
  out, err = process.communicate(timeout=60)
  assert process.returncode == 0, err
  assert 'Traceback' not in err and 'saving a checkpoint and stopping' in err
  stopped = int(out.split('Stopped at step ')[1].split()[0])
  assert 10 <= stopped < 1500
  steps = sorted(int(name) for name in os.listdir(tmp_path / 'checkpoints') if name.isdigit())
  assert steps[-1] == stopped
