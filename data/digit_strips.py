"""Digit strips: images of several real handwritten digits side by side, captioned by the digits.

A small, real image-captioning task that needs no download. The source digits are scikit-learn's
bundled 8x8 handwritten digits (UCI optdigits, 1,797 images, 16 grey levels), split FIRST by
`data.digits.load_split` (stratified, 20% held out, `random_state=0`: 1,437 / 360 digits), so
held-out strips are built only from held-out handwriting.

A strip holds 1..`max_digits` (default 5) digits, the count uniform, each digit drawn uniformly
from its split; digit k fills columns 8k..8k+7 of an `8 x 8*max_digits` image, left-aligned, and
the slots after the last digit are blank (zero). The caption is the digit sequence, e.g. '4071'.
Compositions are fixed tables drawn from `data_seed`: `train_size` (default 100,000) training
strips and `test_size` (default 2,000) held-out strips; images are composed when a batch is
fetched, so the tables cost a few bytes per strip.

Token ids (data/synthetic.py's `Vocabulary('0123456789')`): PAD 0, BOS 1, EOS 2, digit d is d + 3.

Batches (`fetch`): `image` `[B, 8, 8*max_digits, 1]` float32 in [0, 1]; `decoder_inputs` `[B, T]`
int32 (BOS + caption, PAD); `targets` `[B, T]` int32 (caption + EOS, PAD); `target_mask` `[B, T]`
bool (True on caption and EOS); `digits` `[B, max_digits]` int32 (source-digit index into its
split, -1 on blank slots; for checking); T = max_digits + 1. Evaluation batches add `mask` `[B]`
(data/pipeline.py).

Options: `Options`.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from data import digits as digits_lib
from data import synthetic
from data.pipeline import ArraySource, Batch, CaptioningFacts, Dataset

PAD, BOS, EOS = synthetic.PAD, synthetic.BOS, synthetic.EOS
DIGIT_OFFSET = len(synthetic.SPECIALS)  # digit d has id d + 3
SIDE = 8  # source digits are 8x8


@dataclasses.dataclass(frozen=True)
class Options:
  """Options of the `digit_strips` pipeline.

  Attributes:
    data_seed: seed of the strip compositions; the training `seed` does not change them.
    train_size: training strips.
    test_size: held-out strips.
    min_digits: the fewest digits of a strip.
    max_digits: the most digits of a strip (the image is `8 x 8*max_digits`).
  """

  data_seed: int = 0
  train_size: int = 100_000
  test_size: int = 2_000
  min_digits: int = 1
  max_digits: int = 5


def vocabulary() -> synthetic.Vocabulary:
  return synthetic.Vocabulary('0123456789')


def draw_compositions(num_strips: int, num_source: int, min_digits: int, max_digits: int,
                      rng: np.random.Generator) -> np.ndarray:
  """`[num_strips, max_digits]` int32 source-digit indices, -1 after each strip's last digit."""
  lengths = rng.integers(min_digits, max_digits + 1, size=num_strips)
  picks = rng.integers(0, num_source, size=(num_strips, max_digits))
  return np.where(np.arange(max_digits)[None, :] < lengths[:, None], picks, -1).astype(np.int32)


def compose(compositions: np.ndarray, images: np.ndarray, labels: np.ndarray) -> Batch:
  """Builds strips and captions from compositions (see the module docstring for the arrays).

  Args:
    compositions: `[n, max_digits]` int, indices into `images`/`labels`, -1 on blank slots.
    images: source digits `[num_source, 8, 8, 1]` uint8 in 0..16.
    labels: `[num_source]` int, the digit of each source image.
  """
  n, slots = compositions.shape
  used = compositions >= 0
  safe = np.where(used, compositions, 0)
  tiles = np.where(used[:, :, None, None], images[safe, :, :, 0], 0)  # [n, slots, 8, 8]
  strips = tiles.transpose(0, 2, 1, 3).reshape(n, SIDE, slots * SIDE, 1)
  lengths = used.sum(1)
  caption = np.where(used, labels[safe] + DIGIT_OFFSET, PAD).astype(np.int32)
  targets = np.concatenate([caption, np.full((n, 1), PAD, np.int32)], axis=1)
  targets[np.arange(n), lengths] = EOS
  decoder_inputs = np.concatenate([np.full((n, 1), BOS, np.int32), caption], axis=1)
  return {'image': strips.astype(np.float32) / np.float32(16.0), 'decoder_inputs': decoder_inputs,
          'targets': targets, 'target_mask': np.arange(slots + 1)[None, :] <= lengths[:, None],
          'digits': compositions.astype(np.int32)}


def caption_strings(tokens: np.ndarray) -> list[str]:
  """Token rows `[n, T]` -> digit strings, each up to its first EOS."""
  vocab = vocabulary()
  return [vocab.decode(row) for row in np.asarray(tokens)]


def _source(compositions: np.ndarray, split: dict[str, np.ndarray]) -> ArraySource:
  images, labels = split['image'], split['label']
  return ArraySource({'digits': compositions},
                     transform=lambda batch: compose(batch['digits'], images, labels))


def create(options: Options, *, data_dir: str | None = None,
           batch_size: int | None = None) -> Dataset:
  """Training and held-out strips (module docstring); `data_dir` and `batch_size` are not used."""
  del data_dir, batch_size
  train_size, test_size = options.train_size, options.test_size
  low, high = options.min_digits, options.max_digits
  if not 1 <= low <= high:
    raise ValueError(f'digit strips need 1 <= min_digits <= max_digits, got {low}..{high}')
  train, test = digits_lib.load_split()
  seed = options.data_seed
  train_table = draw_compositions(train_size, len(train['label']), low, high,
                                  np.random.default_rng([seed, 0]))
  test_table = draw_compositions(test_size, len(test['label']), low, high,
                                 np.random.default_rng([seed, 1]))
  vocab = vocabulary()
  return Dataset(
      train=_source(train_table, train),
      eval=_source(test_table, test),
      facts=CaptioningFacts(vocab, (SIDE, SIDE * high, 1), high + 1, PAD, BOS, EOS),
  )
