"""Tests of the tfds image pipelines (data/images.py): MNIST, CIFAR-10, ImageNet.

Two kinds of fake data, neither touching the network:
  * `tfds.testing.mock_data`: random examples of each dataset's real spec (decoded arrays);
  * tiny real array_record datasets written under the official names and versions by a throwaway
    builder (`_write_tfds`), so the pipelines also run tfds's real read path (PNG/JPEG decoding
    by PIL) without TensorFlow.
"""

import io
import os
import time

import ml_collections
import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image

from data import DatasetNotFoundError, imagenet_like, images, pipeline
import data


def _config(data_dir, dataset, **options):
  """A config for `data.create`: pipeline `dataset` with the data `options`."""
  return ml_collections.ConfigDict({'data_dir': os.fspath(data_dir), 'seed': 0, 'batch_size': 4,
                                    'dataset': dataset, 'data': options})


def _mock(name, tmp_path, num_examples=12, **overrides):
  with tfds.testing.mock_data(num_examples=num_examples):
    return data.create(_config(tmp_path, dataset=name, **overrides))


def _encode(array, fmt):
  buffer = io.BytesIO()
  Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array).save(buffer, format=fmt)
  return buffer.getvalue()


def _write_tfds(data_dir, name, version, features, splits):
  """Writes a tiny array_record dataset that tfds reads as `name:version` from `data_dir`."""

  class Tiny(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    VERSION = tfds.core.Version(version)

    def _info(self):
      return tfds.core.DatasetInfo(builder=self, features=features, disable_shuffling=True)

    def _split_generators(self, dl_manager):
      return {split: self._generate_examples(examples) for split, examples in splits.items()}

    def _generate_examples(self, examples):
      for i, example in enumerate(examples):
        yield i, example

  Tiny.name = name
  Tiny(data_dir=os.fspath(data_dir), file_format='array_record').download_and_prepare()


# --- Augmentation primitives on hand-made images. ---------------------------------------------


def test_random_crop_flip_is_a_padded_crop_flipped_exactly_when_drawn():
  image = (np.arange(6 * 5 * 2).reshape(6, 5, 2) + 1).astype(np.uint8)  # no zeros inside
  pad = 2
  padded = np.pad(image, ((pad, pad), (pad, pad), (0, 0)))
  batch = {'image': np.stack([image] * 8), 'label': np.arange(8)}
  seen_flips = set()
  for seed in range(10):
    out = images.random_crop_flip(batch, np.random.default_rng(seed), pad=pad)['image']
    draws = np.random.default_rng(seed)  # the documented draw order: offsets, then flips
    dy, dx = draws.integers(0, 2 * pad + 1, size=(2, 8))
    flips = draws.random(8) < 0.5
    for k in range(8):
      crop = padded[dy[k]:dy[k] + 6, dx[k]:dx[k] + 5]
      expected = np.flip(crop, axis=1) if flips[k] else crop
      np.testing.assert_array_equal(out[k], expected)
      seen_flips.add(bool(flips[k]))
  assert seen_flips == {True, False}


def test_random_crop_flip_outputs_are_valid_crops_and_vary():
  image = (np.arange(4 * 4).reshape(4, 4, 1) + 1).astype(np.uint8)
  padded = np.pad(image, ((1, 1), (1, 1), (0, 0)))
  candidates = [padded[y:y + 4, x:x + 4] for y in range(3) for x in range(3)]
  candidates += [np.flip(c, axis=1) for c in candidates]
  out = images.random_crop_flip({'image': np.stack([image] * 64)}, np.random.default_rng(0),
                                pad=1)['image']
  for crop in out:
    assert any(np.array_equal(crop, c) for c in candidates)
  assert len({crop.tobytes() for crop in out}) > 9  # many of the 18 candidates appear
  no_flip = images.random_crop_flip({'image': np.stack([image] * 64)}, np.random.default_rng(0),
                                    pad=1, flip=False)['image']
  assert all(any(np.array_equal(crop, c) for c in candidates[:9]) for crop in no_flip)


def test_normalizer():
  batch = {'image': np.array([[[[0, 255, 51]]]], np.uint8), 'label': np.array([3], np.int64)}
  out = images.normalizer()(batch)
  assert out['image'].dtype == np.float32 and out['label'].dtype == np.int32
  np.testing.assert_allclose(out['image'][0, 0, 0], [0, 1, 0.2], rtol=1e-6)
  out = images.normalizer((0.5, 0.5, 0.2), (0.5, 0.25, 0.1))(batch)
  np.testing.assert_allclose(out['image'][0, 0, 0], [-1, 2, 0], atol=1e-6)


def test_random_resized_crop_box_respects_scale_and_ratio():
  rng = np.random.default_rng(0)
  for width, height in [(500, 375), (64, 64), (20, 90)]:
    for _ in range(200):
      left, top, right, bottom = images.random_resized_crop_box(width, height, rng)
      w, h = right - left, bottom - top
      assert 0 <= left < right <= width and 0 <= top < bottom <= height
      assert 0.07 <= w * h / (width * height) <= 1.0
      assert 3 / 4 - 0.1 <= w / h <= 4 / 3 + 0.1
  # A strip no box of ratio in [3/4, 4/3] fits with enough area: the central clamped box.
  assert images.random_resized_crop_box(1000, 10, rng) == (493, 0, 506, 10)  # 10 * 4/3 wide


def test_imagenet_eval_is_the_center_crop_of_the_resized_image():
  # Shorter side 256 already: no resampling, so the 224 crop is exact slicing.
  pixels = np.random.default_rng(0).integers(0, 256, (256, 512, 3), dtype=np.uint8)
  fn = images.imagenet_example_fn(224, augment=True, mean=None, std=None)
  out = fn({'image': pixels, 'label': np.int64(7)}, None)
  assert out['image'].shape == (224, 224, 3) and out['image'].dtype == np.float32
  assert out['label'] == 7 and out['label'].dtype == np.int32
  np.testing.assert_array_equal(out['image'], pixels[16:240, 144:368] / np.float32(255))
  # Other sizes scale the resize proportionally (227 -> shorter side 259) and keep aspect.
  tall = np.random.default_rng(1).integers(0, 256, (300, 200, 3), dtype=np.uint8)
  out = images.imagenet_example_fn(227, mean=None, std=None)({'image': tall, 'label': 0}, None)
  resized = Image.fromarray(tall).resize((259, 388), Image.BILINEAR)
  expected = np.asarray(resized)[80:307, 16:243]
  np.testing.assert_array_equal(out['image'], expected / np.float32(255))


def test_imagenet_train_crop_and_flip_follow_the_rng():
  pixels = np.random.default_rng(0).integers(0, 256, (60, 80, 3), dtype=np.uint8)
  fn = images.imagenet_example_fn(16, mean=None, std=None)
  seen_flips = set()
  for seed in range(8):
    out = fn({'image': pixels, 'label': 1}, np.random.default_rng(seed))['image']
    draws = np.random.default_rng(seed)
    box = images.random_resized_crop_box(80, 60, draws)
    flip = draws.random() < 0.5
    crop = np.asarray(Image.fromarray(pixels).resize((16, 16), Image.BILINEAR, box=box))
    expected = np.flip(crop, axis=1) if flip else crop
    np.testing.assert_array_equal(out, expected / np.float32(255))
    seen_flips.add(flip)
  assert seen_flips == {True, False}
  # A uniform image stays uniform whatever the crop; grey and encoded inputs work too.
  grey = np.full((40, 30, 1), 200, np.uint8)
  for image in (grey, _encode(grey, 'PNG')):
    out = fn({'image': image, 'label': 0}, np.random.default_rng(0))['image']
    assert out.shape == (16, 16, 3)
    np.testing.assert_allclose(out, 200 / 255, atol=1e-6)


def test_threaded_source_is_deterministic_whatever_the_thread_count():
  store = [{'image': np.random.default_rng(i).integers(0, 256, (24 + i, 30, 3), dtype=np.uint8),
            'label': i} for i in range(6)]
  fn = images.imagenet_example_fn(8)
  one = images.ThreadedExampleSource(store, fn, num_threads=1)
  three = images.ThreadedExampleSource(store, fn, num_threads=3)
  indices = np.array([5, 0, 3, 3])
  a = one.fetch(indices, np.random.default_rng(1))
  b = three.fetch(indices, np.random.default_rng(1))
  np.testing.assert_array_equal(a['image'], b['image'])
  np.testing.assert_array_equal(a['label'], [5, 0, 3, 3])
  assert not np.array_equal(a['image'], one.fetch(indices, np.random.default_rng(2))['image'])
  np.testing.assert_array_equal(one.fetch(indices, None)['image'],
                                three.fetch(indices, None)['image'])


# --- The pipelines on tfds.testing.mock_data. -------------------------------------------------


def _check_train_eval(dataset, image_shape, dtype=np.float32):
  indices = np.arange(4)
  train = dataset.train.fetch(indices, np.random.default_rng(0))
  assert train['image'].shape == (4, *image_shape) and train['image'].dtype == dtype
  assert train['label'].shape == (4,) and train['label'].dtype == np.int32
  again = dataset.train.fetch(indices, np.random.default_rng(0))
  np.testing.assert_array_equal(train['image'], again['image'])
  evaluation = dataset.eval.fetch(indices, None)
  assert evaluation['image'].shape == (4, *image_shape)
  np.testing.assert_array_equal(evaluation['image'], dataset.eval.fetch(indices, None)['image'])
  # The eval source never augments, even when handed an rng.
  np.testing.assert_array_equal(
      evaluation['image'], dataset.eval.fetch(indices, np.random.default_rng(5))['image'])
  assert dataset.facts.input_shape == image_shape
  return train


def test_mnist_mock(tmp_path):
  dataset = _mock('mnist', tmp_path)
  assert dataset.facts == pipeline.ClassificationFacts(10, (28, 28, 1))
  assert len(dataset.train) == len(dataset.eval) == 12
  train = _check_train_eval(dataset, (28, 28, 1))
  assert 0 <= train['image'].min() and train['image'].max() <= 1
  # No augmentation by default: training batches are the normalised pixels.
  raw = dataset.train.arrays['image'][:4]
  np.testing.assert_array_equal(train['image'], raw / np.float32(255))
  augmented = _mock('mnist', tmp_path, augment=True, standardize=True)
  everything = np.arange(12)
  shifted = augmented.train.fetch(everything, np.random.default_rng(0))['image']
  plain = augmented.train.fetch(everything, None)['image']
  assert not np.array_equal(shifted, plain)
  raw_all = augmented.train.arrays['image']
  np.testing.assert_allclose(plain, (raw_all / 255 - 0.1307) / 0.3081, atol=1e-5)


def test_cifar10_mock(tmp_path):
  dataset = _mock('cifar10', tmp_path)
  assert dataset.facts == pipeline.ClassificationFacts(10, (32, 32, 3))
  train = _check_train_eval(dataset, (32, 32, 3))
  mean, std = np.array(images.CIFAR10_MEAN), np.array(images.CIFAR10_STD)
  low, high = (0 - mean) / std, (1 - mean) / std
  assert (train['image'] >= low - 1e-5).all() and (train['image'] <= high + 1e-5).all()
  # Eval: exactly the standardised pixels; train: crops and flips that differ across rngs.
  raw = dataset.eval.arrays['image'][:4]
  np.testing.assert_allclose(dataset.eval.fetch(np.arange(4), None)['image'],
                             (raw / 255 - mean) / std, atol=1e-5)
  other = dataset.train.fetch(np.arange(4), np.random.default_rng(1))
  assert not np.array_equal(train['image'], other['image'])
  np.testing.assert_array_equal(train['label'], other['label'])
  # The augmentation is the documented crop/flip of the raw pixels.
  expected = images.random_crop_flip({'image': dataset.train.arrays['image'][:4]},
                                     np.random.default_rng(0), pad=4)['image']
  np.testing.assert_allclose(train['image'], (expected / 255 - mean) / std, atol=1e-5)
  plain = _mock('cifar10', tmp_path, augment=False, standardize=False)
  np.testing.assert_array_equal(plain.train.fetch(np.arange(4), np.random.default_rng(0))['image'],
                                plain.train.arrays['image'][:4] / np.float32(255))


def test_imagenet2012_on_synthetic_jpegs(tmp_path):
  # tfds.testing.mock_data cannot hand out JPEG bytes without TensorFlow; data.imagenet_like writes
  # a real (tiny) array_record dataset instead.
  imagenet_like.write(tmp_path, num_train=6, num_eval=6, sizes=((40, 30), (30, 44)))
  dataset = data.create(_config(tmp_path, 'imagenet2012', image_size=24, decode_threads=2))
  # uint8 pixels, normalised with the ImageNet statistics inside the step (train/tasks.py).
  assert dataset.facts == pipeline.ClassificationFacts(1000, (24, 24, 3), images.IMAGENET_MEAN,
                                                       images.IMAGENET_STD)
  assert dataset.facts.task_kwargs() == {'image_mean': images.IMAGENET_MEAN,
                                         'image_std': images.IMAGENET_STD}
  assert len(dataset.train) == len(dataset.eval) == 6
  assert dataset.train.workers == (os.cpu_count() or 1)  # the default: one per core
  train = _check_train_eval(dataset, (24, 24, 3), np.uint8)
  assert train['image'].std() > 10  # random pixels, not a constant
  plain = data.create(_config(tmp_path, 'imagenet2012', image_size=24, standardize=False,
                              workers=0))
  assert plain.facts.task_kwargs() == {} and plain.train.workers == 0
  other = dataset.train.fetch(np.arange(4), np.random.default_rng(1))
  assert not np.array_equal(train['image'], other['image'])
  assert 0 <= train['label'].min() and train['label'].max() < 1000


# --- The real tfds read path on tiny array_record datasets. -----------------------------------


def test_mnist_reads_a_prepared_array_record_dataset(tmp_path):
  rng = np.random.default_rng(0)
  pixels = {split: rng.integers(0, 256, (n, 28, 28, 1), dtype=np.uint8)
            for split, n in [('train', 6), ('test', 3)]}
  features = tfds.features.FeaturesDict({
      'image': tfds.features.Image(shape=(28, 28, 1)),
      'label': tfds.features.ClassLabel(num_classes=10)})
  _write_tfds(tmp_path, 'mnist', '3.0.1', features, {
      split: [{'image': _encode(p, 'PNG'), 'label': i % 10} for i, p in enumerate(array)]
      for split, array in pixels.items()})
  dataset = data.create(_config(tmp_path, dataset='mnist'))
  assert (len(dataset.train), len(dataset.eval)) == (6, 3)
  np.testing.assert_array_equal(dataset.train.arrays['image'], pixels['train'])
  batch = dataset.eval.fetch(np.arange(3), None)
  np.testing.assert_array_equal(batch['image'], pixels['test'] / np.float32(255))
  np.testing.assert_array_equal(batch['label'], [0, 1, 2])
  # Split slicing passes through to tfds.
  sliced = data.create(_config(tmp_path, dataset='mnist', train_split='train[:4]'))
  assert len(sliced.train) == 4


def test_imagenet2012_reads_jpeg_bytes_of_any_size(tmp_path):
  rng = np.random.default_rng(0)
  sizes = [(40, 30), (30, 50), (64, 64)]
  pixels = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in sizes]
  features = tfds.features.FeaturesDict({
      'file_name': tfds.features.Text(),
      'image': tfds.features.Image(shape=(None, None, 3), encoding_format='jpeg'),
      'label': tfds.features.ClassLabel(num_classes=1000)})
  examples = [{'file_name': f'{i}.JPEG', 'image': _encode(p, 'JPEG'), 'label': 100 * i}
              for i, p in enumerate(pixels)]
  _write_tfds(tmp_path, 'imagenet2012', '5.1.0', features,
              {'train': examples, 'validation': examples[:2]})
  dataset = data.create(_config(tmp_path, dataset='imagenet2012', image_size=16,
                                decode_threads=2))
  assert (len(dataset.train), len(dataset.eval)) == (3, 2)
  batch = dataset.eval.fetch(np.arange(2), None)
  assert batch['image'].shape == (2, 16, 16, 3)
  np.testing.assert_array_equal(batch['label'], [0, 100])
  # The pipeline reads JPEG bytes (SkipDecoding) and ships uint8: the same pixels as decoding in
  # tfds (arrays) and the float32 example function, scaled back.
  assert batch['image'].dtype == np.uint8
  decoded = images.open_split('imagenet2012', 'validation', os.fspath(tmp_path))
  assert not isinstance(decoded[0]['image'], bytes)
  source = images.ThreadedExampleSource(
      decoded, images.imagenet_example_fn(16, augment=False, mean=None, std=None))
  np.testing.assert_array_equal(source.fetch(np.arange(2), None)['image'],
                                batch['image'] / np.float32(255))
  train = dataset.train.fetch(np.arange(3), np.random.default_rng(0))
  assert train['image'].shape == (3, 16, 16, 3)


# --- Missing datasets. ------------------------------------------------------------------------


@pytest.mark.parametrize('name', ['mnist', 'cifar10', 'imagenet2012'])
def test_missing_dataset_fails_fast_with_a_one_line_hint(tmp_path, name):
  start = time.monotonic()
  with pytest.raises(DatasetNotFoundError) as error:
    data.create(_config(tmp_path / 'empty', dataset=name))
  assert time.monotonic() - start < 10  # no download retries
  message = str(error.value)
  assert '\n' not in message
  assert '--config.data_dir' in message and f'tfds build {name}' in message
  if name == 'imagenet2012':
    assert os.path.join(os.fspath(tmp_path / 'empty'), 'downloads', 'manual') in message
    assert 'ILSVRC2012_img_train.tar' in message


# --- Reduced-size JPEG decoding, uint8 batches, worker processes. ------------------------------


def _photo_jpeg(width, height, seed=0):
  """A smooth photograph-like JPEG (`data.imagenet_like`), where DCT scaling is nearly exact."""
  return imagenet_like.jpeg(imagenet_like.image(width, height, np.random.default_rng(seed)))


def test_draft_decodes_at_the_smallest_scale_that_keeps_the_crop_big_enough():
  encoded = _photo_jpeg(1200, 900)
  full = images.to_pil(encoded)
  # A 1000x750 box resized to 224 needs 1/4 (250x187 >= 224? no) -> 1/2: 500x375 of a 600x450 image.
  drafted, box = images.draft(images.open_image(encoded), (100, 50, 1100, 800), (224, 224))
  assert drafted.size == (600, 450) and drafted.mode == 'RGB'
  assert box == (50.0, 25.0, 550.0, 400.0)
  a = np.asarray(drafted.resize((224, 224), Image.BILINEAR, box=box), np.float32)
  b = np.asarray(full.resize((224, 224), Image.BILINEAR, box=(100, 50, 1100, 800)), np.float32)
  assert np.abs(a - b).mean() < 2.0 and np.abs(a - b).max() < 40
  # The whole image to 100x75 allows 1/8: 150x113, box (0, 0, 150, 112.5).
  drafted, box = images.draft(images.open_image(encoded), (0, 0, 1200, 900), (100, 75))
  assert drafted.size == (150, 113) and box == (0.0, 0.0, 150.0, 112.5)
  # A crop that needs every pixel, a decoded image, a PNG: decoded in full, box unchanged.
  for image, box in [(images.open_image(encoded), (0, 0, 300, 300)), (full, (0, 0, 1200, 900)),
                     (images.open_image(_encode(np.asarray(full), 'PNG')), (0, 0, 1200, 900))]:
    drafted, mapped = images.draft(image, box, (224, 224))
    assert drafted.size == (1200, 900) and mapped == box
  np.testing.assert_array_equal(
      np.asarray(images.draft(images.open_image(encoded), (0, 0, 300, 300), (224, 224))[0]),
      np.asarray(full))


def test_example_fn_on_jpeg_bytes_matches_full_decoding():
  encoded = _photo_jpeg(1200, 900, seed=1)
  pixels = np.asarray(images.to_pil(encoded))
  fn = images.imagenet_example_fn(64, normalize=False)
  # Eval: shorter side 73 of 900 -> decoded at 1/8; close to resizing the fully decoded image.
  drafted = fn({'image': encoded, 'label': 3}, None)
  full = fn({'image': pixels, 'label': 3}, None)
  assert drafted['image'].dtype == np.uint8 and drafted['image'].shape == (64, 64, 3)
  assert drafted['label'] == 3 and drafted['label'].dtype == np.int32
  assert np.abs(drafted['image'].astype(float) - full['image']).mean() < 2.0
  # Training: the same box and flip are drawn from the rng either way; DCT scaling differs from
  # an antialiased resize by a few levels of the fine grain, crops of other seeds by far more.
  crops = []
  for seed in range(4):
    a = fn({'image': encoded, 'label': 0}, np.random.default_rng(seed))['image']
    b = fn({'image': pixels, 'label': 0}, np.random.default_rng(seed))['image']
    assert np.abs(a.astype(float) - b).mean() < 4
    crops.append(b.astype(float))
  assert min(np.abs(crops[i] - crops[j]).mean() for i in range(4) for j in range(i)) > 15
  # normalize=True (the default): x / 255 standardised, float32, as before.
  standardized = images.imagenet_example_fn(64)({'image': pixels, 'label': 3}, None)['image']
  np.testing.assert_allclose(
      standardized, (full['image'] / 255 - np.array(images.IMAGENET_MEAN)) /
      np.array(images.IMAGENET_STD), atol=1e-5)


def test_uint8_images_are_normalised_inside_the_step_as_on_the_host():
  import jax
  import jax.numpy as jnp
  import optax
  from train import experiment, tasks
  rng = np.random.default_rng(0)
  pixels = rng.integers(0, 256, (4, 6, 5, 3), dtype=np.uint8)
  labels = np.array([0, 1, 2, 1], np.int32)
  task = tasks.Classification(image_mean=images.IMAGENET_MEAN, image_std=images.IMAGENET_STD)
  host = images.normalizer(images.IMAGENET_MEAN, images.IMAGENET_STD)(
      {'image': pixels, 'label': labels})['image']
  prepared = jax.jit(task.prepare)({'image': pixels, 'label': labels})['image']
  assert prepared.dtype == jnp.float32
  np.testing.assert_allclose(prepared, host, rtol=1e-6, atol=1e-6)
  assert task.prepare({'image': host, 'label': labels})['image'] is host  # floats pass through
  seen = []

  def apply_fn(variables, images_in, train, rngs=None, mutable=False):
    seen.append(images_in.dtype)
    return images_in.mean(axis=(1, 2)) * variables['params']['w']  # [batch, 3] logits

  state = experiment.TrainState(step=jnp.zeros((), jnp.int32), params={'w': jnp.ones(3)},
                                model_state={}, opt_state=(), rng=jax.random.PRNGKey(0),
                                apply_fn=apply_fn, tx=optax.sgd(0.1))
  eval_step = jax.jit(experiment.make_eval_step(task))
  from_uint8 = eval_step(state, {'image': pixels, 'label': labels})
  from_float = eval_step(state, {'image': host, 'label': labels})
  assert seen == [jnp.float32, jnp.float32]  # the model sees float32 either way
  for name in from_float:
    np.testing.assert_allclose(from_uint8[name], from_float[name], rtol=1e-6)


def _synthetic_imagenet(tmp_path, **options):
  imagenet_like.write(tmp_path, num_train=10, num_eval=7, sizes=((60, 45), (45, 64)))
  return data.create(_config(tmp_path, 'imagenet2012', image_size=16, **options))


def test_worker_batches_equal_in_process_batches_resume_and_eval_exact(tmp_path):
  inline = _synthetic_imagenet(tmp_path, workers=0)
  workers = _synthetic_imagenet(tmp_path, workers=2)
  assert workers.train.workers == 2
  # Batch k is a pure function of (seed, k): from step 0, resumed at step 3, inline or in workers.
  stream = pipeline.train_batches(inline.train, 4, seed=5, start_step=0)
  uninterrupted = [next(stream) for _ in range(6)]
  resumed = pipeline.train_batches(workers.train, 4, seed=5, start_step=3)
  for k in range(3, 6):
    batch = next(resumed)
    assert batch['image'].dtype == np.uint8 and batch['image'].shape == (4, 16, 16, 3)
    for name in ('image', 'label'):
      np.testing.assert_array_equal(batch[name], uninterrupted[k][name])
  resumed.close()
  # The reference computation: indices of step k, per-example generators from (seed, k, 1).
  indices = pipeline.train_indices(10, 4, 5, 4)
  expected = inline.train.fetch(indices, np.random.default_rng([5, 4, 1]))
  np.testing.assert_array_equal(uninterrupted[4]['image'], expected['image'])
  np.testing.assert_array_equal(uninterrupted[4]['label'], indices)  # label i of example i
  # Eval: every example once, padding masked, the same in workers.
  evaluated = list(pipeline.eval_batches(workers.eval, 3))
  assert [b['mask'].tolist() for b in evaluated] == [[True] * 3, [True] * 3, [True, False, False]]
  labels = np.concatenate([b['label'][b['mask']] for b in evaluated])
  np.testing.assert_array_equal(labels, np.arange(10, 17))
  for a, b in zip(evaluated, pipeline.eval_batches(inline.eval, 3)):
    for name in ('image', 'label', 'mask'):
      np.testing.assert_array_equal(a[name], b[name])
