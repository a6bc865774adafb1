"""`workdir/run.json`: where, when and for how long a training run ran, and whether it finished.

The trainer writes it when a run (or a resumed part of it) starts and again when it ends:

  {"platform": "cpu", "device_kind": "cpu", "device_count": 1, "process_count": 1,
   "host_cpu": "AMD EPYC 9R14", "host_cores": 2, "jax_version": "0.10.2", "started": "2026-...Z",
   "ended": "2026-...Z", "wall_seconds": 12.3, "step": 1500, "num_train_steps": 1500,
   "finished": true}

`wall_seconds` adds up the sessions of a resumed run; `started` is the first session's start.
`host_cores` is the number of cores the process may run on (its affinity).
`finished` is true once the run has trained `num_train_steps` and evaluated the final step.
`read(workdir)` returns the dict, or None when there is no (readable) run.json.
"""

from __future__ import annotations

import datetime
import json
import os
import platform as host_platform
import time
from typing import Any

FILE = 'run.json'


def host_cpu() -> str:
  """The host CPU's model name (from /proc/cpuinfo on Linux), or what `platform` knows."""
  try:
    with open('/proc/cpuinfo', encoding='utf-8') as f:
      for line in f:
        if line.startswith('model name'):
          return line.split(':', 1)[1].strip()
  except OSError:
    pass
  return host_platform.processor() or host_platform.machine()


def host_cores() -> int | None:
  """The number of cores this process may run on (its affinity, where the OS has one)."""
  if hasattr(os, 'sched_getaffinity'):
    return len(os.sched_getaffinity(0))
  return os.cpu_count()


def read(workdir: str) -> dict[str, Any] | None:
  try:
    with open(os.path.join(workdir, FILE), encoding='utf-8') as f:
      info = json.load(f)
  except (OSError, ValueError):
    return None
  return info if isinstance(info, dict) else None


def _write(workdir: str, info: dict[str, Any]) -> None:
  """Writes run.json atomically; a failed write (a full disk) is ignored: the file only
  describes the run, and the trainer's own error must not be replaced by this one."""
  path = os.path.join(workdir, FILE)
  try:
    with open(path + '.tmp', 'w', encoding='utf-8') as f:
      json.dump(info, f, indent=2, sort_keys=True)
    os.replace(path + '.tmp', path)
  except OSError:
    pass


def _now() -> str:
  return datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')


class Session:
  """One training session of a workdir: `begin()` when it starts, `end(step)` when it stops."""

  def __init__(self, workdir: str, num_train_steps: int):
    self.workdir = workdir
    self.num_train_steps = num_train_steps
    self._start = time.monotonic()
    self._info: dict[str, Any] = {}

  def begin(self, step: int) -> None:
    import jax
    device = jax.devices()[0]
    before = read(self.workdir) or {}
    self._info = {
        'platform': jax.default_backend(), 'device_kind': device.device_kind,
        'device_count': jax.device_count(), 'process_count': jax.process_count(),
        'host_cpu': host_cpu(), 'host_cores': host_cores(), 'jax_version': jax.__version__,
        'started': before.get('started') or _now(), 'ended': None,
        'wall_seconds': float(before.get('wall_seconds') or 0.0), 'step': step,
        'num_train_steps': self.num_train_steps, 'finished': False}
    self._start = time.monotonic()
    _write(self.workdir, self._info)

  def end(self, step: int) -> None:
    if not self._info:
      return
    info = dict(self._info)
    info['wall_seconds'] = round(info['wall_seconds'] + time.monotonic() - self._start, 3)
    info.update(ended=_now(), step=step, finished=step >= self.num_train_steps)
    _write(self.workdir, info)
