"""The image_folder pipeline and the preprocessing it shares with imported weights."""


import ml_collections
import numpy as np
import pytest
from PIL import Image

import data
from data import export_folder
from data import images
from data import preprocessing
from data.pipeline import eval_batches


def folder_config(root, **options):
  return ml_collections.ConfigDict({'dataset': 'image_folder', 'data_dir': str(root),
                                    'data': data.options('image_folder', **options)})


@pytest.fixture(scope='module')
def digits_folder(tmp_path_factory):
  root = tmp_path_factory.mktemp('digits')
  counts = export_folder.export('digits', str(root), train_per_class=3, val_per_class=2)
  assert counts == {'train': 30, 'val': 20}
  return root


def photo(seed=0, size=(40, 30)):
  return Image.fromarray(np.random.default_rng(seed).integers(0, 256, size + (3,), np.uint8))


def test_torchvision_preset_is_the_imagenet_pipeline():
  image = photo(size=(50, 37))
  fn = images.imagenet_example_fn(32)
  ours = preprocessing.example_fn(preprocessing.Preprocessing(image_size=32), True, lambda x: x)
  example = {'image': np.asarray(image), 'label': 3}
  np.testing.assert_allclose(ours({'image': image, 'label': 3}, None)['image'],
                             fn(example, None)['image'], atol=1e-5)
  for seed in range(3):  # the same draws: crop box, then flip
    np.testing.assert_allclose(
        ours({'image': image, 'label': 3}, np.random.default_rng(seed))['image'],
        fn(example, np.random.default_rng(seed))['image'], atol=1e-5)


def test_bgr_and_gray_channels():
  image = photo()
  rgb = preprocessing.normalize(preprocessing.Preprocessing(mean=(0.,), std=(1.,)), image)
  bgr = preprocessing.normalize(preprocessing.Preprocessing(channels='bgr', mean=(0.,),
                                                            std=(1.,)), image)
  np.testing.assert_array_equal(bgr, rgb[..., ::-1])
  gray = preprocessing.normalize(preprocessing.Preprocessing(channels='gray', mean=(0.,),
                                                             std=(1.,)), image)
  np.testing.assert_array_equal(gray[..., 0], np.asarray(image.convert('L'), np.float32))


def test_folder_classes_order_and_exact_evaluation(digits_folder):
  config = folder_config(digits_folder, image_size=8, resize='square', crop_fraction=1.0,
                         channels='gray', mean=(0.0,), std=(255.0,), decode_threads=2)
  dataset = data.create(config)
  assert dataset.facts.class_names == tuple(str(i) for i in range(10))
  assert dataset.facts.num_classes == 10 and dataset.facts.input_shape == (8, 8, 1)
  assert len(dataset.train) == 30 and len(dataset.eval) == 20
  batches = list(eval_batches(dataset.eval, 8))
  labels = np.concatenate([b['label'][b['mask']] for b in batches])
  np.testing.assert_array_equal(labels, np.repeat(np.arange(10), 2))
  # Eval images are the digits themselves (PNG rounding: within half a grey level of v / 16).
  from data import digits
  _, test = digits.load_split()
  first = np.flatnonzero(test['label'] == 0)[0]
  # Batches hold uint8 pixels; the step computes (x / 255 - image_mean) / image_std with these.
  assert batches[0]['image'].dtype == np.uint8
  assert (dataset.facts.image_mean, dataset.facts.image_std) == ((0.0,), (1.0,))
  np.testing.assert_allclose(batches[0]['image'][0, ..., 0] / 255, test['image'][first, ..., 0] / 16,
                             atol=0.5 / 255 + 1e-6)
  again = data.create(config).train.fetch(np.arange(5), np.random.default_rng(0))
  np.testing.assert_array_equal(again['image'],
                                dataset.train.fetch(np.arange(5), np.random.default_rng(0))['image'])


def test_folder_errors_are_one_clear_line(tmp_path):
  def error_of(root, fetch=False):
    with pytest.raises((ValueError, OSError)) as info:
      dataset = data.create(folder_config(root))
      if fetch:
        dataset.eval.fetch(np.arange(len(dataset.eval)), None)
    assert '\n' not in str(info.value)
    return str(info.value)

  assert 'image folder' in error_of(tmp_path / 'nothing') and 'not found' in error_of(
      tmp_path / 'nothing')
  (tmp_path / 'a' / 'train' / 'cat').mkdir(parents=True)
  (tmp_path / 'a' / 'val').mkdir(parents=True)
  assert 'has no images' in error_of(tmp_path / 'a')
  photo().save(tmp_path / 'a' / 'train' / 'cat' / '1.png')
  assert 'has no class folders' in error_of(tmp_path / 'a')
  (tmp_path / 'a' / 'val' / 'dog').mkdir()
  photo().save(tmp_path / 'a' / 'val' / 'dog' / '1.jpg')
  assert "class 'cat' is in" in error_of(tmp_path / 'a')
  (tmp_path / 'a' / 'train' / 'dog').mkdir()
  photo().save(tmp_path / 'a' / 'train' / 'dog' / '2.png')
  (tmp_path / 'a' / 'val' / 'cat').mkdir()
  (tmp_path / 'a' / 'val' / 'cat' / 'broken.jpg').write_bytes(b'not a jpeg')
  message = error_of(tmp_path / 'a', fetch=True)
  assert message.startswith('cannot read image') and 'broken.jpg' in message


@pytest.mark.parametrize('preset', ['torchvision', 'keras_caffe'])
def test_uint8_batches_normalised_in_the_step_equal_host_preprocessing(preset):
  """What the model sees from a uint8 batch (the task's in-step normalisation with the facts'
  statistics) is the float32 image the preprocessing computes on the host."""
  import jax
  from train import tasks
  p = preprocessing.PRESETS[preset]
  image = photo(3, size=(300, 260))
  host = preprocessing.eval_image(p, image)
  uint8 = preprocessing.eval_image(p, image, as_uint8=True)
  assert uint8.dtype == np.uint8 and uint8.shape == host.shape == p.input_shape
  mean, std = preprocessing.unit_statistics(p)
  task = tasks.create('classification', image_mean=mean, image_std=std)
  stepped = jax.jit(task.prepare)({'image': uint8[None]})['image'][0]
  np.testing.assert_allclose(np.asarray(stepped), host, rtol=1e-5, atol=1e-4)


def test_folder_batches_from_worker_processes_equal_in_process_ones(digits_folder):
  from data.pipeline import train_batches
  config = folder_config(digits_folder, image_size=8, resize='square', crop_fraction=1.0,
                         channels='gray', mean=(0.0,), std=(255.0,))
  plain = data.create(config)
  with config.unlocked():
    config.data.workers = 2
  pooled = data.create(config)
  streams = [(train_batches(plain.train, 8, seed=1, start_step=3),
              train_batches(pooled.train, 8, seed=1, start_step=3)),
             (eval_batches(plain.eval, 8), eval_batches(pooled.eval, 8))]
  for ours, theirs in streams:
    for _ in range(2):
      a, b = next(ours), next(theirs)
      assert a.keys() == b.keys() and a['image'].dtype == np.uint8
      for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    ours.close()
    theirs.close()  # ends the worker processes
