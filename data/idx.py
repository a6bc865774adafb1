"""Reader of MNIST's IDX file format (`*-idx3-ubyte`, `*-idx1-ubyte`, gzipped or not).

An IDX file is a 4-byte magic number `0x00 0x00 TYPE NDIM`, then NDIM big-endian uint32 dimension
sizes, then the data in row-major (C) order, big-endian. TYPE is 0x08 uint8, 0x09 int8, 0x0B int16,
0x0C int32, 0x0D float32, 0x0E float64. As 32-bit big-endian integers the MNIST magic numbers read
2049 (labels: uint8, 1 dimension) and 2051 (images: uint8, 3 dimensions).
"""

from __future__ import annotations

import gzip
import os
import struct

import numpy as np

DTYPES = {
    0x08: np.dtype('u1'),
    0x09: np.dtype('i1'),
    0x0B: np.dtype('>i2'),
    0x0C: np.dtype('>i4'),
    0x0D: np.dtype('>f4'),
    0x0E: np.dtype('>f8'),
}

LABELS_MAGIC = 2049  # uint8, 1 dimension
IMAGES_MAGIC = 2051  # uint8, 3 dimensions


class IdxError(ValueError):
  """The bytes are not a well-formed IDX file."""


def magic(path: str | os.PathLike) -> int:
  """Returns the file's magic number as a big-endian int32 (2049 labels, 2051 images)."""
  with _open(path) as f:
    header = f.read(4)
  if len(header) != 4:
    raise IdxError(f'{path}: too short for an IDX header')
  return struct.unpack('>i', header)[0]


def parse(data: bytes, name: str = '<bytes>') -> np.ndarray:
  """Decodes IDX bytes (already decompressed) into an array of shape `dims`, native byte order."""
  if len(data) < 4 or data[0] != 0 or data[1] != 0:
    raise IdxError(f'{name}: not an IDX file (magic must start with two zero bytes)')
  type_code, ndim = data[2], data[3]
  if type_code not in DTYPES:
    raise IdxError(f'{name}: unknown IDX element type 0x{type_code:02x}')
  header_size = 4 + 4 * ndim
  if len(data) < header_size:
    raise IdxError(f'{name}: truncated header')
  dims = struct.unpack(f'>{ndim}I', data[4:header_size])
  dtype = DTYPES[type_code]
  expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
  if len(data) - header_size != expected:
    raise IdxError(
        f'{name}: {len(data) - header_size} data bytes for dimensions {dims}, expected {expected}')
  array = np.frombuffer(data, dtype=dtype, offset=header_size).reshape(dims)
  return array.astype(dtype.newbyteorder('='), copy=True)


def read(path: str | os.PathLike) -> np.ndarray:
  """Reads an IDX file (gzipped if the name ends in `.gz`) into an array of shape `dims`.

  Example: `read('train-images-idx3-ubyte.gz')` is uint8 `[60000, 28, 28]`;
  `read('train-labels-idx1-ubyte.gz')` is uint8 `[60000]`.
  """
  with _open(path) as f:
    data = f.read()
  return parse(data, os.fspath(path))


def _open(path):
  path = os.fspath(path)
  return gzip.open(path, 'rb') if path.endswith('.gz') else open(path, 'rb')
