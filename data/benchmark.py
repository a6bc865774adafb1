"""Input pipeline speed as the trainer reads it: `python -m data.benchmark --dataset=NAME`.

Measures training batches per second and images (or examples) per second of a registered
pipeline (`data/__init__.py`), drawn exactly as `train/trainer.py` draws them:
`pipeline.prefetch(pipeline.train_batches(dataset.train, batch_size, seed, step, process_index,
process_count))`, with the batch size and data options of the dataset's experiment config (the
first config in configs/ that trains on it, or `--config`). Each repetition starts a fresh
iterator at a new step, reads `--warmup` batches (worker processes start, the first batches
come), then times `--batches` batches; the median over `--repeats` repetitions is reported, with
the spread `(max - min) / median`.

For `imagenet2012` it first writes a synthetic ImageNet-like dataset (`data/imagenet_like.py`:
JPEGs of ImageNet's typical sizes, about 110 KB each, through tfds's array_record path) into
`--cache_dir` (once; `--nosynthetic` reads the real one from `--data_dir`), and times, interleaved
with ours in every repetition, a reference: PyTorch's `torch.utils.data.DataLoader` with the
torchvision ImageNet training transforms written out with PIL and torch (RandomResizedCrop
8%-100% and aspect 3/4-4/3, bilinear resize, horizontal flip, ToTensor, Normalize: torchvision
itself is not needed), the same batches of indices, batch size and number of workers
(`num_workers=W`). Pipelines whose source takes a `workers` option are timed at each of
`--workers`; others once, in the training process. Datasets without a reference report none.

  python -m data.benchmark --dataset=imagenet2012 --workers=1,2 --json=/tmp/pipeline.json
  python -m data.benchmark --dataset=digits,addition,shakespeare

`--json PATH` writes a list of records with `dataset`, `workers`, `batch_size`, `unit`, `ours`
(images or examples per second, median), `reference` (the same for the DataLoader; null without
one), `ratio` (ours / reference; null without one), `spread`, `reference_spread`,
`batches_per_s`, `reference_impl`, `config`. Errors are one line `error: ...` (exit code 2 for
the command line, 1 otherwise).
"""

from __future__ import annotations

import importlib
import json
import os
import statistics
import sys
import tempfile
import time
from typing import Any, Callable

from absl import app
from absl import flags

from train import cli  # run as the command, a Ctrl-C from here on exits 130 quietly

_DATASET = flags.DEFINE_string('dataset', None, 'Registered dataset name(s), comma-separated.')
_WORKERS = flags.DEFINE_list('workers', ['1', '2'], 'Worker processes to time, e.g. 1,2,4.')
_BATCH = flags.DEFINE_integer('batch_size', None, "Override the config's batch size.")
_REPEATS = flags.DEFINE_integer('repeats', 5, 'Timed repetitions (median reported).')
_BATCHES = flags.DEFINE_integer('batches', 10, 'Timed batches per repetition.')
_WARMUP = flags.DEFINE_integer('warmup', None, 'Batches read before timing (default: workers + 1).')
_CONFIG = flags.DEFINE_string('config', None, "Config file whose batch size and data options "
                              "are used (default: the first in configs/ on the dataset).")
_DATA_DIR = flags.DEFINE_string('data_dir', None, 'tfds data directory of the real datasets.')
_SYNTHETIC = flags.DEFINE_bool('synthetic', True, 'imagenet2012: the synthetic dataset.')
_CACHE = flags.DEFINE_string('cache_dir', None, 'Where the synthetic ImageNet is written '
                             '(default: TMPDIR/data_benchmark).')
_IMAGES = flags.DEFINE_integer('images', 512, 'Synthetic ImageNet training images.')
_REFERENCE = flags.DEFINE_bool('reference', True, 'Time the PyTorch DataLoader where one exists.')
_PROCESS = flags.DEFINE_integer('process_index', 0, 'Read as this host of a multi-host run.')
_PROCESSES = flags.DEFINE_integer('process_count', 1, 'Hosts the batch is split over.')
_JSON = flags.DEFINE_string('json', None, 'Write the records to this JSON file.')

SEED = 0


def default_config(name: str):
  """The config of the first experiment in configs/ (alphabetically) that trains on `name`, or
  `configs.common.base()` with `dataset` set; returns (config, its name)."""
  import ml_collections
  import configs
  from configs import common
  directory = os.path.dirname(configs.__file__)
  for file in sorted(os.listdir(directory)):
    if not file.endswith('.py') or file.startswith('_') or file in ('common.py', '__init__.py'):
      continue
    module = importlib.import_module(f'configs.{file[:-3]}')
    config = module.get_config() if hasattr(module, 'get_config') else None
    if isinstance(config, ml_collections.ConfigDict) and config.get('dataset', None) == name:
      return config, f'configs/{file}'
  config = common.base()
  config.dataset, config.batch_size = name, 128
  return config, 'configs/common.py (batch 128)'


def _unit(dataset) -> str:
  from data import pipeline
  return 'images' if isinstance(dataset.facts, (pipeline.ClassificationFacts,
                                                pipeline.CaptioningFacts)) else 'examples'


def _ours(config, name: str, workers: int | None) -> tuple[Callable[[int, int, int], float], Any]:
  """`time(start_step, warmup, batches) -> seconds` of `batches` trainer batches; the dataset."""
  import data
  from data import pipeline
  with config.unlocked():
    if workers is not None:
      config.data.workers = workers
  dataset = data.create(config)
  batch_size = config.batch_size

  def timed(start_step: int, warmup: int, batches: int) -> float:
    iterator = pipeline.prefetch(pipeline.train_batches(
        dataset.train, batch_size, config.seed, start_step, _PROCESS.value, _PROCESSES.value))
    for _ in range(warmup):
      next(iterator)
    start = time.perf_counter()
    for _ in range(batches):
      next(iterator)
    elapsed = time.perf_counter() - start
    iterator.close()
    return elapsed

  return timed, dataset


def _reference(config, name: str, dataset,
               workers: int) -> tuple[Callable[[int, int, int], float], str]:
  """The PyTorch DataLoader twin of the ImageNet training pipeline (module docstring)."""
  import functools
  import tensorflow_datasets as tfds
  import torch
  import data
  from data import images
  from data import torch_reference
  options = data.parse_options(name, config.data)
  open_store = functools.partial(  # the same tfds split of JPEG bytes, opened in each worker
      images.open_split, options.tfds_name, options.train_split, config.get('data_dir', None),
      decoders={'image': tfds.decode.SkipDecoding()})
  num_examples = len(dataset.train)
  size = options.image_size
  per_host = config.batch_size // _PROCESSES.value

  def timed(start_step: int, warmup: int, batches: int) -> float:
    sampler = torch_reference.StepBatches(num_examples, config.batch_size, config.seed,
                                          start_step, _PROCESS.value, _PROCESSES.value)
    twin = torch_reference.ImageNetTrain(open_store, num_examples, size, images.IMAGENET_MEAN,
                                         images.IMAGENET_STD)
    # Workers forked from a fresh server process: one forked from this process (which has just
    # run tfds's and grain's threads) can crash on a lock a thread held at the fork, and spawned
    # ones abort at exit as array_record's threads are torn down.
    loader = torch.utils.data.DataLoader(twin, batch_sampler=sampler, num_workers=workers,
                                         multiprocessing_context='forkserver' if workers else None)
    iterator = iter(loader)
    for _ in range(warmup):
      next(iterator)
    start = time.perf_counter()
    for _ in range(batches):
      batch = next(iterator)
      assert batch[0].shape == (per_host, 3, size, size)
    elapsed = time.perf_counter() - start
    del iterator
    return elapsed

  impl = (f'torch {torch.__version__} DataLoader(num_workers={workers}, forkserver), PIL '
          f'RandomResizedCrop+flip+ToTensor+Normalize, float32')
  return timed, impl


def _median_spread(rates: list[float]) -> tuple[float, float]:
  median = statistics.median(rates)
  return median, (max(rates) - min(rates)) / median


def run(name: str, worker_counts: list[int], repeats: int, batches: int,
        reference: bool) -> list[dict[str, Any]]:
  """Times pipeline `name` at each of `worker_counts` (see the module docstring)."""
  import data
  if _CONFIG.value:
    from train import config_checks
    config, config_name = config_checks.load_config_file(_CONFIG.value), _CONFIG.value
    if config.get('dataset', None) != name:
      raise cli.UsageError(f'--config {_CONFIG.value} trains on {config.get("dataset", None)!r}, '
                           f'not {name!r}')
  else:
    config, config_name = default_config(name)
  with config.unlocked():
    config.seed = config.get('seed', SEED)
    if _BATCH.value:
      config.batch_size = _BATCH.value
    if _DATA_DIR.value:
      config.data_dir = _DATA_DIR.value
    if name == 'imagenet2012' and _SYNTHETIC.value:
      from data import imagenet_like
      cache = _CACHE.value or os.path.join(tempfile.gettempdir(), 'data_benchmark')
      config.data_dir = imagenet_like.write(
          os.path.join(cache, f'imagenet_like_{_IMAGES.value}'), num_train=_IMAGES.value,
          num_eval=8)
  has_workers = 'workers' in data.options(name)
  counts = worker_counts if has_workers else [None]
  records = []
  for workers in counts:
    ours, dataset = _ours(config, name, workers)
    theirs, impl = None, None
    if reference and name == 'imagenet2012':
      theirs, impl = _reference(config, name, dataset, workers)
    warmup = _WARMUP.value if _WARMUP.value is not None else (workers or 0) + 1
    per_batch = config.batch_size // _PROCESSES.value
    ours_rates, theirs_rates = [], []
    for r in range(repeats):  # interleaved, so both see the same machine load
      start_step = r * (warmup + batches)
      ours_rates.append(per_batch * batches / ours(start_step, warmup, batches))
      if theirs:
        theirs_rates.append(per_batch * batches / theirs(start_step, warmup, batches))
    median, spread = _median_spread(ours_rates)
    reference_rate = statistics.median(theirs_rates) if theirs_rates else None
    records.append({
        'dataset': name, 'workers': workers if workers is not None else 0,
        'batch_size': config.batch_size, 'unit': f'{_unit(dataset)}/s',
        'ours': median, 'reference': reference_rate,
        'ratio': median / reference_rate if reference_rate else None,
        'spread': spread,
        'reference_spread': _median_spread(theirs_rates)[1] if theirs_rates else None,
        'batches_per_s': median / per_batch, 'reference_impl': impl, 'config': config_name,
    })
  return records


def _print(records: list[dict[str, Any]]) -> None:
  print(f'{"dataset":<16} {"workers":>7} {"batch":>6} {"ours":>10} {"reference":>10} '
        f'{"ratio":>6} {"spread":>7} {"batches/s":>10}  unit')
  for r in records:
    reference = f'{r["reference"]:,.1f}' if r['reference'] else '-'
    ratio = f'{r["ratio"]:.2f}' if r['ratio'] else '-'
    print(f'{r["dataset"]:<16} {r["workers"]:>7} {r["batch_size"]:>6} {r["ours"]:>10,.1f} '
          f'{reference:>10} {ratio:>6} {r["spread"]:>6.0%} {r["batches_per_s"]:>10.2f}  '
          f'{r["unit"]}')


def main(argv: list[str]) -> None:
  """The command: times the pipelines named by the flags and prints (and writes) the records."""
  if len(argv) > 1:
    raise cli.UsageError(f'unexpected arguments: {" ".join(argv[1:])}')
  import logging
  for name in ('absl', 'jax'):
    logging.getLogger(name).setLevel(logging.WARNING)
  import data
  if not _DATASET.value:
    raise cli.UsageError(f'--dataset is required; one of {", ".join(data.names())}')
  names = [n.strip() for n in _DATASET.value.split(',') if n.strip()]
  for name in names:
    try:
      data.options_class(name)
    except ValueError as error:  # names the close match and the known ones
      raise cli.UsageError(str(error)) from None
  try:
    counts = [int(w) for w in _WORKERS.value]
  except ValueError:
    raise cli.UsageError(f'--workers takes whole numbers, e.g. 1,2; got {",".join(_WORKERS.value)}'
                         ) from None
  if any(c < 0 for c in counts) or not counts:
    raise cli.UsageError('--workers takes numbers >= 0 (0: in the training process)')
  if _REPEATS.value < 1 or _BATCHES.value < 1:
    raise cli.UsageError('--repeats and --batches must be at least 1')
  reference = _REFERENCE.value and 'imagenet2012' in names
  if reference:
    try:
      import torch  # noqa: F401  # pylint: disable=unused-import
    except ImportError:
      print('note: torch is not installed; timing ours only (reference null)', file=sys.stderr)
      reference = False
  records = []
  for name in names:
    records += run(name, counts, _REPEATS.value, _BATCHES.value, reference)
  _print(records)
  if _JSON.value:
    with open(_JSON.value, 'w') as f:
      json.dump(records, f, indent=2)


if __name__ == '__main__':
  app.run(lambda argv: sys.exit(cli.run(lambda: main(argv))))
