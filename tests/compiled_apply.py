"""A test helper shared by the recurrent-model tests."""

import functools

import jax

_COMPILED = {}


def apply(module, variables, *args, **kwargs):
  """`module.apply(variables, *args, **kwargs)` compiled as one program, cached per module and
  keyword arguments (running op by op, or recompiling, is what makes model tests slow)."""
  try:
    key = (id(module), tuple(sorted(kwargs.items())))
    hash(key)
  except TypeError:  # e.g. an rngs dict: compile without caching
    return jax.jit(functools.partial(module.apply, **kwargs))(variables, *args)
  if key not in _COMPILED:
    _COMPILED[key] = (module, jax.jit(functools.partial(module.apply, **kwargs)))
  return _COMPILED[key][1](variables, *args)
