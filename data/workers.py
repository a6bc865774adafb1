"""Batches built in worker processes with grain, each one a pure function of its step.

`pipeline.train_batches` and `pipeline.eval_batches` hand a source whose `workers` attribute is
above 0 to the functions here. The batches are a grain `MapDataset` over step numbers,

    MapDataset.range(start_step, ...).map(step -> pipeline.train_batch(source, ..., step))

run in `workers` processes by `mp_prefetch` (process `i` builds steps `start + i`,
`start + i + workers`, ...; grain hands them back in step order). Since batch `k` depends only on
`(seed, k)`, the stream is the same for any number of workers, and a run resumed at step `k`
reads what an uninterrupted run would. The workers write each batch's arrays into shared memory;
the consumer copies them out (a uint8 ImageNet batch of 128 is 19 MB) and frees the block at once.

Workers are started with multiprocessing's 'spawn' (grain's choice): the source is pickled
(cloudpickle) into each, so it must be picklable and should be cheap to pickle (a tfds data
source is: it reopens its files); in-memory arrays are copied into every worker, so in-memory
pipelines are best left in the main process. Starting a worker takes seconds (imports).
"""

from __future__ import annotations

from typing import Any, Iterator

import numpy as np

from data import pipeline

# A stream of steps longer than any run: `MapDataset.range` is lazy, so its length costs nothing.
_ENDLESS = 2**62


class _TrainBatch:
  """`step -> the process's slice of the global training batch of `step`` (picklable)."""

  def __init__(self, source, batch_size: int, seed: int, process_index: int, process_count: int):
    self.source, self.batch_size, self.seed = source, batch_size, seed
    self.process_index, self.process_count = process_index, process_count

  def __call__(self, step: int) -> pipeline.Batch:
    return pipeline.train_batch(self.source, self.batch_size, self.seed, int(step),
                                self.process_index, self.process_count)


class _EvalBatch:
  """`number -> the process's slice of eval batch `number`` (picklable)."""

  def __init__(self, source, batch_size: int, process_index: int, process_count: int):
    self.source, self.batch_size = source, batch_size
    self.process_index, self.process_count = process_index, process_count

  def __call__(self, number: int) -> pipeline.Batch:
    return pipeline.eval_batch(self.source, self.batch_size, int(number) * self.batch_size,
                               self.process_index, self.process_count)


def _flags_parsed() -> None:
  """grain reads absl flags; outside an absl program (a test, a notebook) take their defaults."""
  from absl import flags
  if not flags.FLAGS.is_parsed():
    flags.FLAGS.mark_as_parsed()


def _run(steps, function, workers: int, buffer: int) -> Iterator[pipeline.Batch]:
  """`function(step)` for each step of the grain dataset `steps`, in order, built in workers."""
  import grain
  _flags_parsed()
  dataset = steps.map(function).to_iter_dataset(
      grain.ReadOptions(num_threads=1, prefetch_buffer_size=1))  # one thread per worker
  dataset = dataset.mp_prefetch(grain.MultiprocessingOptions(num_workers=workers,
                                                             per_worker_buffer_size=buffer))
  iterator: Any = iter(dataset)
  try:
    for batch in iterator:
      # Out of shared memory into ordinary arrays: the block is freed now, not at interpreter exit.
      yield {name: np.array(value) for name, value in batch.items()}
      del batch
  finally:
    iterator.close()


def train_batches(source: pipeline.Source, batch_size: int, seed: int, start_step: int,
                  process_index: int, process_count: int, workers: int,
                  buffer: int = 2) -> Iterator[pipeline.Batch]:
  """`pipeline.train_batches`, each batch built in one of `workers` processes.

  Yields exactly `pipeline.train_batch(source, batch_size, seed, step, ...)` for `step =
  start_step, start_step + 1, ...`; each worker keeps up to `buffer` batches ready.
  """
  import grain
  steps = grain.MapDataset.range(start_step, _ENDLESS)
  yield from _run(steps, _TrainBatch(source, batch_size, seed, process_index, process_count),
                  workers, buffer)


def eval_batches(source: pipeline.Source, batch_size: int, process_index: int,
                 process_count: int, workers: int, buffer: int = 2) -> Iterator[pipeline.Batch]:
  """`pipeline.eval_batches`, each batch built in one of `workers` processes."""
  import grain
  count = -(-len(source) // batch_size)
  steps = grain.MapDataset.range(count)
  yield from _run(steps, _EvalBatch(source, batch_size, process_index, process_count),
                  min(workers, count), buffer)
