"""Speed of the compiled train and inference steps: `python -m train.benchmark --model=NAME`.

Times the trainer's own `train_step` (forward, backward, SGD-with-momentum update, state donated)
and `eval_step` on synthetic batches of the model's input shape, after warm-up, over several
repetitions, and prints compile time, steps/s, examples/s, achieved FLOP/s (from XLA's cost
analysis) and the ratio to this machine's matrix-multiply peak measured in the same run. Where a
PyTorch twin of the model exists (`train/torch_reference.py`, the `bench` extra) it is timed
interleaved with ours in the same process, so the printed ratio holds on a noisy machine.

Image models are measured in images/s; sequence models in tokens/s (batch x time steps for a
language model, batch x target positions for seq2seq). The language models are Zaremba et al.'s
PTB setups (10k words, 2 layers, batch 20, 35 steps, SGD): `lstm_lm_small` (H=200),
`lstm_lm_medium` (H=650), `gru_lm_small`, `rnn_lm_small`; `seq2seq_attention` is the model of
configs/addition_seq2seq.py on real addition batches (batch 128). `lstm_lm_small_vs_flax` times the
same LSTM language model against one built from `flax.linen.RNN(nn.OptimizedLSTMCell)`, the
reference being that Flax model in the same trainer step.

  python -m train.benchmark --model=vgg11_bn --json=/tmp/bench.json
  python -m train.benchmark --model=lstm_lm_small
  python -m train.benchmark --model=all

`--json PATH` writes a list of records with `model`, `step` (train/inference), `unit`, `ours`,
`reference`, `ratio` (ours/reference, both medians of the same run; null without a reference),
`spread` (ours: (max-min)/median; `reference_spread` likewise), `compile_s`, `flops_per_s`,
`peak_fraction`, `reference_peak_fraction` (the same FLOP count over the reference's median time:
how close the reference runs to the peak, so a lead of r needs r times that), `device` and
`reference_impl`.
"""

from __future__ import annotations

import dataclasses
import json
import statistics
import sys
import time
from typing import Any, Callable

import flax.linen as nn
from absl import app
from absl import flags

from train import cli  # run as the command, a Ctrl-C from here on exits 130 quietly

_MODEL = flags.DEFINE_string('model', 'convnet', "A key of BENCHMARKS, or 'all'.")
_BATCH = flags.DEFINE_integer('batch_size', None, 'Override the benchmark batch size.')
_REPEATS = flags.DEFINE_integer('repeats', 7, 'Timed repetitions (median reported).')
_STEPS = flags.DEFINE_integer('steps', 5, 'Steps per repetition.')
_REFERENCE = flags.DEFINE_bool('reference', True, 'Time the PyTorch twin too, where one exists.')
_JSON = flags.DEFINE_string('json', None, 'Write the records to this JSON file.')
_KEEP_FREED_MEMORY = flags.DEFINE_bool(
    'keep_freed_memory', True,
    'glibc keeps freed memory for reuse (train/platform.py keep_freed_memory, as train.main does); '
    'applies to the PyTorch reference in the same process too.')
_TORCH_THREADS = flags.DEFINE_integer(
    'torch_threads', None, "PyTorch's intra-op threads on CPU (default: torch's own, one per "
    'core, as JAX uses every core). On a machine shared with other jobs, 2 threads can make '
    "PyTorch's many small recurrent kernels several times slower than 1 thread: time both.")


@dataclasses.dataclass(frozen=True)
class Benchmark:
  """A model at the size it is benchmarked.

  Attributes:
    model: registry name.
    input_shape: classification: one image; language model: `(time,)`; seq2seq: unused.
    num_classes: classes, or the vocabulary size of a language model.
    batch_size: examples per step.
    model_kwargs: registry overrides.
    torch_model: builds the PyTorch twin (or, with `reference='flax'`, the Flax reference module).
    unit: what one example counts as, in the printed rate.
    task: 'classification', 'language_model' or 'seq2seq' (train/tasks.py names).
    reference: 'torch' or 'flax'.
  """
  model: str
  input_shape: tuple[int, ...]
  num_classes: int
  batch_size: int
  model_kwargs: dict = dataclasses.field(default_factory=dict)
  torch_model: Callable[[], Any] | None = None
  unit: str = 'images'
  task: str = 'classification'
  reference: str = 'torch'


def _torch(builder: str, **kwargs):
  def make():
    from train import torch_reference
    return getattr(torch_reference, builder)(**kwargs)
  return make


def _flax_lstm_lm(**kwargs):
  def make():
    return FlaxLSTMLanguageModel(**kwargs)
  return make


def _lm(cell_type: str, hidden_size: int, reference: str = 'torch',
        vocab_size: int = 10_000) -> Benchmark:
  """Zaremba et al.'s PTB language model: 10k words, 2 layers, batch 20, 35 steps."""
  kwargs = {'hidden_size': hidden_size, 'num_layers': 2}
  twin = (_flax_lstm_lm(vocab_size=vocab_size, **kwargs) if reference == 'flax' else
          _torch('language_model', cell_type=cell_type, vocab_size=vocab_size, **kwargs))
  return Benchmark(f'{cell_type}_lm', (35,), vocab_size, 20, kwargs, twin, 'tokens',
                   'language_model', reference)


# configs/addition_seq2seq.py's model: 3-digit addition, 14 symbols, source 7, target 4 + EOS.
_ADDITION = {'vocab_size': 14, 'embed_dim': 32, 'hidden_size': 256, 'max_decode_length': 5}

BENCHMARKS = {
    'convnet': Benchmark('convnet', (28, 28, 1), 10, 128, torch_model=_torch('convnet')),
    'vgg11_bn': Benchmark('vgg11_bn', (32, 32, 3), 10, 128,
                          {'hidden_features': (512, 512)}, _torch('vgg', config='A')),
    'vgg16_bn': Benchmark('vgg16_bn', (32, 32, 3), 10, 128,
                          {'hidden_features': (512, 512)}, _torch('vgg', config='D')),
    'lstm_lm_small': _lm('lstm', 200),
    'lstm_lm_medium': _lm('lstm', 650),
    'gru_lm_small': _lm('gru', 200),
    'rnn_lm_small': _lm('rnn', 200),
    'lstm_lm_small_vs_flax': _lm('lstm', 200, reference='flax'),
    # The same LSTM stack under a 64-symbol (character-level) output: the recurrent layers are
    # then most of the step, so this ratio is the layers' own.
    'lstm_char_lm_vs_flax': _lm('lstm', 200, reference='flax', vocab_size=64),
    'seq2seq_attention': Benchmark(
        'seq2seq_attention', (), 14, 128, _ADDITION,
        _torch('seq2seq_attention', vocab_size=14, embed_dim=32, hidden_size=256), 'tokens',
        'seq2seq'),
}


class FlaxLSTMLanguageModel(nn.Module):
  """`lstm_lm` built from Flax's own layers (`nn.RNN(nn.OptimizedLSTMCell)`), as a reference.

  Same shapes and parameter count as models/heads.py's LanguageModel, and the same output layer
  (one 2-D product with the bias folded in), so only the recurrent layers differ; starts every
  batch from zeros (no carried state), which only makes it a little cheaper.
  """
  vocab_size: int
  hidden_size: int
  num_layers: int = 2

  @nn.compact
  def __call__(self, tokens, reset=None, *, train: bool = False):
    del reset, train
    from models import cpu_kernels
    x = nn.Embed(self.vocab_size, self.hidden_size)(tokens)
    for _ in range(self.num_layers):
      x = nn.RNN(nn.OptimizedLSTMCell(self.hidden_size))(x)
    # The output layer exactly as ours computes it, so the ratio compares the LSTM layers only.
    batch, time, hidden = x.shape
    logits = cpu_kernels.FoldedBiasDense(self.vocab_size)(x.reshape(batch * time, hidden))
    return logits.reshape(batch, time, self.vocab_size)


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


def make_batch(spec: Benchmark, batch_size: int, seed: int = 0) -> dict[str, Any]:
  """A training batch of the spec's task, as the data pipelines yield it (NumPy arrays)."""
  import numpy as np
  rng = np.random.default_rng(seed)
  if spec.task == 'classification':
    return {'image': rng.standard_normal((batch_size, *spec.input_shape), np.float32),
            'label': rng.integers(0, spec.num_classes, batch_size).astype(np.int32)}
  if spec.task == 'language_model':
    tokens = rng.integers(0, spec.num_classes, (batch_size, spec.input_shape[0] + 1), np.int32)
    return {'inputs': tokens[:, :-1], 'targets': tokens[:, 1:],
            'weights': np.ones((batch_size, spec.input_shape[0]), np.float32),
            'reset': np.zeros(batch_size, bool)}
  if spec.task == 'seq2seq':
    from data import synthetic
    digits = (spec.model_kwargs['max_decode_length'] - 1)
    problems = [synthetic.addition_problem(rng, digits) for _ in range(batch_size)]
    return synthetic.encode_problems(problems, synthetic.Vocabulary('0123456789+'),
                                     2 * digits + 1, digits + 1)
  raise ValueError(f'unknown benchmark task {spec.task!r}')


def model_kwargs(spec: Benchmark) -> dict[str, Any]:
  """The registry arguments of the benchmarked model."""
  if spec.task == 'classification':
    return {'num_classes': spec.num_classes, **spec.model_kwargs}
  if spec.task == 'language_model':
    return {'vocab_size': spec.num_classes, **spec.model_kwargs}
  return dict(spec.model_kwargs)


def _per_example(spec: Benchmark, batch: dict[str, Any]) -> int:
  """Units (images or tokens) in one example."""
  if spec.task == 'language_model':
    return batch['inputs'].shape[1]
  if spec.task == 'seq2seq':
    return batch['targets'].shape[1]
  return 1


def compiled_steps(model, task, config, batch):
  """The trainer's train and eval steps for `model`, compiled by the experiment API exactly as
  training compiles them (mesh, shardings, donation, CPU compiler options).

  Returns (train_step, eval_step, state, train batch, eval batch, train compile s, eval compile s).
  """
  import numpy as np

  from train import experiment, optim, platform

  mesh = platform.make_mesh()
  state, state_sharding = experiment.create_train_state(
      config, model, optim.create_optimizer(config), batch, task, mesh)
  global_batch = platform.global_batch(batch, mesh)
  start = time.perf_counter()
  train_step = experiment.compile_train_step(task, state, state_sharding, mesh, global_batch)
  train_compile = time.perf_counter() - start
  eval_inputs = {k: v for k, v in batch.items() if k != 'reset'}
  eval_inputs['mask'] = np.ones(config.batch_size, bool)
  eval_batch = platform.global_batch(eval_inputs, mesh)
  start = time.perf_counter()
  eval_step = experiment.compile_eval_step(task, state, mesh, eval_batch)
  eval_compile = time.perf_counter() - start
  return train_step, eval_step, state, global_batch, eval_batch, train_compile, eval_compile


def _jax_loops(train_step, eval_step, state, train_batch, eval_batch, steps: int):
  """(train, eval) closures running `steps` steps each and waiting for the results."""
  import jax
  holder = {'state': state}

  def train():
    for _ in range(steps):
      holder['state'], sums, _ = train_step(holder['state'], train_batch)
    jax.block_until_ready(sums)

  def evaluate():
    for _ in range(steps):
      sums = eval_step(holder['state'], eval_batch)
    jax.block_until_ready(sums)

  return train, evaluate


def _torch_loops(spec: Benchmark, batch: dict[str, Any], steps: int, device: str,
                 threads: int | None = None):
  """(train, eval, description) closures for the PyTorch twin on the same batch."""
  import numpy as np
  import torch

  from train import torch_reference
  if device == 'cpu' and threads:
    torch.set_num_threads(threads)
  sync = torch.cuda.synchronize if device == 'cuda' else (lambda: None)
  module = spec.torch_model().to(device)
  tensor = lambda x: torch.from_numpy(np.ascontiguousarray(x)).to(device)
  if spec.task == 'classification':
    args = (tensor(batch['image'].transpose(0, 3, 1, 2)), tensor(batch['label'].astype(np.int64)))
    train_step = torch_reference.classification_step(module)

    @torch.no_grad()
    def eval_step(images, labels):
      del labels
      module.eval()
      return module(images)

    layout = 'NCHW'
  elif spec.task == 'language_model':
    args = (tensor(batch['inputs'].T.astype(np.int64)), tensor(batch['targets'].T.astype(np.int64)))
    train_step = torch_reference.language_model_step(module)
    eval_step = torch_reference.language_model_eval(module)
    layout = 'time-major'
  else:
    args = (tensor(batch['inputs'].astype(np.int64)), tensor(batch['input_lengths']),
            tensor(batch['decoder_inputs'].astype(np.int64)),
            tensor(batch['targets'].astype(np.int64)))
    train_step = torch_reference.seq2seq_step(module)
    eval_step = torch_reference.seq2seq_eval(module)
    layout = 'batch-first'

  def train():
    module.train()
    for _ in range(steps):
      train_step(*args)
    sync()

  def evaluate():
    for _ in range(steps):
      eval_step(*args)
    sync()
    module.train()

  threads = f', {torch.get_num_threads()} threads' if device == 'cpu' else ''
  return train, evaluate, f'torch {torch.__version__} eager, {layout}, float32, {device}{threads}'


def run(spec: Benchmark, batch_size: int, repeats: int, steps: int, reference: bool,
        name: str | None = None, torch_threads: int | None = None) -> list[dict[str, Any]]:
  """Times `spec` (named `name` in the records, default its model name); see the module doc."""
  import jax

  import models
  from configs import common
  from train import tasks

  config = common.base()
  config.model, config.batch_size = spec.model, batch_size
  config.optimizer, config.learning_rate, config.momentum = 'sgd', 0.01, 0.9
  batch = make_batch(spec, batch_size)
  task = tasks.create(spec.task)
  model = models.create(spec.model, **model_kwargs(spec))
  (train_step, eval_step, state, train_batch, eval_batch, train_compile,
   eval_compile) = compiled_steps(model, task, config, batch)
  ours_train, ours_eval = _jax_loops(train_step, eval_step, state, train_batch, eval_batch, steps)

  theirs_train = theirs_eval = reference_impl = None
  if reference and spec.torch_model is not None and spec.reference == 'flax':
    import flax
    compiled = compiled_steps(spec.torch_model(), task, config, batch)
    theirs_train, theirs_eval = _jax_loops(*compiled[:5], steps)
    reference_impl = f'flax {flax.__version__} nn.RNN(nn.OptimizedLSTMCell), same trainer step'
  elif reference and spec.torch_model is not None:
    import torch
    # The reference runs where ours does: on the GPU when JAX has one and torch sees CUDA.
    device = 'cuda' if jax.default_backend() == 'gpu' and torch.cuda.is_available() else 'cpu'
    theirs_train, theirs_eval, reference_impl = _torch_loops(spec, batch, steps, device,
                                                              torch_threads)

  peak = matmul_peak()
  flops = {'train': _flops(train_step), 'inference': _flops(eval_step)}
  units = batch_size * _per_example(spec, batch)
  name = name or spec.model
  records = []
  for step_name, ours, theirs, compile_s in (
      ('train', ours_train, theirs_train, train_compile),
      ('inference', ours_eval, theirs_eval, eval_compile)):
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
    ours_rate = units / median
    reference_rate = units / statistics.median(theirs_times) if theirs_times else None
    records.append({
        'model': name, 'size': dict(spec.model_kwargs), 'step': step_name,
        'unit': f'{spec.unit}/s', 'batch_size': batch_size,
        'ours': ours_rate, 'reference': reference_rate,
        'ratio': ours_rate / reference_rate if reference_rate else None,
        'spread': spread,
        'reference_spread': _median_spread(theirs_times)[1] if theirs_times else None,
        'compile_s': compile_s, 'steps_per_s': 1 / median,
        'flops_per_s': flops[step_name] / median, 'peak_flops_per_s': peak,
        'peak_fraction': flops[step_name] / median / peak,
        'reference_peak_fraction': (flops[step_name] / statistics.median(theirs_times) / peak
                                    if theirs_times else None),
        'device': f'{jax.devices()[0].device_kind} x{jax.device_count()} ({jax.default_backend()})',
        'reference_impl': reference_impl if theirs_times else None,
    })
  return records


def _print(records: list[dict[str, Any]]) -> None:
  print(f'{"model":<22} {"step":<10} {"ours":>12} {"reference":>12} {"ratio":>6} {"spread":>7} '
        f'{"compile":>8} {"GFLOP/s":>8} {"of peak":>8} {"ref of peak":>12}')
  for r in records:
    reference = f'{r["reference"]:,.1f}' if r['reference'] else '-'
    ratio = f'{r["ratio"]:.2f}' if r['ratio'] else '-'
    reference_peak = (f'{r["reference_peak_fraction"]:.0%}' if r['reference_peak_fraction']
                      else '-')
    print(f'{r["model"]:<22} {r["step"]:<10} {r["ours"]:>12,.1f} {reference:>12} {ratio:>6} '
          f'{r["spread"]:>6.0%} {r["compile_s"]:>7.1f}s {r["flops_per_s"] / 1e9:>8.1f} '
          f'{r["peak_fraction"]:>7.0%} {reference_peak:>12}')
  if records:
    print(f'(rates in {", ".join(sorted({r["unit"] for r in records}))}; device {records[0]["device"]}; matmul peak '
          f'{records[0]["peak_flops_per_s"] / 1e9:.0f} GFLOP/s)')


def main(argv: list[str]) -> int:
  del argv
  import logging
  for name in ('absl', 'jax'):
    logging.getLogger(name).setLevel(logging.WARNING)
  if _KEEP_FREED_MEMORY.value:
    from train import platform
    platform.keep_freed_memory()
  names = list(BENCHMARKS) if _MODEL.value == 'all' else [_MODEL.value]
  unknown = [n for n in names if n not in BENCHMARKS]
  if unknown:
    print(f'error: no benchmark for {unknown[0]!r}; known: {", ".join(BENCHMARKS)}, all',
          file=sys.stderr)
    return 2
  if _REFERENCE.value and any(BENCHMARKS[n].torch_model and BENCHMARKS[n].reference == 'torch'
                              for n in names):
    try:
      import torch  # noqa: F401  # pylint: disable=unused-import
    except ImportError:
      print("error: the PyTorch reference needs torch: pip install -e '.[bench]', or run with "
            '--noreference to time only ours', file=sys.stderr)
      return 1
  records = []
  for name in names:
    spec = BENCHMARKS[name]
    records += run(spec, _BATCH.value or spec.batch_size, _REPEATS.value, _STEPS.value,
                   _REFERENCE.value, name, _TORCH_THREADS.value)
  _print(records)
  if _JSON.value:
    with open(_JSON.value, 'w') as f:
      json.dump(records, f, indent=2)
  return 0


def _main_or_130(argv: list[str]) -> int:
  try:
    return main(argv)
  except KeyboardInterrupt:  # Ctrl-C: quietly, and at once (shutting down mid-step can crash XLA)
    cli.exit_now(130)


if __name__ == '__main__':
  app.run(lambda argv: sys.exit(_main_or_130(argv)))
