"""Batches built in worker processes with grain, each one a pure function of its step.

`pipeline.train_batches` and `pipeline.eval_batches` hand a source whose `workers` attribute is
above 0 to `batches` here. The batches are a grain `MapDataset` over step numbers,

    MapDataset.range(start_step, ENDLESS).map(step -> pipeline.train_batch(source, ..., step))

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

from typing import Any, Callable, Iterator

import numpy as np

# A stream of steps longer than any run: `MapDataset.range` is lazy, so its length costs nothing.
ENDLESS = 2**62

Batch = dict[str, np.ndarray]


def _flags_parsed() -> None:
  """grain reads absl flags; outside an absl program (a test, a notebook) take their defaults."""
  from absl import flags
  if not flags.FLAGS.is_parsed():
    flags.FLAGS.mark_as_parsed()


# Python before 3.13 has every process that opens a shared-memory block register it with
# multiprocessing's resource tracker, not only the one that made it (CPython issue 82300), and
# grain's blocks are made in the workers and freed in the consumer. The tracker then warns at
# exit about blocks another process already freed, and about the batches in flight when an
# iterator was closed early, which it frees: both are noise, not leaks.
_TRACKER_QUIET = 'ignore::UserWarning:multiprocessing.resource_tracker'


def _start_quiet_resource_tracker() -> None:
  """Starts the resource tracker (unless one runs already) without its leak warnings; it still
  frees every block left behind when this process exits."""
  import sys
  from multiprocessing import resource_tracker
  added = _TRACKER_QUIET not in sys.warnoptions
  if added:  # read once, by the tracker's command line; this process's filters are unchanged
    sys.warnoptions.append(_TRACKER_QUIET)
  try:
    resource_tracker.ensure_running()
  finally:
    if added:
      sys.warnoptions.remove(_TRACKER_QUIET)


def batches(function: Callable[[int], Batch], start: int, stop: int, workers: int,
            buffer: int = 2) -> Iterator[Batch]:
  """`function(k)` for `k = start .. stop - 1`, in order, each built in one of `workers` processes.

  `function` must be picklable (a module-level function, or a `functools.partial` of one, over
  picklable arguments); each worker keeps up to `buffer` batches ready. Closing the generator
  ends the workers.
  """
  import grain
  _flags_parsed()
  _start_quiet_resource_tracker()
  dataset = grain.MapDataset.range(start, stop).map(function).to_iter_dataset(
      grain.ReadOptions(num_threads=1, prefetch_buffer_size=1))  # one thread per worker
  dataset = dataset.mp_prefetch(grain.MultiprocessingOptions(
      num_workers=max(1, min(workers, stop - start)), per_worker_buffer_size=buffer))
  iterator: Any = iter(dataset)
  try:
    for batch in iterator:
      # Out of shared memory into ordinary arrays: the block is freed now, not at interpreter exit.
      yield {name: np.array(value) for name, value in batch.items()}
      del batch
  finally:
    iterator.close()
