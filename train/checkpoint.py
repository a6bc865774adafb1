"""Orbax checkpoints of the train state, kept in `workdir/checkpoints/<step>`.

Orbax writes each checkpoint to a temporary directory and renames it only once complete, so a kill
mid-save never leaves a checkpoint that looks finished. Restoring tries the newest checkpoint first
and falls back to older ones if it cannot be read, reporting the damaged path.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile
import time
from typing import Any

import jax
import orbax.checkpoint as ocp

log = logging.getLogger(__name__)


class CheckpointError(RuntimeError):
  """No checkpoint in the workdir could be restored."""


class Checkpointer:
  """Saves and restores a pytree (the train state) under `workdir/checkpoints`.

  Args:
    workdir: the run's directory.
    keep: how many of the newest checkpoints to keep.
  """

  def __init__(self, workdir: str, keep: int = 3):
    self.directory = os.path.abspath(os.path.join(workdir, 'checkpoints'))
    self._manager = ocp.CheckpointManager(
        self.directory,
        options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=True,
                                             enable_async_checkpointing=False))

  def latest_step(self) -> int | None:
    return self._manager.latest_step()

  def all_steps(self) -> list[int]:
    return sorted(self._manager.all_steps())

  def save(self, step: int, state: Any) -> None:
    """Saves `state` as checkpoint `step`; raises OSError with one line if it cannot be written.

    Orbax reports a failed write (full disk, quota, permissions) from several background threads;
    their output is held back and replaced by that one line.
    """
    with _stderr_held_back() as held:
      try:
        self._manager.save(int(step), args=ocp.args.StandardSave(state), force=True)
        self._manager.wait_until_finished()
      except Exception as error:  # orbax wraps OS errors in ValueError and others
        held.discard = True
        raise OSError(f'cannot write checkpoint {step} in {self.directory}: '
                      f'{_write_failure(error)}; free some disk space or use another '
                      '--workdir') from None

  def restore(self, target: Any) -> tuple[Any, int] | None:
    """Restores the newest readable checkpoint into the structure, shapes and shardings of `target`.

    Returns (state, step), or None if the workdir has no checkpoint. A checkpoint that cannot be
    read (truncated or corrupted files) is reported with its path, moved aside to
    `workdir/damaged_checkpoints/`, and the next older one is tried; if none can be read, raises
    CheckpointError.
    """
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, target)
    failures = []
    for step in reversed(self.all_steps()):
      try:
        state = self._manager.restore(step, args=ocp.args.StandardRestore(abstract))
      except Exception as error:  # orbax raises many types for unreadable or mismatched files
        path = os.path.join(self.directory, str(step))
        reason = ' '.join(str(error).split())[:300] or type(error).__name__
        moved = self._move_aside(step)
        message = (f'Checkpoint {path} cannot be restored ({reason}); moved it to {moved} and '
                   'trying the previous one.')
        log.warning(message)
        if jax.process_index() == 0:
          print(f'warning: {message}', file=sys.stderr, flush=True)
        failures.append(f'{path}: {reason}')
        continue
      return state, step
    if failures:
      raise CheckpointError(
          f'No checkpoint in {self.directory} could be restored ({"; ".join(failures)}). '
          'The damaged ones were moved aside; run again to start afresh, or restore them.')
    return None

  def _move_aside(self, step: int) -> str:
    """Moves a damaged checkpoint out of orbax's sight, so new saves of that step are possible."""
    target_dir = os.path.join(os.path.dirname(self.directory), 'damaged_checkpoints')
    target = os.path.join(target_dir, f'{step}-{int(time.time())}')
    if jax.process_index() == 0:
      os.makedirs(target_dir, exist_ok=True)
      shutil.move(os.path.join(self.directory, str(step)), target)
    if jax.process_count() > 1:
      from jax.experimental import multihost_utils
      multihost_utils.sync_global_devices(f'move_aside_{step}')
    self._manager.reload()
    return target

  def close(self) -> None:
    self._manager.close()


_WRITE_FAILURES = ('No space left on device', 'File too large', 'Disk quota exceeded',
                   'Permission denied', 'Read-only file system')


def _write_failure(error: Exception) -> str:
  text = ' '.join(str(error).split())
  for reason in _WRITE_FAILURES:
    if reason in text:
      return reason
  return text[:200] or type(error).__name__


class _stderr_held_back:
  """Redirects file descriptor 2 to a temporary file; replays it on exit unless `discard`."""

  def __init__(self):
    self.discard = False

  def __enter__(self):
    sys.stderr.flush()
    self._saved = os.dup(2)
    self._file = tempfile.TemporaryFile()
    os.dup2(self._file.fileno(), 2)
    return self

  def __exit__(self, *exc_info):
    sys.stderr.flush()
    os.dup2(self._saved, 2)
    os.close(self._saved)
    if not self.discard:
      self._file.seek(0)
      text = self._file.read()
      if text:
        sys.stderr.buffer.write(text)
        sys.stderr.flush()
    self._file.close()
    return False


def has_checkpoints(workdir: str) -> bool:
  """Whether `workdir/checkpoints` holds any step directory (intact or not)."""
  directory = os.path.join(workdir, 'checkpoints')
  return os.path.isdir(directory) and any(name.isdigit() for name in os.listdir(directory))


def restore_read_only(workdir: str, abstract: Any,
                      step: int | None = None) -> tuple[Any, int] | None:
  """Restores checkpoint `step` (default: the newest) of `workdir` into `abstract`, a pytree of
  `jax.ShapeDtypeStruct`s with shardings, without changing anything in the workdir.

  Returns (state, step), or None if the workdir has no checkpoint.

  Raises:
    ValueError: `step` is not one of the workdir's checkpoints.
    CheckpointError: the checkpoint cannot be read (the message names its path and why).
  """
  directory = os.path.abspath(os.path.join(workdir, 'checkpoints'))
  if not os.path.isdir(directory):
    return None
  manager = ocp.CheckpointManager(
      directory, item_handlers=ocp.StandardCheckpointHandler(),
      options=ocp.CheckpointManagerOptions(read_only=True, create=False))
  try:
    steps = sorted(manager.all_steps())
    if step is None:
      if not steps:
        return None
      step = steps[-1]
    elif step not in steps:
      raise ValueError(f'{workdir} has no checkpoint at step {step}; its checkpoints: '
                       f'{", ".join(map(str, steps)) or "none"}')
    try:
      state = manager.restore(step, args=ocp.args.StandardRestore(abstract))
    except Exception as error:  # orbax raises many types for unreadable or mismatched files
      reason = ' '.join(str(error).split())[:300] or type(error).__name__
      raise CheckpointError(f'cannot restore checkpoint {os.path.join(directory, str(step))}: '
                            f'{reason}') from None
  finally:
    manager.close()
  return state, int(step)
