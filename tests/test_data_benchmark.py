"""The pipeline benchmark (`python -m data.benchmark`) runs and writes its records; its PyTorch
twin reads the trainer's batches."""

import json
import os
import subprocess
import sys

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
