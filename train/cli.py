"""What the commands share: argparse with one-line errors, errors turned into one line + an exit
code (2 for the command line, 1 for anything else, 130 for Ctrl-C), never a traceback; a check
that the JAX platform asked for exists; and signal handling that works while the main thread is
busy in a long C++ call such as an XLA compile. `train.main` parses its flags with absl instead.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from typing import Callable


class UsageError(ValueError):
  """A problem with the command line (exit code 2)."""


class Parser(argparse.ArgumentParser):
  """argparse whose errors are one line, `error: ... (see PROG --help)`, exit code 2."""

  def error(self, message):
    print(f'error: {message} (see {self.prog} --help)', file=sys.stderr)
    sys.exit(2)


def one_line(error: BaseException) -> str:
  """The error's message on one line (its type's name if it has none)."""
  return ' '.join(str(error).split()) or type(error).__name__


def exit_now(code: int, message: str | None = None) -> None:
  """Prints `message` (if any) to stderr and ends the process at once with `code`.

  Skips interpreter shutdown, whose library threads (orbax writers, prefetchers) could otherwise
  block the exit or print tracebacks of their own. Worker processes of this one (the input
  pipeline's) are ended first: skipping shutdown would otherwise leave them running.
  """
  end_worker_processes()
  if message:
    print(message, file=sys.stderr)
  for stream in (sys.stdout, sys.stderr):
    try:
      stream.flush()
    except (OSError, ValueError):
      pass
  os._exit(code)


def watch_signals(callback: Callable[[int], None],
                  signals: tuple[int, ...] = (signal.SIGINT, signal.SIGTERM)) -> Callable[[], None]:
  """Calls `callback(signum)` on a helper thread as soon as one of `signals` arrives.

  Python runs its signal handlers only between bytecodes of the main thread, so a main thread
  inside a long C++ call (an XLA compile) would not see a signal for minutes; the helper thread
  is woken at once through `signal.set_wakeup_fd`. This only happens for signals that have a
  Python handler: install one (`signal.signal`) for each of `signals` before or after. Must be
  called from the main thread. Returns a function that stops watching.
  """
  read_fd, write_fd = os.pipe()
  os.set_blocking(write_fd, False)
  previous = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
  wanted = set(signals)

  def watch():
    while chunk := os.read(read_fd, 64):
      for signum in chunk:
        if signum in wanted:
          callback(signum)
    os.close(read_fd)

  threading.Thread(target=watch, name='signal-watcher', daemon=True).start()

  def stop():
    signal.set_wakeup_fd(previous)
    os.close(write_fd)

  return stop


def end_worker_processes(timeout: float = 5.0) -> None:
  """Terminates this process's multiprocessing children (SIGTERM, then SIGKILL after `timeout`
  seconds) and waits for them. A no-op where multiprocessing was never used."""
  if 'multiprocessing' not in sys.modules:
    return
  import multiprocessing
  import time
  children = multiprocessing.active_children()
  for child in children:
    child.terminate()
  deadline = time.monotonic() + timeout
  for child in children:
    child.join(max(0.0, deadline - time.monotonic()))
    if child.is_alive():
      child.kill()
      child.join(1.0)


def _quiet_interrupt(kind, value, traceback):
  if issubclass(kind, KeyboardInterrupt):
    exit_now(130)
  sys.__excepthook__(kind, value, traceback)


# Run as a command (`python -m train.NAME`, `python -m data.NAME`): Ctrl-C while the command is
# still importing its libraries, before `run` handles it, also ends it quietly with 130 instead
# of a traceback.
_MAIN_MODULE = getattr(getattr(sys.modules.get('__main__'), '__spec__', None), 'name', '') or ''
_AS_COMMAND = _MAIN_MODULE.startswith(('train.', 'data.'))
if _AS_COMMAND:
  sys.excepthook = _quiet_interrupt

# The read-only commands (everything but training, which checkpoints first: train/main.py, and
# the commands that run training as subprocesses and stop them cleanly: train/sweep.py,
# train/reproduce.py) end at the first Ctrl-C, decided on a helper thread from the moment this
# module is imported. A KeyboardInterrupt raised in the main thread instead can land where Python
# ignores it (inside a garbage-collection callback of JAX's) and the command would run on.
_STOPS_CLEANLY = ('train.main', 'train.sweep', 'train.reproduce')
_EXIT_ON_INTERRUPT = (_AS_COMMAND and _MAIN_MODULE not in _STOPS_CLEANLY
                      and threading.current_thread() is threading.main_thread())
if _EXIT_ON_INTERRUPT:
  signal.signal(signal.SIGINT, lambda signum, frame: exit_now(130))
  watch_signals(lambda signum: exit_now(130), (signal.SIGINT,))


def check_platform() -> None:
  """Initialises JAX's backend; RuntimeError saying how to fix it if the platform asked for is
  not available here (e.g. JAX_PLATFORMS=cuda on a machine without a GPU or jax[cuda12])."""
  import jax
  try:
    jax.devices()
  except (RuntimeError, AssertionError) as error:  # jax 0.10 asserts when no platform is left
    asked = os.environ.get('JAX_PLATFORMS') or jax.config.jax_platforms or ''
    detail = one_line(error) if str(error) else 'no such device is visible'
    which = f"'{asked}' (JAX_PLATFORMS={asked})" if asked else 'asked for'
    builds = {'cuda': 'jax[cuda12]', 'gpu': 'jax[cuda12]', 'tpu': 'jax[tpu]'}
    build = next((builds[p] for p in asked.split(',') if p in builds), 'jax[cuda12]')
    raise RuntimeError(
        f'JAX platform {which} is not available here ({detail}); unset JAX_PLATFORMS to use '
        f"this machine's own devices (the CPU at least), or on a machine that has the device "
        f"install JAX's build for it: pip install -U '{build}'.") from None


def _image_too_large(error: BaseException) -> bool:
  image = sys.modules.get('PIL.Image')
  return image is not None and isinstance(
      error, (image.DecompressionBombError, image.DecompressionBombWarning))


def run(command: Callable[[], object]) -> int:
  """Calls `command()`; returns 0, or prints the error as one line and returns its exit code.

  Ctrl-C ends the command quietly with exit code 130; a second Ctrl-C ends it at once, even
  inside a compile. An image too large to decode safely (PIL's decompression-bomb limit, or
  between it and twice it, where PIL only warns) is a one-line error.
  """
  import warnings
  for name in ('absl', 'jax', 'orbax'):
    logging.getLogger(name).setLevel(logging.ERROR if name == 'absl' else logging.WARNING)
  stop_watching = None
  previous_handler = signal.getsignal(signal.SIGINT)
  if threading.current_thread() is threading.main_thread() and not _EXIT_ON_INTERRUPT:
    presses = []

    def on_interrupt(signum):
      presses.append(signum)
      if len(presses) > 1:
        exit_now(130)

    signal.signal(signal.SIGINT, signal.default_int_handler)
    stop_watching = watch_signals(on_interrupt, (signal.SIGINT,))
  try:
    with warnings.catch_warnings():
      warnings.filterwarnings('error', message=r'Image size \(\d+ pixels\) exceeds limit')
      return _run(command)
  except KeyboardInterrupt:
    if _AS_COMMAND:  # at once: shutting the interpreter down mid-computation can crash XLA
      exit_now(130)
    return 130
  finally:
    if stop_watching is not None:
      stop_watching()
      signal.signal(signal.SIGINT, previous_handler)


def _run(command: Callable[[], object]) -> int:
  import data
  from train import checkpoint
  try:
    if os.environ.get('JAX_PLATFORMS'):
      check_platform()
    command()
  except UsageError as error:
    print(f'error: {one_line(error)}', file=sys.stderr)
    return 2
  except Exception as error:  # pylint: disable=broad-except  # sorted out below
    if _image_too_large(error):
      print(f'error: image too large to decode safely: {one_line(error)}', file=sys.stderr)
      return 1
    if not isinstance(error, (ValueError, TypeError, KeyError, OSError, RuntimeError,
                              checkpoint.CheckpointError, data.DatasetNotFoundError)):
      raise
    print(f'error: {one_line(error)}', file=sys.stderr)
    return 1
  return 0
