"""Devices, meshes and compilation: everything that differs between CPU, GPU and TPU lives here.

The train and eval steps run data-parallel over a one-axis mesh named 'data' that spans every
device of every process: batches are sharded on their leading axis, the train state is replicated.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

DATA_AXIS = 'data'

# XLA:CPU hands convolutions to YNNPACK by default; its weight-gradient convolutions are slower than
# XLA's own, while its dot and reduce fusions are faster (docs/performance.md), so only YNNPACK's
# convolutions are turned off. The option is experimental and tied to jaxlib 0.10: `compile` falls
# back to the defaults if a later jaxlib no longer knows it.
_CPU_COMPILER_OPTIONS = {
    'xla_cpu_experimental_ynn_fusion_type':
        'LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT,LIBRARY_FUSION_TYPE_REDUCE',
}


# glibc malloc settings for `keep_freed_memory` (mallopt parameter numbers from <malloc.h>).
_MALLOC_SETTINGS = (
    (-3, 1 << 30),        # M_MMAP_THRESHOLD: serve requests below 1 GiB from the heap, not mmap
    (-1, (1 << 31) - 1),  # M_TRIM_THRESHOLD: never hand freed heap memory back to the system
    (-2, 512 << 20),      # M_TOP_PAD: grow the heap in steps of 512 MiB
    (-8, 1),              # M_ARENA_MAX: one arena, so every thread reuses the same pages
)


def keep_freed_memory() -> bool:
  """Lets glibc reuse freed memory across steps instead of returning it to the system.

  XLA:CPU mallocs a step's temporary buffers and frees them at the end of the step. With glibc's
  defaults, blocks that large come from fresh `mmap` pages each time, and every step pays a page
  fault per 4 KiB page it touches (measured in docs/performance.md). Keeping the memory in the
  heap removes most of them. Process-wide: call it
  at start-up, before the first step (`train.main` and `train.benchmark` do; the benchmark's
  PyTorch reference shares the process, so both sides get it). Returns False where the C library
  is not glibc or refuses a setting, which changes nothing but speed.
  """
  import ctypes
  import ctypes.util
  try:
    libc = ctypes.CDLL(ctypes.util.find_library('c') or 'libc.so.6')
    mallopt = libc.mallopt
  except (OSError, AttributeError):
    return False
  return all(mallopt(parameter, value) == 1 for parameter, value in _MALLOC_SETTINGS)


def make_mesh() -> Mesh:
  return Mesh(np.asarray(jax.devices()), (DATA_AXIS,))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def batch_sharded(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P(DATA_AXIS))


def check_batch_size(batch_size: int, what: str = 'batch_size') -> None:
  devices = jax.device_count()
  if batch_size % devices:
    raise ValueError(
        f'{what} {batch_size} does not divide over {devices} devices; use a multiple of {devices}.')


def global_batch(local_batch: dict[str, np.ndarray], mesh: Mesh) -> dict[str, jax.Array]:
  """This process's slice of a batch -> one global array per key, sharded over 'data'."""
  sharding = batch_sharded(mesh)
  return {name: jax.make_array_from_process_local_data(sharding, value)
          for name, value in local_batch.items()}


def compile(function: Callable, *example_args: Any, **jit_kwargs: Any):
  """`jax.jit(function, **jit_kwargs)` compiled ahead of time for `example_args`.

  On CPU, with the convolution options above (or the defaults, if this jaxlib rejects them).
  """
  lowered = jax.jit(function, **jit_kwargs).lower(*example_args)
  if jax.default_backend() == 'cpu':
    try:
      return lowered.compile(compiler_options=_CPU_COMPILER_OPTIONS)
    except Exception as error:  # an unknown option: jaxlib changed; fall back to its defaults
      if 'ynn' not in str(error).lower():
        raise
  return lowered.compile()


def state_shardings(abstract_state: Any, mesh: Mesh, shard_params: bool,
                    min_size: int = 2 ** 14) -> Any:
  """Shardings for the train state: replicated, or FSDP-style with `shard_params`.

  With `shard_params`, every array of at least `min_size` elements is split over the 'data' axis
  along its largest dimension that the number of devices divides (parameters and optimiser state
  alike); XLA gathers them where a step needs them whole. Smaller arrays stay replicated.
  """
  devices = mesh.shape[DATA_AXIS]

  def sharding(leaf):
    shape = getattr(leaf, 'shape', ())
    if not shard_params or devices == 1 or int(np.prod(shape, dtype=np.int64)) < min_size:
      return replicated(mesh)
    for axis in sorted(range(len(shape)), key=lambda a: -shape[a]):
      if shape[axis] % devices == 0:
        spec = [None] * len(shape)
        spec[axis] = DATA_AXIS
        return NamedSharding(mesh, P(*spec))
    return replicated(mesh)

  return jax.tree.map(sharding, abstract_state)
