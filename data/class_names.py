"""Class names of the image classification datasets, for commands that print predictions.

ImageNet's 1,000 (`imagenet()`, shipped as data/imagenet_classes.txt: the first WordNet lemma of
each ILSVRC-2012 class in label order, as tfds lists them (tensorflow_datasets' SI-Score label
table), with the two 'crane's told apart, 'crane (bird)' 134 and 'crane (machine)' 517, and
'maillot, tank suit' 639 kept whole next to 'maillot' 638), Fashion-MNIST's and CIFAR-10's ten,
the digits '0' ... '9', and an image folder's own (its sorted class folders, from the dataset's
facts).
"""

from __future__ import annotations

import functools
import importlib.resources

CIFAR10 = ('airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship',
           'truck')


@functools.cache
def imagenet() -> tuple[str, ...]:
  """The 1,000 ILSVRC-2012 class names; `imagenet()[i]` is label `i`."""
  text = importlib.resources.files('data').joinpath('imagenet_classes.txt').read_text('utf-8')
  names = tuple(line for line in text.splitlines() if line)
  assert len(names) == 1000, len(names)
  return names


def for_config(config, num_classes: int) -> tuple[str, ...]:
  """The names of labels 0 .. num_classes - 1 of a classification config's dataset; 'class i'
  where the dataset has none (or other counts than the model)."""
  name = config.get('dataset', '')
  names: tuple[str, ...] = ()
  if name in ('imagenet2012', 'imagenet2012_published'):
    names = imagenet()
  elif name == 'fashion_mnist':
    from data import fashion_mnist
    names = fashion_mnist.CLASS_NAMES
  elif name == 'cifar10':
    names = CIFAR10
  elif name in ('mnist', 'digits'):
    names = tuple(str(i) for i in range(10))
  elif name == 'image_folder':
    import data
    try:
      names = tuple(getattr(data.create(config).facts, 'class_names', ()))
    except (OSError, ValueError):  # the folder has moved: numbers instead of names
      names = ()
  if len(names) != num_classes:
    return tuple(f'class {i}' for i in range(num_classes))
  return tuple(names)
