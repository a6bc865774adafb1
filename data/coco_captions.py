"""COCO captions (2014 images, Karpathy & Li splits) from tfds's `coco_captions`, no TensorFlow.

Reads a prepared `coco_captions/2014` dataset in the array_record format with
`tfds.builder_from_directory(...).as_data_source(...)` (random access; tfds's own `coco_captions`
builder code imports TensorFlow, the directory reader does not). Nothing is downloaded at run
time: an unprepared dataset raises `data.DatasetNotFoundError` with the how-to (`HOW_TO`).

Preparing it (once, where TensorFlow is installed): tfds fetches the COCO 2014 zips from
images.cocodataset.org and Karpathy's `caption_datasets.zip`; offline, put those files
(`MANUAL_FILES`) in `DATA_DIR/downloads/manual/` first, and tfds takes them from there:
  tfds build coco_captions --data_dir=DATA_DIR --file_format=array_record
Splits (images): train 82,783, val 5,000, test 5,000, restval 30,504; about 5 captions each.

Examples: `image` (JPEG, decoded here with PIL), `captions` `{'text': [...], 'id': [...]}` and
the detection fields, which are not used.

Captions: lower-cased and split by `data.text.tokenize`, punctuation dropped (as Karpathy's
preprocessing does), cut to `max_caption_length` words. The vocabulary is built from the
TRAINING split's captions only: words seen at least `min_word_count` times (default 5), then
PAD 0, BOS 1, EOS 2, UNK 3 for the rest. In training each image contributes, per epoch, one of
its captions chosen at random from the batch's `(seed, step)` generator (so resumable and
seeded); evaluation uses each image's first caption, so the eval split is fixed. The captions
of each split are read once and kept in `<dataset dir>/captions_cache/` (`cached_captions`).

Images: decoded, converted to RGB, resized to `image_size` x `image_size` (bilinear, aspect ratio
not kept, as Show and Tell's input), scaled to [0, 1] and standardised with the ImageNet mean and
standard deviation. No augmentation.

Batches: `image` `[B, S, S, 3]` float32, `decoder_inputs` `[B, T]` int32 (BOS + caption),
`targets` `[B, T]` (caption + EOS), `target_mask` `[B, T]` bool, with T = max_caption_length + 1.

Options: `Options`; the tfds data directory is the `data_dir` argument (None: $TFDS_DATA_DIR or
~/tensorflow_datasets).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import socket
from typing import Any, Sequence

import numpy as np

from data import images as images_lib
from data import text
from data.pipeline import CaptioningFacts, Dataset

NAME, CONFIG = 'coco_captions', '2014'
PAD, BOS, EOS, UNK = text.PAD, '<bos>', '<eos>', text.UNK
SPECIALS = (PAD, BOS, EOS, UNK)  # ids 0, 1, 2, 3
PAD_ID, BOS_ID, EOS_ID = 0, 1, 2
MANUAL_FILES = ('train2014.zip', 'val2014.zip', 'test2014.zip', 'test2015.zip',
                'annotations_trainval2014.zip', 'image_info_test2014.zip',
                'image_info_test2015.zip', 'caption_datasets.zip')


@dataclasses.dataclass(frozen=True)
class Options:
  """Options of the `coco_captions` pipeline.

  Attributes:
    train_split: the split trained on ('train+restval' is Karpathy's 113k images).
    eval_split: the split evaluated.
    image_size: images are resized to `image_size` x `image_size`.
    max_caption_length: captions are cut to this many words.
    min_word_count: the vocabulary keeps training words seen at least this often.
    decode_threads: threads decoding and resizing a batch (None: one per CPU, or 1 with workers).
    workers: processes building batches for the trainer (data/workers.py; 0: in the training
      process, with `decode_threads` threads; for full COCO, the number of cores).
  """

  train_split: str = 'train'
  eval_split: str = 'val'
  image_size: int = 224
  max_caption_length: int = 20
  min_word_count: int = 5
  decode_threads: int | None = None
  workers: int = 0


def how_to(data_dir: str) -> str:
  return (f"COCO captions are not prepared in {data_dir}: where TensorFlow is installed, put "
          f"{', '.join(MANUAL_FILES)} (images.cocodataset.org; Karpathy's caption_datasets.zip) "
          f'in {os.path.join(data_dir, "downloads", "manual")}/ and run `tfds build {NAME} '
          f'--data_dir={data_dir} --file_format=array_record`, or point --config.data_dir at a '
          'prepared copy.')


def _version_key(name: str) -> tuple[int, ...]:
  return tuple(int(part) for part in name.split('.'))


def prepared_dir(data_dir: str) -> str | None:
  """`data_dir/coco_captions/2014/<newest version>` holding a prepared dataset, or None."""
  root = os.path.join(data_dir, NAME, CONFIG)
  if not os.path.isdir(root):
    return None
  versions = [v for v in os.listdir(root) if re.fullmatch(r'\d+\.\d+\.\d+', v)
              and os.path.isfile(os.path.join(root, v, 'dataset_info.json'))]
  return os.path.join(root, max(versions, key=_version_key)) if versions else None


def open_splits(data_dir: str | None, splits: Sequence[str]) -> list[Any]:
  """Random-access sources of `splits` whose `image` stays encoded (JPEG bytes).

  Raises:
    DatasetNotFoundError: no prepared array_record `coco_captions/2014` under `data_dir`.
  """
  import tensorflow_datasets as tfds

  from data import DatasetNotFoundError

  data_dir = images_lib.resolve_data_dir(data_dir)
  directory = prepared_dir(data_dir)
  if directory is None:
    raise DatasetNotFoundError(how_to(data_dir))
  builder = tfds.builder_from_directory(directory)
  file_format = getattr(builder.info.file_format, 'value', builder.info.file_format)
  if file_format != 'array_record':
    raise DatasetNotFoundError(
        f'{directory} is stored as {file_format}, which needs TensorFlow to read: re-prepare it '
        f'with `tfds build {NAME} --data_dir={data_dir} --file_format=array_record`.')
  decoders = {'image': tfds.decode.SkipDecoding()}
  return [builder.as_data_source(split=split, decoders=decoders) for split in splits]


def caption_words(caption: str) -> list[str]:
  """Lower-cased words, punctuation dropped: 'A man, riding.' -> ['a', 'man', 'riding']."""
  return [token for token in text.tokenize(caption) if token[0].isalnum()]


def read_captions(source, chunk: int = 1024) -> list[list[str]]:
  """Every example's caption texts, in order (images are read but not decoded, nor kept)."""
  captions = []
  for start in range(0, len(source), chunk):
    keys = list(range(start, min(start + chunk, len(source))))
    try:
      examples = source.__getitems__(keys)
    except (AttributeError, TypeError):
      examples = [source[k] for k in keys]
    captions.extend([text.as_str(t) for t in e['captions']['text']] for e in examples)
  return captions


def cached_captions(source, split: str) -> list[list[str]]:
  """`read_captions(source)`, kept in `<its dataset directory>/captions_cache/<split>.json` for
  the next run (`source` from `open_splits`).

  Reading the captions reads every record of the split, images included (a pass over ~13 GB
  for COCO's train split), at every start. The cache holds the split's example count and the
  modification time of the prepared dataset's `dataset_info.json`; a cache that does not match
  both (the dataset was re-prepared) or does not parse is rebuilt. Where the directory is not
  writable the captions are read every time.
  """
  directory = os.fspath(source.dataset_info.data_dir)
  info = os.stat(os.path.join(directory, 'dataset_info.json')).st_mtime_ns
  key = {'split': split, 'examples': len(source), 'dataset_info_mtime_ns': info}
  path = os.path.join(directory, 'captions_cache', f'{split}.json')
  try:
    with open(path) as f:
      cached = json.load(f)
    if cached.get('key') == key and len(cached.get('captions', ())) == len(source):
      return cached['captions']
  except (OSError, ValueError, AttributeError):
    pass  # absent, unreadable or not ours: read the split
  captions = read_captions(source)
  temporary = f'{path}.{socket.gethostname()}.{os.getpid()}.tmp'  # hosts may share the directory
  try:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(temporary, 'w') as f:
      json.dump({'key': key, 'captions': captions}, f)
    os.replace(temporary, path)
  except OSError:  # a read-only dataset directory: no cache
    if os.path.exists(temporary):
      os.remove(temporary)
  return captions


def build_vocabulary(train_captions: Sequence[Sequence[str]],
                     min_word_count: int) -> text.Vocabulary:
  """PAD, BOS, EOS, UNK, then training words seen >= `min_word_count` times, most frequent first."""
  return text.Vocabulary.build((caption_words(c) for captions in train_captions for c in captions),
                               min_count=min_word_count, specials=SPECIALS)


def encode_caption(caption: str, vocab: text.Vocabulary, max_length: int) -> dict[str, np.ndarray]:
  """One caption -> `decoder_inputs`, `targets`, `target_mask`, each `[max_length + 1]`."""
  ids = vocab.encode(caption_words(caption)[:max_length])
  n = len(ids)
  decoder_inputs = np.full((max_length + 1,), PAD_ID, np.int32)
  targets = np.full((max_length + 1,), PAD_ID, np.int32)
  decoder_inputs[0], decoder_inputs[1:n + 1] = BOS_ID, ids
  targets[:n], targets[n] = ids, EOS_ID
  return {'decoder_inputs': decoder_inputs, 'targets': targets,
          'target_mask': np.arange(max_length + 1) <= n}


def load_image(encoded: Any, size: int) -> np.ndarray:
  """JPEG/PNG bytes (or a uint8 array) -> `[size, size, 3]` float32, ImageNet-standardised."""
  pil = images_lib.to_pil(encoded)
  if pil.size != (size, size):
    from PIL import Image
    pil = pil.resize((size, size), Image.BILINEAR)
  pixels = np.asarray(pil, np.float32) / np.float32(255)
  mean = np.asarray(images_lib.IMAGENET_MEAN, np.float32)
  std = np.asarray(images_lib.IMAGENET_STD, np.float32)
  return (pixels - mean) / std


class _WithCaptions:
  """A source's image bytes next to its captions, read once: `store[i]` -> {'image', 'captions'}."""

  def __init__(self, source, captions: list[list[str]]):
    self.source, self.captions = source, captions

  def __len__(self) -> int:
    return len(self.source)

  def __getitem__(self, i: int) -> dict[str, Any]:
    return {'image': self.source[i]['image'], 'captions': self.captions[i]}


def create(options: Options, *, data_dir: str | None = None,
           batch_size: int | None = None) -> Dataset:
  """COCO captions read from `data_dir` (module docstring); `batch_size` is not used."""
  del batch_size
  train_split, eval_split = options.train_split, options.eval_split
  size, max_length = options.image_size, options.max_caption_length
  train_source, eval_source = open_splits(data_dir, (train_split, eval_split))
  train_captions = cached_captions(train_source, train_split)
  eval_captions = cached_captions(eval_source, eval_split)
  vocab = build_vocabulary(train_captions, options.min_word_count)

  def example_fn(example, rng):
    captions = example['captions']
    if not captions:
      raise ValueError('a COCO example has no caption')
    choice = 0 if rng is None else int(rng.integers(len(captions)))
    return {'image': load_image(example['image'], size),
            **encode_caption(captions[choice], vocab, max_length)}

  workers, threads = options.workers, options.decode_threads
  return Dataset(
      train=images_lib.example_source(_WithCaptions(train_source, train_captions), example_fn,
                                      workers, threads),
      eval=images_lib.example_source(_WithCaptions(eval_source, eval_captions), example_fn,
                                     workers, threads),
      facts=CaptioningFacts(vocab, (size, size, 3), max_length + 1, PAD_ID, BOS_ID, EOS_ID),
  )
