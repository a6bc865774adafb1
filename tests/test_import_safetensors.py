"""torchvision `.safetensors` files are imported without PyTorch: a Flax VGG-11-BN with random
weights is written out in torchvision's names and layouts with NumPy alone (the layouts spelled
out here, independently of the importer), saved with `safetensors.numpy`, imported through the
command line with `import torch` failing, and must give the original model's logits back."""

import sys

import jax
import numpy as np
import pytest

safetensors_numpy = pytest.importorskip('safetensors.numpy')

import models  # noqa: E402
from train import experiment  # noqa: E402
from train import import_weights  # noqa: E402

# torchvision's vgg11_bn: features.N of each conv (conv, bn, relu; 'M' one index), then
# classifier.0, .3, .6.
CONV_INDICES = [0, 4, 8, 11, 15, 18, 22, 25]
CONV_NAMES = ['block1_conv1', 'block2_conv1', 'block3_conv1', 'block3_conv2', 'block4_conv1',
              'block4_conv2', 'block5_conv1', 'block5_conv2']


def torchvision_state_dict(variables):
  params, stats = variables['params'], variables['batch_stats']
  state = {}
  for index, name in zip(CONV_INDICES, CONV_NAMES):
    state[f'features.{index}.weight'] = np.transpose(params[name]['kernel'], (3, 2, 0, 1))
    state[f'features.{index}.bias'] = params[name]['bias']
    bn = name.replace('conv', 'bn')
    state[f'features.{index + 1}.weight'] = params[bn]['scale']
    state[f'features.{index + 1}.bias'] = params[bn]['bias']
    state[f'features.{index + 1}.running_mean'] = stats[bn]['mean']
    state[f'features.{index + 1}.running_var'] = stats[bn]['var']
    state[f'features.{index + 1}.num_batches_tracked'] = np.array(7, np.int64)
  # fc1 reads the 7x7x512 map; torch flattens it (c, h, w), Flax (h, w, c).
  fc1 = np.asarray(params['fc1']['kernel'])  # [(h, w, c), out]
  channels = params[CONV_NAMES[-1]]['kernel'].shape[-1]
  fc1 = fc1.reshape(7, 7, channels, -1).transpose(2, 0, 1, 3).reshape(channels * 49, -1)
  state['classifier.0.weight'], state['classifier.0.bias'] = fc1.T, params['fc1']['bias']
  for index, name in ((3, 'fc2'), (6, 'predictions')):
    state[f'classifier.{index}.weight'] = np.asarray(params[name]['kernel']).T
    state[f'classifier.{index}.bias'] = params[name]['bias']
  return {k: np.ascontiguousarray(np.asarray(v)) for k, v in state.items()}


def test_safetensors_import_without_torch(tmp_path, monkeypatch, capsys):
  model = models.create('vgg11_bn', num_classes=10, hidden_features=(32, 32), pooled_size=7)
  x = np.random.default_rng(0).normal(size=(2, 64, 64, 3)).astype(np.float32)
  variables = jax.tree.map(np.asarray, jax.jit(model.init)(jax.random.PRNGKey(1), x[:1]))
  rng = np.random.default_rng(2)  # running statistics other than 0 and 1
  variables['batch_stats'] = jax.tree.map(
      lambda v: (rng.uniform(0.5, 1.5, v.shape) if v.min() == 1 else rng.normal(0, 0.1, v.shape)
                 ).astype(np.float32), variables['batch_stats'])
  want = np.asarray(jax.jit(model.apply)(variables, x))
  path = str(tmp_path / 'vgg11_bn.safetensors')
  safetensors_numpy.save_file(torchvision_state_dict(variables), path)

  monkeypatch.setitem(sys.modules, 'torch', None)  # `import torch` raises ImportError
  workdir = str(tmp_path / 'run')
  # The command line builds the published 1000-class model: the file's 10-class head is refused.
  code = import_weights.main(['--source=torchvision', f'--file={path}', '--model=vgg11_bn',
                              f'--workdir={workdir}'])
  assert code == 1
  assert 'tensor classifier.0.weight has shape [32, 25088], the model expects [4096, 25088]' \
      in capsys.readouterr().err
  import_weights.import_weights('torchvision', path, 'vgg11_bn', workdir, num_classes=10,
                                hidden_features=(32, 32))
  _, restored, got_variables, _ = experiment.restore_variables(workdir)
  got = np.asarray(jax.jit(restored.apply)(got_variables, x))
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * np.abs(want).max())
  # A .pth needs PyTorch: without it, one line saying what to do.
  open(tmp_path / 'x.pth', 'wb').write(b'not used')
  code = import_weights.main(['--source=torchvision', f'--file={tmp_path / "x.pth"}',
                              '--model=vgg11_bn', f'--workdir={tmp_path / "other"}'])
  assert code == 1 and 'needs PyTorch' in capsys.readouterr().err


def test_evaluate_reads_an_imported_workdir(tmp_path):
  """train.evaluate's path (experiment.restore, Run.evaluate) on imported weights, over tfds
  mock ImageNet images preprocessed as recorded in the workdir."""
  import tensorflow_datasets as tfds
  from data import pipeline
  model = models.create('vgg11_bn', hidden_features=(32, 32), pooled_size=7)  # 1000 classes
  variables = jax.tree.map(np.asarray, jax.jit(model.init)(jax.random.PRNGKey(3),
                                                           np.zeros((1, 64, 64, 3), np.float32)))
  path = str(tmp_path / 'w.safetensors')
  safetensors_numpy.save_file(torchvision_state_dict(variables), path)
  workdir = str(tmp_path / 'run')
  import_weights.import_weights('torchvision', path, 'vgg11_bn', workdir,
                                hidden_features=(32, 32))
  with tfds.testing.mock_data(num_examples=6):
    run = experiment.restore(workdir, config_overrides={'data': {  # in process: the mock is here
        'image_size': 48, 'decode_threads': 1, 'workers': 0}})
    metrics = run.evaluate(batch_size=4)
    batches = list(pipeline.eval_batches(run.dataset.eval, 4))
  images = np.concatenate([b['image'][b['mask']] for b in batches])
  labels = np.concatenate([b['label'][b['mask']] for b in batches])
  assert images.shape == (6, 48, 48, 3) and images.dtype == np.uint8
  # What the model sees: (x - mean) / std with the recorded torchvision statistics, by hand.
  mean = 255 * np.asarray((0.485, 0.456, 0.406), np.float32)
  std = 255 * np.asarray((0.229, 0.224, 0.225), np.float32)
  inputs = (images.astype(np.float32) - mean) / std
  logits = np.asarray(jax.jit(model.apply)(variables, inputs), np.float64)
  top = logits.max(-1)
  loss = np.mean(top + np.log(np.exp(logits - top[:, None]).sum(-1))
                 - logits[np.arange(len(labels)), labels])
  assert metrics['loss'] == pytest.approx(loss, rel=1e-4)
  assert metrics['accuracy'] == pytest.approx(np.mean(logits.argmax(-1) == labels))
