"""The PyTorch twin of the ImageNet training pipeline, for `data/benchmark.py` only (needs torch).

`ImageNetTrain` is a map-style `torch.utils.data.Dataset` doing what torchvision's standard
ImageNet training transforms do, written out with PIL and torch (torchvision is not a
dependency): decode the JPEG in full and convert to RGB, `RandomResizedCrop(size)` (scale
8%-100%, aspect 3/4-4/3, crop then bilinear resize, torch's generator), `RandomHorizontalFlip()`,
`ToTensor()` (float32 `[3, size, size]` in [0, 1]) and `Normalize(mean, std)`. `StepBatches` is
a batch sampler of the trainer's batches of indices (`data.pipeline.train_indices`, this host's
slice), so the DataLoader reads the same examples as ours.
"""

from __future__ import annotations

import io
import math
import os
from typing import Any, Callable

import numpy as np
import torch
from PIL import Image

from data import pipeline


def random_resized_crop_params(width: int, height: int, scale=(0.08, 1.0),
                               ratio=(3 / 4, 4 / 3)) -> tuple[int, int, int, int]:
  """torchvision's `RandomResizedCrop.get_params`: `(top, left, h, w)`, torch's generator."""
  area = height * width
  log_ratio = torch.log(torch.tensor(ratio))
  for _ in range(10):
    target_area = area * torch.empty(1).uniform_(scale[0], scale[1]).item()
    aspect = math.exp(torch.empty(1).uniform_(log_ratio[0], log_ratio[1]).item())
    w = int(round(math.sqrt(target_area * aspect)))
    h = int(round(math.sqrt(target_area / aspect)))
    if 0 < w <= width and 0 < h <= height:
      top = torch.randint(0, height - h + 1, size=(1,)).item()
      left = torch.randint(0, width - w + 1, size=(1,)).item()
      return top, left, h, w
  in_ratio = width / height
  if in_ratio < min(ratio):
    w, h = width, int(round(width / min(ratio)))
  elif in_ratio > max(ratio):
    h, w = height, int(round(height * max(ratio)))
  else:
    w, h = width, height
  return (height - h) // 2, (width - w) // 2, h, w


class ImageNetTrain(torch.utils.data.Dataset):
  """`dataset[i] -> (float32 [3, size, size] normalised, int label)` from a store of JPEG bytes.

  `open_store()` returns the store (`store[i] -> {'image': bytes, 'label': int}`, `len`); it is
  called once in each process that reads (an array_record reader does not survive being
  pickled into, or forked into, a DataLoader worker).
  """

  def __init__(self, open_store: Callable[[], Any], num_examples: int, size: int, mean, std):
    self.open_store, self.num_examples, self.size = open_store, num_examples, size
    self.mean = torch.tensor(mean, dtype=torch.float32)[:, None, None]
    self.std = torch.tensor(std, dtype=torch.float32)[:, None, None]
    self.store, self.pid = None, None

  def __len__(self) -> int:
    return self.num_examples

  def __getitem__(self, index: int):
    if self.pid != os.getpid():
      self.store, self.pid = self.open_store(), os.getpid()
    example = self.store[int(index)]
    image = Image.open(io.BytesIO(bytes(example['image']))).convert('RGB')
    top, left, h, w = random_resized_crop_params(image.width, image.height)
    image = image.crop((left, top, left + w, top + h)).resize((self.size, self.size),
                                                              Image.BILINEAR)
    if torch.rand(1).item() < 0.5:
      image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    tensor = torch.from_numpy(np.array(image, np.uint8, copy=True))  # ToTensor
    tensor = tensor.view(self.size, self.size, 3).permute(2, 0, 1).contiguous()
    tensor = tensor.to(torch.float32).div(255)
    tensor = tensor.sub_(self.mean).div_(self.std)  # Normalize
    return tensor, int(example['label'])


class StepBatches(torch.utils.data.Sampler):
  """This host's indices of the trainer's training batches from `start_step` on (endless)."""

  def __init__(self, num_examples: int, batch_size: int, seed: int, start_step: int,
               process_index: int = 0, process_count: int = 1):
    self.num_examples, self.batch_size, self.seed = num_examples, batch_size, seed
    self.start_step, self.process_index = start_step, process_index
    self.per_process = batch_size // process_count

  def __iter__(self):
    step = self.start_step
    while True:
      indices = pipeline.train_indices(self.num_examples, self.batch_size, self.seed, step)
      first = self.process_index * self.per_process
      yield [int(i) for i in indices[first:first + self.per_process]]
      step += 1
