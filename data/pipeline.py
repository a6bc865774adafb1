"""Batching shared by every dataset: random-access sources, deterministic and resumable order.

Every input pipeline in `data/` reduces to two `Source`s (train and eval) plus the facts the model
and task need (a typed `DatasetFacts`). A `Source` is random-access: `len(source)` examples, and
`source.fetch(indices, rng)` returns one batch as a dict of stacked NumPy arrays with fixed shapes.
Augmentation lives inside the source and draws only from the `rng` it is handed (`rng=None` means
evaluation: no randomness).

Because the order of training batches is a pure function of `(seed, step)`, a run resumed at step
`k` reads exactly the batches an uninterrupted run would have read, with no iterator state to save.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import os
import queue
import threading
from typing import Any, Callable, Iterator, Mapping, Protocol

import numpy as np

Batch = dict[str, np.ndarray]


class Source(Protocol):
  """A random-access split: `len()` examples, fetched a batch at a time."""

  def __len__(self) -> int:
    ...

  def fetch(self, indices: np.ndarray, rng: np.random.Generator | None) -> Batch:
    """Returns the examples at `indices` as a dict of arrays, each `[len(indices), ...]`."""
    ...

  # Optional: `train_indices(batch_size, seed, step) -> [batch_size]` global indices read at
  # `step`, for a source with its own training order (e.g. the contiguous windows of truncated
  # back-propagation through time); without it, `train_indices` below shuffles every epoch.
  # Optional: `workers: int`, above 0 to have `train_batches` and `eval_batches` build batches
  # in that many worker processes (data/workers.py; the source must then be picklable).


class ArraySource:
  """A split held in memory as a dict of equally long arrays.

  Args:
    arrays: name -> array `[num_examples, ...]`.
    augment: optional `augment(batch, rng) -> batch`, applied in training only (rng not None).
    transform: optional `transform(batch) -> batch`, applied always, after `augment`
      (e.g. dtype conversion and normalisation).
  """

  def __init__(self, arrays: Mapping[str, np.ndarray],
               augment: Callable[[Batch, np.random.Generator], Batch] | None = None,
               transform: Callable[[Batch], Batch] | None = None):
    lengths = {name: len(a) for name, a in arrays.items()}
    if len(set(lengths.values())) != 1:
      raise ValueError(f'ArraySource arrays differ in length: {lengths}')
    self.arrays = dict(arrays)
    self._len = next(iter(lengths.values()))
    self.augment = augment
    self.transform = transform

  def __len__(self) -> int:
    return self._len

  def fetch(self, indices: np.ndarray, rng: np.random.Generator | None) -> Batch:
    batch = {name: a[indices] for name, a in self.arrays.items()}
    if rng is not None and self.augment is not None:
      batch = self.augment(batch, rng)
    if self.transform is not None:
      batch = self.transform(batch)
    return batch


class DamagedShardError(OSError):
  """A file of a prepared dataset is truncated or garbled; the message names it and the fix."""


def read_records(store: Any, keys: list[int]) -> list[dict]:
  """`[store[k] for k in keys]`, in one batched read where `store` has one (tfds sources do).

  Raises:
    DamagedShardError: an array_record file behind `store` is damaged (truncated, garbled).
  """
  try:
    try:
      return list(store.__getitems__(keys))
    except (AttributeError, TypeError):  # no __getitems__, or tfds.testing.mock_data's broken one
      return [store[k] for k in keys]
  except RuntimeError as error:
    if 'Riegeli' not in str(error) and 'array_record' not in str(error).lower():
      raise
    raise DamagedShardError(_damaged_message(store, keys, error)) from None


def _damaged_message(store: Any, keys: list[int], error: Exception) -> str:
  """Names the damaged file of a tfds data source (the shard holding `keys[0]`) and the fix."""
  import importlib
  reason = ' '.join(str(error).split())[:200]
  info, split = getattr(store, 'dataset_info', None), getattr(store, 'split', None)
  if info is None or split is None:
    return f'a file of the dataset is damaged ({reason}); prepare the dataset again'
  path, first = None, 0
  for instruction in info.splits[split].file_instructions:
    path = instruction.filename
    first += instruction.take
    if keys and keys[0] < first:
      break
  directory = str(info.data_dir)
  root = os.path.dirname(os.path.dirname(directory.rstrip('/')))  # above NAME/VERSION
  command = f'tfds build {info.name} --file_format=array_record'
  for module in ('data.fashion_mnist', 'data.movie_reviews', 'data.shakespeare', 'data.translation'):
    module = importlib.import_module(module)
    if getattr(module, 'NAME', None) == info.name:
      command = module.PREPARE_COMMAND
  return (f'dataset file {path} is damaged ({reason}); delete {directory} and re-run '
          f'`{command} --data_dir={root}`')


class TokenVocabulary(Protocol):
  """What every vocabulary of `data/` offers: `tokens[i]` is the token of id `i`."""

  tokens: tuple[str, ...]

  def __len__(self) -> int:
    ...


@dataclasses.dataclass(frozen=True)
class DatasetFacts:
  """Facts about a dataset that a model, a task or a command needs: the base of a small family.

  Each pipeline returns one subclass (`ClassificationFacts`, `CaptioningFacts` here;
  `text.TextClassificationFacts`, `text.LanguageModelFacts`, `synthetic.Seq2SeqFacts`,
  `translation.TranslationFacts`, `timeseries.ForecastingFacts`), whose fields are the facts;
  a consumer that needs a kind of dataset checks for its class with `isinstance`. The base class
  itself states no facts (e.g. a hand-made dataset in a test).
  """

  def model_kwargs(self) -> dict[str, Any]:
    """The model's constructor arguments that follow from the data (e.g. `num_classes`); the
    trainer passes them to the model, under the config's `model_kwargs`, which override them."""
    return {}

  def task_kwargs(self) -> dict[str, Any]:
    """The task's constructor arguments that follow from the data (e.g. the statistics that uint8
    images are normalised with in the step); passed under the config's `task_kwargs`."""
    return {}


@dataclasses.dataclass(frozen=True)
class ClassificationFacts(DatasetFacts):
  """An image classification dataset.

  Images come as float32 (normalised on the host) or as uint8 `[batch, H, W, C]` pixels, which the
  classification task normalises inside the compiled step (`train.tasks.Classification.prepare`):
  `x / 255`, then, with `image_mean` and `image_std`, `(x / 255 - mean) / std` per channel.

  Attributes:
    num_classes: labels are `0 .. num_classes - 1`.
    input_shape: the shape of one image, `(height, width, channels)`.
    image_mean, image_std: per-channel statistics in [0, 1] units that uint8 images are
      standardised with in the step (None: uint8 images are only scaled to [0, 1]).
  """

  num_classes: int
  input_shape: tuple[int, ...]
  image_mean: tuple[float, ...] | None = None
  image_std: tuple[float, ...] | None = None

  def model_kwargs(self) -> dict[str, Any]:
    return {'num_classes': self.num_classes}

  def task_kwargs(self) -> dict[str, Any]:
    if self.image_mean is None:
      return {}
    return {'image_mean': tuple(self.image_mean), 'image_std': tuple(self.image_std)}


@dataclasses.dataclass(frozen=True)
class CaptioningFacts(DatasetFacts):
  """An image captioning dataset (batches: `image`, `decoder_inputs`, `targets`, `target_mask`).

  Attributes:
    vocab: the caption vocabulary (`len(vocab)` ids).
    input_shape: the shape of one image, `(height, width, channels)`.
    max_decode_length: decoder steps `T` of the batches (longest caption + EOS).
    pad_id, bos_id, eos_id: the special token ids.
  """

  vocab: TokenVocabulary
  input_shape: tuple[int, ...]
  max_decode_length: int
  pad_id: int
  bos_id: int
  eos_id: int

  def model_kwargs(self) -> dict[str, Any]:
    return {'vocab_size': len(self.vocab), 'max_decode_length': self.max_decode_length,
            'pad_id': self.pad_id, 'bos_id': self.bos_id, 'eos_id': self.eos_id}


@dataclasses.dataclass(frozen=True)
class Dataset:
  """What an input pipeline hands the trainer.

  Attributes:
    train: the training split.
    eval: the split evaluated every `eval_every_steps` and at the end (the test split).
    facts: what the model and task need to know about the data (a `DatasetFacts` subclass);
      the trainer passes `facts.model_kwargs()` to the model unless the config overrides them.
  """

  train: Source
  eval: Source
  facts: DatasetFacts


def steps_per_epoch(num_examples: int, batch_size: int) -> int:
  """Training batches per pass over the data (a partial last batch is left to the next epoch's shuffle)."""
  if batch_size > num_examples:
    raise ValueError(
        f'batch_size {batch_size} is larger than the training split ({num_examples} examples); '
        f'use --config.batch_size={num_examples} or less.')
  return num_examples // batch_size


def train_indices(num_examples: int, batch_size: int, seed: int, step: int) -> np.ndarray:
  """Indices of the global training batch read at `step`: a fresh permutation every epoch."""
  epoch, position = divmod(step, steps_per_epoch(num_examples, batch_size))
  permutation = np.random.default_rng([seed, epoch]).permutation(num_examples)
  return permutation[position * batch_size:(position + 1) * batch_size]


def train_batch(source: Source, batch_size: int, seed: int, step: int, process_index: int = 0,
                process_count: int = 1) -> Batch:
  """This process's slice of the global training batch of `step`: a pure function of its arguments.

  The global batch is `train_indices(len(source), batch_size, seed, step)` (or the source's own
  `train_indices`); process `p` of `n` takes its contiguous `batch_size // n` slice, augmented
  with a generator seeded by `(seed, step, 1 + p)`.
  """
  if batch_size % process_count:
    raise ValueError(f'batch_size {batch_size} does not divide over {process_count} processes.')
  per_process = batch_size // process_count
  order = getattr(source, 'train_indices', None)
  indices = (order(batch_size, seed, step) if order is not None
             else train_indices(len(source), batch_size, seed, step))
  local = indices[process_index * per_process:(process_index + 1) * per_process]
  return source.fetch(local, np.random.default_rng([seed, step, 1 + process_index]))


def train_batches(source: Source, batch_size: int, seed: int, start_step: int = 0,
                  process_index: int = 0, process_count: int = 1) -> Iterator[Batch]:
  """Endless training batches starting at `start_step`; the order depends on `(seed, step)` only.

  Yields `train_batch(source, batch_size, seed, step, process_index, process_count)` for `step =
  start_step, start_step + 1, ...`. With several processes (hosts), each yields its contiguous
  `batch_size // process_count` slice of the same global batch: the examples do not depend on the
  number of hosts. A source with a `train_indices(batch_size, seed, step)` method chooses its own
  order. Augmentation draws from a per-process generator, so augmented pixels do (statistically
  equivalent, not identical). A source whose `workers` attribute is above 0 has its batches built
  in that many worker processes (`data/workers.py`), with the same result.
  """
  if batch_size % process_count:
    raise ValueError(f'batch_size {batch_size} does not divide over {process_count} processes.')
  workers = getattr(source, 'workers', 0) or 0
  if workers > 0:
    from data import workers as workers_lib
    batch_at = functools.partial(train_batch, source, batch_size, seed,
                                 process_index=process_index, process_count=process_count)
    yield from workers_lib.batches(batch_at, start_step, workers_lib.ENDLESS, workers)
    return
  step = start_step
  while True:
    yield train_batch(source, batch_size, seed, step, process_index, process_count)
    step += 1


def eval_batch(source: Source, batch_size: int, start: int, process_index: int = 0,
               process_count: int = 1) -> Batch:
  """This process's slice of the eval batch of examples `start .. start + batch_size - 1`.

  Carries `mask` (`[batch]`, bool): False on padding past the end of `source` (padding repeats
  example 0, so it is a valid input of the right shape).
  """
  if batch_size % process_count:
    raise ValueError(f'eval batch_size {batch_size} does not divide over {process_count} processes.')
  per_process = batch_size // process_count
  indices = np.arange(start, start + batch_size)
  mask = indices < len(source)
  indices = np.where(mask, indices, 0)
  part = slice(process_index * per_process, (process_index + 1) * per_process)
  batch = source.fetch(indices[part], None)
  batch['mask'] = mask[part]
  return batch


def eval_batches(source: Source, batch_size: int, process_index: int = 0,
                 process_count: int = 1) -> Iterator[Batch]:
  """One exact pass over `source`: every example once, the last batch padded.

  Each batch carries `mask` (`[batch]`, bool): False on padding, which metrics must ignore.
  Padding repeats example 0, so it is a valid input of the right shape. A source whose `workers`
  attribute is above 0 has its batches built in worker processes, with the same result.
  """
  if batch_size % process_count:
    raise ValueError(f'eval batch_size {batch_size} does not divide over {process_count} processes.')
  workers = getattr(source, 'workers', 0) or 0
  count = -(-len(source) // batch_size)
  if workers > 0 and count > 1:
    from data import workers as workers_lib
    batch_at = functools.partial(_eval_batch_number, source, batch_size,
                                 process_index=process_index, process_count=process_count)
    yield from workers_lib.batches(batch_at, 0, count, workers)
    return
  for start in range(0, len(source), batch_size):
    yield eval_batch(source, batch_size, start, process_index, process_count)


def _eval_batch_number(source: Source, batch_size: int, number: int, process_index: int = 0,
                       process_count: int = 1) -> Batch:
  """Eval batch `number` (examples from `number * batch_size`), for worker processes."""
  return eval_batch(source, batch_size, number * batch_size, process_index, process_count)


def prefetch(iterator: Iterator[Batch], size: int = 2) -> Iterator[Batch]:
  """Runs `iterator` in a background thread, `size` batches ahead (NumPy work releases the GIL).

  Closing the returned generator (or dropping it) stops the thread, which then closes `iterator`
  (e.g. ending its worker processes); the close waits up to 10 s for that.
  """
  buffer: queue.Queue = queue.Queue(maxsize=size)
  done = object()
  stop = threading.Event()

  def put(item) -> bool:
    while not stop.is_set():
      try:
        buffer.put(item, timeout=0.1)
        return True
      except queue.Full:
        pass
    return False

  def produce():
    try:
      for item in iterator:
        if not put(item):
          break
      else:
        put(done)
    except BaseException as error:  # re-raised in the consumer
      put(_Failure(error))
    finally:
      close = getattr(iterator, 'close', None)
      if close is not None:
        close()

  thread = threading.Thread(target=produce, daemon=True)
  thread.start()
  try:
    while True:
      item = buffer.get()
      if item is done:
        return
      if isinstance(item, _Failure):
        raise item.error
      yield item
  finally:
    stop.set()
    thread.join(timeout=10)


_Failure = collections.namedtuple('_Failure', ['error'])
