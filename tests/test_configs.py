"""Every experiment config loads, can be overridden from the command line, and trains a few steps;
each pipeline's data options are declared once (data/__init__.py) and checked.

Datasets that need tfds preparation run on `tfds.testing.mock_data`; digits, Fashion-MNIST, the
movie-review snippets and Shakespeare run on the real data (CI prepares the last three first).
Models are shrunk where the full size would make the test slow (fewer classifier units, smaller
images, fewer recurrent units); the layer structure stays. The full-size VGG, ResNet, COCO
captioning and fine-tuning configs (`ABSTRACT`) are checked at their real size with
`jax.eval_shape` of the train and eval steps on real batches instead: compiling those steps is
most of a two-step run.
"""

import contextlib
import dataclasses
import glob
import importlib
import math
import os
import sys

import jax
import ml_collections
import pytest
import tensorflow_datasets as tfds

import data
from data import images
from models import cnn
from train import config_checks
from train import trainer

CONFIG_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'configs')
EXPERIMENTS = sorted(os.path.basename(p)[:-3] for p in glob.glob(os.path.join(CONFIG_DIR, '*.py'))
                     if not os.path.basename(p).startswith(('_', 'common')))

_SEQ2SEQ = {'eval_batch_size': 8, 'model_kwargs': {'embed_dim': 8, 'hidden_size': 16}}
_PROBLEMS = {'train_size': 64, 'test_size': 16}

# (config module, variant) -> overrides that make two steps fast ('data': of config.data;
# 'mock': run on tfds mock data; 'imagenet_like': on a tiny data.imagenet_like dataset, JPEG
# bytes that mock data cannot give without TensorFlow).
RUNS = {
    ('default', ''): {},
    ('mnist_convnet', ''): {'mock': True},
    ('fashion_mnist_convnet', ''): {'data': {'eval_split': 'test[:64]'}},
    ('fashion_mnist_vgg', ''): {'data': {'eval_split': 'test[:64]'}},
    ('cifar10_vgg16_bn', ''): {'mock': True},
    ('cifar10_vgg16_bn', 'quick'): {'mock': True},
    ('cifar10_resnet18', ''): {'mock': True},
    ('cifar10_resnet34', ''): {'mock': True},
    ('imagenet_alexnet', ''): {'imagenet_like': True, 'data': {'image_size': 67, 'workers': 0},
                               'model_kwargs': {'hidden_features': (64, 64)}},
    ('imagenet_vgg16', ''): {'imagenet_like': True, 'data': {'workers': 0}},
    ('imagenet_vgg16', 'bn'): {'imagenet_like': True, 'data': {'workers': 0}},
    ('addition_seq2seq', ''): {**_SEQ2SEQ, 'data': {**_PROBLEMS, 'num_digits': 2}},
    ('addition_seq2seq', 'noattention'): {**_SEQ2SEQ, 'data': {**_PROBLEMS, 'num_digits': 2}},
    ('reversal_seq2seq', ''): {**_SEQ2SEQ, 'data': {**_PROBLEMS, 'max_length': 6}},
    ('dates_seq2seq', ''): {**_SEQ2SEQ, 'data': _PROBLEMS},
    **{('ding_translation', variant): {'data': {'train_split': 'train[:512]',
                                                'eval_split': 'test[:16]', 'vocab_size': 200},
                                       'model_kwargs': {'embed_dim': 8, 'hidden_size': 16}}
       for variant in ('', 'noattention')},
    ('ted_translation', ''): {'mock': True, 'model_kwargs': {'embed_dim': 8, 'hidden_size': 16}},
    ('digit_captions', ''): {'data': _PROBLEMS, 'eval_batch_size': 8,
                             'model_kwargs': {'embed_dim': 8, 'hidden_size': 16}},
    ('coco_captions', ''): {'tiny_coco': True, 'data': {'min_word_count': 1},
                            'eval_batch_size': 8},
    ('finetune_folder', ''): {'image_folder': True},
    ('msft_forecast', ''): {'data': {'input_length': 8, 'horizon': 3},
                            'model_kwargs': {'hidden_size': 8}},
    ('co2_forecast', ''): {'data': {'input_length': 8, 'horizon': 3},
                           'model_kwargs': {'hidden_size': 8}},
    ('movie_reviews_lstm', ''): {'data': {'eval_split': 'test[:64]'},
                                 'model_kwargs': {'embedding_size': 8, 'hidden_size': 8}},
    ('imdb_lstm', ''): {'mock': True, 'data': {'max_length': 16},
                        'model_kwargs': {'embedding_size': 8, 'hidden_size': 8}},
    ('shakespeare_char_lstm', ''): {'data': {'seq_len': 8, 'eval_row_length': 256,
                                             'eval_works': ('phoenix_and_the_turtle',)},
                                    'model_kwargs': {'hidden_size': 16}},
    **{('ptb_lstm_zaremba', variant): {'mock': True, 'data': {'seq_len': 2, 'eval_row_length': 16},
                                       'model_kwargs': {'hidden_size': 8, 'embedding_size': 8}}
       for variant in ('small', 'medium', 'large')},
}


def load(name, variant=''):
  module = importlib.import_module(f'configs.{name}')
  return module.get_config(variant) if variant else module.get_config()


def test_every_experiment_is_covered():
  assert sorted({name for name, _ in RUNS}) == EXPERIMENTS


@pytest.mark.parametrize('name, variant', sorted(RUNS))
def test_config_has_shared_keys_and_overridable_fields(name, variant):
  config = load(name, variant)
  config_checks.validate_config(config)
  for key in ('data_dir', 'model_kwargs', 'eval_batch_size', 'keep_checkpoints', 'log_every_steps'):
    assert key in config
  # A None that is not a typed placeholder cannot be set with --config.key=value.
  for key, value in config.items():
    if value is None:
      assert config.get_type(key) is not type(None), f'{name}: {key} is None without a type'
  assert config.num_train_steps >= config.eval_every_steps or name == 'default'


@pytest.mark.parametrize('name, variant', sorted(RUNS))
def test_config_data_section_holds_every_option_of_its_pipeline(name, variant):
  config = load(name, variant)
  fields = [f.name for f in dataclasses.fields(data.options_class(config.dataset))]
  assert sorted(config.data) == sorted(fields)
  options = data.parse_options(config.dataset, config.data)  # valid keys, values of the right type
  assert dataclasses.asdict(options) == {k: v for k, v in config.data.to_dict().items()}
  for key, value in config.data.items():
    if value is None:
      assert config.data.get_type(key) is not type(None), f'{name}: data.{key} is untyped'
  assert not set(fields) & set(config), f'{name}: a data option at the top level'


@pytest.mark.parametrize('name', data.names())
def test_every_pipeline_documents_each_option_once_with_one_default(name):
  cls = data.options_class(name)
  assert dataclasses.is_dataclass(cls) and cls.__dataclass_params__.frozen
  docs = ''.join(c.__doc__ or '' for c in cls.__mro__)
  for field in dataclasses.fields(cls):
    assert f'    {field.name}:' in docs or f', {field.name}:' in docs, (
        f'{name}: option {field.name} is not documented')
  # `options()` with nothing set gives the dataclass defaults, and `create` builds them back.
  assert data.parse_options(name, data.options(name)) == data.parse_options(name, None) == cls()


def test_an_unknown_data_key_is_an_error_naming_the_valid_keys():
  with pytest.raises(ValueError) as error:
    data.options('mnist', augmnt=True)
  message = str(error.value)
  assert "Dataset 'mnist' has no data option 'augmnt'. Did you mean 'augment'?" in message
  for field in dataclasses.fields(images.MnistOptions):
    assert field.name in message
  config = ml_collections.ConfigDict({'dataset': 'digits', 'batch_size': 4,
                                      'data': {'agument': False}})
  with pytest.raises(ValueError, match="no data option 'agument'. Did you mean 'augment'"):
    data.create(config)
  # A data option left at the top level (the old flat form) is refused, not ignored.
  with pytest.raises(ValueError, match=r"'augment' is a data option .* config\.data\.augment"):
    data.create(ml_collections.ConfigDict({'dataset': 'digits', 'augment': False}))
  with pytest.raises(ValueError, match="Unknown dataset 'mnits'. Did you mean 'mnist'"):
    data.options('mnits')


def test_a_data_value_of_the_wrong_type_is_an_error():
  with pytest.raises(ValueError, match="'augment' of dataset 'mnist' must be bool, got 'yes'"):
    data.options('mnist', augment='yes')
  with pytest.raises(ValueError, match="'train_size' of dataset 'addition' must be int"):
    data.parse_options('addition', {'train_size': 1.5})
  # JSON (a workdir's config.json) has lists for tuples, and ints may stand for floats.
  options = data.parse_options('shakespeare', {'eval_works': ['macbeth', 'sonnets']})
  assert options.eval_works == ('macbeth', 'sonnets')
  assert data.parse_options('movie_reviews', {'length_coverage': 1}).length_coverage == 1.0


def test_a_default_lives_in_one_place(monkeypatch):
  # Changing nothing gives the options dataclass's default; changing its default changes the run.
  config = load('default')
  assert config.data.augment == data.options_class('digits')().augment is True
  assert data.create(config).train.augment is not None
  plain = ml_collections.ConfigDict({'dataset': 'digits', 'batch_size': 4})  # no data section
  assert data.create(plain).train.augment is not None
  # The dataclass default is the only one: the config file and `create` both follow it.
  monkeypatch.setattr(data.options_class('digits').__init__, '__defaults__', (False,))
  assert load('default').data.augment is False
  assert data.create(plain).train.augment is None


def test_mnist_config_does_not_augment():
  config = load('mnist_convnet')  # flax/examples/mnist trains on the plain images
  assert config.data.augment is False
  with tfds.testing.mock_data(num_examples=8):
    dataset = data.create(config)
  assert dataset.train.augment is None


def test_data_options_are_set_and_misspellings_refused_on_the_command_line(monkeypatch):
  from absl import flags
  from ml_collections import config_flags

  def parse(*overrides):
    argv = ['prog', f'--config={os.path.join(CONFIG_DIR, "mnist_convnet.py")}', *overrides]
    monkeypatch.setattr(sys, 'argv', argv)  # config_flags reads the overrides from sys.argv
    values = flags.FlagValues()
    config_flags.DEFINE_config_file('config', flag_values=values, lock_config=True)
    values(argv)
    return values.config

  config = parse('--config.data.augment=True', '--config.data.train_split=train[:100]')
  assert config.data.augment is True and config.data.train_split == 'train[:100]'
  with pytest.raises(AttributeError, match='Did you mean "augment"'):
    parse('--config.data.augmnt=True')


# Full-size models whose train step takes 15-25 s to compile on 2 CPU cores: their configs are
# checked to the step's output shapes (`jax.eval_shape` of the train and eval steps on the
# pipeline's real batches), not trained. Their layers and parameter counts are checked in
# tests/test_cnn.py and the trainer's paths by the configs trained here with smaller models.
ABSTRACT = {('cifar10_vgg16_bn', ''), ('cifar10_vgg16_bn', 'quick'), ('cifar10_resnet18', ''),
            ('cifar10_resnet34', ''), ('imagenet_vgg16', ''), ('imagenet_vgg16', 'bn'),
            ('fashion_mnist_vgg', ''), ('coco_captions', ''), ('finetune_folder', '')}


def configured(tmp_path, name, variant):
  """The config with RUNS' overrides, batch 8 and two steps; returns it and whether it reads
  tfds mock data."""
  config = load(name, variant)
  overrides = dict(RUNS[name, variant])
  mock = overrides.pop('mock', False)
  if overrides.pop('tiny_coco', False):  # tests/tiny_coco.py: COCO's feature layout, 10 images
    import tiny_coco
    overrides['data_dir'] = tiny_coco.build(str(tmp_path / 'tfds'), str(tmp_path / 'images'))
  if overrides.pop('image_folder', False):  # the digits as a folder of PNGs, 2 per class
    from data import export_folder
    export_folder.export('digits', str(tmp_path / 'folder'), train_per_class=2, val_per_class=1)
    overrides['data_dir'] = str(tmp_path / 'folder')
  if overrides.pop('imagenet_like', False):
    from data import imagenet_like
    overrides['data_dir'] = imagenet_like.write(str(tmp_path / 'tfds'), num_train=16, num_eval=8,
                                                sizes=((80, 60), (60, 90)))
  model_kwargs = overrides.pop('model_kwargs', {})
  data_options = overrides.pop('data', {})
  with config.unlocked():
    config.update(overrides)
    config.model_kwargs.update(model_kwargs)
    config.data.update(data_options)
    config.batch_size = 8
    config.num_train_steps = 2
    config.warmup_steps = 0
    config.log_every_steps = 1
    config.eval_every_steps = 2
    config.checkpoint_every_steps = 2
    if config.schedule == 'step':
      config.decay_boundaries = (1,)
  return config, mock


def test_full_size_configs_are_the_abstract_ones():
  assert ABSTRACT <= set(RUNS)
  for name, variant in ABSTRACT:  # checked at their configs' full size
    overrides = RUNS[name, variant]
    assert 'model_kwargs' not in overrides and 'image_size' not in overrides.get('data', {})


@pytest.mark.parametrize('name, variant', sorted(set(RUNS) - ABSTRACT))
def test_config_trains_two_steps(tmp_path, name, variant):
  config, mock = configured(tmp_path, name, variant)
  if mock:
    with tfds.testing.mock_data(num_examples=16):
      final = trainer.train_and_evaluate(config, str(tmp_path))
  else:
    final = trainer.train_and_evaluate(config, str(tmp_path))
  if 'eval_accuracy' in final:  # forecasters report errors (eval_rmse), not accuracy
    assert 0.0 <= final['eval_accuracy'] <= 1.0
  assert math.isfinite(final['eval_loss'])
  assert final['train_loss'] > 0 and final['eval_loss'] > 0
  assert os.path.isdir(tmp_path / 'checkpoints' / '2')


@pytest.mark.parametrize('name, variant', sorted(ABSTRACT))
def test_full_size_config_steps_have_the_state_and_metric_shapes(tmp_path, name, variant):
  from data import pipeline
  from train import experiment as experiment_lib
  from train import optim
  from train import platform
  config, mock = configured(tmp_path, name, variant)
  with tfds.testing.mock_data(num_examples=16) if mock else contextlib.nullcontext():
    experiment = experiment_lib.build(config)
    train_batch = pipeline.train_batch(experiment.dataset.train, config.batch_size, config.seed, 0)
    eval_batch = pipeline.eval_batch(experiment.dataset.eval, experiment.eval_batch_size, 0)
  state, _ = experiment_lib.abstract_train_state(
      config, experiment.model, optim.create_optimizer(config), experiment.sample_batch(),
      experiment.task, platform.make_mesh())
  new_state, sums, stats = jax.eval_shape(experiment_lib.make_train_step(experiment.task), state,
                                          train_batch)
  shapes = lambda tree: jax.tree.map(lambda x: (x.shape, x.dtype), tree)
  assert shapes(new_state) == shapes(state)  # a step keeps every parameter and statistic
  eval_sums = jax.eval_shape(experiment_lib.make_eval_step(experiment.task), state, eval_batch)
  assert set(sums) <= set(eval_sums)  # the eval step reports what training does, maybe more
  assert all(s.shape == () for s in jax.tree.leaves((sums, eval_sums, stats)))
  assert all(len(x) == 8 for x in jax.tree.leaves(train_batch))  # the real batch, not a sample
  # Where the config runs a registry model at the input and classes its count is pinned at
  # (models.cnn.MODEL_INFO: VGG-16 at 224x224 with 1,000 classes, the Fashion-MNIST VGG), the
  # count is that one.
  info = cnn.MODEL_INFO.get(config.model)
  counted_as_published = (info is not None and experiment.model.num_classes == info.num_classes
                          and train_batch['image'].shape[1:] == info.input_shape)
  assert counted_as_published == (name in ('imagenet_vgg16', 'fashion_mnist_vgg'))  # it runs
  if counted_as_published:
    assert sum(math.prod(x.shape) for x in jax.tree.leaves(state.params)) == info.params

