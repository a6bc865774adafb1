"""What the small commands (`train.evaluate`, `train.visualize`, `train.translate`, sampling in
`train.lm_tasks`) share: argparse with one-line errors, and errors turned into one line + an exit
code (2 for the command line, 1 for anything else), never a traceback. `train.main` has its own
absl equivalent."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Callable


class UsageError(ValueError):
  """A problem with the command line (exit code 2)."""


class Parser(argparse.ArgumentParser):
  """argparse whose errors are one line, `error: ... (see PROG --help)`, exit code 2."""

  def error(self, message):
    print(f'error: {message} (see {self.prog} --help)', file=sys.stderr)
    sys.exit(2)


def run(command: Callable[[], object]) -> int:
  """Calls `command()`; returns 0, or prints the error as one line and returns its exit code."""
  for name in ('absl', 'jax', 'orbax'):
    logging.getLogger(name).setLevel(logging.ERROR if name == 'absl' else logging.WARNING)
  import data
  from train import checkpoint
  try:
    command()
  except UsageError as error:
    print(f'error: {" ".join(str(error).split())}', file=sys.stderr)
    return 2
  except (ValueError, TypeError, KeyError, OSError, RuntimeError, checkpoint.CheckpointError,
          data.DatasetNotFoundError) as error:
    print(f'error: {" ".join(str(error).split()) or type(error).__name__}', file=sys.stderr)
    return 1
  return 0
