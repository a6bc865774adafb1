"""Keras VGG-16 weights: `keras.applications.VGG16(weights=None)` (jax backend, nothing
downloaded) with random weights, saved in each format Keras writes, imported and compared with
Keras itself: logits and the feature maps block1_conv1 ... block5_conv1, on the same 224x224
image, preprocessed as `keras.applications.vgg16.preprocess_input` does."""

import os

os.environ.setdefault('KERAS_BACKEND', 'jax')  # before keras is imported: no TensorFlow

import jax  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

keras = pytest.importorskip('keras')
h5py = pytest.importorskip('h5py')

import models  # noqa: E402
from data import preprocessing  # noqa: E402
from train import import_weights  # noqa: E402
from train import weights_keras  # noqa: E402

FEATURES = [f'block{i}_conv1' for i in range(1, 6)]


@pytest.fixture(scope='module')
def keras_vgg16(tmp_path_factory):
  """(files by format, image [1, 224, 224, 3] preprocessed, Keras logits and feature maps)."""
  if keras.backend.backend() != 'jax':
    pytest.skip('needs the jax backend of Keras (KERAS_BACKEND=jax)')
  keras.utils.set_random_seed(0)
  net = keras.applications.VGG16(weights=None, classifier_activation=None)
  rng = np.random.default_rng(0)
  net.set_weights([w if w.ndim > 1 else rng.normal(0, 0.1, w.shape).astype(np.float32)
                   for w in net.get_weights()])  # biases are zero in a fresh Keras net
  from sklearn.datasets import load_sample_image
  from PIL import Image
  directory = tmp_path_factory.mktemp('keras')
  photo = str(directory / 'china.jpg')
  Image.fromarray(load_sample_image('china.jpg')).save(photo)
  pixels = keras.utils.img_to_array(keras.utils.load_img(photo, target_size=(224, 224)))
  x = keras.applications.vgg16.preprocess_input(pixels[None])
  probe = keras.Model(net.input, [net.get_layer(n).output for n in FEATURES] + [net.output])
  outputs = [np.asarray(o) for o in probe.predict(x, verbose=0)]
  files = {'keras3_weights': str(directory / 'vgg16.weights.h5'),
           'keras3_archive': str(directory / 'vgg16.keras'),
           'published_h5': str(directory / 'vgg16_weights_tf_dim_ordering_tf_kernels.h5'),
           'legacy_model_h5': str(directory / 'vgg16_model.h5')}
  net.save_weights(files['keras3_weights'])
  net.save(files['keras3_archive'])
  net.save(files['legacy_model_h5'])  # a whole model in the legacy format: model_weights/
  from keras.src.legacy.saving import legacy_h5_format  # the format of the published files
  with h5py.File(files['published_h5'], 'w') as f:
    legacy_h5_format.save_weights_to_hdf5_group(f, net)
  return files, photo, np.asarray(x), dict(zip(FEATURES + ['logits'], outputs))


def test_preprocessing_is_keras_vgg16s(keras_vgg16):
  _, photo, x, _ = keras_vgg16
  ours = preprocessing.eval_image(preprocessing.KERAS_CAFFE, preprocessing.load_image(photo))
  np.testing.assert_allclose(ours, x[0], atol=1e-4)


@pytest.mark.parametrize('fmt', ['published_h5', 'legacy_model_h5', 'keras3_weights',
                                 'keras3_archive'])
def test_logits_and_feature_maps_match_keras(keras_vgg16, fmt):
  files, _, x, want = keras_vgg16
  model = models.create('vgg16')
  like = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), x))
  variables = weights_keras.convert(files[fmt], like)
  logits, state = model.apply(variables, x, capture_intermediates=True, mutable='intermediates')
  for name in FEATURES:  # Keras's conv layers include their ReLU
    got = np.maximum(np.asarray(state['intermediates'][name]['__call__'][0]), 0)
    scale = np.abs(want[name]).max()
    assert np.abs(got - want[name]).max() <= 1e-4 * scale, name
  scale = np.abs(want['logits']).max()
  assert np.abs(np.asarray(logits) - want['logits']).max() <= 1e-4 * scale


def test_a_file_that_does_not_fit_is_one_line(keras_vgg16, tmp_path, capsys):
  files, _, _, _ = keras_vgg16
  notop = str(tmp_path / 'notop.h5')
  with h5py.File(files['published_h5'], 'r') as src, h5py.File(notop, 'w') as dst:
    names = [n.decode() if isinstance(n, bytes) else str(n) for n in src.attrs['layer_names']]
    names = [n for n in names if not n.startswith(('fc', 'pred'))]
    for name in names:
      src.copy(src[name], dst, name=name)
    dst.attrs['layer_names'] = [n.encode() for n in names]
  cases = [(notop, 'vgg16', 'the file has no layer fc1'),
           (files['published_h5'], 'vgg19', 'the file has no layer block3_conv4'),
           (files['keras3_weights'], 'vgg19', 'the file has 13 conv2d layers, the model 16')]
  for path, model, message in cases:
    code = import_weights.main(['--source=keras', f'--file={path}', f'--model={model}',
                                f'--workdir={tmp_path / model}'])
    err = capsys.readouterr().err
    assert code == 1 and err.count('\n') == 1 and message in err, err
  code = import_weights.main(['--source=keras', f'--file={notop}', '--model=resnet18',
                              f'--workdir={tmp_path / "r"}'])
  assert code == 2 and 'vgg16, vgg19' in capsys.readouterr().err
