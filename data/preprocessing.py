"""How an image file becomes a model input: resize, crop, channel order and normalisation.

Published weights expect the preprocessing their source trained with, and a trained run expects
its eval pipeline's; `Preprocessing` states either as data, so a workdir's config records it and
`train.predict`, `train.evaluate` and fine-tuning apply the same:

  x = (pixels[channels] - mean) / std    pixels in 0..255, mean and std in pixel units, given in
                                         the channel order of the model input

| preset        | resize                              | crop | channels | mean                   | std                   |
|---------------|-------------------------------------|------|----------|------------------------|-----------------------|
| `TORCHVISION` | shorter side to 256, bilinear       | 224  | RGB      | 255 * (.485,.456,.406) | 255 * (.229,.224,.225)|
| `KERAS_CAFFE` | whole image to 224x224, nearest     | none | BGR      | (103.939,116.779,123.68)| none (1)             |

torchvision's (`transforms.Resize(256)`, `CenterCrop(224)`, `Normalize(...)` on [0, 1] pixels)
is the ImageNet eval pipeline of data/images.py, whose helpers this module uses.
`keras.applications.vgg16.preprocess_input` ('caffe' mode: RGB -> BGR, subtract the ImageNet
mean, no scaling) after `keras.utils.load_img(path, target_size=(224, 224))`, whose default
interpolation is nearest.

Training (`train_image`) draws torchvision's `RandomResizedCrop(image_size)` box and a random
flip instead of the resize and central crop; everything after the crop is the same.

`for_config(config)` gives the preprocessing of any image classification config: the fields of
the `image_folder` and `imagenet2012_published` pipelines, or what the other image pipelines do
to their stored arrays (for an image file of any size: resized to their input size).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import numpy as np
from PIL import Image

from data.images import (IMAGENET_MEAN, IMAGENET_STD, random_resized_crop_box,
                         resize_center_crop)

CHANNELS = {'rgb': 3, 'bgr': 3, 'gray': 1}
RESIZES = ('shorter_side', 'square')
INTERPOLATIONS = {'bilinear': Image.BILINEAR, 'nearest': Image.NEAREST}

# The fields an options dataclass shares with `Preprocessing` (image_folder, imagenet2012_published).
FIELDS = ('image_size', 'resize', 'crop_fraction', 'interpolation', 'channels', 'mean', 'std')


@dataclasses.dataclass(frozen=True)
class Preprocessing:
  """Eval preprocessing of one image, in 0..255 pixel units.

  Attributes:
    image_size: side of the square model input.
    resize: 'shorter_side': resize the shorter side to `round(image_size / crop_fraction)`
      (aspect kept), then crop the central `image_size` square (torchvision); 'square': resize
      the whole image to `image_size` x `image_size` (Keras' `load_img(target_size=...)`).
    crop_fraction: `image_size` over the resized shorter side (224 / 256 = 0.875).
    interpolation: 'bilinear' or 'nearest'.
    channels: 'rgb', 'bgr' (RGB reversed, Caffe's order) or 'gray' (one channel, PIL's 'L').
    mean: per-channel value subtracted, in pixel units, in the order of `channels`.
    std: per-channel divisor, in pixel units.
  """

  image_size: int = 224
  resize: str = 'shorter_side'
  crop_fraction: float = 0.875
  interpolation: str = 'bilinear'
  channels: str = 'rgb'
  mean: tuple[float, ...] = tuple(255 * m for m in IMAGENET_MEAN)
  std: tuple[float, ...] = tuple(255 * s for s in IMAGENET_STD)

  def __post_init__(self):
    check(self)

  @property
  def input_shape(self) -> tuple[int, int, int]:
    return (self.image_size, self.image_size, CHANNELS[self.channels])

  @property
  def resize_to(self) -> int:
    """The shorter side after resizing ('shorter_side')."""
    return int(round(self.image_size / self.crop_fraction))


def check(p: Any) -> None:
  """Raises ValueError naming the first preprocessing field (of `p`) that is invalid."""
  if p.channels not in CHANNELS:
    raise ValueError(f"channels must be one of {', '.join(CHANNELS)}, got {p.channels!r}")
  if p.resize not in RESIZES:
    raise ValueError(f"resize must be one of {', '.join(RESIZES)}, got {p.resize!r}")
  if p.interpolation not in INTERPOLATIONS:
    raise ValueError(f"interpolation must be one of {', '.join(INTERPOLATIONS)}, got "
                     f'{p.interpolation!r}')
  if not 0 < p.crop_fraction <= 1:
    raise ValueError(f'crop_fraction must be in (0, 1], got {p.crop_fraction!r}')
  count = CHANNELS[p.channels]
  for name in ('mean', 'std'):
    value = tuple(getattr(p, name))
    if len(value) not in (1, count):
      raise ValueError(f'{name} must have 1 or {count} values for channels {p.channels!r}, '
                       f'got {value!r}')
  if any(s <= 0 for s in p.std):
    raise ValueError(f'std must be positive, got {tuple(p.std)!r}')


TORCHVISION = Preprocessing()
KERAS_CAFFE = Preprocessing(resize='square', crop_fraction=1.0, interpolation='nearest',
                            channels='bgr', mean=(103.939, 116.779, 123.68), std=(1.0, 1.0, 1.0))
PRESETS = {'torchvision': TORCHVISION, 'keras_caffe': KERAS_CAFFE}


def from_options(options: Any) -> Preprocessing:
  """The `Preprocessing` of an options dataclass that has the `FIELDS`."""
  return Preprocessing(**{name: getattr(options, name) for name in FIELDS})


def as_options(p: Preprocessing) -> dict[str, Any]:
  """`p` as the values of the `FIELDS` of an options dataclass (for `data.options(...)`)."""
  return {name: getattr(p, name) for name in FIELDS}


def load_image(path: str) -> Image.Image:
  """The image file at `path`, decoded (any mode PIL reads); OSError naming the file otherwise."""
  try:
    with Image.open(path) as image:
      image.load()
      return image.copy()
  except (OSError, ValueError, Image.DecompressionBombError) as error:
    message = ' '.join(str(error).split()) or type(error).__name__
    raise OSError(f'cannot read image {path}: {message}') from None


def _mode(p: Preprocessing, image: Image.Image) -> Image.Image:
  return image.convert('L' if p.channels == 'gray' else 'RGB')


def pixels(p: Preprocessing, image: Image.Image) -> np.ndarray:
  """A resized and cropped PIL image -> uint8 `[H, W, C]` in the channel order of `p`."""
  values = np.asarray(_mode(p, image), np.uint8)
  if values.ndim == 2:
    values = values[..., None]
  if p.channels == 'bgr':
    values = values[..., ::-1]
  return np.ascontiguousarray(values)


def normalize(p: Preprocessing, image: Image.Image) -> np.ndarray:
  """A resized and cropped PIL image -> float32 `[H, W, C]`, channels ordered and normalised."""
  mean = np.asarray(p.mean, np.float32)
  std = np.asarray(p.std, np.float32)
  return ((pixels(p, image).astype(np.float32) - mean) / std).astype(np.float32)


def unit_statistics(p: Preprocessing) -> tuple[tuple[float, ...], tuple[float, ...]]:
  """`p.mean` and `p.std` in [0, 1] units (over 255), one value per model input channel: what
  `data.pipeline.ClassificationFacts` takes, so the classification task computes
  `(x / 255 - mean / 255) / (std / 255) = (x - mean) / std` from uint8 pixels inside the step."""
  count = CHANNELS[p.channels]
  mean = tuple(float(m) / 255 for m in p.mean) * (count if len(p.mean) == 1 else 1)
  std = tuple(float(s) / 255 for s in p.std) * (count if len(p.std) == 1 else 1)
  return mean, std


def _finish(p: Preprocessing, image: Image.Image, as_uint8: bool) -> np.ndarray:
  return pixels(p, image) if as_uint8 else normalize(p, image)


def eval_image(p: Preprocessing, image: Image.Image, as_uint8: bool = False) -> np.ndarray:
  """Resize and crop as `p` says, then `normalize`: float32 `p.input_shape` (with `as_uint8`:
  the uint8 `pixels` instead, for the step to normalise)."""
  image = _mode(p, image)
  if p.resize == 'square':
    image = image.resize((p.image_size, p.image_size), INTERPOLATIONS[p.interpolation])
  elif p.interpolation == 'bilinear':
    image = resize_center_crop(image, p.resize_to, p.image_size)
  else:
    width, height = image.size
    short = p.resize_to
    size = ((short, int(short * height / width)) if width <= height
            else (int(short * width / height), short))
    image = image.resize(size, INTERPOLATIONS[p.interpolation])
    top = int(round((size[1] - p.image_size) / 2))
    left = int(round((size[0] - p.image_size) / 2))
    image = image.crop((left, top, left + p.image_size, top + p.image_size))
  return _finish(p, image, as_uint8)


def train_image(p: Preprocessing, image: Image.Image, rng: np.random.Generator,
                as_uint8: bool = False) -> np.ndarray:
  """torchvision's random-resized crop to `image_size` and a flip with probability 1/2 (draws
  from `rng` in that order), then `normalize`: float32 `p.input_shape` (uint8 with `as_uint8`)."""
  image = _mode(p, image)
  box = random_resized_crop_box(image.width, image.height, rng)
  image = image.resize((p.image_size, p.image_size), INTERPOLATIONS[p.interpolation], box=box)
  if rng.random() < 0.5:
    image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
  return _finish(p, image, as_uint8)


def example_fn(p: Preprocessing, augment: bool, decode: Callable[[Any], Image.Image],
               as_uint8: bool = False) -> Callable[[dict, Any], dict]:
  """`example_fn(example, rng)` for `data.images.example_source`: `decode(example['image'])`
  preprocessed (`train_image` when `rng` is given and `augment`, else `eval_image`) ->
  `{'image': float32 p.input_shape, 'label': int32 []}` (with `as_uint8`: uint8 pixels in the
  model's channel order, normalised in the step with `unit_statistics(p)`). A module-level
  callable, so worker processes can receive it."""
  return _ExampleFn(p, augment, decode, as_uint8)


@dataclasses.dataclass(frozen=True)
class _ExampleFn:
  p: Preprocessing
  augment: bool
  decode: Callable[[Any], Image.Image]
  as_uint8: bool

  def __call__(self, example: dict, rng) -> dict:
    image = self.decode(example['image'])
    if rng is not None and self.augment:
      values = train_image(self.p, image, rng, self.as_uint8)
    else:
      values = eval_image(self.p, image, self.as_uint8)
    return {'image': values, 'label': np.asarray(example['label'], np.int32)}


def for_config(config) -> Preprocessing:
  """The eval preprocessing of an image classification config (`dataset` and `data`).

  Raises:
    ValueError: the dataset is not an image classification pipeline.
  """
  name = config.get('dataset', '')
  section = config.get('data', None)
  values = section.to_dict() if hasattr(section, 'to_dict') else dict(section or {})
  if all(field in values for field in FIELDS):
    return Preprocessing(**{field: (tuple(values[field]) if field in ('mean', 'std')
                                    else values[field]) for field in FIELDS})
  standardize = values.get('standardize', True)
  if name == 'imagenet2012':
    size = values.get('image_size', 224)
    return Preprocessing(image_size=size, crop_fraction=size / round(size * 256 / 224),
                         **({} if standardize else {'mean': (0.0,), 'std': (255.0,)}))
  if name in ('mnist', 'fashion_mnist', 'cifar10', 'digits'):
    if name == 'digits':  # 8x8 values 0..16 scaled to [0, 1]
      mean, std = (0.0,), (255.0,)
    elif not standardize:
      mean, std = (0.0,), (255.0,)
    elif name == 'fashion_mnist':
      from data import fashion_mnist
      mean, std = fashion_mnist.MEAN, fashion_mnist.STD
    else:
      from data import images
      mean, std = ((images.MNIST_MEAN, images.MNIST_STD) if name == 'mnist'
                   else (images.CIFAR10_MEAN, images.CIFAR10_STD))
    if name != 'digits' and standardize:
      mean, std = tuple(255 * m for m in mean), tuple(255 * s for s in std)
    size = {'digits': 8, 'cifar10': 32}.get(name, 28)
    return Preprocessing(image_size=size, resize='square', crop_fraction=1.0,
                         channels='rgb' if name == 'cifar10' else 'gray', mean=mean, std=std)
  raise ValueError(f"dataset '{name}' is not an image classification dataset with a known "
                   'preprocessing (image_folder, imagenet2012, imagenet2012_published, mnist, '
                   'fashion_mnist, cifar10, digits)')
