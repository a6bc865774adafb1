"""torchvision weights: twins of torchvision's modules (tests/torchvision_twins.py) with random
weights, saved as torchvision saves them, imported and compared output for output."""

import json
import os

import jax
import numpy as np
import pytest

import models  # noqa: E402

# Every test here compares with PyTorch: run in the Python 3.11 CI leg, deselected in the 3.12 one.
pytestmark = pytest.mark.torch
try:
  import torch
  import torchvision_twins as twins
except ImportError:
  torch = twins = None
from train import experiment  # noqa: E402
from train import import_weights  # noqa: E402
from train import weights_torchvision  # noqa: E402

SMALL_VGG = [8, 'M', 16, 'M', 16, 16, 'M', 32, 'M', 32, 'M']


def images(size, n=2, seed=0):
  return np.random.default_rng(seed).normal(size=(n, size, size, 3)).astype(np.float32)


def torch_logits(net, x_nhwc):
  with torch.no_grad():
    return net(torch.from_numpy(x_nhwc.transpose(0, 3, 1, 2).copy())).numpy()


def flax_logits(model, net, x, **kwargs):
  like = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), x[:1]))
  state = {k: v.numpy() for k, v in net.state_dict().items()}
  variables = weights_torchvision.convert(model, state, like, **kwargs)
  return np.asarray(jax.jit(model.apply)(variables, x))


def check(model, net, x):
  want = torch_logits(net, x)
  got = flax_logits(model, net, x)
  scale = np.abs(want).max()
  assert np.abs(got - want).max() <= 1e-4 * max(scale, 1), (np.abs(got - want).max(), scale)
  return np.abs(got - want).max()


@pytest.mark.parametrize('batch_norm', [False, True])
def test_vgg_logits_match_and_the_flatten_order_matters(batch_norm):
  torch.manual_seed(0)
  net = twins.randomize(twins.vgg(SMALL_VGG, batch_norm, num_classes=10, hidden=32))
  model = models.create('vgg11', config=SMALL_VGG, batch_norm=batch_norm, num_classes=10,
                        hidden_features=(32, 32), pooled_size=7)
  x = images(64)  # a 2x2 map, pooled to 7x7 as torchvision does
  check(model, net, x)
  # Reading torch's (c, h, w) flatten as Flax's (h, w, c) runs, and gives other logits.
  wrong = flax_logits(model, net, x, flatten_chw=False)
  assert np.abs(wrong - torch_logits(net, x)).max() > 0.1 * np.abs(torch_logits(net, x)).max()


def test_vgg16_layer_indices_follow_torchvision():
  net = twins.vgg('D', True)
  model = models.create('vgg16_bn', pooled_size=7)
  layers = weights_torchvision.layers(model)
  expected = {key.rsplit('.', 1)[0] for key in net.state_dict()}
  assert {prefix for prefix, _, _ in layers} == expected


def test_alexnet_logits_match():
  net = twins.randomize(twins.AlexNet(num_classes=10, hidden=32))
  model = models.create('alexnet_onetower', num_classes=10, hidden_features=(32, 32))
  check(model, net, images(96))  # 2x2 maps pooled to 6x6


@pytest.mark.parametrize('name, blocks', [('resnet18', [2, 2, 2, 2]), ('resnet34', [3, 4, 6, 3])])
def test_resnet_logits_match_with_batch_norm_statistics(name, blocks):
  net = twins.randomize(twins.ResNet(blocks, num_classes=10, width=8))
  model = models.create(name, num_classes=10, width=8)
  check(model, net, images(64))


def _run_cli(*args):
  return import_weights.main(list(args))


def test_import_pth_into_a_workdir_then_restore(tmp_path, capsys):
  # vgg11_bn's own layer table (torchvision's 'A'), with a small classifier.
  net = twins.randomize(twins.vgg('A', True, num_classes=10, hidden=32))
  path, workdir = str(tmp_path / 'vgg.pth'), str(tmp_path / 'run')
  torch.save(net.state_dict(), path)
  import_weights.import_weights('torchvision', path, 'vgg11_bn', workdir, num_classes=10,
                                hidden_features=(32, 32))
  saved = json.load(open(os.path.join(workdir, 'config.json')))
  assert saved['dataset'] == 'imagenet2012_published' and saved['model'] == 'vgg11_bn'
  assert saved['data']['mean'] == pytest.approx([123.675, 116.28, 103.53])
  assert saved['model_kwargs']['pooled_size'] == 7
  config, model, variables, step = experiment.restore_variables(workdir)
  assert step == 0
  x = images(32, n=1)
  np.testing.assert_allclose(np.asarray(jax.jit(model.apply)(variables, x)), torch_logits(net, x),
                             atol=2e-4 * max(1, np.abs(torch_logits(net, x)).max()))


def test_mismatched_files_are_one_line(tmp_path, capsys):
  net = twins.randomize(twins.ResNet([2, 2, 2, 2], width=8))
  state = net.state_dict()
  cases = {
      'wrong architecture': (state, 'vgg16', 'no tensor features.0.weight'),
      'missing tensor': ({k: v for k, v in state.items() if k != 'layer3.1.bn2.running_var'},
                         'resnet18', 'no tensor layer3.1.bn2.running_var'),
      'extra tensor': ({**state, 'fc2.weight': state['fc.weight']}, 'resnet18',
                       'tensor fc2.weight that the model has no place for'),
      'wrong shape': (state, 'resnet18', 'tensor conv1.weight has shape [8, 3, 7, 7], the model '
                      'expects [64, 3, 7, 7]'),
  }
  for what, (tensors, model, message) in cases.items():
    path = str(tmp_path / f'{what}.pth')
    torch.save(tensors, path)
    code = _run_cli('--source=torchvision', f'--file={path}', f'--model={model}',
                    f'--workdir={tmp_path / what}')
    err = capsys.readouterr().err
    assert code == 1, what
    assert err.count('\n') == 1 and err.startswith('error: ') and message in err, (what, err)
    assert 'Traceback' not in err
    assert not os.path.exists(tmp_path / what / 'checkpoints')
