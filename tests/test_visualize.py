"""Tests of train/visualize.py: activations, PNG grids, curves, attention maps, TensorBoard images.

One tiny digits run (4 steps, evaluated twice) is shared by the tests that need a workdir; the
commands are called in-process through `visualize.main` (one test runs the real `-m` entry point).
"""

import io
import json
import math
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

import models
from models.layers import Conv2D
from train import experiment, visualize

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def init(model, x, seed=0):
  """Variables of `model` drawn with NumPy: no jax.random program to compile."""
  shapes = jax.eval_shape(model.init, jax.random.PRNGKey(0), x)
  rng = np.random.default_rng(seed)
  return jax.tree.map(lambda s: jnp.asarray(0.3 * rng.standard_normal(s.shape), s.dtype), shapes)


def png(path):
  """Opens a PNG, checking that it is one, and returns it as an array."""
  with open(path, 'rb') as f:
    assert f.read(8) == b'\x89PNG\r\n\x1a\n'
  image = Image.open(path)
  image.load()
  return image


def assert_not_blank(image):
  assert np.asarray(image.convert('RGB'), np.float32).var() > 0


def expected_grid_png_size(channels, height, width, pad=1):
  """The size `save_grid` gives `tile_grid` of `channels` tiles at its automatic scale."""
  columns = math.ceil(math.sqrt(channels))
  rows = math.ceil(channels / columns)
  grid_w, grid_h = columns * (width + pad) + pad, rows * (height + pad) + pad
  scale = visualize.grid_scale(grid_w)
  return grid_w * scale, grid_h * scale + visualize.TITLE_HEIGHT


SHORT_RUN = ['--config.num_train_steps=4', '--config.log_every_steps=2',
             '--config.eval_every_steps=2', '--config.checkpoint_every_steps=4',
             '--config.warmup_steps=1']


@pytest.fixture(scope='module')
def digits_workdir(tmp_path_factory):
  """The default experiment cut to 4 steps through `train.main`: evaluations (and the
  TensorBoard images train.main asks for) at 2 and 4."""
  workdir = str(tmp_path_factory.mktemp('digits'))
  result = subprocess.run([sys.executable, '-m', 'train.main', f'--workdir={workdir}', *SHORT_RUN],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr
  return workdir


def run_main(capsys, *argv):
  code = visualize.main(list(argv))
  out, err = capsys.readouterr()
  return code, out, err


# Activations.


def test_capture_activations_equal_a_direct_forward_pass():
  model = models.create('convnet', features=(4, 8), hidden=16)
  x = jnp.asarray(np.random.default_rng(1).standard_normal((2, 8, 8, 1)), jnp.float32)
  variables = init(model, x)
  got = visualize.capture_activations(model, variables, x, ['conv1', 'conv2', 'logits'])
  assert list(got) == ['conv1', 'conv2', 'logits']
  params = variables['params']
  conv1 = Conv2D(1, 4, 3, padding='SAME').apply({'params': params['conv1']}, x)
  np.testing.assert_allclose(got['conv1'], conv1, rtol=1e-6, atol=1e-6)
  pooled = nn_avg_pool(jax.nn.relu(conv1))
  conv2 = Conv2D(4, 8, 3, padding='SAME').apply({'params': params['conv2']}, pooled)
  np.testing.assert_allclose(got['conv2'], conv2, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(got['logits'], model.apply(variables, x), rtol=1e-6, atol=1e-6)
  # Every layer, in call order, when no names are given.
  every = visualize.capture_activations(model, variables, x[0])
  assert list(every)[:4] == ['conv1', 'pool1', 'conv2', 'pool2'] and 'fc1' in every
  assert every['conv1'].shape == (1, 8, 8, 4)


def nn_avg_pool(x):
  return x.reshape(x.shape[0], x.shape[1] // 2, 2, x.shape[2] // 2, 2, x.shape[3]).mean((2, 4))


def test_capture_activations_of_vgg_with_batch_norm():
  model = models.create('vgg_tiny')
  x = jnp.asarray(np.random.default_rng(1).standard_normal((1, 8, 8, 1)), jnp.float32)
  variables = init(model, x)
  stats = jax.tree.map(jnp.abs, variables['batch_stats'])  # non-trivial statistics, var > 0
  variables = {'params': variables['params'], 'batch_stats': stats}
  got = visualize.capture_activations(model, variables, x,
                                      ['block1_pool', 'block2_conv1', 'predictions'])
  conv = Conv2D(8, 16, 3, padding=1).apply(
      {'params': variables['params']['block2_conv1']}, got['block1_pool'])
  np.testing.assert_allclose(got['block2_conv1'], conv, rtol=1e-6, atol=1e-6)
  np.testing.assert_allclose(got['predictions'], model.apply(variables, x), rtol=1e-6, atol=1e-6)
  assert visualize.conv_layer_names(model, variables, x) == ['block1_conv1', 'block2_conv1']


def test_unknown_layer_names_the_valid_ones():
  model = models.create('convnet', features=(4,), hidden=8)
  x = np.zeros((8, 8, 1), np.float32)
  variables = init(model, x[None])
  with pytest.raises(visualize.UsageError, match='unknown layer conv9 .*valid layers: conv1, '
                     'pool1, Flatten_0, fc1, logits'):
    visualize.capture_activations(model, variables, x, ['conv1', 'conv9'])


# Grids.


def test_tile_grid_normalises_each_tile_and_pads_with_nan():
  tiles = np.stack([np.arange(4.0).reshape(2, 2), np.full((2, 2), 7.0), -np.eye(2) * 5])
  grid = visualize.tile_grid(tiles)
  assert grid.shape == (2 * 3 + 1, 2 * 3 + 1)  # 2 columns, 2 rows, 1-pixel padding
  np.testing.assert_allclose(grid[1:3, 1:3], [[0, 1 / 3], [2 / 3, 1]])
  np.testing.assert_array_equal(grid[1:3, 4:6], 0)  # a constant tile
  np.testing.assert_allclose(grid[4:6, 1:3], [[0, 1], [1, 0]])
  assert np.isnan(grid[0]).all() and np.isnan(grid[:, 3]).all() and np.isnan(grid[4:6, 4:6]).all()
  rgb = visualize.colorize(grid)
  assert rgb.shape == (7, 7, 3) and rgb.dtype == np.uint8 and (rgb[0] == 255).all()


def test_filter_tiles_rgb_and_grey():
  assert visualize.filter_tiles(np.zeros((5, 5, 3, 7))).shape == (7, 5, 5, 3)
  assert visualize.filter_tiles(np.zeros((3, 3, 1, 4))).shape == (4, 3, 3)
  assert visualize.filter_tiles(np.zeros((3, 3, 8, 4))).shape == (4, 3, 3)


def test_save_grid_has_the_exact_size(tmp_path):
  grid = visualize.tile_grid(np.random.default_rng(0).normal(size=(10, 5, 4)))
  path = visualize.save_grid(grid, str(tmp_path / 'g.png'), 'a title', scale=3)
  image = png(path)
  assert image.size == (grid.shape[1] * 3, grid.shape[0] * 3 + visualize.TITLE_HEIGHT)
  assert_not_blank(image)


# The features command.


def test_features_of_a_checkpoint(digits_workdir, tmp_path, capsys):
  out = str(tmp_path / 'maps')
  code, stdout, err = run_main(capsys, 'features', f'--workdir={digits_workdir}', '--index=3',
                               '--layers=conv1,conv2,fc1', f'--out={out}')
  assert code == 0, err
  assert 'convnet at step 4; input: eval example 3 (label ' in stdout
  assert 'prediction: class' in stdout
  assert sorted(os.listdir(out)) == ['features_conv1.png', 'features_conv2.png', 'features_fc1.png',
                                     'filters_conv1.png', 'input.png']
  for name in os.listdir(out):
    assert_not_blank(png(os.path.join(out, name)))
  assert png(os.path.join(out, 'features_conv1.png')).size == expected_grid_png_size(32, 8, 8)
  assert png(os.path.join(out, 'features_conv2.png')).size == expected_grid_png_size(64, 4, 4)
  assert png(os.path.join(out, 'filters_conv1.png')).size == expected_grid_png_size(32, 3, 3)
  # The default: every conv layer, into WORKDIR/visualize.
  code, stdout, err = run_main(capsys, 'features', f'--workdir={digits_workdir}')
  assert code == 0, err
  assert sorted(os.listdir(os.path.join(digits_workdir, 'visualize'))) == [
      'features_conv1.png', 'features_conv2.png', 'filters_conv1.png', 'input.png']


def test_features_of_an_image_file(digits_workdir, tmp_path, capsys):
  picture = np.full((40, 32), 255, np.uint8)  # a dark "1" on light paper
  picture[5:35, 14:19] = 0
  Image.fromarray(picture).save(tmp_path / 'one.png')
  image = visualize.image_from_file(str(tmp_path / 'one.png'), (8, 8, 1), invert=True)
  assert image.shape == (8, 8, 1) and image.min() >= 0 and image.max() <= 1
  assert image[4, 3:5].mean() > 0.5 > image[4, 0]  # the stroke is bright after --invert
  out = str(tmp_path / 'maps')
  code, stdout, err = run_main(capsys, 'features', f'--workdir={digits_workdir}',
                               f'--image={tmp_path / "one.png"}', '--invert', '--layers=conv2',
                               f'--out={out}')
  assert code == 0, err
  assert 'input: one.png' in stdout
  assert sorted(os.listdir(out)) == ['features_conv2.png', 'filters_conv1.png', 'input.png']
  assert_not_blank(png(os.path.join(out, 'input.png')))


def test_command_line_errors(digits_workdir, tmp_path, capsys):
  code, _, err = run_main(capsys, 'features', f'--workdir={digits_workdir}',
                          '--layers=conv1,conv3', f'--out={tmp_path}')
  assert code == 2
  assert err.count('\n') == 1
  assert err.startswith('error: unknown layer conv3 of ConvNet; valid layers: conv1, pool1, conv2')
  code, _, err = run_main(capsys, 'features', f'--workdir={tmp_path / "missing"}')
  assert (code, err) == (2, f'error: workdir {tmp_path / "missing"} does not exist\n')
  code, _, err = run_main(capsys, 'curves', f'--workdir={digits_workdir}', '--metrics=eval_bleu')
  assert code == 2 and 'logged metrics: train_accuracy, train_loss' in err
  code, _, err = run_main(capsys, 'attention', f'--workdir={digits_workdir}', '--input=1+2')
  assert code == 2 and 'not a sequence-to-sequence model' in err
  code, _, err = run_main(capsys, 'features', f'--workdir={digits_workdir}', '--index=360')
  assert code == 2 and 'outside the eval split (0..359)' in err


def test_module_entry_point_reports_a_missing_workdir(tmp_path):
  result = subprocess.run([sys.executable, '-m', 'train.visualize', 'features',
                           f'--workdir={tmp_path / "nowhere"}'], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
  assert result.returncode == 2
  assert result.stderr == f'error: workdir {tmp_path / "nowhere"} does not exist\n'


# Curves.


def test_curves_of_several_workdirs(digits_workdir, tmp_path, capsys):
  for name, scale in (('a/run', 1.0), ('b/run', 2.0)):
    os.makedirs(tmp_path / name)
    with open(tmp_path / name / 'metrics.jsonl', 'w') as f:
      for step in range(10, 110, 10):
        f.write(json.dumps({'step': step, 'train_loss': scale / step}) + '\n')
        if step % 50 == 0:
          f.write(json.dumps({'step': step, 'eval_accuracy': 1 - scale / step}) + '\n')
  runs = visualize.read_runs([str(tmp_path / 'a/run'), str(tmp_path / 'b/run'), digits_workdir])
  assert list(runs)[:2] == ['a/run', 'b/run']  # equal names get their parent directory
  out = str(tmp_path / 'curves.png')
  code, stdout, err = run_main(capsys, 'curves', f'--workdir={tmp_path / "a/run"}',
                               f'--workdir={tmp_path / "b/run"}', f'--workdir={digits_workdir}',
                               '--metrics=train_loss,eval_accuracy', f'--out={out}')
  assert code == 0, err
  image = png(out)
  assert image.size == (840, 300)  # two 420x300 subplots side by side
  assert_not_blank(image)


# TensorBoard.


def test_tensorboard_gets_filters_and_feature_maps_at_each_eval(digits_workdir):
  from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
  events = EventAccumulator(os.path.join(digits_workdir, 'tensorboard'))
  events.Reload()
  assert sorted(events.Tags()['images']) == ['features/conv1', 'features/conv2', 'filters/conv1']
  for tag in events.Tags()['images']:
    records = events.Images(tag)
    assert [r.step for r in records] == [2, 4]
    image = Image.open(io.BytesIO(records[-1].encoded_image_string))
    assert image.size == (records[-1].width, records[-1].height) and image.width >= 128
    assert_not_blank(image)


def test_tensorboard_images_can_be_turned_off(tmp_path):
  from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
  result = subprocess.run([sys.executable, '-m', 'train.main', f'--workdir={tmp_path}',
                           *SHORT_RUN, '--config.tensorboard_images=False'],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr
  events = EventAccumulator(str(tmp_path / 'tensorboard'))
  events.Reload()
  assert events.Tags()['images'] == [] and 'eval_accuracy' in events.Tags()['scalars']


class _Writer:
  enabled = True

  def __init__(self):
    self.images = {}

  def add_image(self, tag, image, step):
    self.images[tag] = image


class _Experiment:
  def __init__(self, dataset):
    self.dataset = dataset


def test_tensorboard_hook_skips_what_has_no_conv_layers():
  import flax.linen as nn
  from data.pipeline import ArraySource, Dataset, DatasetFacts

  class Dense(nn.Module):

    @nn.compact
    def __call__(self, x, train=False):
      return nn.Dense(3)(x.reshape(x.shape[0], -1))

  images = Dataset(train=None, eval=ArraySource({'image': np.ones((2, 4, 4, 1), np.float32)}),
                   facts=DatasetFacts())
  tokens = Dataset(train=None, eval=ArraySource({'inputs': np.ones((2, 5), np.int32)}),
                   facts=DatasetFacts())
  conv = models.create('convnet', features=(4,), hidden=8)

  def state(model):
    variables = init(model, jnp.ones((1, 4, 4, 1)))
    return experiment.TrainState(step=0, params=variables['params'], model_state={}, opt_state=None,
                              rng=None, apply_fn=model.apply, tx=None)

  writer = _Writer()
  hook = visualize.TensorBoardImages()
  hook(writer, state(Dense()), _Experiment(images), 1)
  hook(writer, state(conv), _Experiment(tokens), 1)
  assert writer.images == {}
  hook(writer, state(conv), _Experiment(images), 1)
  assert sorted(writer.images) == ['features/conv1', 'filters/conv1']
  assert all(image.dtype == np.uint8 and image.shape[-1] == 3 for image in writer.images.values())


# Attention.


def test_plot_attention(tmp_path):
  weights = jax.nn.softmax(np.random.default_rng(0).standard_normal((4, 6)) * 3, axis=-1)
  path = visualize.plot_attention(weights, list('123+45'), ['1', '6', '8', '<eos>'],
                                  str(tmp_path / 'a.png'), title='123+45 -> 168')
  image = png(path)
  assert image.width > 300 and image.height > 200
  assert_not_blank(image)
  with pytest.raises(ValueError, match='do not match'):
    visualize.plot_attention(weights, list('12+45'), list('168'), str(tmp_path / 'b.png'))


def test_attention_command_with_a_fresh_model(tmp_path, capsys):
  (tmp_path / 'tiny_addition.py').write_text(
      'from configs import addition_seq2seq\n\n\n'
      'def get_config():\n'
      '  config = addition_seq2seq.get_config()\n'
      "  config.model, config.model_kwargs = 'seq2seq_tiny', {}\n"
      '  config.data.train_size, config.data.test_size = 100, 10\n'
      '  return config\n')
  out = tmp_path / 'attention.png'
  code, stdout, err = run_main(capsys, 'attention', f'--config={tmp_path / "tiny_addition.py"}',
                               '--input=123+45', f'--out={out}')
  assert code == 0, err
  assert stdout.startswith('123+45 -> ')
  assert_not_blank(png(out))


def test_uint8_eval_images_reach_the_pictures_normalised_as_in_the_step():
  from data.pipeline import ArraySource, ClassificationFacts, Dataset
  from train import tasks
  pixels = np.array([[[[0, 255, 51]]], [[[255, 0, 102]]]], np.uint8)
  source = ArraySource({'image': pixels, 'label': np.zeros(2, np.int32)})
  facts = ClassificationFacts(2, (1, 1, 3), (0.5, 0.5, 0.2), (0.5, 0.25, 0.1))
  task = tasks.Classification(**facts.task_kwargs())
  run = experiment.Experiment(config=None, dataset=Dataset(source, source, facts), task=task,
                              model=None, model_kwargs={}, dtype=jnp.float32)
  low, high = visualize.eval_pixel_range(source, prepare=run.prepare)
  np.testing.assert_allclose(low, [-1, -2, 0], atol=1e-6)
  np.testing.assert_allclose(high, [1, 2, 2], atol=1e-6)
  prepared = run.prepare(source.fetch(np.arange(2), None))
  assert prepared['image'].dtype == np.float32 and isinstance(prepared['image'], np.ndarray)
