"""The model zoo. `create(name, platform=None, **overrides)` returns a Flax module; `names()` lists
the zoo.

Each family module (`models/cnn.py`, ...) declares its variants as data in a `MODELS` dict:
registry name -> constructor (a class or a `functools.partial` of one). Every model is called as
`model.apply(variables, inputs, train=bool, ...)`.

The platform is decided here, once: model code is written with plain building blocks, and takes
the pieces that XLA:CPU runs slowly (its convolution `conv`, its recurrent cells' `cell_ops`, its
wide output layer) as module arguments. On CPU `create` passes the forms of models/cpu_kernels.py
to every model that declares those arguments (`cpu_kernels.MODULE_ARGUMENTS`); anywhere else the
plain defaults stay. Either way the parameters are the same.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import importlib
from typing import Any, Callable

import flax.linen as nn
import jax

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


def _declared_arguments(constructor: Callable[..., nn.Module]) -> tuple[set[str], set[str]]:
  """(the constructor's dataclass fields, those a `functools.partial` already fixes)."""
  fixed: set[str] = set()
  while isinstance(constructor, functools.partial):
    fixed |= set(constructor.keywords)
    constructor = constructor.func
  fields = {field.name for field in dataclasses.fields(constructor)} \
      if dataclasses.is_dataclass(constructor) else set()
  return fields, fixed


def platform_arguments(name: str, platform: str | None = None) -> dict[str, Any]:
  """The module arguments `create` passes to registry model `name` on `platform`.

  Args:
    name: a registry name.
    platform: 'cpu', 'gpu', 'tpu', ...; None: `jax.default_backend()`.

  Returns:
    On CPU, the entries of `cpu_kernels.MODULE_ARGUMENTS` that the model declares (and its
    registry entry does not fix); elsewhere nothing.
  """
  if platform is None:
    platform = jax.default_backend()
  if not isinstance(platform, str):
    raise ValueError(f"platform must be a string such as 'cpu', 'gpu' or 'tpu', or None, got "
                     f'{platform!r}')
  if platform != 'cpu':
    return {}
  from models import cpu_kernels
  fields, fixed = _declared_arguments(registry()[name])
  return {key: value for key, value in cpu_kernels.MODULE_ARGUMENTS.items()
          if key in fields and key not in fixed}


def create(name: str, platform: str | None = None, **overrides: Any) -> nn.Module:
  """Returns the registered model `name`, with constructor arguments overridden by `overrides`.

  Args:
    name: a registry name (see `names()`).
    platform: the platform the model will run on, decided once here: 'cpu' gives it the CPU
      kernels of models/cpu_kernels.py (see `platform_arguments`), any other the plain layers;
      None: `jax.default_backend()`.
    **overrides: constructor arguments; they win over the platform's.
  """
  table = registry()
  if name not in table:
    close = difflib.get_close_matches(name, table, n=1)
    hint = f" Did you mean '{close[0]}'?" if close else ''
    raise ValueError(f"Unknown model '{name}'.{hint} Known models: {', '.join(sorted(table))}.")
  arguments = {**platform_arguments(name, platform), **overrides}
  try:
    return table[name](**arguments)
  except TypeError as error:
    raise ValueError(f"Bad model_kwargs for '{name}': {error}") from None
