"""Every experiment config loads, can be overridden from the command line, and trains a few steps.

Datasets that need tfds preparation run on `tfds.testing.mock_data`; digits, Fashion-MNIST, the
movie-review snippets and Shakespeare run on the real data (CI prepares the last three first).
Models are shrunk where the full size would make the test slow (fewer classifier units, smaller
images, fewer recurrent units); the layer structure stays.
"""

import glob
import importlib
import math
import os

import pytest
import tensorflow_datasets as tfds

from train import config_checks
from train import trainer

CONFIG_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'configs')
EXPERIMENTS = sorted(os.path.basename(p)[:-3] for p in glob.glob(os.path.join(CONFIG_DIR, '*.py'))
                     if not os.path.basename(p).startswith(('_', 'common')))

_SEQ2SEQ = {'train_size': 64, 'test_size': 16, 'eval_batch_size': 8,
            'model_kwargs': {'embed_dim': 8, 'hidden_size': 16}}

# (config module, variant) -> overrides that make two steps fast; None: use tfds mock data.
RUNS = {
    ('default', ''): {},
    ('mnist_convnet', ''): {'mock': True},
    ('fashion_mnist_convnet', ''): {'eval_split': 'test[:64]'},
    ('fashion_mnist_vgg', ''): {'eval_split': 'test[:64]'},
    ('cifar10_vgg16_bn', ''): {'mock': True},
    ('cifar10_vgg16_bn', 'quick'): {'mock': True},
    ('imagenet_alexnet', ''): {'mock': True, 'image_size': 67,
                               'model_kwargs': {'hidden_features': (64, 64)}},
    ('imagenet_vgg16', ''): {'mock': True, 'image_size': 32,
                             'model_kwargs': {'hidden_features': (64, 64)}},
    ('imagenet_vgg16', 'bn'): {'mock': True, 'image_size': 32,
                               'model_kwargs': {'hidden_features': (64, 64)}},
    ('addition_seq2seq', ''): {**_SEQ2SEQ, 'num_digits': 2},
    ('addition_seq2seq', 'noattention'): {**_SEQ2SEQ, 'num_digits': 2},
    ('reversal_seq2seq', ''): {**_SEQ2SEQ, 'max_length': 6},
    ('dates_seq2seq', ''): _SEQ2SEQ,
    **{('ding_translation', variant): {'train_split': 'train[:512]', 'eval_split': 'test[:16]',
                                       'vocab_size': 200,
                                       'model_kwargs': {'embed_dim': 8, 'hidden_size': 16}}
       for variant in ('', 'noattention')},
    ('ted_translation', ''): {'mock': True, 'model_kwargs': {'embed_dim': 8, 'hidden_size': 16}},
    ('digit_captions', ''): {'train_size': 64, 'test_size': 16, 'eval_batch_size': 8,
                             'model_kwargs': {'embed_dim': 8, 'hidden_size': 16}},
    ('coco_captions', ''): {'tiny_coco': True, 'image_size': 32, 'min_word_count': 1,
                            'eval_batch_size': 8,
                            'model_kwargs': {'encoder_hidden': (16, 16), 'embed_dim': 8,
                                             'hidden_size': 16}},
    ('msft_forecast', ''): {'input_length': 8, 'horizon': 3, 'model_kwargs': {'hidden_size': 8}},
    ('co2_forecast', ''): {'input_length': 8, 'horizon': 3, 'model_kwargs': {'hidden_size': 8}},
    ('movie_reviews_lstm', ''): {'eval_split': 'test[:64]',
                                 'model_kwargs': {'embedding_size': 8, 'hidden_size': 8}},
    ('imdb_lstm', ''): {'mock': True, 'max_length': 16,
                        'model_kwargs': {'embedding_size': 8, 'hidden_size': 8}},
    ('shakespeare_char_lstm', ''): {'seq_len': 8, 'eval_works': ('phoenix_and_the_turtle',),
                                    'eval_row_length': 256, 'model_kwargs': {'hidden_size': 16}},
    **{('ptb_lstm_zaremba', variant): {'mock': True, 'seq_len': 2, 'eval_row_length': 16,
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
def test_config_trains_two_steps(tmp_path, name, variant):
  config = load(name, variant)
  overrides = dict(RUNS[name, variant])
  mock = overrides.pop('mock', False)
  if overrides.pop('tiny_coco', False):  # tests/tiny_coco.py: COCO's feature layout, 10 images
    import tiny_coco
    overrides['data_dir'] = tiny_coco.build(str(tmp_path / 'tfds'), str(tmp_path / 'images'))
  model_kwargs = overrides.pop('model_kwargs', {})
  with config.unlocked():
    config.update(overrides)
    config.model_kwargs.update(model_kwargs)
    config.batch_size = 8
    config.num_train_steps = 2
    config.warmup_steps = 0
    config.log_every_steps = 1
    config.eval_every_steps = 2
    config.checkpoint_every_steps = 2
    if config.schedule == 'step':
      config.decay_boundaries = (1,)
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
