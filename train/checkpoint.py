"""Orbax checkpoints of the train state, kept in `workdir/checkpoints/<step>`.

Orbax writes each checkpoint to a temporary directory (`<step>.orbax-checkpoint-tmp-*`) and renames
it only once complete, so a kill mid-save never leaves a checkpoint that looks finished; such
leftovers are ignored when listing steps and deleted when the next run opens the directory.
Restoring tries the checkpoints newest first; one that cannot be restored (damaged, deleted in
part, not a checkpoint at all) is reported with its path and the reason, moved to
`workdir/damaged_checkpoints/`, and the next older one is tried. Only damaged checkpoints are
moved: the manager is fixed to one unnamed item at construction, so a damaged step directory cannot
change how the others are read.

A checkpoint whose recorded array shapes differ from the state being restored is intact but of
another model: CheckpointError, and nothing is moved. A workdir that held checkpoints (it has
`damaged_checkpoints/`) but has no intact one left is refused rather than trained again from step
0.
"""

from __future__ import annotations

import collections
import contextlib
import gc
import logging
import os
import shutil
import sys
import tempfile
import time
from typing import Any

import jax
import orbax.checkpoint as ocp

from train import workdir as workdir_lib


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
    self.damaged_directory = os.path.join(os.path.dirname(self.directory), DAMAGED)
    self._held_after_failure = None
    # One unnamed item, fixed now. Without `item_handlers` orbax decides between one item and
    # several from the first step directory it restores and keeps that decision: a damaged step
    # without its `default/` item made it read every later step as a multi-item checkpoint, so
    # every intact checkpoint failed to restore too.
    with _orbax_errors_silenced():  # it reads each step's metadata; restore reports damage
      self._manager = ocp.CheckpointManager(
          self.directory, item_handlers=ocp.StandardCheckpointHandler(),
          options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=True,
                                               enable_async_checkpointing=False,
                                               cleanup_tmp_directories=True))

  def latest_step(self) -> int | None:
    return self._manager.latest_step()

  def all_steps(self) -> list[int]:
    return sorted(self._manager.all_steps())

  def save(self, step: int, state: Any) -> None:
    """Saves `state` as checkpoint `step`; raises OSError with one line if it cannot be written.

    Orbax reports a failed write (full disk, quota, permissions) from several background threads,
    some of them after the save has returned; their output is held back from the failure until
    `close()` and dropped, replaced by that one line.
    """
    held = _stderr_held_back()
    held.__enter__()
    try:
      self._manager.save(int(step), args=ocp.args.StandardSave(state), force=True)
      self._manager.wait_until_finished()
    except Exception as error:  # orbax wraps OS errors in ValueError and others
      held.discard = True
      self._held_after_failure = held  # released by close(), once orbax's threads are done
      raise OSError(f'cannot write checkpoint {step} in {self.directory}: '
                    f'{workdir_lib.describe_os_error(error)}') from None
    held.__exit__(None, None, None)

  def restore(self, target: Any) -> tuple[Any, int] | None:
    """Restores the newest intact checkpoint into the structure, shapes and shardings of `target`.

    Returns (state, step), or None if the workdir never held a checkpoint. Every checkpoint newer
    than the one restored that cannot be read is reported on stderr (path and reason) and moved
    aside to `workdir/damaged_checkpoints/`; so is a file in `checkpoints/` named like a step.
    Raises CheckpointError if the workdir held checkpoints but none is intact.
    """
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, target)
    with _orbax_errors_silenced():  # the one warning per damaged checkpoint says it all
      self._manager.reload()
    failures = [f'{path}: not a directory' for path in self._move_aside_stray_files()]
    warnings: list[str] = []
    try:
      with _orbax_output_dropped():
        for step in reversed(self.all_steps()):
          path = os.path.join(self.directory, str(step))
          mismatch = self._mismatch(step, abstract)
          if mismatch:  # intact, but of another model: not damage, so nothing is moved
            raise CheckpointError(
                f'checkpoint {path} holds arrays of other shapes than this config builds '
                f'({mismatch}); it was left in place. Resume with the config it was trained '
                'with, or use a new --workdir.')
          try:
            state = self._manager.restore(step, args=ocp.args.StandardRestore(abstract))
            saved_step = getattr(state, 'step', None)
            if saved_step is not None and int(saved_step) != step:
              raise ValueError(f'it holds the state of step {int(saved_step)}')
          except Exception as error:  # orbax raises many types for unreadable or bad files
            reason = f'{type(error).__name__}: {" ".join(str(error).split())[:300]}'
            if isinstance(error, MemoryError) or 'RESOURCE_EXHAUSTED' in reason:  # not files
              raise CheckpointError(f'cannot restore checkpoint {path}: out of memory '
                                    f'({reason[:200]}); it was left in place.') from None
            moved = self._move_aside(os.path.join(self.directory, str(step)))
            self._manager.reload()
            warnings.append(f'checkpoint {path} cannot be restored ({reason}); moved it to '
                            f'{moved}.')
            failures.append(f'{path}: {reason[:120]}')
            continue
          return state, step
    finally:
      for message in warnings:
        _warn(message)
    if failures or _has_entries(self.damaged_directory):
      raise CheckpointError(
          f'no intact checkpoint in {self.directory}'
          + (f' ({len(failures)} damaged, moved to {self.damaged_directory})' if failures else
             f' (earlier damaged ones are in {self.damaged_directory})')
          + '; to start over from step 0 use a new --workdir, or move '
          f'{self.directory} and {self.damaged_directory} out of the workdir.')
    return None

  def _mismatch(self, step: int, abstract: Any) -> str | None:
    """How the arrays recorded in checkpoint `step` differ from `abstract`'s, if its metadata is
    readable and they do; None otherwise (a damaged checkpoint then fails to restore)."""
    try:
      with _orbax_errors_silenced():
        metadata = self._manager.item_metadata(step)
      have = sorted((tuple(m.shape), str(m.dtype)) for m in jax.tree.leaves(metadata)
                    if hasattr(m, 'shape') and hasattr(m, 'dtype'))
    except Exception:  # unreadable metadata is damage, reported by the restore
      return None
    want = sorted((tuple(x.shape), str(x.dtype)) for x in jax.tree.leaves(abstract))
    if not have or have == want:
      return None
    extra = sorted((collections.Counter(have) - collections.Counter(want)).elements())
    missing = sorted((collections.Counter(want) - collections.Counter(have)).elements())
    example = ', '.join([f'saved {_shape(extra[0])}'] * bool(extra) +
                        [f'expected {_shape(missing[0])}'] * bool(missing))
    return f'{len(have)} arrays saved, {len(want)} expected; e.g. {example}'

  def _move_aside_stray_files(self) -> list[str]:
    """Moves files named like a step (orbax lists only directories) out of the way of new saves."""
    if not os.path.isdir(self.directory):
      return []
    strays = [os.path.join(self.directory, name) for name in sorted(os.listdir(self.directory))
              if name.isdigit() and not os.path.isdir(os.path.join(self.directory, name))]
    for path in strays:
      moved = self._move_aside(path)
      _warn(f'checkpoint {path} is not a checkpoint directory; moved it to {moved}.')
    return strays

  def _move_aside(self, path: str) -> str:
    """Moves a damaged checkpoint out of orbax's sight, so new saves of that step are possible."""
    name = f'{os.path.basename(path)}-{time.strftime("%Y%m%d-%H%M%S")}'
    target = os.path.join(self.damaged_directory, name)
    suffix = 1
    while os.path.lexists(target):
      target = os.path.join(self.damaged_directory, f'{name}-{suffix}')
      suffix += 1
    if jax.process_index() == 0:
      os.makedirs(self.damaged_directory, exist_ok=True)
      shutil.move(path, target)
    if jax.process_count() > 1:
      from jax.experimental import multihost_utils
      multihost_utils.sync_global_devices(f'move_aside_{os.path.basename(path)}')
    return target

  def close(self) -> None:
    """Closes the manager. After a failed save, standard error stays held back while orbax's
    writer threads wind down (they report that failure again, on a closed event loop); what
    they print is dropped, since the save already raised one line."""
    held, self._held_after_failure = self._held_after_failure, None
    if held is None:
      self._manager.close()
      return
    try:
      self._manager.close()
      gc.collect()
      time.sleep(_WIND_DOWN_SECONDS)
    finally:
      held.__exit__(None, None, None)


# How long a closing checkpointer waits after a failed save for orbax's writer threads.
_WIND_DOWN_SECONDS = 0.5


DAMAGED = 'damaged_checkpoints'


def _shape(array: tuple[tuple[int, ...], str]) -> str:
  return f'{array[1]}{list(array[0])}'


def _has_entries(directory: str) -> bool:
  return os.path.isdir(directory) and bool(os.listdir(directory))


@contextlib.contextmanager
def _orbax_errors_silenced():
  """Holds back orbax's own log lines (it logs through absl) about unreadable metadata files."""
  logger = logging.getLogger('absl')
  level = logger.level
  logger.setLevel(logging.CRITICAL)
  try:
    yield
  finally:
    logger.setLevel(level)


@contextlib.contextmanager
def _orbax_output_dropped():
  """Drops everything orbax prints while checkpoints are tried, for the caller reports each
  failure in one line. Besides orbax's log lines, a damaged checkpoint makes it print the
  "Exception ignored" reports of the other arrays' read coroutines, left unawaited when one
  array fails, and its reader threads' complaints about a closed event loop, some of them while
  the next checkpoint is being tried; standard error is held back over all the attempts and
  the leftovers are collected (`gc.collect`) before it is released."""
  with _orbax_errors_silenced(), _stderr_held_back() as held:
    held.discard = True
    try:
      yield
    finally:
      gc.collect()


def _warn(message: str) -> None:
  if jax.process_index() == 0:
    print(f'warning: {message}', file=sys.stderr, flush=True)


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
  """Restores checkpoint `step` (default: the newest intact one) of `workdir` into `abstract`, a
  pytree of `jax.ShapeDtypeStruct`s with shardings, without changing anything in the workdir.

  Without `step`, checkpoints are tried newest first; one that cannot be read is reported on
  stderr (path and reason) and left where it is (a training run on the workdir moves it aside).

  Returns (state, step), or None if the workdir has no checkpoint.

  Raises:
    ValueError: `step` is not one of the workdir's checkpoints.
    CheckpointError: the checkpoint (without `step`: every checkpoint) cannot be read; the
      message names the path and why.
  """
  directory = os.path.abspath(os.path.join(workdir, 'checkpoints'))
  if not os.path.isdir(directory):
    return None
  manager = ocp.CheckpointManager(
      directory, item_handlers=ocp.StandardCheckpointHandler(),
      options=ocp.CheckpointManagerOptions(read_only=True, create=False))
  try:
    steps = sorted(manager.all_steps())
    if step is not None and step not in steps:
      raise ValueError(f'{workdir} has no checkpoint at step {step}; its checkpoints: '
                       f'{", ".join(map(str, steps)) or "none"}')
    candidates = [step] if step is not None else steps[::-1]
    failures = []
    for candidate in candidates:
      path = os.path.join(directory, str(candidate))
      try:
        with _orbax_output_dropped():
          state = manager.restore(candidate, args=ocp.args.StandardRestore(abstract))
        return state, int(candidate)
      except Exception as error:  # orbax raises many types for unreadable or mismatched files
        reason = f'{type(error).__name__}: {" ".join(str(error).split())[:300]}'
        failures.append(f'{path}: {reason}')
        if candidate != candidates[-1]:
          _warn(f'checkpoint {path} cannot be restored ({reason}); trying the previous one.')
    if failures:
      raise CheckpointError(f'cannot restore checkpoint {failures[0]}' if len(failures) == 1 else
                            f'no checkpoint of {directory} can be restored ({"; ".join(failures)})')
    return None
  finally:
    manager.close()
