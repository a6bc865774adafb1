"""A test helper: a tiny `coco_captions/2014` dataset in tfds's array_record format.

Same feature layout as tfds's `coco_captions` (image JPEG, image/filename, image/id, objects,
captions {text, id}), written by a stand-in builder that needs no TensorFlow; the official
builder's code imports TensorFlow, which the pipeline never needs to read the files.
"""

import os

import numpy as np
import tensorflow_datasets as tfds
from PIL import Image

# split -> (image size (height, width), captions) per example.
EXAMPLES = {
    'train': [((20, 30), ['A cat on a mat.', 'A cat sits on the mat in the sun',
                          'the cat, the mat!']),
              ((31, 17), ['A dog runs.', 'a dog running on grass']),
              ((24, 24), ['A red bus on the street.', 'a bus', 'a red bus', 'two buses']),
              ((18, 40), ['A cat and a dog.']),
              ((16, 16), ['A plate of food.', 'food on a plate']),
              ((25, 19), ['Two men play tennis.', 'a man with a tennis racket']),
              ((40, 30), ['A train at the station.']),
              ((12, 20), ["A child's kite in the sky.", 'a kite flying'])],
    'val': [((22, 26), ['A zebra on the grass.', 'a zebra']),
            ((30, 30), ['A cat on a mat.'])],
}


def _features():
  return tfds.features.FeaturesDict({
      'image': tfds.features.Image(encoding_format='jpeg'),
      'image/filename': tfds.features.Text(),
      'image/id': np.int64,
      'objects': tfds.features.Sequence({
          'id': np.int64, 'area': np.int64, 'bbox': tfds.features.BBoxFeature(),
          'is_crowd': np.bool_, 'label': tfds.features.ClassLabel(num_classes=80)}),
      'captions': tfds.features.Sequence({'text': np.str_, 'id': np.int64}),
  })


def build(data_dir: str, image_dir: str) -> str:
  """Writes the dataset under `data_dir/coco_captions/2014/1.1.0` (once); returns `data_dir`."""
  with tfds.core.registered.skip_registration():

    class CocoCaptions(tfds.core.GeneratorBasedBuilder):
      VERSION = tfds.core.Version('1.1.0')
      BUILDER_CONFIGS = [tfds.core.BuilderConfig(name='2014')]

      def _info(self):
        return tfds.core.DatasetInfo(builder=self, features=_features(), disable_shuffling=True)

      def _split_generators(self, dl_manager):
        return {split: self._generate_examples(split) for split in EXAMPLES}

      def _generate_examples(self, split):
        for i, ((height, width), captions) in enumerate(EXAMPLES[split]):
          path = os.path.join(image_dir, f'{split}_{i}.jpg')
          rng = np.random.default_rng([i, len(split)])
          Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).save(path)
          yield i, {'image': path, 'image/filename': os.path.basename(path), 'image/id': i,
                    'objects': {'id': [], 'area': [], 'bbox': np.zeros((0, 4), np.float32),
                                'is_crowd': [], 'label': []},
                    'captions': [{'text': t, 'id': 10 * i + j} for j, t in enumerate(captions)]}

    os.makedirs(image_dir, exist_ok=True)
    builder = CocoCaptions(data_dir=data_dir, file_format='array_record')
    if not builder.is_prepared():
      builder.download_and_prepare()
  return data_dir
