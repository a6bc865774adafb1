"""The model zoo. `create(name, **overrides)` returns a Flax module; `names()` lists the zoo.

Each family module (`models/cnn.py`, ...) declares its variants as data in a `MODELS` dict:
registry name -> constructor (a class or a `functools.partial` of one). Every model is called as
`model.apply(variables, inputs, train=bool, ...)`.
"""

from __future__ import annotations

import difflib
import importlib
from typing import Any, Callable

import flax.linen as nn

_FAMILIES = ('models.cnn', 'models.heads', 'models.seq2seq', 'models.captioning',
             'models.forecast')


def registry() -> dict[str, Callable[..., nn.Module]]:
  """Registry name -> constructor, over every family."""
  table: dict[str, Callable[..., nn.Module]] = {}
  for family in _FAMILIES:
    table.update(importlib.import_module(family).MODELS)
  return table


def names() -> list[str]:
  return sorted(registry())


def create(name: str, **overrides: Any) -> nn.Module:
  """Returns the registered model `name`, with constructor arguments overridden by `overrides`."""
  table = registry()
  if name not in table:
    close = difflib.get_close_matches(name, table, n=1)
    hint = f" Did you mean '{close[0]}'?" if close else ''
    raise ValueError(f"Unknown model '{name}'.{hint} Known models: {', '.join(sorted(table))}.")
  try:
    return table[name](**overrides)
  except TypeError as error:
    raise ValueError(f"Bad model_kwargs for '{name}': {error}") from None
