"""train.predict and fine-tuning (configs/finetune_folder.py) on real images: a ConvNet trained
a few steps on Fashion-MNIST, then fine-tuned on Fashion-MNIST written out as an image folder."""

import importlib
import json
import os

import jax
import numpy as np
import pytest

from data import export_folder
from data import preprocessing
from train import experiment
from train import predict
from train import trainer


def small(config, **values):
  with config.unlocked():
    config.batch_size = 32
    config.num_train_steps = 8
    config.warmup_steps = 0
    config.log_every_steps = 4
    config.eval_every_steps = 8
    config.checkpoint_every_steps = 8
    config.tensorboard_images = False
    for key, value in values.items():
      config[key] = value
  return config


@pytest.fixture(scope='module')
def source(tmp_path_factory):
  """A Fashion-MNIST ConvNet workdir (standardised inputs) and the image folder."""
  root = tmp_path_factory.mktemp('finetune')
  config = importlib.import_module('configs.fashion_mnist_convnet').get_config()
  small(config)
  config.data.train_split = 'train[:256]'
  config.data.eval_split = 'test[:32]'
  workdir = str(root / 'source')
  trainer.train_and_evaluate(config, workdir)
  folder = str(root / 'folder')
  export_folder.export('fashion_mnist', folder, train_per_class=8, val_per_class=4)
  return workdir, folder


def test_predict_matches_a_direct_apply(source, tmp_path, capsys):
  workdir, folder = source
  image = os.path.join(folder, 'val', 'Sneaker', sorted(os.listdir(
      os.path.join(folder, 'val', 'Sneaker')))[0])
  out = str(tmp_path / 'p.json')
  assert predict.main([f'--workdir={workdir}', f'--image={image}', '--top=10',
                       f'--json={out}']) == 0
  rows = json.load(open(out))
  config, model, variables, _ = experiment.restore_variables(workdir)
  p = preprocessing.for_config(config)
  assert p.input_shape == (28, 28, 1) and p.channels == 'gray'
  x = preprocessing.eval_image(p, preprocessing.load_image(image))[None]
  logits = np.asarray(model.apply(variables, x), np.float64)[0]
  want = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
  assert [r['class'] for r in rows] == list(np.argsort(-want, kind='stable'))
  np.testing.assert_allclose([r['probability'] for r in rows], np.sort(want)[::-1], rtol=1e-5)
  assert rows[0]['name'] in ('T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal',
                             'Shirt', 'Sneaker', 'Bag', 'Ankle boot')
  printed = capsys.readouterr().out
  assert f'{rows[0]["name"]} ({rows[0]["class"]})' in printed
  # The preprocessing is the eval pipeline's: the exported PNG gives the dataset's own input.
  from data import fashion_mnist
  index = int(os.path.basename(image)[:-4])
  raw = fashion_mnist.read_split(fashion_mnist.default_manual_dir(), 'test')[0][index]
  np.testing.assert_allclose(x[0, ..., 0], (raw / 255 - 0.2860) / 0.3530, atol=1e-5)
  assert predict.main([f'--workdir={workdir}', f'--image={image}', '--top=11']) == 2
  assert 'between 1 and the number of classes, 10' in capsys.readouterr().err


def finetune_config(folder, source_dir, **values):
  config = importlib.import_module('configs.finetune_folder').get_config()
  return small(config, init_from=source_dir, data_dir=folder, **values)


def test_finetune_with_a_frozen_backbone(source, tmp_path):
  source_dir, folder = source
  workdir = str(tmp_path / 'ft')
  final = trainer.train_and_evaluate(finetune_config(folder, source_dir, freeze_backbone=True),
                                     workdir)
  assert 0 <= final['eval_accuracy'] <= 1
  saved = json.load(open(os.path.join(workdir, 'config.json')))
  assert saved['model'] == 'convnet' and saved['head'] == 'logits'
  assert saved['data']['channels'] == 'gray' and saved['data']['image_size'] == 28
  _, _, before, _ = experiment.restore_variables(source_dir)
  _, _, after, step = experiment.restore_variables(workdir)
  assert step == 8
  for name in before['params']:
    same = jax.tree.map(lambda a, b: bool(np.array_equal(a, b)), before['params'][name],
                        after['params'][name])
    assert all(jax.tree.leaves(same)) == (name != 'logits'), name
  # Resuming continues the fine-tune's own checkpoint, not the source's weights.
  config = finetune_config(folder, source_dir, freeze_backbone=True, num_train_steps=12)
  trainer.train_and_evaluate(config, workdir)
  _, _, resumed, step = experiment.restore_variables(workdir)
  assert step == 12
  # Once it has checkpoints, a fine-tune resumes even when its source has gone.
  moved = source_dir + '.moved'
  os.rename(source_dir, moved)
  try:
    config = finetune_config(folder, source_dir, freeze_backbone=True, num_train_steps=14)
    trainer.train_and_evaluate(config, workdir)
  finally:
    os.rename(moved, source_dir)
  assert experiment.restore_variables(workdir)[3] == 14
  assert not np.array_equal(resumed['params']['logits']['kernel'],
                            after['params']['logits']['kernel'])


def test_backbone_learning_rate_multiplier():
  from train import optim
  import ml_collections
  config = ml_collections.ConfigDict({
      'optimizer': 'sgd', 'momentum': 0.0, 'learning_rate': 1.0, 'num_train_steps': 10,
      'head': 'logits', 'backbone_learning_rate_multiplier': 0.1})
  params = {'conv1': {'kernel': np.ones(3, np.float32)}, 'logits': {'kernel': np.ones(2, np.float32)}}
  grads = jax.tree.map(np.ones_like, params)
  tx = optim.create_optimizer(config)
  updates, _ = tx.update(grads, tx.init(params), params)
  np.testing.assert_allclose(updates['conv1']['kernel'], -0.1)
  np.testing.assert_allclose(updates['logits']['kernel'], -1.0)
  with config.unlocked():
    config.head = None
  with pytest.raises(ValueError, match='init_from'):
    optim.create_optimizer(config)
