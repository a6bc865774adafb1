"""Image captioning: digit strips, the CNN + LSTM captioner, greedy decoding, COCO pipeline."""

import collections
import io
import json
import os
import re

import jax
import ml_collections
import numpy as np
import pytest

import data
import models
from data import coco_captions, digit_strips
from data import digits as digits_lib
from data import pipeline
from train import trainer

import tiny_coco


def _create(module, data_dir=None, **options):
  """`module.create` with the data options `module.Options(**options)`."""
  return module.create(module.Options(**options), data_dir=data_dir)


@pytest.fixture(scope='module')
def strips():
  return _create(digit_strips, train_size=3000, test_size=500)


# Digit strips.


def test_strips_are_the_source_digits_side_by_side(strips):
  train, _ = digits_lib.load_split()
  batch = strips.train.fetch(np.arange(64), None)
  assert batch['image'].shape == (64, 8, 40, 1) and batch['image'].dtype == np.float32
  lengths = batch['target_mask'].sum(1) - 1
  assert set(lengths) == {1, 2, 3, 4, 5}
  for i in range(64):
    n = lengths[i]
    for slot in range(5):
      tile = batch['image'][i, :, 8 * slot:8 * slot + 8, 0]
      index = batch['digits'][i, slot]
      if slot < n:
        np.testing.assert_array_equal(tile, train['image'][index, :, :, 0] / 16.0)
      else:
        assert index == -1 and not tile.any()
    caption = train['label'][batch['digits'][i, :n]] + 3
    np.testing.assert_array_equal(batch['targets'][i, :n], caption)
    assert batch['targets'][i, n] == digit_strips.EOS and not batch['targets'][i, n + 1:].any()
    np.testing.assert_array_equal(batch['decoder_inputs'][i, :n + 1],
                                  np.concatenate([[digit_strips.BOS], caption]))
    assert not batch['decoder_inputs'][i, n + 1:].any()
  assert digit_strips.caption_strings(batch['targets'][:1]) == [
      ''.join(str(d) for d in train['label'][batch['digits'][0, :lengths[0]]])]


def test_no_held_out_handwriting_in_training_strips(strips):
  train, test = digits_lib.load_split()
  assert (len(train['label']), len(test['label'])) == (1437, 360)
  train_images = {img.tobytes() for img in (train['image'] / 16.0).astype(np.float32)[..., 0]}
  test_images = {img.tobytes() for img in (test['image'] / 16.0).astype(np.float32)[..., 0]}
  only_test = test_images - train_images  # (identical 8x8 images in both splits prove nothing)
  assert len(only_test) > 300

  def tiles(source):
    batch = source.fetch(np.arange(len(source)), None)
    used = batch['digits'] >= 0
    images = batch['image'][..., 0].reshape(len(source), 8, 5, 8).transpose(0, 2, 1, 3)
    return {t.tobytes() for t in images[used]}

  train_tiles, eval_tiles = tiles(strips.train), tiles(strips.eval)
  assert train_tiles <= train_images and not train_tiles & only_test
  assert eval_tiles <= test_images and len(eval_tiles & only_test) > 250
  again = _create(digit_strips, train_size=3000, test_size=500)
  np.testing.assert_array_equal(again.eval.fetch(np.arange(500), None)['image'],
                                strips.eval.fetch(np.arange(500), None)['image'])


# The model against NumPy.


def _sigmoid(x):
  return 1 / (1 + np.exp(-x))


def _lstm(params, h, c, x):
  """One LSTM step by hand: gates [i f g o] = x W_x + b + h W_h."""
  gates = (x @ params['input_projection']['kernel'] + params['input_projection']['bias']
           + h @ params['recurrent_kernel'])
  i, f, g, o = np.split(gates, 4, axis=-1)
  c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
  return _sigmoid(o) * np.tanh(c), c


def _numpy_start(model, params, v):
  """(h, c) once the image is in: Show and Tell's first step, or `image_as='state'`'s init."""
  hidden = model.hidden_size
  if model.image_as == 'state':
    dense = lambda p: np.tanh(v @ p['kernel'] + p['bias'])
    return dense(params['init_h']), dense(params['init_c'])
  zero = np.zeros((v.shape[0], hidden), np.float32)
  return _lstm(params['cells_0'], zero, zero, v)


def _numpy_logits(params, h):
  return h @ params['output_projection']['kernel'] + params['output_projection']['bias']


@pytest.fixture(scope='module')
def image_batch(strips):
  return strips.eval.fetch(np.arange(6), None)


@pytest.mark.parametrize('image_as', ['input', 'state'])
def test_teacher_forcing_equals_numpy_lstm_fed_the_image_vector(image_batch, image_as):
  model = models.create('caption_tiny', image_as=image_as)
  images, decoder_inputs = image_batch['image'], image_batch['decoder_inputs']
  variables = model.init(jax.random.PRNGKey(1), images, decoder_inputs)
  logits = jax.jit(model.apply)(variables, images, decoder_inputs)
  v = np.asarray(model.apply(variables, images, method='encode'), np.float64)
  params = jax.tree.map(lambda x: np.asarray(x, np.float64), variables['params'])
  table = params['embedding']['embedding']
  h, c = _numpy_start(model, params, v)
  expected = []
  for t in range(decoder_inputs.shape[1]):
    h, c = _lstm(params['cells_0'], h, c, table[decoder_inputs[:, t]])
    expected.append(_numpy_logits(params, h))
  np.testing.assert_allclose(logits, np.stack(expected, 1), rtol=1e-4, atol=1e-4)


def test_greedy_decode_equals_a_step_by_step_loop(image_batch):
  model = models.create('caption_tiny')
  images = image_batch['image']
  variables = model.init(jax.random.PRNGKey(2), images, image_batch['decoder_inputs'])
  params = jax.tree.map(lambda x: np.asarray(x, np.float64), variables['params'])
  v = np.asarray(model.apply(variables, images, method='encode'), np.float64)
  steps = 6

  def numpy_greedy(eos_bias):
    out = params['output_projection']
    bias = out['bias'].copy()
    bias[2] += eos_bias
    h, c = _numpy_start(model, params, v)
    token = np.full(len(v), 1)
    finished = np.zeros(len(v), bool)
    tokens = []
    for _ in range(steps):
      h, c = _lstm(params['cells_0'], h, c, params['embedding']['embedding'][token])
      logits = h @ out['kernel'] + bias
      logits[:, :2] = -np.inf  # PAD and BOS are never emitted
      token = np.where(finished, 0, logits.argmax(-1))
      finished |= token == 2
      tokens.append(token)
    return np.stack(tokens, 1)

  # Shift the EOS bias until some captions stop early and some do not.
  for eos_bias in np.linspace(-2, 4, 25):
    expected = numpy_greedy(eos_bias)
    ended = (expected == 2).any(1)
    if ended.any() and not ended.all():
      break
  else:
    pytest.fail('no EOS bias gives a mix of finished and unfinished captions')
  shifted = jax.tree.map(lambda x: x, variables)
  shifted['params']['output_projection']['bias'] = (
      variables['params']['output_projection']['bias'].at[2].add(eos_bias))
  decoder_inputs = image_batch['decoder_inputs']
  decoded, (logits, both) = jax.jit(lambda v, x, y: (
      model.apply(v, x, max_length=steps, method='greedy_decode'),
      model.apply(v, x, y, max_length=steps, method='logits_and_greedy_decode')))(
          shifted, images, decoder_inputs)
  np.testing.assert_array_equal(decoded['tokens'], expected)
  lengths = np.where(ended, (expected == 2).argmax(1) + 1, steps)
  np.testing.assert_array_equal(decoded['lengths'], lengths)
  # What evaluation calls: the same decode and the teacher-forced logits, from one encoder pass.
  np.testing.assert_array_equal(both['tokens'], expected)
  np.testing.assert_allclose(logits, model.apply(shifted, images, decoder_inputs), atol=1e-5)


def test_beam_search_of_one_is_greedy_and_beam_scores_are_caption_log_probs(image_batch):
  model = models.create('caption_tiny', max_decode_length=6)
  images = image_batch['image']
  variables = model.init(jax.random.PRNGKey(3), images, image_batch['decoder_inputs'])
  decode = jax.jit(lambda v, x: (model.apply(v, x, method='greedy_decode'),
                                 model.apply(v, x, beam_size=1, method='beam_search'),
                                 model.apply(v, x, beam_size=4, alpha=0.0, method='beam_search')))
  greedy, one, four = decode(variables, images)
  np.testing.assert_array_equal(one['tokens'], greedy['tokens'])
  np.testing.assert_allclose(one['log_prob'][:, 0], greedy['log_prob'], rtol=1e-5)
  # alpha 0: scores are log-probabilities, best first, and each is what teacher forcing gives
  # the beam's caption (tokens up to and including EOS).
  assert (np.diff(four['scores'], axis=1) <= 1e-6).all()
  np.testing.assert_allclose(four['scores'], four['log_prob'], rtol=1e-6)
  beams = np.asarray(four['beams']).reshape(-1, 6)
  decoder_inputs = np.concatenate([np.ones((len(beams), 1), np.int32), beams[:, :-1]], axis=1)
  logits = jax.jit(model.apply)(variables, np.repeat(images, 4, axis=0), decoder_inputs)
  log_probs = np.take_along_axis(np.asarray(jax.nn.log_softmax(logits)), beams[..., None], -1)
  ended = beams == 2
  length = np.where(ended.any(1), ended.argmax(1) + 1, 6)
  expected = (log_probs[..., 0] * (np.arange(6)[None, :] < length[:, None])).sum(1)
  np.testing.assert_allclose(four['log_prob'].reshape(-1), expected, rtol=1e-4, atol=1e-4)


def test_registry_and_tensorboard_pictures_of_the_encoder(image_batch):
  from train import visualize
  for name in ('caption_lstm', 'caption_vgg16_lstm', 'caption_tiny'):
    assert name in models.names()
  with pytest.raises(ValueError, match='image_as'):
    model = models.create('caption_tiny', image_as='both')
    model.init(jax.random.PRNGKey(0), image_batch['image'], image_batch['decoder_inputs'])
  model = models.create('caption_tiny')
  variables = model.init(jax.random.PRNGKey(0), image_batch['image'], image_batch['decoder_inputs'])
  pictures = visualize.tensorboard_images(model.apply, variables, image_batch['image'][0])
  assert 'filters/encoder/block1_conv1' in pictures


# Training.


def test_training_learns_to_read_two_digit_strips(tmp_path):
  config = ml_collections.ConfigDict({
      'seed': 0, 'dataset': 'digit_strips', 'data': {'train_size': 20_000, 'test_size': 300,
      'min_digits': 2, 'max_digits': 2}, 'task': 'captioning', 'model': 'caption_tiny',
      'model_kwargs': {'embed_dim': 32, 'hidden_size': 64,
                       'encoder_config': (16, 16, 'M', 32, 'M')},
      'batch_size': 32, 'eval_batch_size': 300, 'optimizer': 'adam', 'learning_rate': 3e-3,
      'schedule': 'constant', 'grad_clip_norm': 1.0, 'num_train_steps': 300,
      'log_every_steps': 100, 'eval_every_steps': 300, 'checkpoint_every_steps': 300,
      'tensorboard_images': False})
  final = trainer.train_and_evaluate(config, str(tmp_path))
  # Chance: 10% per digit, 1% per strip. Measured: teacher-forced 0.957, exact match 0.88.
  assert final['eval_accuracy'] > 0.9, final
  assert final['eval_exact_match'] > 0.7, final
  assert final['eval_token_accuracy'] > 0.9, final


# COCO captions.


@pytest.fixture(scope='module')
def coco_dir(tmp_path_factory):
  root = tmp_path_factory.mktemp('coco')
  return tiny_coco.build(str(root / 'tfds'), str(root / 'images'))


def test_coco_pipeline_vocabulary_captions_and_images(coco_dir):
  dataset = _create(coco_captions, data_dir=coco_dir, image_size=16, max_caption_length=6,
                    min_word_count=2, decode_threads=2)
  vocab = dataset.facts.vocab
  # Training words seen twice or more, most frequent first; 'zebra' appears only in val captions.
  counts = collections.Counter(word for _, captions in tiny_coco.EXAMPLES['train']
                               for caption in captions
                               for word in re.findall(r"[a-z]+(?:'[a-z]+)?", caption.lower()))
  frequent = sorted((w for w, n in counts.items() if n >= 2), key=lambda w: (-counts[w], w))
  assert vocab.tokens == ('<pad>', '<bos>', '<eos>', '<unk>', *frequent)
  assert 'bus' in frequent and 'sits' not in frequent and 'zebra' not in vocab.tokens
  evaluation = dataset.eval.fetch(np.arange(2), None)
  ids = lambda words: [vocab.tokens.index(w) if w in vocab.tokens else 3 for w in words]
  caption = ids(['a', 'zebra', 'on', 'the', 'grass'])
  np.testing.assert_array_equal(evaluation['targets'][0], caption + [2, 0])
  np.testing.assert_array_equal(evaluation['decoder_inputs'][0], [1] + caption + [0])
  np.testing.assert_array_equal(evaluation['target_mask'][0], [1] * 6 + [0])
  # The image: the stored JPEG decoded, resized to 16x16 and ImageNet-standardised.
  from PIL import Image
  stored = coco_captions.open_splits(coco_dir, ['val'])[0][0]['image']
  pil = Image.open(io.BytesIO(stored)).convert('RGB').resize((16, 16), Image.BILINEAR)
  expected = (np.asarray(pil) / 255.0 - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225]
  assert evaluation['image'].shape == (2, 16, 16, 3)
  np.testing.assert_allclose(evaluation['image'][0], expected, atol=1e-5)
  # Training: one caption per image per epoch, drawn from (seed, step); 9 words cut to 6.
  image0 = [coco_captions.encode_caption(c, vocab, 6)['targets']
            for c in tiny_coco.EXAMPLES['train'][0][1]]
  seen = set()
  n = len(tiny_coco.EXAMPLES['train'])
  for step in range(12):
    batch = next(pipeline.train_batches(dataset.train, n, seed=0, start_step=step))
    again = next(pipeline.train_batches(dataset.train, n, seed=0, start_step=step))
    np.testing.assert_array_equal(batch['targets'], again['targets'])
    epoch_order = pipeline.train_indices(n, n, 0, step)
    row = batch['targets'][list(epoch_order).index(0)]
    assert any((row == c).all() for c in image0)
    seen.add(row.tobytes())
  assert len(seen) == 3
  assert (dataset.facts.model_kwargs()['vocab_size'], dataset.facts.max_decode_length) == (
      len(vocab), 7)


def test_coco_captions_are_cached_and_read_again_when_the_dataset_changes(tmp_path, monkeypatch):
  root = tiny_coco.build(str(tmp_path / 'tfds'), str(tmp_path / 'images'))
  config = dict(data_dir=root, image_size=16, max_caption_length=6, min_word_count=2,
                decode_threads=1)
  first = _create(coco_captions, **config)
  directory = coco_captions.prepared_dir(root)
  for split in ('train', 'val'):
    with open(os.path.join(directory, 'captions_cache', f'{split}.json')) as f:
      assert json.load(f)['captions'] == [c for _, c in tiny_coco.EXAMPLES[split]]
  reads = []
  real = coco_captions.read_captions
  monkeypatch.setattr(coco_captions, 'read_captions',
                      lambda source: reads.append(len(source)) or real(source))
  second = _create(coco_captions, **config)
  assert reads == []  # both splits from the cache
  assert second.facts.vocab.tokens == first.facts.vocab.tokens
  np.testing.assert_array_equal(second.eval.fetch(np.arange(2), None)['targets'],
                                first.eval.fetch(np.arange(2), None)['targets'])
  info = os.path.join(directory, 'dataset_info.json')  # re-prepared: a newer dataset_info.json
  os.utime(info, ns=(os.stat(info).st_atime_ns, os.stat(info).st_mtime_ns + 10 ** 9))
  _create(coco_captions, **config)
  assert reads == [8, 2]
  with open(os.path.join(directory, 'captions_cache', 'val.json'), 'w') as f:
    f.write('{"key": ')  # a torn write: read the split again, no error
  _create(coco_captions, **config)
  assert reads == [8, 2, 2]


def test_coco_missing_data_says_how(tmp_path):
  # Training on the tiny COCO-layout dataset: tests/test_configs.py runs configs/coco_captions.py.
  missing = str(tmp_path / 'nothing')
  with pytest.raises(data.DatasetNotFoundError) as error:
    _create(coco_captions, data_dir=missing)
  message = str(error.value)
  assert '\n' not in message
  assert f'tfds build coco_captions --data_dir={missing}' in message
  assert os.path.join(missing, 'downloads', 'manual') in message and 'train2014.zip' in message
