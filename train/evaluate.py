"""Evaluate a trained workdir again, with breakdowns the training loop does not compute.

  python -m train.evaluate --workdir=DIR [--beam_size=4] [--bucket=10] [--json=PATH]

Reads the workdir's `config.json` and newest checkpoint (nothing in the workdir changes) and
prints the task's evaluation metrics over the whole eval split, exactly as training reported them.
For sequence-to-sequence models it also decodes every eval example greedily and, with
`--beam_size` > 1, by beam search, and prints exact match per source-length bucket (`--bucket`
lengths wide): how accuracy falls off with input length, with and without attention, is the
classic comparison of Bahdanau et al. and Luong et al.

Errors are one line `error: ...`: exit code 2 for the command line (missing workdir, no
checkpoint), 1 for anything else.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any, Sequence

import numpy as np

from train import cli


def exact_match_by_length(run, batch_size: int, beam_size: int = 0,
                          alpha: float = 0.6) -> dict[str, np.ndarray]:
  """Per eval example: source length and whether greedy (and beam) decoding is exactly right.

  `run` is a `train.experiment.Run` of a sequence-to-sequence model. An output is exactly right
  when every target position (EOS included) matches, as in the seq2seq task's `exact_match`.
  Returns `lengths` `[N]` int, `greedy` `[N]` bool and, with `beam_size` > 1, `beam` `[N]` bool.
  """
  from data import pipeline

  def exact(tokens, batch):
    hits = (tokens == batch['targets']) | ~batch['target_mask'].astype(bool)
    return hits.all(-1)

  def greedy(model, variables, batch):
    decoded = model.apply(variables, batch['inputs'], batch['input_lengths'],
                          max_length=batch['targets'].shape[1], method='greedy_decode')
    return exact(decoded['tokens'], batch)

  def beam(model, variables, batch):
    decoded = model.apply(variables, batch['inputs'], batch['input_lengths'], beam_size=beam_size,
                          alpha=alpha, max_length=batch['targets'].shape[1], method='beam_search')
    return exact(decoded['tokens'], batch)

  decoders = {'greedy': run.compiled(greedy)}
  if beam_size > 1:
    decoders['beam'] = run.compiled(beam)
  columns: dict[str, list[np.ndarray]] = {'lengths': [], **{name: [] for name in decoders}}
  for batch in pipeline.eval_batches(run.dataset.eval, batch_size):
    real = batch.pop('mask')
    columns['lengths'].append(batch['input_lengths'][real])
    for name, decode in decoders.items():
      columns[name].append(np.asarray(decode(batch))[real])
  return {name: np.concatenate(parts) for name, parts in columns.items()}


def bucket_table(results: dict[str, np.ndarray], width: int) -> list[dict[str, Any]]:
  """Rows `{'lengths': [lo, hi], 'count', 'greedy_exact_match'[, 'beam_exact_match']}` for each
  non-empty bucket of source lengths `[lo, hi]`, `width` lengths wide, starting at 1."""
  rows = []
  lengths = results['lengths']
  for low in range(1, int(lengths.max()) + 1, width):
    chosen = (lengths >= low) & (lengths < low + width)
    if not chosen.any():
      continue
    row = {'lengths': [low, low + width - 1], 'count': int(chosen.sum()),
           'greedy_exact_match': float(results['greedy'][chosen].mean())}
    if 'beam' in results:
      row['beam_exact_match'] = float(results['beam'][chosen].mean())
    rows.append(row)
  return rows


def _parser() -> cli.Parser:
  parser = cli.Parser(prog='python -m train.evaluate', description=__doc__.split('\n\n')[0])
  parser.add_argument('--workdir', required=True, help='training workdir (config.json, checkpoint)')
  parser.add_argument('--beam_size', type=int, default=0,
                      help='seq2seq: also decode by beam search with this many beams')
  parser.add_argument('--alpha', type=float, default=0.6, help='beam search length penalty')
  parser.add_argument('--bucket', type=int, default=10, help='seq2seq: source lengths per row')
  parser.add_argument('--batch_size', type=int, help='eval batch size (default: the config\'s)')
  parser.add_argument('--json', help='also write the results to this JSON file')
  return parser


def evaluate(args) -> dict[str, Any]:
  from train import experiment
  from train import seq_tasks

  if not os.path.isdir(args.workdir):
    raise cli.UsageError(f'workdir {args.workdir} does not exist')
  if args.bucket < 1:
    raise cli.UsageError('--bucket must be at least 1')
  try:
    run = experiment.restore(args.workdir)
  except FileNotFoundError as error:
    raise cli.UsageError(f'{error}; nothing to evaluate') from None
  config, task = run.config, run.experiment.task
  batch_size = args.batch_size or run.experiment.eval_batch_size
  result: dict[str, Any] = {'workdir': args.workdir, 'step': run.step,
                            'metrics': run.evaluate(batch_size=batch_size)}
  print(f'{config.model} on {config.dataset}, checkpoint step {run.step}, '
        f'{len(run.dataset.eval):,} eval examples: ' +
        ', '.join(f'eval_{k} {v:.4f}' for k, v in result['metrics'].items()))
  if isinstance(task, seq_tasks.Seq2Seq):
    if args.beam_size > 1 and not hasattr(run.model, 'beam_search'):
      raise ValueError(f'{config.model} has no beam search')
    per_example = exact_match_by_length(run, batch_size, args.beam_size, args.alpha)
    result['by_length'] = bucket_table(per_example, args.bucket)
    result['greedy_exact_match'] = float(per_example['greedy'].mean())
    header = 'source length  examples  greedy exact'
    if 'beam' in per_example:
      result['beam_exact_match'] = float(per_example['beam'].mean())
      header += f'  beam {args.beam_size} exact'
    print(header)
    for row in result['by_length'] + [{'lengths': ['all', ''], 'count': len(per_example['greedy']),
                                       'greedy_exact_match': result['greedy_exact_match'],
                                       'beam_exact_match': result.get('beam_exact_match')}]:
      low, high = row['lengths']
      line = f'{f"{low}-{high}" if high != "" else low:>13}  {row["count"]:>8}  ' \
             f'{row["greedy_exact_match"]:>11.2%}'
      if 'beam' in per_example:
        line += f'  {row["beam_exact_match"]:>12.2%}'
      print(line)
  if args.json:
    with open(args.json, 'w') as f:
      json.dump(result, f, indent=2)
  return result


def main(argv: Sequence[str] | None = None) -> int:
  """Runs the command; returns the exit code after printing any error as one line."""
  args = _parser().parse_args(argv)
  return cli.run(lambda: evaluate(args))


if __name__ == '__main__':
  sys.exit(main())
