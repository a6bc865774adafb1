"""Orbax checkpoints of the train state, kept in `workdir/checkpoints/<step>`.

Orbax writes each checkpoint to a temporary directory and renames it only once complete, so a kill
mid-save never leaves a checkpoint that looks finished. Restoring tries the newest checkpoint first
and falls back to older ones if it cannot be read, reporting the damaged path.
"""

from __future__ import annotations

import logging
import os
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
    self._manager.save(int(step), args=ocp.args.StandardSave(state), force=True)
    self._manager.wait_until_finished()

  def restore(self, target: Any) -> tuple[Any, int] | None:
    """Restores the newest readable checkpoint into the structure, shapes and shardings of `target`.

    Returns (state, step), or None if the workdir has no checkpoint. Damaged checkpoints are
    reported and skipped; if none can be read, raises CheckpointError.
    """
    steps = self.all_steps()
    if not steps:
      return None
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, target)
    failures = []
    for step in reversed(steps):
      try:
        state = self._manager.restore(step, args=ocp.args.StandardRestore(abstract))
      except Exception as error:  # orbax raises many types for unreadable or mismatched files
        path = os.path.join(self.directory, str(step))
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        log.warning('Checkpoint %s cannot be restored (%s); trying an older one.', path, reason[:300])
        failures.append(f'{path}: {reason[:300]}')
        continue
      return state, step
    raise CheckpointError(
        f'No checkpoint in {self.directory} could be restored ({"; ".join(failures)}). '
        'Delete the directory to start afresh, or point --workdir elsewhere.')

  def close(self) -> None:
    self._manager.close()
