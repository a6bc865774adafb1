"""A run's workdir: creating it with one-line errors, and owning it for as long as the run lives.

`prepare(workdir)` creates the directory; a path that cannot be created raises OSError with one line
that says why (a part of the path is a file, permission denied, read-only file system, no space).

`claim(workdir)` takes an exclusive `fcntl.flock` on `workdir/.lock` and writes the holder (host,
PID, start time) into it. The operating system releases the lock when the process ends, however it
ends (SIGKILL included), so a crashed run never leaves a stale lock; the file itself stays and is
simply overwritten by the next holder. A second run on a held workdir raises WorkdirBusyError naming
the holder. In a multi-process job only process 0 takes the lock (the processes of one job share
the workdir); it tells the others whether it got it, so every process of a second job stops.

On a network file system the lock is as good as its locking: NFS v4 (and v3 with a lock manager)
enforces flock across hosts through the server; some FUSE and bucket mounts accept flock without
enforcing it between hosts, and there a second run on another host is not detected.
"""

from __future__ import annotations

import datetime
import errno
import fcntl
import json
import os
import socket
import sys
import time

LOCK_FILE = '.lock'

_held: dict[str, int] = {}  # real path of a workdir -> descriptor of its locked file, this process


class WorkdirBusyError(RuntimeError):
  """Another run holds the workdir."""


def describe_os_error(error: BaseException) -> str:
  """One line saying why a write failed, with advice that fits the cause.

  Freeing disk space is advised only for a full disk or quota (ENOSPC, EDQUOT). `error` may be an
  OSError, or another exception whose text carries the OS message (orbax wraps OS errors).
  """
  code = getattr(error, 'errno', None)
  text = ' '.join(str(error).split())
  for number, phrase in ((errno.ENOSPC, 'No space left on device'),
                         (errno.EDQUOT, 'Disk quota exceeded'), (errno.EFBIG, 'File too large'),
                         (errno.EACCES, 'Permission denied'),
                         (errno.EPERM, 'Operation not permitted'),
                         (errno.EROFS, 'Read-only file system')):
    if code == number or phrase in text:
      code = number
      break
  where = getattr(error, 'filename', None)
  on = f' on {where}' if where else ''
  if code == errno.ENOSPC:
    return 'no space left on device; free some disk space or use another --workdir'
  if code == errno.EDQUOT:
    return 'disk quota exceeded; free some space in your quota or use another --workdir'
  if code == errno.EFBIG:
    return ('file too large (the file size limit, see ulimit -f, or the file system\'s largest '
            'file); use another --workdir')
  if code in (errno.EACCES, errno.EPERM):
    return f'permission denied{on}; use a --workdir you can write to'
  if code == errno.EROFS:
    return f'read-only file system{on}; use a --workdir on a writable file system'
  reason = getattr(error, 'strerror', None) or text[:200] or type(error).__name__
  return f'{reason}{on}'


def _file_in_the_way(path: str) -> str | None:
  """The first part of `path` that exists but is not a directory, if any."""
  path = os.path.abspath(path)
  parts = []
  while True:
    parts.append(path)
    parent = os.path.dirname(path)
    if parent == path:
      break
    path = parent
  for part in reversed(parts):
    if os.path.lexists(part) and not os.path.isdir(part):
      return part
  return None


def prepare(workdir: str) -> None:
  """Creates `workdir` (and its parents); raises OSError with one line if it cannot."""
  try:
    os.makedirs(workdir, exist_ok=True)
  except OSError as error:
    blocker = _file_in_the_way(workdir)
    if blocker is not None:
      reason = f'{blocker} is a file, not a directory'
    else:
      reason = describe_os_error(error)
    raise OSError(f'cannot write to workdir {workdir}: {reason}') from None


def holder(workdir: str) -> str:
  """Who holds (or last held) `workdir`, as written in its lock file: 'host H, PID P, started T'."""
  try:
    with open(os.path.join(workdir, LOCK_FILE)) as f:
      record = json.load(f)
    return f'host {record["host"]}, PID {record["pid"]}, started {record["started"]}'
  except (OSError, ValueError, KeyError, TypeError):
    return 'a process that has not written its name yet'


def _try_lock(workdir: str) -> str | None:
  """Takes the lock for this process; returns None, or the one-line reason it is refused."""
  key = os.path.realpath(workdir)
  if key in _held:
    return None
  path = os.path.join(workdir, LOCK_FILE)
  try:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
  except OSError as error:
    raise OSError(f'cannot write to workdir {workdir}: {describe_os_error(error)}') from None
  try:
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
  except BlockingIOError:
    os.close(fd)
    for _ in range(20):  # the holder writes its name just after locking
      name = holder(workdir)
      if not name.startswith('a process'):
        break
      time.sleep(0.05)
    return (f'workdir {workdir} is in use by another run ({name}); wait for it to end, stop it, '
            'or use another --workdir')
  except OSError as error:  # e.g. ENOLCK: a network file system without a lock manager
    os.close(fd)
    print(f'warning: cannot lock workdir {workdir} ({error.strerror or error}); nothing stops a '
          'second run from using it at the same time.', file=sys.stderr, flush=True)
    return None
  record = {'host': socket.gethostname(), 'pid': os.getpid(),
            'started': datetime.datetime.now().astimezone().isoformat(timespec='seconds')}
  os.ftruncate(fd, 0)
  os.pwrite(fd, (json.dumps(record) + '\n').encode(), 0)
  _held[key] = fd
  return None


def claim(workdir: str) -> None:
  """Makes this run the owner of `workdir` until `release(workdir)` or the end of the process.

  Raises WorkdirBusyError naming the holder if another run owns it. Claiming a workdir this process
  already holds does nothing. With several JAX processes, process 0 takes the lock and every
  process raises if it could not; call it on all processes.
  """
  import jax
  # A single process takes the lock before JAX starts its backend (which on a GPU would claim
  # memory that the holder is using).
  several = jax.distributed.is_initialized() and jax.process_count() > 1
  refused = _try_lock(workdir) if not several or jax.process_index() == 0 else None
  if several:
    import numpy as np
    from jax.experimental import multihost_utils
    busy = bool(multihost_utils.broadcast_one_to_all(np.array(refused is not None)))
    if busy and refused is None:
      refused = (f'workdir {workdir} is in use by another run (process 0 of this job could not '
                 'lock it; its error names the holder)')
  if refused is not None:
    raise WorkdirBusyError(refused)


def release(workdir: str) -> None:
  """Gives up this process's lock on `workdir`, if it holds one."""
  fd = _held.pop(os.path.realpath(workdir), None)
  if fd is not None:
    fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)
