"""A synthetic ImageNet-like dataset, written where the real one would be read from.

`write(directory)` prepares a small tfds dataset under the name and version of the real one
(`imagenet2012:5.1.0`, array_record files, JPEG-encoded images, 1,000 classes), so the
`imagenet2012` pipeline reads it through exactly the path it reads ImageNet (`data.images.
open_split`, bytes decoded by PIL). The images have ImageNet's typical sizes (500x375, 375x500,
500x333) and JPEG quality 90, with content made to compress like photographs (about 100-125 KB
each): smooth colour fields at four scales plus grain. For the pipeline benchmark
(`python -m data.benchmark`) and tests; nothing is downloaded.
"""

from __future__ import annotations

import io
import os

import numpy as np
from PIL import Image

NAME, VERSION = 'imagenet2012', '5.1.0'
SIZES = ((500, 375), (375, 500), (500, 333))  # (width, height), ImageNet's most common
NUM_CLASSES = 1000


def image(width: int, height: int, rng: np.random.Generator) -> np.ndarray:
  """A photograph-like uint8 image `[height, width, 3]`: colour fields at 4 scales plus grain."""
  pixels = np.zeros((height, width, 3), np.float32)
  for cells, amplitude in ((3, 70), (12, 45), (48, 30), (160, 40)):
    rows = max(2, round(cells * height / width))
    field = (rng.normal(0, 40, (rows, cells, 3)) + 128).clip(0, 255).astype(np.uint8)
    smooth = Image.fromarray(field).resize((width, height), Image.BICUBIC)
    pixels += (np.asarray(smooth, np.float32) - 128) * (amplitude / 40)
  pixels += rng.normal(0, 12, (height, width, 1))
  return (pixels + 128).clip(0, 255).astype(np.uint8)


def jpeg(pixels: np.ndarray, quality: int = 90) -> bytes:
  buffer = io.BytesIO()
  Image.fromarray(pixels).save(buffer, format='JPEG', quality=quality)
  return buffer.getvalue()


def write(directory: str, num_train: int = 256, num_eval: int = 64, seed: int = 0,
          sizes=SIZES, quality: int = 90) -> str:
  """Prepares the dataset in `directory` (a tfds data_dir) unless it is there already.

  `num_train` 'train' and `num_eval` 'validation' examples, sizes cycling through `sizes`
  (`(width, height)` pairs), labels `i % 1000`. Returns `directory`, to pass as `data_dir`.
  """
  import tensorflow_datasets as tfds

  directory = os.path.abspath(directory)
  if os.path.exists(os.path.join(directory, NAME, VERSION, 'dataset_info.json')):
    return directory
  rng = np.random.default_rng(seed)

  def examples(count: int, offset: int):
    for i in range(count):
      width, height = sizes[(offset + i) % len(sizes)]
      yield i, {'file_name': f'synthetic_{offset + i:06d}.JPEG',
                'image': jpeg(image(width, height, rng), quality),
                'label': (offset + i) % NUM_CLASSES}

  class ImageNetLike(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    VERSION = tfds.core.Version(VERSION)

    def _info(self):
      return tfds.core.DatasetInfo(builder=self, disable_shuffling=True, features=(
          tfds.features.FeaturesDict({
              'file_name': tfds.features.Text(),
              'image': tfds.features.Image(shape=(None, None, 3), encoding_format='jpeg'),
              'label': tfds.features.ClassLabel(num_classes=NUM_CLASSES)})))

    def _split_generators(self, dl_manager):
      del dl_manager
      return {'train': self._generate_examples(examples(num_train, 0)),
              'validation': self._generate_examples(examples(num_eval, num_train))}

    def _generate_examples(self, generator):
      yield from generator

  ImageNetLike.name = NAME
  ImageNetLike(data_dir=directory, file_format='array_record').download_and_prepare()
  return directory
