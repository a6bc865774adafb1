"""Tests of Fashion-MNIST: the IDX reader, the `fashion_mnist_idx` builder, the prepare step.

The last test builds the real dataset from the real IDX files, which `python -m data.prepare
fashion_mnist` puts in the default manual dir; CI runs that command first, so a missing file is a
failure, not a skip.
"""

import gzip
import os
import stat
import struct
import subprocess
import shutil

import ml_collections
import numpy as np
import pytest

import data
from data import DatasetNotFoundError, fashion_mnist, idx, pipeline, prepare


def _idx_bytes(array: np.ndarray, type_code: int) -> bytes:
  """IDX encoding written independently of data/idx.py: magic, big-endian dims, big-endian data."""
  big_endian = array.astype(idx.DTYPES[type_code])
  header = bytes([0, 0, type_code, array.ndim]) + struct.pack(f'>{array.ndim}I', *array.shape)
  return header + big_endian.tobytes()


def _write_fashion_files(directory, num_train=20, num_test=10, seed=0):
  """Writes the four IDX .gz files with random images; returns {split: (images, labels)}."""
  rng = np.random.default_rng(seed)
  os.makedirs(directory, exist_ok=True)
  written = {}
  for split, n in [('train', num_train), ('test', num_test)]:
    images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    labels = (np.arange(n) % 10).astype(np.uint8)
    rng.shuffle(labels)
    images_file, labels_file = fashion_mnist.FILES[split]
    with gzip.open(os.path.join(directory, images_file), 'wb') as f:
      f.write(_idx_bytes(images, 0x08))
    with gzip.open(os.path.join(directory, labels_file), 'wb') as f:
      f.write(_idx_bytes(labels, 0x08))
    written[split] = (images, labels)
  return written


def _config(data_dir, **options):
  """A config for `data.create`: the fashion_mnist pipeline with the data `options`."""
  return ml_collections.ConfigDict({'dataset': 'fashion_mnist', 'data_dir': os.fspath(data_dir),
                                    'seed': 0, 'batch_size': 4, 'data': options})


# --- IDX. -------------------------------------------------------------------------------------


def test_idx_reader_round_trips_gzipped_and_plain_files(tmp_path):
  images = np.random.default_rng(0).integers(0, 256, (3, 4, 5), dtype=np.uint8)
  (tmp_path / 'images-idx3-ubyte').write_bytes(_idx_bytes(images, 0x08))
  with gzip.open(tmp_path / 'images-idx3-ubyte.gz', 'wb') as f:
    f.write(_idx_bytes(images, 0x08))
  for name in ('images-idx3-ubyte', 'images-idx3-ubyte.gz'):
    np.testing.assert_array_equal(idx.read(tmp_path / name), images)
    assert idx.magic(tmp_path / name) == idx.IMAGES_MAGIC == 2051
  labels = np.array([9, 0, 3], np.uint8)
  (tmp_path / 'labels').write_bytes(_idx_bytes(labels, 0x08))
  assert idx.magic(tmp_path / 'labels') == idx.LABELS_MAGIC == 2049
  np.testing.assert_array_equal(idx.read(tmp_path / 'labels'), labels)
  # Multi-byte types are big-endian on disk and native in memory.
  wide = np.array([[1, -2], [70000, 3]], np.int32)
  decoded = idx.parse(_idx_bytes(wide, 0x0C))
  np.testing.assert_array_equal(decoded, wide)
  assert decoded.dtype == np.int32 and decoded.dtype.isnative


def test_idx_reader_rejects_malformed_files():
  good = _idx_bytes(np.zeros((2, 3), np.uint8), 0x08)
  for bad in (good[:-1], good + b'\0', b'\1' + good[1:], good[:2] + b'\x42' + good[3:], b'\0\0'):
    with pytest.raises(idx.IdxError):
      idx.parse(bad)


# --- The builder and the pipeline on tiny IDX files. ------------------------------------------


def test_builder_prepares_tiny_idx_files_and_reads_them_back_exactly(tmp_path):
  manual_dir = tmp_path / 'manual'
  written = _write_fashion_files(manual_dir)
  dataset = data.create(_config(tmp_path / 'tfds', manual_dir=os.fspath(manual_dir)))
  assert dataset.facts == pipeline.ClassificationFacts(10, (28, 28, 1))
  for source, split in ((dataset.train, 'train'), (dataset.eval, 'test')):
    images, labels = written[split]
    assert len(source) == len(labels)
    np.testing.assert_array_equal(source.arrays['image'][..., 0], images)  # the files' order
    batch = source.fetch(np.arange(len(labels)), None)
    assert batch['image'].dtype == np.float32 and batch['image'].shape == (len(labels), 28, 28, 1)
    np.testing.assert_array_equal(batch['image'][..., 0], images / np.float32(255))
    assert batch['label'].dtype == np.int32
    np.testing.assert_array_equal(batch['label'], labels)
  # No augmentation by default: a training batch ignores the rng.
  indices = np.array([3, 1, 4])
  np.testing.assert_array_equal(dataset.train.fetch(indices, np.random.default_rng(0))['image'],
                                dataset.train.fetch(indices, None)['image'])
  # Prepared once, in the array_record format, readable by name through tfds.
  builder = fashion_mnist.builder(os.fspath(tmp_path / 'tfds'))
  assert builder.is_prepared() and builder.name == 'fashion_mnist_idx'
  assert builder.info.splits['train'].num_examples == 20
  assert os.path.isfile(os.path.join(builder.data_dir,
                                     'fashion_mnist_idx-train.array_record-00000-of-00001'))
  assert builder.info.features['label'].names[9] == 'Ankle boot'
  # Once prepared, the IDX files are no longer needed.
  shutil.rmtree(manual_dir)
  again = data.create(_config(tmp_path / 'tfds', augment=True, standardize=True,
                              train_split='train[:8]'))
  assert len(again.train) == 8 and len(again.eval) == 10
  a = again.train.fetch(np.arange(8), np.random.default_rng(0))['image']
  same = again.train.fetch(np.arange(8), np.random.default_rng(0))['image']
  np.testing.assert_array_equal(a, same)
  assert not np.array_equal(a, again.train.fetch(np.arange(8), np.random.default_rng(1))['image'])
  expected = fashion_mnist.random_crop_flip(
      {'image': written['train'][0][:8, :, :, None]}, np.random.default_rng(0), pad=2)['image']
  np.testing.assert_allclose(a, (expected / 255 - 0.2860) / 0.3530, atol=1e-5)


def test_manual_files_may_sit_in_a_fashion_mnist_subdirectory(tmp_path):
  _write_fashion_files(tmp_path / 'manual' / 'fashion_mnist', num_train=10, num_test=10)
  builder = fashion_mnist.prepare(os.fspath(tmp_path / 'tfds'), os.fspath(tmp_path / 'manual'))
  assert builder.info.splits['test'].num_examples == 10


def test_missing_dataset_names_the_prepare_command(tmp_path):
  with pytest.raises(DatasetNotFoundError) as error:
    data.create(_config(tmp_path))
  message = str(error.value)
  assert '\n' not in message
  assert f'python -m data.prepare fashion_mnist --data_dir={tmp_path}' in message
  assert '--config.data_dir' in message


# --- The prepare step. ------------------------------------------------------------------------


def test_prepare_cli_fails_with_one_line_without_files(tmp_path, capsys):
  code = prepare.main(['fashion_mnist', f'--data_dir={tmp_path}', '--manual_dir',
                       os.fspath(tmp_path / 'nothing'), '--no_fetch'])
  assert code == 1
  err = capsys.readouterr().err.strip().splitlines()
  assert err[-1].startswith('error: fashion_mnist:') and 'nothing' in err[-1]


def test_verify_rejects_files_that_are_not_fashion_mnist(tmp_path):
  _write_fashion_files(tmp_path)
  with pytest.raises(prepare.PrepareError, match='20 examples, expected 60000'):
    prepare.verify_fashion_mnist(os.fspath(tmp_path))


def _fake_apt_get(bin_dir, deb, fail_download=False):
  """An `apt-get` on PATH that 'downloads' `deb` into the working directory and logs its calls."""
  script = bin_dir / 'apt-get'
  log = bin_dir / 'calls.log'
  script.write_text(f"""#!/bin/sh
echo "$@" >> {log}
if [ "$1" = download ]; then
  {'echo "E: Unable to locate package $2" >&2; exit 100' if fail_download else f'cp {deb} .'}
fi
exit 0
""")
  script.chmod(script.stat().st_mode | stat.S_IEXEC)
  return log


@pytest.mark.skipif(shutil.which('dpkg-deb') is None, reason='needs dpkg-deb to build a .deb')
def test_fetch_copies_the_idx_files_out_of_the_debian_package(tmp_path, monkeypatch):
  # A stand-in dataset-fashion-mnist .deb holding tiny IDX files where the real one has them.
  package = tmp_path / 'pkg'
  written = _write_fashion_files(package / prepare.PACKAGE_DIR)
  (package / 'DEBIAN').mkdir()
  (package / 'DEBIAN' / 'control').write_text(
      'Package: dataset-fashion-mnist\nVersion: 1.0\nArchitecture: all\n'
      'Maintainer: test <t@example.com>\nDescription: test\n')
  deb = tmp_path / 'dataset-fashion-mnist_1.0_all.deb'
  subprocess.run(['dpkg-deb', '--build', '-Zgzip', os.fspath(package), os.fspath(deb)],
                 check=True, capture_output=True)
  bin_dir = tmp_path / 'bin'
  bin_dir.mkdir()
  log = _fake_apt_get(bin_dir, deb)
  monkeypatch.setenv('PATH', f'{bin_dir}{os.pathsep}{os.environ["PATH"]}')
  manual_dir = tmp_path / 'manual'
  copied = prepare.fetch_fashion_mnist(os.fspath(manual_dir), log=lambda line: None)
  assert sorted(os.path.basename(p) for p in copied) == sorted(
      f for pair in fashion_mnist.FILES.values() for f in pair)
  images, labels = fashion_mnist.read_split(os.fspath(manual_dir), 'test')
  np.testing.assert_array_equal(images, written['test'][0])
  np.testing.assert_array_equal(labels, written['test'][1])
  assert log.read_text().split('\n')[0] == 'download dataset-fashion-mnist'


@pytest.mark.parametrize('root', [True, False])
def test_failed_apt_download_updates_lists_only_as_root(tmp_path, monkeypatch, root):
  bin_dir = tmp_path / 'bin'
  bin_dir.mkdir()
  log = _fake_apt_get(bin_dir, tmp_path / 'none.deb', fail_download=True)
  monkeypatch.setenv('PATH', f'{bin_dir}{os.pathsep}{os.environ["PATH"]}')
  monkeypatch.setattr(os, 'geteuid', lambda: 0 if root else 1000)
  with pytest.raises(prepare.PrepareError) as error:
    prepare.fetch_debian_package('dataset-fashion-mnist', os.fspath(tmp_path), log=lambda l: None)
  assert '\n' not in str(error.value) and 'Unable to locate package' in str(error.value)
  calls = log.read_text().splitlines()
  if root:
    assert calls == ['download dataset-fashion-mnist', 'update', 'download dataset-fashion-mnist']
  else:
    assert calls == ['download dataset-fashion-mnist'] and 'apt-get update' in str(error.value)


# --- The real data. ---------------------------------------------------------------------------


@pytest.fixture(scope='module')
def real(tmp_path_factory):
  """The real Fashion-MNIST, built from the default manual dir into a temporary data_dir."""
  manual_dir = fashion_mnist.default_manual_dir(None)
  if fashion_mnist.find_idx_files(manual_dir) is None:
    pytest.fail(f'The Fashion-MNIST IDX files are not in {manual_dir}: run '
                f'`python -m data.prepare fashion_mnist` first (CI does, before the tests).')
  data_dir = tmp_path_factory.mktemp('fashion_tfds')
  lines = []
  prepare.prepare_fashion_mnist(os.fspath(data_dir), manual_dir=manual_dir, fetch=False,
                                log=lines.append)
  dataset = data.create(_config(data_dir))
  return manual_dir, data_dir, dataset, lines


def test_real_fashion_mnist(real):
  manual_dir, data_dir, dataset, lines = real
  assert any(line.startswith('verified') for line in lines)
  assert (len(dataset.train), len(dataset.eval)) == (60_000, 10_000)
  train_labels = dataset.train.arrays['label']
  assert (np.bincount(train_labels, minlength=10) == 6000).all()
  assert (np.bincount(dataset.eval.arrays['label'], minlength=10) == 1000).all()
  # Example 0 of the training file is an ankle boot (label 9), as the raw file says.
  raw_labels = idx.read(os.path.join(manual_dir, 'train-labels-idx1-ubyte.gz'))
  assert raw_labels[0] == 9 == train_labels[0]
  np.testing.assert_array_equal(train_labels, raw_labels)
  raw_images = idx.read(os.path.join(manual_dir, 't10k-images-idx3-ubyte.gz'))
  np.testing.assert_array_equal(dataset.eval.arrays['image'][..., 0], raw_images)
  batch = dataset.train.fetch(np.arange(256), None)
  assert batch['image'].shape == (256, 28, 28, 1) and batch['image'].dtype == np.float32
  assert 0 <= batch['image'].min() and batch['image'].max() <= 1
  mean = dataset.train.arrays['image'].mean() / 255
  assert abs(mean - fashion_mnist.MEAN[0]) < 1e-4
  # A second prepare finds everything done.
  again = []
  prepare.prepare_fashion_mnist(os.fspath(data_dir), fetch=False, log=again.append)
  assert len(again) == 1 and 'already prepared' in again[0]
