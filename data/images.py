"""Image classification over tensorflow-datasets: MNIST, CIFAR-10, ImageNet (ILSVRC-2012).

All three read a prepared tfds dataset (array_record file format) through `tfds.data_source`, which
gives random access without TensorFlow. Nothing here ever downloads: a dataset that is not prepared
under `data_dir` raises `data.DatasetNotFoundError` at once, with one line saying what to do.
Official tfds builders need TensorFlow to *prepare* (not to read), so prepare them once where
TensorFlow is installed, e.g. `tfds build cifar10 --data_dir=DIR --file_format=array_record`, and
point `--config.data_dir=DIR` at the result.

Per dataset (each returns `data.pipeline.Dataset`; labels int32 `[n]`):

| name         | train / eval       | source                  | images           | training augmentation |
|--------------|--------------------|-------------------------|------------------|-----------------------|
| mnist        | train / test       | in memory, ArraySource  | float32 (host)   | none (`augment`: crop)|
| cifar10      | train / test       | in memory, ArraySource  | float32 (host)   | crop of 4-px pad, flip|
| imagenet2012 | train / validation | example_source, workers | uint8 (the step) | random-resized, flip  |

ImageNet: training crops a random box covering 8%-100% of the image with aspect ratio in
[3/4, 4/3] (Inception / torchvision `RandomResizedCrop`), resizes it to `image_size` (bilinear)
and flips it with probability 1/2; evaluation resizes the shorter side to
`round(image_size * 256 / 224)` (256 for 224, 259 for AlexNet's 227) and takes the central
`image_size` square. The JPEG bytes are read undecoded (`tfds.decode.SkipDecoding`) and decoded
here by PIL, at 1/2, 1/4 or 1/8 size (libjpeg's DCT scaling, `draft`) when the crop still has at
least `image_size` pixels a side there. Batches are built in `workers` processes (grain,
data/workers.py) and hold uint8 pixels (a quarter of float32's bytes), which the classification
task normalises inside the compiled step (`ClassificationFacts.image_mean` / `image_std`).

Normalisation: pixels are scaled to [0, 1], then, when `standardize` is on, each channel has the
dataset's mean subtracted and is divided by its standard deviation (statistics of the training
split, below); on the host for MNIST and CIFAR-10, in the step for ImageNet. Augmentation happens
only in training (`fetch(indices, rng)` with `rng` not None) and draws only from that `rng`, so a
batch is a pure function of `(indices, rng)`, whichever process builds it.

Options: `MnistOptions`, `Cifar10Options`, `ImageNetOptions` (`config.data`); the tfds data
directory is the `data_dir` argument (None: `$TFDS_DATA_DIR` or `~/tensorflow_datasets`).
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import io
import math
import os
from typing import Any, Callable, Sequence

import numpy as np
from PIL import Image

from data.pipeline import ArraySource, Batch, ClassificationFacts, Dataset, read_records

# Per-channel statistics of the training splits, pixels scaled to [0, 1].
MNIST_MEAN, MNIST_STD = (0.1307,), (0.3081,)
CIFAR10_MEAN, CIFAR10_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)

# ImageNet evaluation resizes the shorter side to image_size * 256 / 224, then center-crops.
IMAGENET_RESIZE_RATIO = 256 / 224
RRC_SCALE = (0.08, 1.0)
RRC_RATIO = (3 / 4, 4 / 3)


# ---------------------------------------------------------------------------------------------
# Shared helpers (also used by data/fashion_mnist.py).


def resolve_data_dir(data_dir: str | os.PathLike | None) -> str:
  """`data_dir`, or tfds's default: `$TFDS_DATA_DIR`, else `~/tensorflow_datasets`."""
  data_dir = data_dir or os.environ.get('TFDS_DATA_DIR') or '~/tensorflow_datasets'
  return os.path.abspath(os.path.expanduser(os.fspath(data_dir)))


def normalizer(mean: Sequence[float] | None = None,
               std: Sequence[float] | None = None) -> Callable[[Batch], Batch]:
  """A `transform(batch)` that maps uint8 images `[n, H, W, C]` to float32 and casts labels.

  Pixels become `x / 255` in [0, 1]; with `mean` and `std` (per channel, in [0, 1] units) they
  become `(x / 255 - mean) / std`. Labels become int32 `[n]`.
  """
  mean_ = None if mean is None else np.asarray(mean, np.float32)
  inv_std = None if std is None else (1 / np.asarray(std, np.float32)).astype(np.float32)

  def transform(batch: Batch) -> Batch:
    images = batch['image'].astype(np.float32) / np.float32(255)  # exact: 255 -> 1.0
    if mean_ is not None:
      images = (images - mean_) * inv_std
    return {**batch, 'image': images, 'label': batch['label'].astype(np.int32)}

  return transform


def random_crop_flip(batch: Batch, rng: np.random.Generator, pad: int,
                     flip: bool = True) -> Batch:
  """Pads images by `pad` zero pixels, crops back to the original size at a random offset, flips.

  `batch['image']` is `[n, H, W, C]` (any dtype; zero is the padding value, i.e. black before
  normalisation). Draws, in this order: offsets `[2, n]` (rows, then columns) uniform in
  `[0, 2 * pad]`, then, if `flip`, `n` uniforms (flip left-right where < 0.5).
  Returns the batch with `image` `[n, H, W, C]`, same dtype.
  """
  images = batch['image']
  n, h, w, _ = images.shape
  padded = np.pad(images, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
  dy, dx = rng.integers(0, 2 * pad + 1, size=(2, n))
  rows = dy[:, None] + np.arange(h)[None, :]
  cols = dx[:, None] + np.arange(w)[None, :]
  if flip:
    flips = rng.random(n) < 0.5
    cols = np.where(flips[:, None], cols[:, ::-1], cols)
  cropped = padded[np.arange(n)[:, None, None], rows[:, :, None], cols[:, None, :]]
  return {**batch, 'image': cropped}


def not_prepared_message(name: str, data_dir: str) -> str:
  """One line: how to get a tfds dataset that is not prepared in `data_dir`."""
  build = f'tfds build {name} --data_dir={data_dir} --file_format=array_record'
  if name.startswith('imagenet2012'):
    manual_dir = os.path.join(data_dir, 'downloads', 'manual')
    return (f"Dataset '{name}' is not prepared in {data_dir}: put ILSVRC2012_img_train.tar and "
            f'ILSVRC2012_img_val.tar in the tfds manual_dir {manual_dir}/ and run `{build}` '
            f'(needs TensorFlow, once), or point --config.data_dir at a prepared copy.')
  return (f"Dataset '{name}' is not prepared in {data_dir}: run `{build}` where TensorFlow is "
          f'installed (once; nothing is downloaded at run time), or point --config.data_dir at a '
          f'prepared copy.')


def open_split(name: str, split: str, data_dir: str | None, decoders: Any = None):
  """Opens a prepared tfds split for random access (`len`, `[i]`), never downloading.

  Returns a tfds `ArrayRecordDataSource`; `source[i]` is the decoded example dict.

  Raises:
    DatasetNotFoundError: the dataset is not prepared in `data_dir` in the array_record format.
  """
  import tensorflow_datasets as tfds

  from data import DatasetNotFoundError

  data_dir = resolve_data_dir(data_dir)
  try:
    # download=False: offline, tfds would otherwise retry the download for minutes.
    return tfds.data_source(name, split=split, data_dir=data_dir, download=False,
                            decoders=decoders)
  except Exception as error:  # pylint: disable=broad-except
    try:
      builder = tfds.builder(name, data_dir=data_dir)
      prepared = builder.is_prepared()
    except Exception:  # pylint: disable=broad-except  # e.g. an unknown name or version
      raise error from None
    if not prepared:
      raise DatasetNotFoundError(not_prepared_message(name, data_dir)) from None
    file_format = getattr(builder.info.file_format, 'value', builder.info.file_format)
    if file_format != 'array_record':
      raise DatasetNotFoundError(
          f"Dataset '{name}' in {builder.data_dir} is stored as {file_format}, which needs "
          f'TensorFlow to read: re-prepare it with `tfds build {name} --data_dir={data_dir} '
          f'--file_format=array_record`, or point --config.data_dir at an array_record copy.'
      ) from None
    raise


def load_arrays(source, chunk: int = 4096) -> dict[str, np.ndarray]:
  """Reads a whole tfds split into memory.

  Returns `{'image': uint8 [n, H, W, C], 'label': int32 [n]}` in the split's order.
  """
  images, labels = [], []
  for start in range(0, len(source), chunk):
    keys = list(range(start, min(start + chunk, len(source))))
    examples = read_records(source, keys)  # one batched read: ~4x faster than source[k]
    images.extend(np.asarray(e['image']) for e in examples)
    labels.extend(int(e['label']) for e in examples)
  if not images:
    raise ValueError(f'{source} is empty')
  return {'image': np.stack(images).astype(np.uint8, copy=False),
          'label': np.asarray(labels, np.int32)}


# ---------------------------------------------------------------------------------------------
# MNIST and CIFAR-10: small enough to hold in memory; augmentation is vectorised over the batch.


@dataclasses.dataclass(frozen=True)
class MnistOptions:
  """Options of the `mnist` pipeline.

  Attributes:
    tfds_name: the tfds dataset read, e.g. 'mnist:3.0.1' to pin a version.
    train_split: the tfds split trained on (slices such as 'train[:10%]' work).
    eval_split: the tfds split evaluated.
    augment: training augmentation: random crop of the 2-px zero-padded image (no flip: digits
      are not mirror-symmetric).
    standardize: subtract the training mean and divide by the std (else pixels in [0, 1]).
  """

  tfds_name: str = 'mnist'
  train_split: str = 'train'
  eval_split: str = 'test'
  augment: bool = False
  standardize: bool = False


@dataclasses.dataclass(frozen=True)
class Cifar10Options:
  """Options of the `cifar10` pipeline.

  Attributes:
    tfds_name: the tfds dataset read, e.g. 'cifar10:3.0.2' to pin a version.
    train_split: the tfds split trained on (slices such as 'train[:10%]' work).
    eval_split: the tfds split evaluated.
    augment: training augmentation: random crop of the 4-px zero-padded image, random flip.
    standardize: per-channel mean/std normalisation (else pixels in [0, 1]).
  """

  tfds_name: str = 'cifar10'
  train_split: str = 'train'
  eval_split: str = 'test'
  augment: bool = True
  standardize: bool = True


def _create_small(options: MnistOptions | Cifar10Options, data_dir: str | None, *, mean, std,
                  pad: int, flip: bool, num_classes: int) -> Dataset:
  train = load_arrays(open_split(options.tfds_name, options.train_split, data_dir))
  test = load_arrays(open_split(options.tfds_name, options.eval_split, data_dir))
  transform = normalizer(mean, std) if options.standardize else normalizer()
  augment_fn = None
  if options.augment:
    augment_fn = lambda batch, rng: random_crop_flip(batch, rng, pad=pad, flip=flip)
  return Dataset(
      train=ArraySource(train, augment=augment_fn, transform=transform),
      eval=ArraySource(test, transform=transform),
      facts=ClassificationFacts(num_classes, tuple(train['image'].shape[1:])),
  )


def create_mnist(options: MnistOptions, *, data_dir: str | None = None,
                 batch_size: int | None = None) -> Dataset:
  """MNIST, 60,000 train / 10,000 test 28x28x1 digits; pixels in [0, 1] unless `standardize`.

  `batch_size` is not used.
  """
  del batch_size
  return _create_small(options, data_dir, mean=MNIST_MEAN, std=MNIST_STD, pad=2, flip=False,
                       num_classes=10)


def create_cifar10(options: Cifar10Options, *, data_dir: str | None = None,
                   batch_size: int | None = None) -> Dataset:
  """CIFAR-10, 50,000 train / 10,000 test 32x32x3 images, standard crop/flip and mean/std.

  `batch_size` is not used.
  """
  del batch_size
  return _create_small(options, data_dir, mean=CIFAR10_MEAN, std=CIFAR10_STD, pad=4, flip=True,
                       num_classes=10)


# ---------------------------------------------------------------------------------------------
# ImageNet: decoded, cropped and resized per example, in worker processes (or threads).


class ThreadedExampleSource:
  """A split read one example at a time from a random-access store, decoded in threads.

  Each example gets its own generator seeded from the batch `rng` (drawn before any work starts),
  so a batch depends neither on thread scheduling nor on which process builds it. PIL decoding
  and resizing release the GIL only in part (2 threads run about 1.65x one), so for speed give
  the source `workers`: `pipeline.train_batches` and `eval_batches` then build whole batches in
  that many processes (data/workers.py), each decoding with `num_threads` threads.

  Args:
    store: `len()` and `store[i] -> example dict` (tfds `ArrayRecordDataSource`; with workers it
      must be picklable, as tfds data sources are).
    example_fn: `example_fn(example, rng) -> dict of fixed-shape arrays`; `rng` None in eval.
    num_threads: threads decoding a batch in the process that builds it (1: inline).
    workers: worker processes building batches (0: batches are built in the calling process).
  """

  def __init__(self, store: Any, example_fn: Callable[[dict, np.random.Generator | None], Batch],
               num_threads: int = 1, workers: int = 0):
    self.store = store
    self.example_fn = example_fn
    self.num_threads = max(1, int(num_threads))
    self.workers = max(0, int(workers))
    self._pool = None

  def __len__(self) -> int:
    return len(self.store)

  def __getstate__(self) -> dict:
    return {**self.__dict__, '_pool': None}  # a thread pool does not travel to a worker

  def _one(self, example: dict, seed: int | None) -> Batch:
    return self.example_fn(example, None if seed is None else np.random.default_rng(seed))

  def fetch(self, indices: np.ndarray, rng: np.random.Generator | None) -> Batch:
    indices = np.asarray(indices)
    seeds = [None] * len(indices) if rng is None else rng.integers(2**63, size=len(indices))
    records = read_records(self.store, [int(i) for i in indices])  # one batched read
    if self.num_threads == 1 or len(indices) == 1:
      examples = [self._one(r, s) for r, s in zip(records, seeds)]
    else:
      if self._pool is None:
        self._pool = concurrent.futures.ThreadPoolExecutor(self.num_threads)
      examples = list(self._pool.map(self._one, records, seeds))
    return {name: np.stack([e[name] for e in examples]) for name in examples[0]}


def example_source(store: Any, example_fn: Callable[[dict, np.random.Generator | None], Batch],
                   workers: int | None = None,
                   threads: int | None = None) -> ThreadedExampleSource:
  """A training or eval source of per-example records, built in `workers` processes.

  For image pipelines over a store of `{'image': encoded bytes or uint8 array, 'label': int}`
  records (tfds data sources, an image folder): e.g.
  `example_source(store, imagenet_example_fn(224, augment, normalize=False), workers=4)`.
  `workers` None: one per CPU core; 0: in the calling process with `threads` threads. `threads`
  None (or 0): 1 in each worker process, one per CPU core without workers.
  """
  if workers is None:
    workers = os.cpu_count() or 1
  if not threads:
    threads = 1 if workers else (os.cpu_count() or 1)
  return ThreadedExampleSource(store, example_fn, threads, workers)


def open_image(image: Any) -> Image.Image:
  """A PIL image of encoded bytes (JPEG, PNG), opened but not decoded yet (its size is known and
  a JPEG can still be `draft`ed), or of a uint8 array `[H, W, C]` / `[H, W]` / `[H, W, 1]`."""
  if isinstance(image, (bytes, np.bytes_)):
    return Image.open(io.BytesIO(bytes(image)))
  array = np.asarray(image, np.uint8)
  if array.ndim == 3 and array.shape[-1] == 1:
    array = array[..., 0]
  return Image.fromarray(array)


def to_pil(image: Any) -> Image.Image:
  """An RGB PIL image from encoded bytes (JPEG, PNG) or a uint8 array `[H, W, C]` / `[H, W]`,
  decoded in full (`draft` can no longer reduce it)."""
  image = open_image(image)
  image.load()
  return _rgb(image)


def _rgb(image: Image.Image) -> Image.Image:
  return image if image.mode == 'RGB' else image.convert('RGB')


def draft(image: Image.Image, box: tuple[float, float, float, float],
          size: tuple[int, int]) -> tuple[Image.Image, tuple[float, float, float, float]]:
  """Decodes `image` with no more pixels than resizing its region `box` to `size` needs.

  A JPEG not decoded yet (`open_image` of its bytes) is decoded at the smallest of the DCT scales
  1/8, 1/4, 1/2, 1/1 at which `box` (`(left, upper, right, lower)` in full-image pixels) still
  spans at least `size` = `(width, height)` pixels (PIL's `Image.draft`); other images are
  decoded in full. Returns the RGB image and `box` in its pixel coordinates (floats: a full-image
  pixel `x` lands at `x / scale`), to hand to `Image.resize(size, box=...)`.
  """
  left, upper, right, lower = box
  if getattr(image, 'format', None) == 'JPEG':  # once decoded, draft() declines (None)
    width, height = image.size
    request = (max(1, math.ceil(width * size[0] / max(right - left, 1e-9))),
               max(1, math.ceil(height * size[1] / max(lower - upper, 1e-9))))
    drafted = image.draft('RGB', request)
    if drafted is not None:
      scale = width / drafted[1][2]  # 1, 2, 4 or 8
      box = (left / scale, upper / scale, right / scale, lower / scale)
  return _rgb(image), box


def random_resized_crop_box(width: int, height: int, rng: np.random.Generator,
                            scale: tuple[float, float] = RRC_SCALE,
                            ratio: tuple[float, float] = RRC_RATIO) -> tuple[int, int, int, int]:
  """A random crop box `(left, upper, right, lower)` as torchvision's `RandomResizedCrop` draws it.

  Up to 10 tries of area `U(scale) * width * height` and log-uniform aspect ratio `w / h` in
  `ratio`; a box that fits is placed uniformly. Failing that, the largest central box whose aspect
  ratio is clamped into `ratio`.
  """
  area = width * height
  log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
  for _ in range(10):
    target_area = area * rng.uniform(scale[0], scale[1])
    aspect = math.exp(rng.uniform(log_ratio[0], log_ratio[1]))
    w = int(round(math.sqrt(target_area * aspect)))
    h = int(round(math.sqrt(target_area / aspect)))
    if 0 < w <= width and 0 < h <= height:
      top = int(rng.integers(0, height - h + 1))
      left = int(rng.integers(0, width - w + 1))
      return left, top, left + w, top + h
  in_ratio = width / height
  if in_ratio < ratio[0]:
    w, h = width, int(round(width / ratio[0]))
  elif in_ratio > ratio[1]:
    w, h = int(round(height * ratio[1])), height
  else:
    w, h = width, height
  top, left = (height - h) // 2, (width - w) // 2
  return left, top, left + w, top + h


def resize_center_crop(image: Image.Image, resize: int, size: int) -> Image.Image:
  """Resizes the shorter side to `resize` (bilinear, aspect kept); crops the central square.

  An undecoded JPEG (`open_image`) is `draft`-decoded at the smallest DCT scale that still has
  the shorter side >= `resize`. Returns an RGB image `size` x `size`.
  """
  width, height = image.size
  if width <= height:
    new_w, new_h = resize, int(resize * height / width)
  else:
    new_w, new_h = int(resize * width / height), resize
  image, box = draft(image, (0, 0, width, height), (new_w, new_h))
  image = image.resize((new_w, new_h), Image.BILINEAR, box=box)
  top = int(round((new_h - size) / 2))
  left = int(round((new_w - size) / 2))
  return image.crop((left, top, left + size, top + size))


def random_resized_crop(image: Image.Image, size: int, rng: np.random.Generator) -> Image.Image:
  """Training crop: `random_resized_crop_box`, resized to `size` x `size` (bilinear), then a flip
  left-right when `rng.random() < 0.5`. Draws the box, then the flip. An undecoded JPEG is
  `draft`-decoded at the smallest DCT scale at which the box still spans >= `size` pixels."""
  box = random_resized_crop_box(image.width, image.height, rng)
  image, box = draft(image, box, (size, size))
  image = image.resize((size, size), Image.BILINEAR, box=box)
  if rng.random() < 0.5:
    image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
  return image


ExampleFn = Callable[[dict, np.random.Generator | None], Batch]


def imagenet_example_fn(image_size: int = 224, augment: bool = True, mean=IMAGENET_MEAN,
                        std=IMAGENET_STD, *, normalize: bool = True) -> ExampleFn:
  """`example_fn(example, rng)` for ImageNet-style examples of any size (encoded bytes or arrays).

  Training (`rng` not None and `augment`): `random_resized_crop` to `image_size` (crop, resize,
  random flip). Otherwise: resize the shorter side to `round(image_size * 256 / 224)`, central
  crop (`resize_center_crop`). JPEG bytes are decoded at reduced size where the crop allows.
  Returns `{'image': [image_size, image_size, 3], 'label': int32 []}`: the image is float32
  (`x / 255`, standardised with `mean`/`std` unless they are None) when `normalize`, else the
  uint8 pixels (for the compiled step to normalise: `pipeline.ClassificationFacts`).
  """
  resize = int(round(image_size * IMAGENET_RESIZE_RATIO))
  transform = normalizer(mean, std)

  def example_fn(example: dict, rng: np.random.Generator | None) -> Batch:
    image = open_image(example['image'])
    if rng is not None and augment:
      image = random_resized_crop(image, image_size, rng)
    else:
      image = resize_center_crop(image, resize, image_size)
    pixels = np.asarray(image, np.uint8)
    if not normalize:
      return {'image': pixels, 'label': np.asarray(example['label'], np.int32)}
    batch = transform({'image': pixels[None], 'label': np.asarray([example['label']])})
    return {'image': batch['image'][0], 'label': batch['label'][0]}

  return example_fn


@dataclasses.dataclass(frozen=True)
class ImageNetOptions:
  """Options of the `imagenet2012` pipeline.

  Attributes:
    tfds_name: the tfds dataset read, e.g. 'imagenet2012:5.0.0' to pin a version.
    train_split: the tfds split trained on (slices such as 'train[:10%]' work).
    eval_split: the tfds split evaluated.
    augment: training augmentation: random-resized crop and random flip (else the evaluation
      resize and central crop).
    standardize: per-channel ImageNet mean/std normalisation (else pixels in [0, 1]).
    image_size: the side of the square crops (224; 227 for AlexNet).
    workers: processes decoding and augmenting batches for the trainer (None: one per CPU core;
      0: in the training process, with `decode_threads` threads).
    decode_threads: threads decoding a batch in each process that builds batches (None: 1 with
      workers, else one per CPU core).
  """

  tfds_name: str = 'imagenet2012'
  train_split: str = 'train'
  eval_split: str = 'validation'
  augment: bool = True
  standardize: bool = True
  image_size: int = 224
  workers: int | None = None
  decode_threads: int | None = None


def create_imagenet2012(options: ImageNetOptions, *, data_dir: str | None = None,
                        batch_size: int | None = None) -> Dataset:
  """ILSVRC-2012 classification: 1,281,167 train / 50,000 validation images, 1,000 classes.

  Batches hold uint8 images `[batch, image_size, image_size, 3]`, which the classification task
  normalises inside the compiled step with the ImageNet mean/std (`ClassificationFacts`; pixels
  in [0, 1] when `standardize` is False). JPEGs are read as bytes and decoded here, at reduced
  size where the crop allows. `batch_size` is not used.
  """
  del batch_size
  import tensorflow_datasets as tfds

  image_size = options.image_size
  workers, threads = options.workers, options.decode_threads
  mean, std = (IMAGENET_MEAN, IMAGENET_STD) if options.standardize else (None, None)
  raw = {'image': tfds.decode.SkipDecoding()}  # bytes: decoded here, drafted to the crop
  train = open_split(options.tfds_name, options.train_split, data_dir, decoders=raw)
  evaluation = open_split(options.tfds_name, options.eval_split, data_dir, decoders=raw)
  return Dataset(
      train=example_source(
          train, imagenet_example_fn(image_size, options.augment, normalize=False), workers,
          threads),
      eval=example_source(
          evaluation, imagenet_example_fn(image_size, False, normalize=False), workers, threads),
      facts=ClassificationFacts(1000, (image_size, image_size, 3), mean, std),
  )
