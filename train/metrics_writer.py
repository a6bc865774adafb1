"""Where metrics go: `workdir/metrics.jsonl`, TensorBoard event files, and a progress line.

Only process 0 writes. `metrics.jsonl` holds one JSON object per logged step: `step` plus metric
names prefixed `train_` or `eval_`, so scripts and tests can read results without TensorBoard.

A resumed run passes the step it resumed from: rows (and TensorBoard events) that the interrupted
run wrote after that step are dropped, so the file holds each step once, as an uninterrupted run
would. A line that is not valid JSON (a write torn by a kill, garbage) is reported with its line
number and skipped by `read_metrics`; a new row never continues such a line.
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
  """Appends rows to `workdir/metrics.jsonl` and scalars and images to `workdir/tensorboard`.

  Args:
    workdir: the run's directory.
    enabled: False on processes other than 0: nothing is written.
    resume_step: the step the run starts from. Rows and TensorBoard events of later steps, left
      by an interrupted run, are removed first. None keeps everything.
  """

  def __init__(self, workdir: str, enabled: bool = True, resume_step: int | None = None):
    self.enabled = enabled
    self.path = os.path.join(workdir, 'metrics.jsonl')
    self._tensorboard = None
    self._needs_newline = False
    if enabled:
      if resume_step is not None:
        drop_rows_after(self.path, resume_step)
      self._needs_newline = _ends_mid_line(self.path)
      from tensorboardX import SummaryWriter  # no TensorFlow needed
      logdir = os.path.join(workdir, 'tensorboard')
      purge = resume_step + 1 if resume_step is not None and _has_files(logdir) else None
      self._tensorboard = SummaryWriter(logdir, purge_step=purge)

  def write(self, step: int, metrics: dict[str, Any]) -> None:
    if not self.enabled:
      return
    record = {'step': int(step), **{k: _to_python(v) for k, v in metrics.items()}}
    with open(self.path, 'a') as f:
      f.write(('\n' if self._needs_newline else '') + json.dumps(record) + '\n')
    self._needs_newline = False
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


def _has_files(directory: str) -> bool:
  return os.path.isdir(directory) and bool(os.listdir(directory))


def _ends_mid_line(path: str) -> bool:
  """Whether `path` exists and its last byte is not a newline (a torn last write)."""
  try:
    with open(path, 'rb') as f:
      f.seek(0, os.SEEK_END)
      if f.tell() == 0:
        return False
      f.seek(-1, os.SEEK_END)
      return f.read(1) != b'\n'
  except FileNotFoundError:
    return False


def _parse(path: str, action: str) -> list[tuple[str, dict[str, Any]]]:
  """(line, record) for every valid row of `path`; each invalid line is reported on stderr."""
  rows = []
  with open(path, 'rb') as f:
    for number, raw in enumerate(f, 1):
      if not raw.strip():
        continue
      try:
        record = json.loads(raw)
        if not isinstance(record, dict) or not isinstance(record.get('step'), int):
          raise ValueError('not a metrics row')
      except ValueError:
        print(f'warning: {path} line {number} is not a valid metrics row (a torn write or '
              f'garbage); {action}.', file=sys.stderr, flush=True)
        continue
      rows.append((raw.decode().rstrip('\n') + '\n', record))
  return rows


def drop_rows_after(path: str, step: int) -> None:
  """Rewrites `path` without its rows for steps after `step` and without invalid lines.

  The new file is written next to the old one and renamed over it, so a kill leaves either.
  """
  if not os.path.exists(path):
    return
  rows = _parse(path, 'dropped it')
  kept = [line for line, record in rows if record['step'] <= step]
  with open(path, 'rb') as f:
    if b''.join(line.encode() for line in kept) == f.read():
      return
  temporary = path + '.tmp'
  with open(temporary, 'w') as f:
    f.writelines(kept)
    f.flush()
    os.fsync(f.fileno())
  os.replace(temporary, path)


def read_metrics(workdir: str) -> list[dict[str, Any]]:
  """All valid records of `workdir/metrics.jsonl`, in order; invalid lines are reported on
  stderr (file and line number) and skipped."""
  return [record for _, record in _parse(os.path.join(workdir, 'metrics.jsonl'), 'skipped it')]


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
