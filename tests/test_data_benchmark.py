"""The pipeline benchmark (`python -m data.benchmark`) runs and writes its records; its PyTorch
twin reads the trainer's batches."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow_datasets as tfds

from data import imagenet_like, images, pipeline

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(*args, timeout=300):
  return subprocess.run([sys.executable, '-m', 'data.benchmark', *args], cwd=REPO,
                        capture_output=True, text=True, timeout=timeout)


@pytest.mark.torch
def test_benchmark_command_writes_records_on_a_tiny_synthetic_imagenet(tmp_path):
  path = tmp_path / 'pipeline.json'
  # In the main process (workers=0) to keep it quick; digits: an in-memory pipeline, no reference.
  result = _run('--dataset=imagenet2012,digits', '--workers=0', '--images=8', '--batch_size=4',
                '--repeats=1', '--batches=1', f'--cache_dir={tmp_path / "cache"}', f'--json={path}')
  assert result.returncode == 0, result.stderr
  records = json.loads(path.read_text())
  assert [(r['dataset'], r['workers']) for r in records] == [('imagenet2012', 0), ('digits', 0)]
  imagenet, digits = records
  for record in records:
    for key in ('dataset', 'workers', 'ours', 'reference', 'ratio', 'spread', 'batch_size'):
      assert key in record
    assert record['ours'] > 0 and record['spread'] == 0  # one repetition
  assert imagenet['unit'] == 'images/s' and imagenet['batch_size'] == 4
  assert imagenet['config'] == 'configs/imagenet_alexnet.py'
  assert imagenet['reference'] > 0
  assert imagenet['ratio'] == pytest.approx(imagenet['ours'] / imagenet['reference'])
  assert imagenet['reference_impl'].startswith('torch')
  assert digits['reference'] is None and digits['ratio'] is None
  assert imagenet['batches_per_s'] == pytest.approx(imagenet['ours'] / 4)
  assert 'imagenet2012' in result.stdout and 'ratio' in result.stdout
  # The synthetic dataset is written once, where --cache_dir says, through tfds's layout.
  assert os.path.exists(tmp_path / 'cache' / 'imagenet_like_8' / 'imagenet2012' / '5.1.0')


def test_benchmark_errors_are_one_line():
  result = _run('--dataset=imagenet2013', timeout=120)
  assert result.returncode == 2
  assert result.stderr.startswith('error: ') and result.stderr.count('\n') == 1
  assert "Did you mean 'imagenet2012'?" in result.stderr
  result = _run('--dataset=digits', '--workers=one', timeout=120)
  assert result.returncode == 2 and '--workers takes whole numbers' in result.stderr


def test_synthetic_imagenet_looks_like_imagenet(tmp_path):
  directory = imagenet_like.write(tmp_path, num_train=3, num_eval=1)
  store = images.open_split('imagenet2012', 'train', directory,
                            decoders={'image': tfds.decode.SkipDecoding()})
  sizes = [images.open_image(store[i]['image']).size for i in range(3)]
  assert sizes == list(imagenet_like.SIZES)
  assert all(80_000 < len(store[i]['image']) < 160_000 for i in range(3))  # about ImageNet's


@pytest.mark.torch
def test_torch_twin_reads_the_trainers_batches_and_normalises():
  from data import torch_reference
  rng = np.random.default_rng(0)
  store = [{'image': imagenet_like.jpeg(imagenet_like.image(50, 40, rng)), 'label': i}
           for i in range(6)]
  sampler = iter(torch_reference.StepBatches(6, 4, seed=3, start_step=2, process_index=1,
                                             process_count=2))
  assert next(sampler) == pipeline.train_indices(6, 4, 3, 2)[2:].tolist()
  dataset = torch_reference.ImageNetTrain(lambda: store, 6, 16, images.IMAGENET_MEAN,
                                          images.IMAGENET_STD)
  tensor, label = dataset[5]
  assert tuple(tensor.shape) == (3, 16, 16) and label == 5 and str(tensor.dtype) == 'torch.float32'
  mean, std = np.array(images.IMAGENET_MEAN), np.array(images.IMAGENET_STD)
  values = tensor.numpy().transpose(1, 2, 0)
  assert (values >= -mean / std - 1e-5).all() and (values <= (1 - mean) / std + 1e-5).all()


def _children(pid):
  """Pids of the live processes whose parent is `pid` (read from /proc)."""
  found = []
  for entry in os.listdir('/proc'):
    if not entry.isdigit():
      continue
    try:
      with open(f'/proc/{entry}/stat') as f:
        fields = f.read().rsplit(')', 1)[1].split()
    except OSError:
      continue
    if int(fields[1]) == pid and fields[0] != 'Z':
      found.append(int(entry))
  return found


def _alive(pid):
  try:
    with open(f'/proc/{pid}/stat') as f:
      return f.read().rsplit(')', 1)[1].split()[0] != 'Z'
  except OSError:
    return False


@pytest.fixture(scope='module')
def folder(tmp_path_factory):
  from data import export_folder
  root = tmp_path_factory.mktemp('folder')
  export_folder.export('digits', str(root), train_per_class=4, val_per_class=1)
  return str(root)


FOLDER_ARGS = ('--dataset=image_folder', '--config=configs/finetune_folder.py', '--workers=1',
               '--batch_size=4')


def test_benchmark_with_a_worker_process_ends_cleanly(folder):
  """Each repetition starts and closes a worker process mid-stream; none of the batches it had in
  flight is reported at exit (multiprocessing's resource tracker warns of such blocks)."""
  result = _run(*FOLDER_ARGS, f'--data_dir={folder}', '--repeats=2', '--batches=2')
  assert result.returncode == 0, result.stderr
  assert result.stderr == ''
  assert result.stdout.splitlines()[1].split()[:3] == ['image_folder', '1', '4']


def test_ctrl_c_during_the_benchmark_exits_130_and_ends_its_workers(folder):
  process = subprocess.Popen(
      [sys.executable, '-m', 'data.benchmark', *FOLDER_ARGS, f'--data_dir={folder}',
       '--repeats=100000'], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
  try:
    deadline = time.monotonic() + 120
    while len(_children(process.pid)) < 2:  # the resource tracker and the pipeline's worker
      assert process.poll() is None and time.monotonic() < deadline, process.communicate()
      time.sleep(0.2)
    time.sleep(2)  # timing batches
    children = _children(process.pid)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=30)
  finally:
    process.kill()
  assert process.returncode == 130, out + err
  assert err == '' and out == ''
  deadline = time.monotonic() + 10
  while any(_alive(pid) for pid in children) and time.monotonic() < deadline:
    time.sleep(0.1)
  assert not [pid for pid in children if _alive(pid)]
