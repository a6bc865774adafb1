"""Where metrics go: `workdir/metrics.jsonl`, TensorBoard event files, and a progress line.

Only process 0 writes. `metrics.jsonl` holds one JSON object per logged step: `step` plus metric
names prefixed `train_` or `eval_`, so scripts and tests can read results without TensorBoard.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import sys
import time
from typing import Any, TextIO


class MetricWriter:

  def __init__(self, workdir: str, enabled: bool = True):
    self.enabled = enabled
    self.path = os.path.join(workdir, 'metrics.jsonl')
    self._tensorboard = None
    if enabled:
      from tensorboardX import SummaryWriter  # no TensorFlow needed
      self._tensorboard = SummaryWriter(os.path.join(workdir, 'tensorboard'))

  def write(self, step: int, metrics: dict[str, Any]) -> None:
    if not self.enabled:
      return
    record = {'step': int(step), **{k: _to_python(v) for k, v in metrics.items()}}
    with open(self.path, 'a') as f:
      f.write(json.dumps(record) + '\n')
    for name, value in record.items():
      if name != 'step' and isinstance(value, (int, float)):
        self._tensorboard.add_scalar(name, value, step)
    self._tensorboard.flush()

  def add_image(self, tag: str, image: Any, step: int) -> None:
    """Writes an image `[height, width, 3]` (or `[height, width]`) uint8 to TensorBoard."""
    if not self.enabled:
      return
    import numpy as np
    image = np.asarray(image)
    if image.ndim == 2:
      image = np.repeat(image[..., None], 3, axis=-1)
    self._tensorboard.add_image(tag, image, int(step), dataformats='HWC')
    self._tensorboard.flush()

  def close(self) -> None:
    if self._tensorboard is not None:
      self._tensorboard.close()


def _to_python(value: Any) -> Any:
  value = value.item() if hasattr(value, 'item') else value
  if isinstance(value, float) and not math.isfinite(value):
    return str(value)  # JSON has no NaN/Inf
  return value


def read_metrics(workdir: str) -> list[dict[str, Any]]:
  """All records of `workdir/metrics.jsonl`, in order."""
  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    return [json.loads(line) for line in f if line.strip()]


class Progress:
  """Formats `step 300/1000 (30%) | train_loss 0.41 | 52.1 steps/s | 6,669 ex/s | ETA 0:00:13`.

  Rates are measured between consecutive reports, so compilation and evaluation are not counted.
  """

  def __init__(self, total_steps: int, batch_size: int, start_step: int,
               stream: TextIO = sys.stdout, enabled: bool = True):
    self.total_steps = total_steps
    self.batch_size = batch_size
    self.stream = stream
    self.enabled = enabled
    self._last_step = start_step
    self._last_time = time.perf_counter()
    self.steps_per_second = float('nan')

  def restart_clock(self, step: int) -> None:
    """Call after work that should not count towards the training rate (eval, checkpoints)."""
    self._last_step, self._last_time = step, time.perf_counter()

  def report(self, step: int, metrics: dict[str, float]) -> None:
    now = time.perf_counter()
    if step > self._last_step:
      self.steps_per_second = (step - self._last_step) / max(now - self._last_time, 1e-9)
    self._last_step, self._last_time = step, now
    if not self.enabled:
      return
    rate = self.steps_per_second
    eta = (datetime.timedelta(seconds=round((self.total_steps - step) / rate))
           if math.isfinite(rate) and rate > 0 else '?')
    parts = [f'step {step}/{self.total_steps} ({100 * step / self.total_steps:.0f}%)']
    parts += [f'{name} {value:.4f}' for name, value in metrics.items()]
    parts += [f'{rate:.1f} steps/s', f'{rate * self.batch_size:,.0f} ex/s', f'ETA {eta}']
    print(' | '.join(parts), file=self.stream, flush=True)
