"""See inside a model: feature maps, first-layer filters, attention maps and training curves.

Commands (run from the repository root; every picture is a PNG drawn with matplotlib's Agg
backend, so no display is needed):

  python -m train.visualize features --workdir=DIR [--image=PATH | --index=N]
      [--layers=conv1,conv2 | --layers=all] [--out=DIR]
  python -m train.visualize attention --workdir=DIR --input="123+45" [--out=PATH]
  python -m train.visualize curves --workdir=DIR [--workdir=DIR2 ...]
      [--metrics=train_loss,eval_accuracy] [--out=PATH]

`features` and `attention` read the workdir's `config.json` and its newest checkpoint. With
`--config=configs/NAME.py[:variant]` instead of a workdir (or with a workdir that has no checkpoint
yet) they use a freshly initialised model: the parameters a training run with that config starts
from (`config.seed`), which shows what training changes.
Pictures go to `DIR/visualize/` unless `--out` says otherwise.

- features: one image (example N of the eval split, or a PNG/JPEG file converted to the model's
  input size and channels and mapped onto the pixel range of the eval split) goes through the
  model with Flax's `capture_intermediates`. Each named layer's output is drawn as a grid with
  one tile per channel, normalised per tile (`features_<layer>.png`); the default layers are all
  convolutions. A layer's output is what the module returns: for this zoo's conv layers that is
  before the ReLU, which the models apply outside the layer. Also written: the input
  (`input.png`) and the first conv layer's kernels, one tile per filter, RGB for 3-channel
  inputs and grey otherwise (`filters_<layer>.png`).
- attention: greedy decoding of `--input` with a seq2seq model with attention; prints the output
  and writes a heatmap of the alignment weights (source characters across, generated characters
  down, EOS included).
- curves: one subplot per metric of `metrics.jsonl`, one line per workdir (the legend names the
  workdir). Loss and perplexity axes are logarithmic when they span more than a factor of 20.

During training, the evaluation hook `TensorBoardImages` (which train.main passes to the trainer
unless `config.tensorboard_images` is False) adds the first conv layer's filters and the feature
maps of the first and last conv layers for eval example 0 to TensorBoard (tags `filters/<layer>`,
`features/<layer>`); models without conv layers or image inputs are skipped.

Errors are one line `error: ...` with exit code 2 (command line: a missing workdir or config,
an unknown layer or metric, a bad --input) or 1 (everything else).
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import re
import sys
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from train import cli

log = logging.getLogger(__name__)

# Rendering constants: grids are drawn at an integer scale that makes them about this wide.
TARGET_WIDTH = 640
MAX_SCALE = 32
TITLE_HEIGHT = 28  # pixels above a grid for its title
TENSORBOARD_WIDTH = 256  # grids written to TensorBoard are upscaled to at least this width
TENSORBOARD_MAX_CHANNELS = 64


UsageError = cli.UsageError


# Loading a run.


def load_run(workdir: str | None = None, config: str | None = None):
  """The model of a workdir (newest checkpoint), or a fresh one from a config file.

  Args:
    workdir: a training workdir; its `config.json` is used unless `config` is given, and its
      newest checkpoint (none yet: the freshly initialised model).
    config: a config file `configs/NAME.py[:variant]`.

  Returns:
    a `train.experiment.Run` (`step` None for a freshly initialised model).

  Raises:
    UsageError: neither is given, the workdir does not exist or has no config.
  """
  from train import config_checks, experiment

  if workdir is None and config is None:
    raise UsageError('pass --workdir=DIR (a training workdir) or --config=configs/NAME.py')
  if workdir is not None and not os.path.isdir(workdir):
    raise UsageError(f'workdir {workdir} does not exist')
  try:
    cfg = config_checks.load_config_file(config) if config is not None else None
  except config_checks.ConfigFileError as error:
    raise UsageError(str(error)) from None
  try:
    if workdir is None:
      return experiment.initialize(cfg)
    return experiment.restore(workdir, fresh_if_none=True, config=cfg)
  except FileNotFoundError as error:
    raise UsageError(f'{error}; pass --config=configs/NAME.py to use a fresh model') from None


# Capturing activations.


def _is_conv(module) -> bool:
  import flax.linen as nn

  from models.layers import Conv2D
  return isinstance(module, (Conv2D, nn.Conv))


def _capture(apply_fn: Callable, variables: Mapping[str, Any], inputs: Sequence[Any],
             wanted: Callable[[str, Any], bool]) -> tuple[Any, dict[str, Any], dict[str, type]]:
  """Runs `apply_fn(variables, *inputs, train=False)` capturing the outputs of chosen layers.

  Returns (model output, {layer: output} for the layers where `wanted(layer, module)`, {layer:
  module class} for every layer called, in the order their calls returned). A layer called
  several times keeps the output of its last call.
  """
  import flax

  layers: dict[str, type] = {}

  def capture_filter(module, method_name: str) -> bool:
    path = module.scope.path if module.scope is not None else ()
    if method_name != '__call__' or not path:
      return False
    name = '/'.join(path)
    layers.setdefault(name, type(module))
    return wanted(name, module)

  output, state = apply_fn(dict(variables), *inputs, train=False,
                           capture_intermediates=capture_filter, mutable=['intermediates'])
  captured = {}
  for path, values in flax.traverse_util.flatten_dict(
      flax.core.unfreeze(state.get('intermediates', {}))).items():
    if path[-1] == '__call__' and len(path) > 1:
      captured['/'.join(path[:-1])] = values[-1]
  return output, captured, layers


def _as_batch(image):
  image = np.asarray(image)
  return image[None] if image.ndim == 3 else image


def list_layers(model, variables: Mapping[str, Any], image) -> dict[str, type]:
  """Layer name -> module class of every layer `model` calls on `image`, in call order."""
  return _capture(model.apply, variables, (_as_batch(image),), lambda name, module: False)[2]


def conv_layer_names(model, variables: Mapping[str, Any], image) -> list[str]:
  """Names of the convolution layers (`Conv2D`, `nn.Conv`) of `model`, in call order."""
  from models.layers import Conv2D
  import flax.linen as nn
  return [name for name, kind in list_layers(model, variables, image).items()
          if issubclass(kind, (Conv2D, nn.Conv))]


def capture_activations(model, variables: Mapping[str, Any], image,
                        layer_names: Iterable[str] | None = None) -> dict[str, Any]:
  """The outputs of the named layers of `model` on `image`, from one forward pass.

  Args:
    model: a Flax module called as `model.apply(variables, images, train=False)`.
    variables: its variables (`{'params': ..., 'batch_stats': ...}`).
    image: `[height, width, channels]` (a batch of one is made) or `[batch, height, width,
      channels]`.
    layer_names: module paths such as 'conv1' or 'block3_conv1' ('/'-joined when nested); None
      for every layer.

  Returns:
    name -> the layer's output with its batch axis, e.g. `[batch, height, width, channels]` for a
    conv layer or `[batch, units]` for a dense one; in call order when `layer_names` is None.

  Raises:
    UsageError: a name is not a layer of the model (the message lists the valid names).
  """
  names = None if layer_names is None else list(layer_names)
  _, captured, layers = _capture(model.apply, variables, (_as_batch(image),),
                                 lambda name, module: names is None or name in names)
  unknown = [name for name in (names or ()) if name not in layers]
  if unknown:
    raise UsageError(f"unknown layer{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} of "
                     f"{type(model).__name__}; valid layers: {', '.join(layers)}")
  order = names if names is not None else list(layers)
  return {name: captured[name] for name in order if name in captured}


def _param(params: Mapping[str, Any], layer: str, name: str):
  node = params
  for part in layer.split('/'):
    node = node[part]
  return node[name]


# Grids.


def tile_grid(tiles, columns: int | None = None, pad: int = 1) -> np.ndarray:
  """Lays out tiles in a grid, each normalised to [0, 1] by its own minimum and maximum.

  Args:
    tiles: `[n, height, width]` (grey) or `[n, height, width, 3]` (RGB); NaN pixels stay NaN.
    columns: tiles per row; default `ceil(sqrt(n))`.
    pad: pixels of padding between and around the tiles.

  Returns:
    float32 `[rows * (height + pad) + pad, columns * (width + pad) + pad]` (`[..., 3]` for RGB)
    with NaN in the padding. A constant tile becomes 0.
  """
  tiles = np.asarray(tiles, np.float32)
  n, h, w = tiles.shape[:3]
  columns = columns or math.ceil(math.sqrt(n))
  rows = math.ceil(n / columns)
  grid = np.full((rows * (h + pad) + pad, columns * (w + pad) + pad) + tiles.shape[3:], np.nan,
                 np.float32)
  for i, tile in enumerate(tiles):
    finite = tile[np.isfinite(tile)]
    low, high = (finite.min(), finite.max()) if finite.size else (0.0, 0.0)
    scaled = (tile - low) / (high - low) if high > low else np.where(np.isnan(tile), np.nan, 0.0)
    top, left = (pad + k * (size + pad) for k, size in zip(divmod(i, columns), (h, w)))
    grid[top:top + h, left:left + w] = scaled
  return grid


def feature_tiles(activation, max_channels: int | None = None) -> np.ndarray:
  """One layer output of one example -> tiles for `tile_grid`.

  `[height, width, channels]` gives one tile per channel `[channels, height, width]` (the first
  `max_channels`); `[units]` (a dense layer) gives one near-square tile of all units, NaN-padded.
  """
  activation = np.asarray(activation, np.float32)
  if activation.ndim == 3:
    tiles = np.moveaxis(activation, -1, 0)
    return tiles[:max_channels] if max_channels else tiles
  flat = activation.reshape(-1)
  side = math.ceil(math.sqrt(flat.size))
  rows = math.ceil(flat.size / side)
  tile = np.full(rows * side, np.nan, np.float32)
  tile[:flat.size] = flat
  return tile.reshape(1, rows, side)


def filter_tiles(kernel) -> np.ndarray:
  """A conv kernel `[kh, kw, in, out]` -> tiles: `[out, kh, kw, 3]` for 3 input channels (RGB),
  else `[out, kh, kw]` (grey; the mean over input channels when there are several)."""
  kernel = np.asarray(kernel, np.float32)
  tiles = np.moveaxis(kernel, -1, 0)
  if kernel.shape[2] == 3:
    return tiles
  return tiles.mean(axis=-1)


def colorize(grid, cmap: str = 'viridis', background: float = 1.0) -> np.ndarray:
  """A grid from `tile_grid` -> uint8 RGB `[height, width, 3]`; NaN (padding) becomes
  `background` grey; grey grids go through colormap `cmap`, RGB grids are used as they are."""
  grid = np.asarray(grid, np.float32)
  if grid.ndim == 2:
    import matplotlib
    nan = np.isnan(grid)
    rgb = matplotlib.colormaps[cmap](np.nan_to_num(grid))[..., :3]
    rgb[nan] = background
  else:
    rgb = np.where(np.isnan(grid), background, grid)
  return (np.clip(rgb, 0, 1) * 255 + 0.5).astype(np.uint8)


def grid_scale(width: int) -> int:
  """The integer upscaling that draws a grid `width` pixels wide about TARGET_WIDTH wide."""
  return int(max(1, min(MAX_SCALE, TARGET_WIDTH // max(width, 1))))


def save_grid(grid, path: str, title: str, cmap: str = 'viridis', scale: int | None = None) -> str:
  """Writes a `tile_grid` as a PNG, each pixel a `scale` x `scale` block, under a title.

  The PNG is exactly `width * scale` by `height * scale + TITLE_HEIGHT` pixels.
  """
  from matplotlib.backends.backend_agg import FigureCanvasAgg
  from matplotlib.figure import Figure

  rgb = colorize(grid, cmap)
  scale = scale or grid_scale(rgb.shape[1])
  rgb = np.repeat(np.repeat(rgb, scale, axis=0), scale, axis=1)
  height, width = rgb.shape[0] + TITLE_HEIGHT, rgb.shape[1]
  dpi = 100
  fig = Figure(figsize=(width / dpi, height / dpi), dpi=dpi, facecolor='white')
  FigureCanvasAgg(fig)
  fig.figimage(rgb, xo=0, yo=0, origin='upper')
  size = min(11.0, 0.9 * 72 * width / dpi / max(len(title), 1) * 1.6)
  fig.text(0.5, 1 - TITLE_HEIGHT / 2 / height, title, ha='center', va='center', fontsize=size)
  _makedirs_for(path)
  fig.savefig(path, dpi=dpi, facecolor='white')
  return path


def _makedirs_for(path: str) -> None:
  directory = os.path.dirname(os.path.abspath(path))
  os.makedirs(directory, exist_ok=True)


def _shape(array) -> str:
  return 'x'.join(str(d) for d in np.shape(array))


def _file_name(layer: str) -> str:
  return re.sub(r'[^\w.+-]', '_', layer)


# Feature maps.


def image_from_file(path: str, shape: Sequence[int], low=0.0, high=1.0,
                    invert: bool = False) -> np.ndarray:
  """A PNG/JPEG file as a model input `[height, width, channels]` float32.

  The picture is converted to grey or RGB (by `channels`), resized to `height` x `width`, scaled
  to [0, 1] (inverted with `invert`: dark ink on light paper becomes light on dark) and mapped
  linearly onto [low, high] (per channel), the pixel range the model saw in training.
  """
  from PIL import Image
  height, width, channels = shape
  if channels not in (1, 3):
    raise ValueError(f'cannot convert a picture to {channels} channels (1 or 3 only)')
  try:
    picture = Image.open(path)
    picture = picture.convert('L' if channels == 1 else 'RGB')
  except (OSError, ValueError) as error:
    raise UsageError(f'cannot read image {path}: {error}') from None
  picture = picture.resize((width, height), Image.Resampling.LANCZOS)
  pixels = np.asarray(picture, np.float32).reshape(height, width, channels) / 255.0
  if invert:
    pixels = 1.0 - pixels
  low, high = np.asarray(low, np.float32), np.asarray(high, np.float32)
  return (low + pixels * (high - low)).astype(np.float32)


def eval_pixel_range(source, count: int = 32,
                     prepare=None) -> tuple[np.ndarray, np.ndarray]:
  """Per-channel minimum and maximum of the first `count` eval images: where black and white
  land after the dataset's normalisation (x / 16, x / 255, or a mean/std standardisation).
  `prepare(batch)` maps a fetched batch to the model's inputs (`Experiment.prepare`: uint8
  images are normalised in the step)."""
  batch = source.fetch(np.arange(min(count, len(source))), None)
  if prepare is not None:
    batch = prepare(batch)
  images = np.asarray(batch['image'], np.float32)
  return images.min(axis=(0, 1, 2)), images.max(axis=(0, 1, 2))


def write_feature_maps(run, image: np.ndarray, out_dir: str,
                       layers: Sequence[str] | None = None, max_channels: int = 256,
                       input_title: str = 'input') -> list[str]:
  """Writes `input.png`, `features_<layer>.png` per layer and `filters_<first conv>.png`.

  Args:
    run: the model and variables (`load_run`).
    image: one model input `[height, width, channels]`.
    out_dir: where the PNGs go.
    layers: layer names; None for every conv layer, ['all'] for every layer.
    max_channels: draw at most this many channels of a layer.
    input_title: the title of `input.png`.

  Returns:
    the paths written. Raises UsageError for unknown layers or a model without conv layers
    when `layers` is None.
  """
  convs = conv_layer_names(run.model, run.variables, image)
  if layers is None:
    if not convs:
      valid = ', '.join(list_layers(run.model, run.variables, image))
      raise UsageError(f'{run.config.model} has no conv layers; pass --layers= with some of: '
                       f'{valid}')
    layers = convs
  elif list(layers) == ['all']:
    layers = None
  activations = capture_activations(run.model, run.variables, image, layers)
  paths = []
  picture = np.asarray(image, np.float32)
  tile = picture if picture.shape[-1] == 3 else picture[..., 0]
  paths.append(save_grid(tile_grid(tile[None], pad=0), os.path.join(out_dir, 'input.png'),
                         f'{input_title} ({_shape(picture)})', cmap='gray'))
  for name, activation in activations.items():
    if not hasattr(activation, 'shape') or np.ndim(activation) < 2:  # e.g. a carry tuple
      continue
    one = np.asarray(activation)[0]
    tiles = feature_tiles(one, max_channels)
    shown = '' if one.ndim != 3 or tiles.shape[0] == one.shape[-1] else \
        f', first {tiles.shape[0]} channels'
    path = os.path.join(out_dir, f'features_{_file_name(name)}.png')
    paths.append(save_grid(tile_grid(tiles), path, f'{name}: output {_shape(one)}{shown}'))
  if convs:
    kernel = np.asarray(_param(run.variables['params'], convs[0], 'kernel'))
    cin = kernel.shape[2]
    how = 'RGB' if cin == 3 else ('grey' if cin == 1 else f'mean of {cin} inputs')
    paths.append(save_grid(tile_grid(filter_tiles(kernel)),
                           os.path.join(out_dir, f'filters_{_file_name(convs[0])}.png'),
                           f'{convs[0]} filters {_shape(kernel)} ({how})', cmap='gray'))
  return paths


# TensorBoard during training.


def tensorboard_images(apply_fn: Callable, variables: Mapping[str, Any],
                       image) -> dict[str, np.ndarray]:
  """Tag -> uint8 RGB image: the first conv layer's filters and the feature maps of the first and
  last conv layers for `image` `[height, width, channels]`. Empty for models without convs."""
  _, captured, layers = _capture(apply_fn, variables, (_as_batch(image),),
                                 lambda name, module: _is_conv(module))
  convs = [name for name in layers if name in captured]
  if not convs:
    return {}
  images = {}
  kernel = np.asarray(_param(variables['params'], convs[0], 'kernel'))
  images[f'filters/{convs[0]}'] = _upscale(colorize(tile_grid(filter_tiles(kernel)), 'gray'))
  for name in dict.fromkeys([convs[0], convs[-1]]):
    tiles = feature_tiles(np.asarray(captured[name])[0], TENSORBOARD_MAX_CHANNELS)
    images[f'features/{name}'] = _upscale(colorize(tile_grid(tiles)))
  return images


def _upscale(rgb: np.ndarray) -> np.ndarray:
  """Repeats pixels (at most 8x) so that small grids are about TENSORBOARD_WIDTH wide."""
  scale = max(1, min(8, -(-TENSORBOARD_WIDTH // rgb.shape[1])))
  return np.repeat(np.repeat(rgb, scale, axis=0), scale, axis=1)


class TensorBoardImages:
  """An evaluation hook for `train.trainer.train_and_evaluate`: after each evaluation, adds the
  first conv layer's filters and feature maps of eval example 0 to TensorBoard
  (`tensorboard_images`).

  Cheap: one image, two layers, no compilation of its own. Does nothing for datasets without
  images, models without conv layers, a writer that is off (processes other than 0) or a
  multi-process run; a failure is logged once, never raised, so pictures cannot stop a run.
  """

  def __init__(self):
    self.warned = False

  def __call__(self, writer, state, experiment, step: int) -> None:
    if not getattr(writer, 'enabled', True):
      return
    import jax
    if jax.process_count() > 1:
      return
    try:
      batch = experiment.dataset.eval.fetch(np.arange(1), None)
      if 'image' not in batch or np.ndim(batch['image']) != 4:
        return
      prepare = getattr(experiment, 'prepare', None)  # uint8 images: normalised as in the step
      if prepare is not None:
        batch = prepare(batch)
      variables = {'params': state.params, **(state.model_state or {})}
      for tag, image in tensorboard_images(state.apply_fn, variables, batch['image'][0]).items():
        writer.add_image(tag, image, step)
    except Exception as error:  # pictures must never stop a run
      if not self.warned:
        log.warning('TensorBoard images skipped: %s', ' '.join(str(error).split())[:300])
        self.warned = True


# Attention.


def plot_attention(weights, source_tokens: Sequence[str], target_tokens: Sequence[str],
                   path: str, title: str | None = None) -> str:
  """Writes a heatmap of alignment weights as a PNG.

  Args:
    weights: `[target_time, source_time]`, row t the attention of output step t over the source
      (each row sums to 1 over the real source positions).
    source_tokens: labels of the columns (x axis), `source_time` of them.
    target_tokens: labels of the rows (y axis), `target_time` of them.
    path: the PNG to write.
    title: optional title.
  """
  from matplotlib.backends.backend_agg import FigureCanvasAgg
  from matplotlib.figure import Figure

  weights = np.asarray(weights, np.float32)
  if weights.shape != (len(target_tokens), len(source_tokens)):
    raise ValueError(f'weights {weights.shape} do not match {len(target_tokens)} target and '
                     f'{len(source_tokens)} source tokens')
  cell = 0.45
  fig = Figure(figsize=(max(3.5, 1.6 + cell * len(source_tokens)),
                        max(2.5, 1.3 + cell * len(target_tokens))), dpi=100)
  FigureCanvasAgg(fig)
  ax = fig.subplots()
  image = ax.imshow(weights, cmap='Greys', vmin=0.0, vmax=max(1e-6, float(weights.max())),
                    aspect='equal', interpolation='nearest')
  ax.set_xticks(range(len(source_tokens)), [_label(t) for t in source_tokens])
  ax.set_yticks(range(len(target_tokens)), [_label(t) for t in target_tokens])
  ax.tick_params(length=0)
  ax.xaxis.tick_top()
  ax.set_xlabel('source')
  ax.xaxis.set_label_position('top')
  ax.set_ylabel('generated')
  from mpl_toolkits.axes_grid1 import make_axes_locatable
  fig.colorbar(image, cax=make_axes_locatable(ax).append_axes('right', size=0.15, pad=0.1))
  if title:
    ax.set_title(title, fontsize=9, y=0, pad=-8, va='top')  # below the map; the source is on top
  fig.tight_layout()
  _makedirs_for(path)
  fig.savefig(path, facecolor='white')
  return path


def _label(token: str) -> str:
  return {'<eos>': 'EOS', '<pad>': 'PAD', '<bos>': 'BOS', ' ': '␣'}.get(token, token)


def decode_with_attention(run, text: str) -> tuple[str, list[str], np.ndarray]:
  """Greedy decoding of `text` with a seq2seq model.

  Returns (the output string, the generated tokens up to and including EOS, the attention
  weights `[len(tokens), len(text)]`).
  """
  from data import synthetic
  facts = run.dataset.facts
  model = run.model
  if not hasattr(model, 'greedy_decode') or not isinstance(facts, synthetic.Seq2SeqFacts):
    raise UsageError(f'{run.config.model} on {run.config.dataset} is not a sequence-to-sequence '
                     'model; attention maps need one, e.g. configs/addition_seq2seq.py')
  if not getattr(model, 'attention', None):
    raise UsageError(f'{run.config.model} has no attention (the no-attention baseline); train '
                     'one with attention, e.g. configs/addition_seq2seq.py')
  vocab = facts.vocab
  try:
    ids, lengths = vocab.encode([text], facts.source_length)
  except ValueError as error:
    raise UsageError(f'--input {text!r}: {error}') from None
  if not len(text):
    raise UsageError('--input is empty')
  decode = run.compiled(lambda model, variables, batch: model.apply(
      variables, batch['inputs'], batch['input_lengths'], max_length=facts.max_decode_length,
      method='greedy_decode'))
  decoded = decode({'inputs': ids, 'input_lengths': lengths})
  tokens = np.asarray(decoded['tokens'])[0]
  count = int(np.asarray(decoded['lengths'])[0])
  weights = np.asarray(decoded['attention'], np.float32)[0, :count, :len(text)]
  return vocab.decode(tokens), [vocab.tokens[int(t)] for t in tokens[:count]], weights


# Curves.


def read_runs(workdirs: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
  """Legend label (the workdir's name, with parents where names repeat) -> metrics.jsonl records."""
  from train.metrics_writer import read_metrics
  paths = [os.path.normpath(os.path.abspath(w)) for w in workdirs]
  for workdir, path in zip(workdirs, paths):
    if not os.path.isdir(path):
      raise UsageError(f'workdir {workdir} does not exist')
    if not os.path.isfile(os.path.join(path, 'metrics.jsonl')):
      raise UsageError(f'{workdir} has no metrics.jsonl (is it a training workdir?)')
  labels = [os.path.basename(p) for p in paths]
  depth = 1
  while len(set(labels)) < len(labels) and depth < 6:
    depth += 1
    labels = [os.path.join(*p.split(os.sep)[-depth:]) for p in paths]
  return {label: read_metrics(path) for label, path in zip(labels, paths)}


DEFAULT_METRICS = ('train_loss', 'eval_loss', 'train_accuracy', 'eval_accuracy', 'eval_exact_match',
                   'eval_perplexity', 'eval_rmse')


def _number(value) -> float | None:
  try:
    number = float(value)  # 'nan' / 'inf' strings too
  except (TypeError, ValueError):
    return None
  return number


def plot_curves(runs: Mapping[str, Sequence[Mapping[str, Any]]], path: str,
                metrics: Sequence[str] | None = None, columns: int = 3) -> str:
  """Writes one subplot per metric with one line per run (step on the x axis) as a PNG.

  Args:
    runs: label -> records (`step` plus metric values), e.g. from `read_runs`.
    path: the PNG to write.
    metrics: metric names; default those of DEFAULT_METRICS that any run logged.
    columns: subplots per row.

  Raises:
    UsageError: a metric no run logged (the message lists the logged ones).
  """
  from matplotlib.backends.backend_agg import FigureCanvasAgg
  from matplotlib.figure import Figure

  logged = list(dict.fromkeys(k for records in runs.values() for r in records for k in r
                              if k != 'step'))
  if metrics is None:
    metrics = [m for m in DEFAULT_METRICS if m in logged] or \
        [m for m in logged if m.startswith(('train_', 'eval_'))][:6]
  unknown = [m for m in metrics if m not in logged]
  if unknown or not metrics:
    raise UsageError(f"no run logged {', '.join(unknown) or 'any train_/eval_ metric'}; logged "
                     f"metrics: {', '.join(logged) or 'none'}")
  columns = min(columns, len(metrics), 2 if len(metrics) == 4 else len(metrics))
  rows = math.ceil(len(metrics) / columns)
  fig = Figure(figsize=(4.2 * columns, 3.0 * rows), dpi=100)
  FigureCanvasAgg(fig)
  axes = np.atleast_1d(fig.subplots(rows, columns, squeeze=False)).ravel()
  for ax, metric in zip(axes, metrics):
    values_seen = []
    for label, records in runs.items():
      points = [(r['step'], _number(r[metric])) for r in records if metric in r]
      points = [(s, v) for s, v in points if v is not None]
      if not points:
        continue
      steps, values = zip(*points)
      values_seen += [v for v in values if math.isfinite(v)]
      ax.plot(steps, values, marker='o' if len(points) <= 20 else None, markersize=3,
              linewidth=1.4, label=label)
    if (('loss' in metric or 'perplexity' in metric) and values_seen and min(values_seen) > 0
        and max(values_seen) / min(values_seen) > 20):
      ax.set_yscale('log')
    ax.set_title(metric, fontsize=10)
    ax.set_xlabel('step', fontsize=9)
    ax.tick_params(labelsize=8)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
  for ax in axes[len(metrics):]:
    ax.set_visible(False)
  fig.tight_layout()
  _makedirs_for(path)
  fig.savefig(path, facecolor='white')
  return path


# The command line.


class _Parser(cli.Parser):
  """One-line errors that name the subcommand's help."""

  def error(self, message):
    command = self.prog.split()[-1]  # the subcommand's parser has prog 'python -m train.visualize NAME'
    help_of = 'python -m train.visualize' + ('' if command == 'train.visualize' else f' {command}')
    print(f'error: {message} (see {help_of} --help)', file=sys.stderr)
    sys.exit(2)


def _parser() -> argparse.ArgumentParser:
  parser = _Parser(prog='python -m train.visualize',
                   description='Feature maps, attention maps and training curves as PNG files.')
  commands = parser.add_subparsers(dest='command', required=True, parser_class=_Parser)

  features = commands.add_parser('features', help='feature maps and first-layer filters')
  features.add_argument('--workdir', help='training workdir (config.json, newest checkpoint)')
  features.add_argument('--config', help='config file for a fresh model: configs/NAME.py[:variant]')
  features.add_argument('--image', help='a PNG/JPEG file to run through the model')
  features.add_argument('--index', type=int, help='example N of the eval split (default 0)')
  features.add_argument('--invert', action='store_true',
                        help='invert the --image (dark strokes on light paper)')
  features.add_argument('--layers', help='comma-separated layer names; default every conv layer; '
                        '"all" for every layer')
  features.add_argument('--max_channels', type=int, default=256,
                        help='draw at most this many channels per layer')
  features.add_argument('--out', help='output directory (default WORKDIR/visualize)')

  attention = commands.add_parser('attention', help='attention heatmap of a seq2seq model')
  attention.add_argument('--workdir', help='training workdir (config.json, newest checkpoint)')
  attention.add_argument('--config',
                         help='config file for a fresh model: configs/NAME.py[:variant]')
  attention.add_argument('--input', required=True, help='the source string, e.g. "123+45"')
  attention.add_argument('--out', help='output PNG (default WORKDIR/visualize/attention_INPUT.png)')

  curves = commands.add_parser('curves', help='training and evaluation curves of workdirs')
  curves.add_argument('--workdir', action='append', required=True,
                      help='a training workdir; repeat to compare runs')
  curves.add_argument('--metrics', help='comma-separated metric names (default: losses and the '
                      'main eval metric)')
  curves.add_argument('--out', help='output PNG (default FIRST_WORKDIR/visualize/curves.png)')
  return parser


def _default_out(args, name: str) -> str:
  base = os.path.join(args.workdir, 'visualize') if args.workdir else 'visualize'
  return os.path.join(base, name) if name else base


def _split(text: str | None) -> list[str] | None:
  return [t.strip() for t in text.split(',') if t.strip()] if text else None


def _features(args) -> None:
  if args.image is not None and args.index is not None:
    raise UsageError('pass --image or --index, not both')
  run = load_run(args.workdir, args.config)
  sample = run.dataset.eval.fetch(np.arange(1), None)
  if 'image' not in sample:
    raise UsageError(f'{run.config.dataset} has no images; feature maps need an image model')
  shape = tuple(np.shape(sample['image'])[1:])
  if args.image is not None:
    low, high = eval_pixel_range(run.dataset.eval, prepare=run.experiment.prepare)
    image = image_from_file(args.image, shape, low, high, invert=args.invert)
    what = os.path.basename(args.image)
    label = None
  else:
    index = args.index or 0
    if not 0 <= index < len(run.dataset.eval):
      raise UsageError(f'--index {index} is outside the eval split '
                       f'(0..{len(run.dataset.eval) - 1})')
    example = run.experiment.prepare(run.dataset.eval.fetch(np.array([index]), None))
    image = np.asarray(example['image'][0], np.float32)
    label = int(example['label'][0]) if 'label' in example else None
    what = f'eval example {index}' + (f' (label {label})' if label is not None else '')
  out = args.out or _default_out(args, '')
  model_text = (f'{run.config.model} at step {run.step}' if run.step is not None
                else f'{run.config.model}, freshly initialised (no checkpoint)')
  paths = write_feature_maps(run, image, out, _split(args.layers), args.max_channels,
                             input_title=what)
  print(f'{model_text}; input: {what}')
  predict = run.compiled(lambda model, variables, batch: model.apply(variables, batch['image'],
                                                                     train=False))
  logits = np.asarray(predict({'image': image[None]}))
  if logits.ndim == 2:
    probs = np.exp(logits[0] - logits[0].max())
    probs /= probs.sum()
    print(f'prediction: class {int(probs.argmax())} (p={probs.max():.3f})')
  for path in paths:
    print(f'wrote {path}')


def _attention(args) -> None:
  run = load_run(args.workdir, args.config)
  output, tokens, weights = decode_with_attention(run, args.input)
  when = f'step {run.step}' if run.step is not None else 'fresh'
  print(f'{args.input} -> {output}')
  path = args.out or _default_out(args, f'attention_{_file_name(args.input)}.png')
  plot_attention(weights, list(args.input), tokens, path,
                 title=f'{run.config.model} ({when}): {args.input} -> {output}')
  print(f'wrote {path}')


def _curves(args) -> None:
  runs = read_runs(args.workdir)
  path = args.out or os.path.join(args.workdir[0], 'visualize', 'curves.png')
  plot_curves(runs, path, _split(args.metrics))
  print(f'wrote {path}')


def main(argv: Sequence[str] | None = None) -> int:
  """Runs a command; returns the exit code (0, 1 or 2) after printing any error as one line."""
  args = _parser().parse_args(argv)
  commands = {'features': _features, 'attention': _attention, 'curves': _curves}
  return cli.run(lambda: commands[args.command](args))


if __name__ == '__main__':
  sys.exit(main())
