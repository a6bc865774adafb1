"""The default experiment's data: scikit-learn's bundled handwritten digits (UCI optdigits, 8x8).

1,797 real images of the digits 0-9 written by 43 people, 16 grey levels, shipped inside
scikit-learn, so the default run needs no download. The train/test split is fixed: stratified,
20% held out with `random_state=0` (1,437 train / 360 test), the same on every machine.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from data.pipeline import ArraySource, Batch, ClassificationFacts, Dataset

TEST_FRACTION = 0.2
SPLIT_SEED = 0


@dataclasses.dataclass(frozen=True)
class Options:
  """Options of the `digits` pipeline.

  Attributes:
    augment: training augmentation: shift each image by up to one pixel in each direction.
  """

  augment: bool = True


def load_split() -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
  """Returns (train, test) dicts with `image` `[n, 8, 8, 1]` uint8 in 0..16 and `label` `[n]` int32."""
  from sklearn.datasets import load_digits
  from sklearn.model_selection import train_test_split

  digits = load_digits()
  images = digits.images.astype(np.uint8)[..., None]
  labels = digits.target.astype(np.int32)
  train_x, test_x, train_y, test_y = train_test_split(
      images, labels, test_size=TEST_FRACTION, random_state=SPLIT_SEED, stratify=labels)
  return {'image': train_x, 'label': train_y}, {'image': test_x, 'label': test_y}


def _normalize(batch: Batch) -> Batch:
  return {**batch, 'image': batch['image'].astype(np.float32) / 16.0}


def _random_shift(batch: Batch, rng: np.random.Generator) -> Batch:
  """Shifts each image by up to one pixel in each direction (zero fill)."""
  images = batch['image']
  n, h, w, _ = images.shape
  padded = np.pad(images, ((0, 0), (1, 1), (1, 1), (0, 0)))
  dy, dx = rng.integers(0, 3, size=(2, n))
  rows = dy[:, None] + np.arange(h)[None, :]
  cols = dx[:, None] + np.arange(w)[None, :]
  shifted = padded[np.arange(n)[:, None, None], rows[:, :, None], cols[:, None, :]]
  return {**batch, 'image': shifted}


def create(options: Options, *, data_dir: str | None = None,
           batch_size: int | None = None) -> Dataset:
  """Train/test `ArraySource`s: images float32 `[n, 8, 8, 1]` in [0, 1], labels int32 `[n]`.

  `data_dir` and `batch_size` are not used (the digits ship with scikit-learn).
  """
  del data_dir, batch_size
  train, test = load_split()
  augment = _random_shift if options.augment else None
  return Dataset(
      train=ArraySource(train, augment=augment, transform=_normalize),
      eval=ArraySource(test, transform=_normalize),
      facts=ClassificationFacts(10, (8, 8, 1)),
  )
