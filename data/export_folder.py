"""Writes a prepared dataset out as an image folder (`ROOT/<split>/<class>/*.png`), the
`image_folder` pipeline's input: real images to try fine-tuning on.

  python -m data.export_folder fashion_mnist ROOT [--train_per_class=100] [--val_per_class=50]
  python -m data.export_folder digits ROOT

Takes the first `train_per_class` training and `val_per_class` test images of each class, in
the dataset's order, and writes them as 8-bit greyscale PNGs `ROOT/train/<class>/<index>.png`
and `ROOT/val/...`, one folder per class named after it (Fashion-MNIST's names with '/' as
'-', the digits '0' ... '9'). Fashion-MNIST must be prepared (`python -m data.prepare
fashion_mnist`); the digits ship with scikit-learn. Errors are one line, exit code 1.
"""

from __future__ import annotations

import os
import sys

import numpy as np
from PIL import Image

DATASETS = ('fashion_mnist', 'digits')


def _arrays(name: str, data_dir: str | None):
  """(train, test) dicts of uint8 images `[n, H, W]` and int labels, and the class names."""
  if name == 'digits':
    from data import digits
    train, test = digits.load_split()
    scale = lambda images: np.round(images[..., 0].astype(np.float32) * 255 / 16).astype(np.uint8)
    names = tuple(str(i) for i in range(10))
  else:
    import data
    from data import fashion_mnist
    import ml_collections
    dataset = data.create(ml_collections.ConfigDict({'dataset': 'fashion_mnist',
                                                     'data_dir': data_dir}))
    train, test = dataset.train.arrays, dataset.eval.arrays
    scale = lambda images: images[..., 0].astype(np.uint8)
    names = tuple(n.replace('/', '-') for n in fashion_mnist.CLASS_NAMES)
  return ({'image': scale(train['image']), 'label': np.asarray(train['label'])},
          {'image': scale(test['image']), 'label': np.asarray(test['label'])}, names)


def export(name: str, root: str, train_per_class: int = 100, val_per_class: int = 50,
           data_dir: str | None = None) -> dict[str, int]:
  """Writes the folder; returns the number of images per split."""
  if name not in DATASETS:
    raise ValueError(f"can export {', '.join(DATASETS)}; got '{name}'")
  train, test, names = _arrays(name, data_dir)
  counts = {}
  for split, arrays, per_class in (('train', train, train_per_class),
                                   ('val', test, val_per_class)):
    counts[split] = 0
    for label, class_name in enumerate(names):
      indices = np.flatnonzero(arrays['label'] == label)[:per_class]
      directory = os.path.join(root, split, class_name)
      os.makedirs(directory, exist_ok=True)
      for index in indices:
        Image.fromarray(arrays['image'][index], mode='L').save(
            os.path.join(directory, f'{index:05d}.png'))
      counts[split] += len(indices)
  return counts


def main(argv: list[str] | None = None) -> int:
  from train import cli
  parser = cli.Parser(prog='python -m data.export_folder', description=__doc__.split('\n\n')[0])
  parser.add_argument('dataset', choices=DATASETS)
  parser.add_argument('root', help='the folder to write (ROOT/train, ROOT/val)')
  parser.add_argument('--train_per_class', type=int, default=100)
  parser.add_argument('--val_per_class', type=int, default=50)
  parser.add_argument('--data_dir', default=None, help='the tfds data directory')
  args = parser.parse_args(argv)

  def command():
    counts = export(args.dataset, args.root, args.train_per_class, args.val_per_class,
                    args.data_dir)
    print(f'Wrote {counts["train"]} training and {counts["val"]} validation images to '
          f'{args.root}')

  return cli.run(command)


if __name__ == '__main__':
  sys.exit(main())
