"""Classify image files with a trained or imported workdir.

  python -m train.predict --workdir=DIR --image=FILE [--image=FILE ...] [--top=5] [--json=PATH]

Reads the workdir's `config.json` and newest checkpoint (nothing in the workdir changes; the
dataset is not opened for imported weights), preprocesses each image exactly as the weights
expect (data/preprocessing.py `for_config`: the source's preprocessing for imported weights, the
eval pipeline's for a trained run) and prints the `--top` classes with their probabilities
(softmax of the logits) and names (ImageNet's for imported weights, the dataset's for a trained
run: data/class_names.py). `--json` writes, per image, the list
`[{"class": index, "name": ..., "probability": ...}, ...]`, most probable first (one image: the
list itself; several: `{file: list}`).

Errors are one line `error: ...`: exit code 2 for the command line (a `--top` larger than the
number of classes, a missing workdir or image), 1 for anything else (an unreadable image).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, Sequence

import numpy as np

from train import cli


def predict(workdir: str, paths: Sequence[str], top: int = 5) -> dict[str, list[dict[str, Any]]]:
  """Image path -> its `top` classes, most probable first: `{"class", "name", "probability"}`."""
  import jax
  from data import class_names
  from data import preprocessing
  from train import experiment

  if not os.path.isdir(workdir):
    raise cli.UsageError(f'workdir {workdir} does not exist')
  for path in paths:
    if not os.path.isfile(path):
      raise cli.UsageError(f'--image={path}: no such file')
  config, model, variables, _ = experiment.restore_variables(workdir)
  p = preprocessing.for_config(config)
  images = np.stack([preprocessing.eval_image(p, preprocessing.load_image(path)) for path in paths])
  logits = np.asarray(jax.jit(lambda v, x: model.apply(v, x, train=False))(variables, images))
  num_classes = logits.shape[-1]
  if not 1 <= top <= num_classes:
    raise cli.UsageError(f'--top must be between 1 and the number of classes, {num_classes}; '
                         f'got {top}')
  shifted = np.exp(logits.astype(np.float64) - logits.max(axis=-1, keepdims=True))
  probabilities = shifted / shifted.sum(axis=-1, keepdims=True)
  names = class_names.for_config(config, num_classes)
  results = {}
  for path, row in zip(paths, probabilities):
    order = np.argsort(-row, kind='stable')[:top]
    results[path] = [{'class': int(i), 'name': names[i], 'probability': float(row[i])}
                     for i in order]
  return results


def _parser() -> argparse.ArgumentParser:
  parser = cli.Parser(prog='python -m train.predict', description=__doc__.split('\n\n')[0])
  parser.add_argument('--workdir', required=True, help='a trained or imported workdir')
  parser.add_argument('--image', required=True, action='append', help='an image file (repeat '
                      'for several)')
  parser.add_argument('--top', type=int, default=5, help='how many classes to print')
  parser.add_argument('--json', help='also write the predictions to this JSON file')
  return parser


def main(argv: Sequence[str] | None = None) -> int:
  args = _parser().parse_args(argv)

  def command():
    results = predict(args.workdir, args.image, args.top)
    for path, rows in results.items():
      print(path)
      for rank, row in enumerate(rows, 1):
        print(f'  {rank:>2}. {row["probability"]:7.2%}  {row["name"]} ({row["class"]})')
    if args.json:
      with open(args.json, 'w') as f:
        json.dump(results[args.image[0]] if len(args.image) == 1 else results, f, indent=2)

  return cli.run(command)


if __name__ == '__main__':
  sys.exit(main())
