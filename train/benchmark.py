"""Speed of the compiled train and inference steps: `python -m train.benchmark --model=NAME`.

Times the trainer's own `train_step` (forward, backward, SGD-with-momentum update, state donated)
and `eval_step` on synthetic batches of the model's input shape, after warm-up, over several
repetitions, and prints compile time, steps/s, examples/s, achieved FLOP/s (from XLA's cost
analysis) and the ratio to this machine's matrix-multiply peak measured in the same run. Where a
PyTorch twin of the model exists (`train/torch_reference.py`, the `bench` extra) it is timed
interleaved with ours in the same process, so the printed ratio holds on a noisy machine.

  python -m train.benchmark --model=vgg11_bn --json=/tmp/bench.json
  python -m train.benchmark --model=all

`--json PATH` writes a list of records with `model`, `step` (train/inference), `unit`, `ours`,
`reference`, `ratio` (ours/reference, both medians of the same run; null without a reference),
`spread` (ours: (max-min)/median), `compile_s`, `flops_per_s`, `peak_fraction` and `device`.
"""

from __future__ import annotations

import dataclasses
import json
import statistics
import sys
import time
from typing import Any, Callable

from absl import app
from absl import flags

_MODEL = flags.DEFINE_string('model', 'convnet', "A key of BENCHMARKS, or 'all'.")
_BATCH = flags.DEFINE_integer('batch_size', None, 'Override the benchmark batch size.')
_REPEATS = flags.DEFINE_integer('repeats', 7, 'Timed repetitions (median reported).')
_STEPS = flags.DEFINE_integer('steps', 5, 'Steps per repetition.')
_REFERENCE = flags.DEFINE_bool('reference', True, 'Time the PyTorch twin too, where one exists.')
_JSON = flags.DEFINE_string('json', None, 'Write the records to this JSON file.')


@dataclasses.dataclass(frozen=True)
class Benchmark:
  """A model at the size it is benchmarked: input `[batch, *input_shape]`, `num_classes` labels."""
  model: str
  input_shape: tuple[int, ...]
  num_classes: int
  batch_size: int
  model_kwargs: dict = dataclasses.field(default_factory=dict)
  torch_model: Callable[[], Any] | None = None
  unit: str = 'images'


def _torch(builder: str, **kwargs):
  def make():
    from train import torch_reference
    return getattr(torch_reference, builder)(**kwargs)
  return make


BENCHMARKS = {
    'convnet': Benchmark('convnet', (28, 28, 1), 10, 128, torch_model=_torch('convnet')),
    'vgg11_bn': Benchmark('vgg11_bn', (32, 32, 3), 10, 128,
                          {'hidden_features': (512, 512)}, _torch('vgg', config='A')),
    'vgg16_bn': Benchmark('vgg16_bn', (32, 32, 3), 10, 128,
                          {'hidden_features': (512, 512)}, _torch('vgg', config='D')),
}


def _median_spread(times: list[float]) -> tuple[float, float]:
  median = statistics.median(times)
  return median, (max(times) - min(times)) / median


def matmul_peak(size: int = 2048, repeats: int = 5) -> float:
  """Achieved FLOP/s of a float32 `size`x`size` matrix product under jax.jit."""
  import jax
  import jax.numpy as jnp
  a = jax.random.normal(jax.random.PRNGKey(0), (size, size), jnp.float32)
  matmul = jax.jit(lambda x: x @ x)
  matmul(a).block_until_ready()
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    matmul(a).block_until_ready()
    times.append(time.perf_counter() - start)
  return 2 * size ** 3 / statistics.median(times)


def _flops(compiled) -> float:
  analysis = compiled.cost_analysis()
  if isinstance(analysis, (list, tuple)):
    analysis = analysis[0] if analysis else {}
  return float((analysis or {}).get('flops', 0.0))


def run(spec: Benchmark, batch_size: int, repeats: int, steps: int,
        reference: bool) -> list[dict[str, Any]]:
  import jax
  import numpy as np

  import models
  from configs import common
  from train import optim, platform, tasks, trainer

  config = common.base()
  config.model, config.batch_size = spec.model, batch_size
  config.learning_rate, config.momentum = 0.01, 0.9
  rng = np.random.default_rng(0)
  batch = {'image': rng.standard_normal((batch_size, *spec.input_shape), np.float32),
           'label': rng.integers(0, spec.num_classes, batch_size).astype(np.int32)}
  model = models.create(spec.model, num_classes=spec.num_classes, **spec.model_kwargs)
  task = tasks.create('classification')
  mesh = platform.make_mesh()
  state, state_sharding = trainer.create_train_state(
      config, model, optim.create_optimizer(config), batch, task, mesh)
  global_batch = platform.global_batch(batch, mesh)
  replicated = platform.replicated(mesh)

  start = time.perf_counter()
  train_step = platform.compile(
      trainer.make_train_step(task), state, global_batch, donate_argnums=0,
      in_shardings=(state_sharding, platform.batch_sharded(mesh)),
      out_shardings=(state_sharding, replicated, replicated))
  train_compile = time.perf_counter() - start
  eval_batch = {**global_batch, 'mask': platform.global_batch(
      {'mask': np.ones(batch_size, bool)}, mesh)['mask']}
  start = time.perf_counter()
  eval_step = platform.compile(trainer.make_eval_step(task), state, eval_batch,
                               out_shardings=replicated)
  eval_compile = time.perf_counter() - start

  holder = {'state': state}

  def ours_train():
    for _ in range(steps):
      holder['state'], sums, _ = train_step(holder['state'], global_batch)
    jax.block_until_ready(sums)

  def ours_eval():
    for _ in range(steps):
      sums = eval_step(holder['state'], eval_batch)
    jax.block_until_ready(sums)

  torch_train = torch_eval = None
  if reference and spec.torch_model is not None:
    import torch
    from train import torch_reference
    # The reference runs where ours does: on the GPU when JAX has one and torch sees CUDA.
    device = 'cuda' if jax.default_backend() == 'gpu' and torch.cuda.is_available() else 'cpu'
    sync = torch.cuda.synchronize if device == 'cuda' else (lambda: None)
    torch_module = spec.torch_model().to(device)
    images = torch.from_numpy(np.ascontiguousarray(batch['image'].transpose(0, 3, 1, 2))).to(device)
    labels = torch.from_numpy(batch['label'].astype(np.int64)).to(device)
    torch_step = torch_reference.classification_step(torch_module)

    def torch_train():
      for _ in range(steps):
        torch_step(images, labels)
      sync()

    def torch_eval():
      torch_module.eval()
      with torch.no_grad():
        for _ in range(steps):
          torch_module(images)
      sync()
      torch_module.train()

  peak = matmul_peak()
  flops = {'train': _flops(train_step), 'inference': _flops(eval_step)}
  records = []
  for name, ours, theirs, compile_s in (('train', ours_train, torch_train, train_compile),
                                        ('inference', ours_eval, torch_eval, eval_compile)):
    ours(), theirs and theirs()  # warm-up
    ours_times, theirs_times = [], []
    for _ in range(repeats):  # interleaved, so both see the same machine load
      start = time.perf_counter()
      ours()
      ours_times.append((time.perf_counter() - start) / steps)
      if theirs:
        start = time.perf_counter()
        theirs()
        theirs_times.append((time.perf_counter() - start) / steps)
    median, spread = _median_spread(ours_times)
    ours_rate = batch_size / median
    reference_rate = batch_size / statistics.median(theirs_times) if theirs_times else None
    records.append({
        'model': spec.model, 'step': name, 'unit': f'{spec.unit}/s', 'batch_size': batch_size,
        'ours': ours_rate, 'reference': reference_rate,
        'ratio': ours_rate / reference_rate if reference_rate else None,
        'spread': spread, 'compile_s': compile_s, 'steps_per_s': 1 / median,
        'flops_per_s': flops[name] / median, 'peak_flops_per_s': peak,
        'peak_fraction': flops[name] / median / peak,
        'device': f'{jax.devices()[0].device_kind} x{jax.device_count()} ({jax.default_backend()})',
        'reference_impl': (f'torch {torch.__version__} eager, NCHW, float32, {device}'
                           if theirs_times else None),
    })
  return records


def _print(records: list[dict[str, Any]]) -> None:
  print(f'{"model":<12} {"step":<10} {"ours":>12} {"torch":>12} {"ratio":>6} {"spread":>7} '
        f'{"compile":>8} {"GFLOP/s":>8} {"of peak":>8}')
  for r in records:
    reference = f'{r["reference"]:,.1f}' if r['reference'] else '-'
    ratio = f'{r["ratio"]:.2f}' if r['ratio'] else '-'
    print(f'{r["model"]:<12} {r["step"]:<10} {r["ours"]:>12,.1f} {reference:>12} {ratio:>6} '
          f'{r["spread"]:>6.0%} {r["compile_s"]:>7.1f}s {r["flops_per_s"] / 1e9:>8.1f} '
          f'{r["peak_fraction"]:>7.0%}')
  if records:
    print(f'({records[0]["unit"]}; device {records[0]["device"]}; matmul peak '
          f'{records[0]["peak_flops_per_s"] / 1e9:.0f} GFLOP/s)')


def main(argv: list[str]) -> int:
  del argv
  import logging
  for name in ('absl', 'jax'):
    logging.getLogger(name).setLevel(logging.WARNING)
  names = list(BENCHMARKS) if _MODEL.value == 'all' else [_MODEL.value]
  unknown = [n for n in names if n not in BENCHMARKS]
  if unknown:
    print(f'error: no benchmark for {unknown[0]!r}; known: {", ".join(BENCHMARKS)}, all',
          file=sys.stderr)
    return 2
  records = []
  for name in names:
    spec = BENCHMARKS[name]
    records += run(spec, _BATCH.value or spec.batch_size, _REPEATS.value, _STEPS.value,
                   _REFERENCE.value)
  _print(records)
  if _JSON.value:
    with open(_JSON.value, 'w') as f:
      json.dump(records, f, indent=2)
  return 0


if __name__ == '__main__':
  app.run(lambda argv: sys.exit(main(argv)))
