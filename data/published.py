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

from data import preprocessing
from data.images import example_source, open_split, to_pil
from data.pipeline import ClassificationFacts, Dataset


@dataclasses.dataclass(frozen=True)
class Options(preprocessing.Preprocessing):
  """Options of the `imagenet2012_published` pipeline (the preprocessing fields: `Preprocessing`).

  Attributes:
    tfds_name: the tfds dataset read, e.g. 'imagenet2012:5.0.0' to pin a version.
    train_split: the tfds split trained on (slices such as 'train[:10%]' work).
    eval_split: the tfds split evaluated.
    augment: training augmentation: random-resized crop and random flip.
    decode_threads: threads decoding and resizing a batch in the process that builds it (None:
      1 with workers, else one per CPU).
    workers: processes building batches (data/workers.py; None: one per CPU core; 0: the
      training process, with `decode_threads` threads).
  """

  tfds_name: str = 'imagenet2012'
  train_split: str = 'train'
  eval_split: str = 'validation'
  augment: bool = True
  decode_threads: int | None = None
  workers: int | None = None


def create(options: Options, *, data_dir: str | None = None,
           batch_size: int | None = None) -> Dataset:
  """ILSVRC-2012, 1,000 classes, images uint8 `[image_size, image_size, 3]` resized, cropped and
  channel-ordered as `options` say; the classification task subtracts the mean and divides by
  the std inside the compiled step. `batch_size` is not used."""
  del batch_size
  p = preprocessing.from_options(options)
  mean, std = preprocessing.unit_statistics(p)
  train = open_split(options.tfds_name, options.train_split, data_dir)
  evaluation = open_split(options.tfds_name, options.eval_split, data_dir)

  def source(split, augment):
    fn = preprocessing.example_fn(p, augment, to_pil, as_uint8=True)
    return example_source(split, fn, options.workers, options.decode_threads)

  return Dataset(train=source(train, options.augment), eval=source(evaluation, False),
                 facts=ClassificationFacts(1000, p.input_shape, mean, std))
