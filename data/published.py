"""ImageNet (ILSVRC-2012) preprocessed as published weights expect: the `imagenet2012_published`
pipeline.

The tfds dataset `imagenet2012` read exactly as data/images.py's `imagenet2012` pipeline reads it
(prepared array_record files, nothing downloaded), but each image preprocessed by the fields of
`Options` (data/preprocessing.py) instead of that pipeline's fixed ImageNet mean/std: so weights
imported from Keras (BGR, Caffe mean, 224x224 resize) are evaluated on what they were trained
with. `python -m train.import_weights` writes these options into the workdir's config.
"""

from __future__ import annotations

import dataclasses
import os

from data import preprocessing
from data.images import ThreadedExampleSource, open_split, to_pil
from data.pipeline import ClassificationFacts, Dataset


@dataclasses.dataclass(frozen=True)
class Options(preprocessing.Preprocessing):
  """Options of the `imagenet2012_published` pipeline (the preprocessing fields: `Preprocessing`).

  Attributes:
    tfds_name: the tfds dataset read, e.g. 'imagenet2012:5.0.0' to pin a version.
    train_split: the tfds split trained on (slices such as 'train[:10%]' work).
    eval_split: the tfds split evaluated.
    augment: training augmentation: random-resized crop and random flip.
    decode_threads: threads decoding and resizing a batch (None: one per CPU).
  """

  tfds_name: str = 'imagenet2012'
  train_split: str = 'train'
  eval_split: str = 'validation'
  augment: bool = True
  decode_threads: int | None = None


def create(options: Options, *, data_dir: str | None = None,
           batch_size: int | None = None) -> Dataset:
  """ILSVRC-2012, 1,000 classes, images float32 `[image_size, image_size, 3]` preprocessed as
  `options` says. `batch_size` is not used."""
  del batch_size
  p = preprocessing.from_options(options)
  threads = options.decode_threads or os.cpu_count() or 1
  train = open_split(options.tfds_name, options.train_split, data_dir)
  evaluation = open_split(options.tfds_name, options.eval_split, data_dir)
  return Dataset(
      train=ThreadedExampleSource(train, preprocessing.example_fn(p, options.augment, to_pil),
                                  threads),
      eval=ThreadedExampleSource(evaluation, preprocessing.example_fn(p, False, to_pil), threads),
      facts=ClassificationFacts(1000, p.input_shape))
