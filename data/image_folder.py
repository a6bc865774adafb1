"""Your own images: a folder per class, torchvision's `ImageFolder` convention, without TensorFlow.

    ROOT/train/<class>/*.jpg|*.jpeg|*.png     (`--config.data_dir=ROOT`)
    ROOT/val/<class>/...

Classes are the sorted folder names of the training split, label `i` the `i`-th of them; both
splits must have the same classes. Files are listed in sorted order, so example `i` of a split
is always the same file, and evaluation reads every file exactly once (`pipeline.eval_batches`).
Each image is decoded by PIL when its batch is read (in `workers` processes, or threads of the
calling process: `images.example_source`) and preprocessed as `Options` says (data/preprocessing.py): in training a random-resized crop and
a flip (`augment`), in evaluation the resize and central crop. Batches hold uint8 pixels,
which the classification task normalises with the preprocessing's mean and std inside the
compiled step. The preprocessing fields default
to torchvision's ImageNet preprocessing; fine-tuning from a workdir copies the source's
(train/init_from.py).

Errors are one line (ValueError or OSError, naming the folder or file): a missing or empty split,
a class folder without images, a class present in one split only, a file PIL cannot read.
"""

from __future__ import annotations

import dataclasses
import os

from data import DatasetNotFoundError
from data import preprocessing
from data.images import example_source
from data.pipeline import ClassificationFacts, Dataset

EXTENSIONS = ('.jpg', '.jpeg', '.png')


@dataclasses.dataclass(frozen=True)
class ImageFolderFacts(ClassificationFacts):
  """An image folder's classes.

  Attributes:
    class_names: the class folders' names, sorted; label `i` is `class_names[i]`.
  """

  class_names: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class Options(preprocessing.Preprocessing):
  """Options of the `image_folder` pipeline (the preprocessing fields: `Preprocessing`).

  Attributes:
    train_split: the folder under data_dir trained on.
    eval_split: the folder under data_dir evaluated.
    augment: training augmentation: random-resized crop and random flip (else the evaluation
      resize and crop).
    decode_threads: threads decoding a batch in the process that builds it (None: one per CPU
      without workers, else 1).
    workers: processes building batches (data/workers.py; 0: the training process, with
      `decode_threads` threads). Worth it for folders of thousands of photos; each iterator
      pays a few seconds of worker start-up, which small folders do not win back.
  """

  train_split: str = 'train'
  eval_split: str = 'val'
  augment: bool = True
  decode_threads: int | None = None
  workers: int = 0


class FileStore:
  """`store[i] -> {'image': path, 'label': int}` over a list of (path, label)."""

  def __init__(self, files: list[tuple[str, int]]):
    self.files = files

  def __len__(self) -> int:
    return len(self.files)

  def __getitem__(self, index: int) -> dict:
    path, label = self.files[index]
    return {'image': path, 'label': label}


def list_split(root: str, split: str) -> dict[str, list[str]]:
  """Class name -> sorted image paths of `root/split`.

  Raises:
    DatasetNotFoundError: `root/split` is not a directory.
    ValueError: it has no class folder, or a class folder has no image.
  """
  directory = os.path.join(root, split)
  if not os.path.isdir(directory):
    raise DatasetNotFoundError(
        f'image folder {directory} not found; put the images in {os.path.join(directory, "CLASS")}'
        f'/*.jpg (one folder per class) or point --config.data_dir at the folder holding '
        f'{split}/')
  classes = sorted(name for name in os.listdir(directory)
                   if os.path.isdir(os.path.join(directory, name)))
  if not classes:
    raise ValueError(f'image folder {directory} has no class folders; put the images in '
                     f'{os.path.join(directory, "CLASS")}/*.jpg, one folder per class')
  found = {}
  for name in classes:
    folder = os.path.join(directory, name)
    paths = sorted(os.path.join(folder, f) for f in os.listdir(folder)
                   if f.lower().endswith(EXTENSIONS) and os.path.isfile(os.path.join(folder, f)))
    if not paths:
      raise ValueError(f'class folder {folder} has no images ({", ".join(EXTENSIONS)})')
    found[name] = paths
  return found


def create(options: Options, *, data_dir: str | None = None,
           batch_size: int | None = None) -> Dataset:
  """The folder's train and eval splits; images uint8 `[image_size, image_size, C]` (C 3, or
  1 for channels 'gray'), labels int32. `data_dir` is the root (required); `batch_size` unused."""
  del batch_size
  if not data_dir:
    raise ValueError('the image_folder dataset needs --config.data_dir=ROOT, the folder holding '
                     f'{options.train_split}/ and {options.eval_split}/')
  root = os.path.abspath(os.path.expanduser(data_dir))
  train = list_split(root, options.train_split)
  evaluation = list_split(root, options.eval_split)
  for one, other, split in ((train, evaluation, options.train_split),
                            (evaluation, train, options.eval_split)):
    only = sorted(set(one) - set(other))
    if only:
      raise ValueError(f"class '{only[0]}' is in {os.path.join(root, split)} only; both splits "
                       'need the same class folders')
  classes = tuple(train)
  p = preprocessing.from_options(options)
  mean, std = preprocessing.unit_statistics(p)

  def source(split, augment):
    files = [(path, label) for label, name in enumerate(classes) for path in split[name]]
    return example_source(
        FileStore(files), preprocessing.example_fn(p, augment, preprocessing.load_image,
                                                   as_uint8=True), options.workers,
        options.decode_threads)

  return Dataset(train=source(train, options.augment), eval=source(evaluation, False),
                 facts=ImageFolderFacts(len(classes), p.input_shape, image_mean=mean,
                                        image_std=std, class_names=classes))
