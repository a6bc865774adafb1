"""Fashion-MNIST (Xiao, Rasul & Vollgraf 2017) as the tfds builder `fashion_mnist_idx`.

70,000 28x28 greyscale photos of Zalando articles in 10 balanced classes (60,000 train, 10,000
test). The data come offline from Debian's `dataset-fashion-mnist` package: run

    python -m data.prepare fashion_mnist [--data_dir=DIR]

once; it puts the four IDX files (`{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz`) in the tfds
manual dir `<data_dir>/downloads/manual/fashion_mnist/` and prepares the dataset. `create`
also prepares it on first use (about 10 s) when the IDX files are already in the manual dir.

The builder is named `fashion_mnist_idx`, not `fashion_mnist`, because tfds registers its own
`fashion_mnist` builder (which needs TensorFlow and the web to prepare). It writes the array_record
format, readable without TensorFlow, to `<data_dir>/fashion_mnist_idx/1.0.0/`, and keeps the IDX
files' example order (`disable_shuffling`), so example `i` of a split is record `i` of its file.
Features: `image` uint8 `[28, 28, 1]` (a tfds `Tensor`: a tfds `Image` fed arrays needs TensorFlow
to encode) and `label` (`ClassLabel`, the 10 names in `CLASS_NAMES`).

`create(options, data_dir=...)` reads both splits into memory and returns `ArraySource`s: images
float32 `[n, 28, 28, 1]` in [0, 1] (or standardised), labels int32 `[n]`. Its options: `Options`.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import tensorflow_datasets as tfds

from data import DatasetNotFoundError, idx
from data.images import load_arrays, normalizer, random_crop_flip, resolve_data_dir
from data.pipeline import ArraySource, ClassificationFacts, Dataset

NAME = 'fashion_mnist_idx'
MANUAL_SUBDIR = 'fashion_mnist'
PREPARE_COMMAND = 'python -m data.prepare fashion_mnist'

# split -> (images file, labels file), as the IDX files are named upstream and in Debian.
FILES = {
    'train': ('train-images-idx3-ubyte.gz', 'train-labels-idx1-ubyte.gz'),
    'test': ('t10k-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte.gz'),
}
NUM_EXAMPLES = {'train': 60_000, 'test': 10_000}
CLASS_NAMES = ('T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt',
               'Sneaker', 'Bag', 'Ankle boot')
IMAGE_SHAPE = (28, 28, 1)
# Pixel statistics of the 60,000 training images, scaled to [0, 1].
MEAN, STD = (0.2860,), (0.3530,)

_CITATION = """@article{xiao2017fashion,
  title={Fashion-MNIST: a Novel Image Dataset for Benchmarking Machine Learning Algorithms},
  author={Xiao, Han and Rasul, Kashif and Vollgraf, Roland},
  journal={arXiv preprint arXiv:1708.07747},
  year={2017}}"""


@dataclasses.dataclass(frozen=True)
class Options:
  """Options of the `fashion_mnist` pipeline.

  Attributes:
    manual_dir: where the IDX `.gz` files are (None: `<data_dir>/downloads/manual/fashion_mnist`);
      read only when the dataset is not prepared yet.
    train_split: the tfds split trained on ('train[:5000]' works).
    eval_split: the tfds split evaluated.
    augment: training augmentation: random crop of the 2-px zero-padded image + horizontal flip.
    standardize: subtract the training mean 0.2860 and divide by the std 0.3530 (else pixels in
      [0, 1]).
  """

  manual_dir: str | None = None
  train_split: str = 'train'
  eval_split: str = 'test'
  augment: bool = False
  standardize: bool = False


def default_manual_dir(data_dir: str | None = None) -> str:
  """`<data_dir>/downloads/manual/fashion_mnist`, where the four IDX `.gz` files go."""
  return os.path.join(resolve_data_dir(data_dir), 'downloads', 'manual', MANUAL_SUBDIR)


def find_idx_files(manual_dir: str | os.PathLike) -> str | None:
  """The directory holding all four IDX files: `manual_dir` or its `fashion_mnist/`; else None."""
  manual_dir = os.fspath(manual_dir)
  for directory in (manual_dir, os.path.join(manual_dir, MANUAL_SUBDIR)):
    if all(os.path.isfile(os.path.join(directory, f)) for pair in FILES.values() for f in pair):
      return directory
  return None


def read_split(directory: str | os.PathLike, split: str) -> tuple[np.ndarray, np.ndarray]:
  """Decodes one split's IDX files: images uint8 `[n, 28, 28]`, labels uint8 `[n]`.

  Raises:
    idx.IdxError: a file is malformed, or images and labels disagree.
  """
  images_file, labels_file = (os.path.join(directory, f) for f in FILES[split])
  if idx.magic(images_file) != idx.IMAGES_MAGIC or idx.magic(labels_file) != idx.LABELS_MAGIC:
    raise idx.IdxError(f'{directory}: {split} files have the wrong IDX magic numbers '
                       f'(expected {idx.IMAGES_MAGIC} images, {idx.LABELS_MAGIC} labels)')
  images, labels = idx.read(images_file), idx.read(labels_file)
  if images.shape[1:] != IMAGE_SHAPE[:2] or len(images) != len(labels):
    raise idx.IdxError(f'{directory}: {split} images {images.shape} do not match labels '
                       f'{labels.shape}')
  if labels.size and labels.max() >= len(CLASS_NAMES):
    raise idx.IdxError(f'{directory}: {split} labels outside 0..{len(CLASS_NAMES) - 1}')
  return images, labels


class FashionMnistIdx(tfds.core.GeneratorBasedBuilder):
  """Fashion-MNIST from the four IDX files in the manual dir (array_record, no TensorFlow)."""

  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'IDX files of Debian dataset-fashion-mnist 0.0~git20200523.'}
  MANUAL_DOWNLOAD_INSTRUCTIONS = (
      f'Run `{PREPARE_COMMAND} --data_dir=DIR`, or put the four Fashion-MNIST IDX files '
      f'({", ".join(f for pair in FILES.values() for f in pair)}) in '
      f'DIR/downloads/manual/{MANUAL_SUBDIR}/.')

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(
        builder=self,
        description='Fashion-MNIST: 28x28 greyscale images of 10 kinds of Zalando articles.',
        features=tfds.features.FeaturesDict({
            'image': tfds.features.Tensor(shape=IMAGE_SHAPE, dtype=np.uint8),
            'label': tfds.features.ClassLabel(names=CLASS_NAMES),
        }),
        supervised_keys=('image', 'label'),
        disable_shuffling=True,
        homepage='https://github.com/zalandoresearch/fashion-mnist',
        citation=_CITATION,
    )

  def _split_generators(self, dl_manager):
    directory = find_idx_files(dl_manager.manual_dir)
    if directory is None:
      raise DatasetNotFoundError(
          f'Fashion-MNIST IDX files not found in {dl_manager.manual_dir}: run '
          f'`{PREPARE_COMMAND} --data_dir=DIR`.')
    return {split: self._generate_examples(directory, split) for split in FILES}

  def _generate_examples(self, directory, split):
    images, labels = read_split(directory, split)
    for i in range(len(labels)):
      yield i, {'image': images[i, :, :, None], 'label': int(labels[i])}


def builder(data_dir: str | None = None) -> FashionMnistIdx:
  """The builder for `data_dir` (None: the tfds default), prepared or not."""
  return FashionMnistIdx(data_dir=resolve_data_dir(data_dir), file_format='array_record')


def prepare(data_dir: str | None = None, manual_dir: str | None = None) -> FashionMnistIdx:
  """Prepares the dataset from the IDX files in `manual_dir` unless it is prepared already.

  Returns the prepared builder (`builder.data_dir` is where the array_record files are).

  Raises:
    DatasetNotFoundError: not prepared, and the IDX files are not in `manual_dir`.
  """
  data_dir = resolve_data_dir(data_dir)
  result = builder(data_dir)
  if result.is_prepared():
    return result
  manual_dir = os.path.abspath(os.path.expanduser(manual_dir or default_manual_dir(data_dir)))
  if find_idx_files(manual_dir) is None:
    raise DatasetNotFoundError(
        f'Fashion-MNIST is not prepared in {data_dir} and its IDX files are not in {manual_dir}: '
        f'run `{PREPARE_COMMAND} --data_dir={data_dir}` (or pass --config.data_dir=DIR of a '
        f'prepared copy).')
  result.download_and_prepare(
      download_config=tfds.download.DownloadConfig(manual_dir=manual_dir))
  return result


def create(options: Options, *, data_dir: str | None = None,
           batch_size: int | None = None) -> Dataset:
  """Fashion-MNIST train/test as in-memory `ArraySource`s, prepared in `data_dir` on first use.

  `batch_size` is not used.
  """
  del batch_size
  prepared = prepare(data_dir, options.manual_dir)
  train = load_arrays(prepared.as_data_source(split=options.train_split))
  test = load_arrays(prepared.as_data_source(split=options.eval_split))
  transform = normalizer(MEAN, STD) if options.standardize else normalizer()
  augment = None
  if options.augment:
    augment = lambda batch, rng: random_crop_flip(batch, rng, pad=2, flip=True)
  return Dataset(
      train=ArraySource(train, augment=augment, transform=transform),
      eval=ArraySource(test, transform=transform),
      facts=ClassificationFacts(len(CLASS_NAMES), IMAGE_SHAPE),
  )
