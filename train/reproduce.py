"""Reproduces the README's results: `python -m train.reproduce --suite=cpu --workdir=ROOT`.

  python -m train.reproduce --suite=quick --seeds=2 --workdir=workdirs/reproduce --parallel=2
  python -m train.reproduce --suite=cpu --workdir=workdirs/reproduce \\
      --readme=README.md --parallel=2

Runs every target of the suite (train/targets.py) with seeds 0..K-1 (`--seeds=K`; by default
each target's own count, 5 for those that take a few minutes, else 3) through the sweep machinery
(train/sweep.py: one train.main subprocess per run, `--parallel` at a time, `--executor=slurm` for
a cluster), each run in `ROOT/TARGET/seed=S`; finished runs are skipped and interrupted ones
resumed when the command is run again. Then summarises each target with train/report.py (mean ±
sample std over the seeds, n, wall time, hardware) next to our expected value and the published
reference, and prints the table as markdown; `--readme=PATH` writes it into that file between
the lines `<!-- results-table:begin -->` and `<!-- results-table:end -->`, with the command and
the date above it.

A target whose data is not prepared is listed as skipped, with the command that prepares it
(checked before anything trains); it is never a failure. The exit code is 1 if a run failed or a
finished target's mean lies outside its tolerance. `--override=KEY=VALUE` changes every run's
config (e.g. `--override=num_train_steps=20` for a smoke test); the results then say nothing
about the targets, so tolerances are not checked. `--dry_run` lists what would run.
"""

from __future__ import annotations

import ast
import dataclasses
import datetime
import os
import shlex
import sys
from typing import Any, Sequence

from train import cli
from train import report
from train import sweep
from train import targets as targets_lib

BEGIN, END = '<!-- results-table:begin -->', '<!-- results-table:end -->'


def parse_override(text: str) -> tuple[str, str]:
  key, sep, value = text.partition('=')
  key = key.strip().removeprefix('config.')
  if not sep or not key:
    raise cli.UsageError(f'--override={text}: expected KEY=VALUE (e.g. num_train_steps=20)')
  return key, value


def _typed(old: Any, text: str) -> Any:
  """`text` as a value of the type of `old` (a literal when `old` is None)."""
  if isinstance(old, bool):
    return text.strip().lower() in ('1', 'true', 'yes')
  if isinstance(old, (int, float, str)) and not isinstance(old, bool):
    return type(old)(text)
  try:
    return ast.literal_eval(text)
  except (ValueError, SyntaxError):
    return text


def data_missing(target: targets_lib.Target, overrides: Sequence[tuple[str, str]]) -> str | None:
  """Why `target`'s data cannot be read (the pipeline's DatasetNotFoundError), or None.

  Builds the target's input pipeline once (no model, no training) with the data overrides
  (`data_dir`, `data.*`) applied.
  """
  import data
  from train import config_checks
  config = config_checks.load_config_file(target.config)
  for key, text in [*target.overrides, *overrides]:
    if key == 'data_dir' or key.startswith('data.'):
      *path, leaf = key.split('.')
      section = config
      for part in path:
        section = section[part]
      section[leaf] = _typed(section.get(leaf), text)
  try:
    data.create(config)
  except data.DatasetNotFoundError as error:
    return cli.one_line(error)
  return None


def target_runs(target: targets_lib.Target, root: str, seeds: int,
                overrides: Sequence[tuple[str, str]]) -> list[sweep.Run]:
  """A sweep Run per seed, in `root/TARGET/seed=S`."""
  points = [sweep.Point(f'seed={s}', (*target.overrides, *overrides, ('seed', str(s))))
            for s in range(seeds)]
  return sweep.build_runs(target.config, os.path.join(root, target.name), points, (),
                          prefix=f'{target.name}/')


@dataclasses.dataclass
class Outcome:
  """What happened to one target."""
  target: targets_lib.Target
  status: str                 # 'ok', 'outside tolerance', 'not checked', 'skipped', 'incomplete'
  stats: dict[str, Any] | None = None
  wall: dict[str, Any] | None = None
  hardware: str = ''
  steps: str = ''
  detail: str = ''


def assess(target: targets_lib.Target, root: str, checked: bool) -> Outcome:
  """Summarises `target`'s finished runs under `root/TARGET` and checks its tolerance."""
  directory = os.path.join(root, target.name)
  try:
    groups = report.collect([directory])
  except FileNotFoundError:
    return Outcome(target, 'incomplete', detail='no runs')
  runs = [r for g in groups for r in g.runs]
  finished = [g for g in groups if g.finished]
  unfinished = [r for r in runs if r.state != 'finished']
  if not finished:
    return Outcome(target, 'incomplete', detail=f'{len(unfinished)} runs not finished')
  group = max(finished, key=lambda g: len(g.finished))
  stats = group.stats(target.metric)
  outcome = Outcome(target, 'not checked', stats, group.wall_seconds(),
                    '; '.join(group.hardware()), ', '.join(map(str, group.steps())))
  if unfinished:
    outcome.detail = f'{len(unfinished)} runs not finished or failed'
  if stats is None:
    outcome.status, outcome.detail = 'incomplete', f'no {target.metric} logged'
  elif checked:
    within = target.within_tolerance(stats['mean'])
    if within is not None:
      outcome.status = 'ok' if within else 'outside tolerance'
  return outcome


def _value(target: targets_lib.Target, value: float) -> str:
  return f'{100 * value:.2f}%' if target.percent else f'{value:.4g}'


def _ours(outcome: Outcome) -> str:
  stats, target = outcome.stats, outcome.target
  if not stats:
    return ''
  if stats['std'] is None:
    return f"{_value(target, stats['mean'])} (n=1)"
  scale = 100 if target.percent else 1
  std = f"{scale * stats['std']:.2f}" if target.percent else f"{stats['std']:.2g}"
  return f"{_value(target, stats['mean'])} ± {std} (n={stats['n']})"


def table(outcomes: Sequence[Outcome], skipped: Sequence[tuple[targets_lib.Target, str]]) -> str:
  """The results table (markdown), then the skipped targets with their prepare commands."""
  lines = ['| target | config | metric | ours: mean ± std (n seeds) | expected | reference | '
           'time per run | hardware | status |', '|' + '---|' * 9]
  for outcome in outcomes:
    t = outcome.target
    expected = (f'{_value(t, t.expected)} ± {_value(t, t.tolerance)}'
                if t.expected is not None else '')
    reference = f'{_value(t, t.reference.value)} ({t.reference.source})' if t.reference else ''
    wall = report.duration(outcome.wall['mean']) if outcome.wall else ''
    status = outcome.status + (f' ({outcome.detail})' if outcome.detail else '')
    lines.append(f'| `{t.name}` | `{t.config}` | {t.description} (`{t.metric}`) | '
                 f'{_ours(outcome)} | {expected} | {reference} | {wall} | {outcome.hardware} | '
                 f'{status} |')
  if skipped:
    lines += ['', 'Skipped (data not prepared):']
    lines += [f'- `{t.name}`: prepare with `{t.prepare or "(see its config)"}`'
              for t, _ in skipped]
  return '\n'.join(lines) + '\n'


def write_between_markers(path: str, text: str) -> None:
  """Replaces what lies between the BEGIN and END lines of `path` with `text`."""
  with open(path, encoding='utf-8') as f:
    content = f.read()
  start, end = content.find(BEGIN), content.find(END)
  if start < 0 or end < start:
    raise ValueError(f'{path} has no {BEGIN} ... {END} lines to write the table between')
  updated = content[:start + len(BEGIN)] + '\n' + text + content[end:]
  with open(path + '.tmp', 'w', encoding='utf-8') as f:
    f.write(updated)
  os.replace(path + '.tmp', path)


def main(argv: Sequence[str] | None = None) -> int:
  argv = sys.argv[1:] if argv is None else list(argv)
  parser = cli.Parser(prog='python -m train.reproduce', description=__doc__.split('\n\n')[0])
  parser.add_argument('--suite', choices=targets_lib.SUITES, default='quick')
  parser.add_argument('--seeds', type=int, default=None,
                      help="Seeds 0..K-1 per target (default: the target's own, 3 or 5).")
  parser.add_argument('--workdir', required=True, help='Root of the runs: ROOT/TARGET/seed=S.')
  parser.add_argument('--readme', default=None, help='Write the table into this file.')
  parser.add_argument('--targets', default=None, help='Only these targets (comma-separated).')
  parser.add_argument('--override', action='append', default=[], metavar='KEY=VALUE',
                      help='Config override for every run; tolerances are then not checked.')
  parser.add_argument('--data_dir', default=None, help='tfds data directory for every run.')
  parser.add_argument('--dry_run', action='store_true', help='List what would run and stop.')
  sweep.add_executor_flags(parser)
  args = parser.parse_args(argv)
  code = 0

  def reproduce():
    nonlocal code
    if args.seeds is not None and args.seeds < 1:
      raise cli.UsageError(f'--seeds must be at least 1, got {args.seeds}')
    chosen = targets_lib.suite(args.suite)
    if args.targets:
      chosen = targets_lib.by_name([n.strip() for n in args.targets.split(',')], chosen)
    overrides = [parse_override(o) for o in args.override]
    if args.data_dir:
      overrides.append(('data_dir', args.data_dir))
    available, skipped = [], []
    for target in chosen:
      missing = data_missing(target, overrides)
      if missing:
        skipped.append((target, missing))
        print(f'skipped {target.name}: data not prepared ({missing}); prepare with: '
              f'{target.prepare or "(see its config)"}', flush=True)
      else:
        available.append(target)
    runs = [run for t in available
            for run in target_runs(t, args.workdir, args.seeds or t.seeds, overrides)]
    if args.dry_run:
      for run in runs:
        print(f'{run.state}: python {" ".join(run.argv)}')
      return
    if runs:
      try:
        sweep.run_sweep(runs, sweep.make_executor(args, args.workdir))
      except sweep.Stop as stop:
        print(f'{stop} received: stopped; run the same command to resume.', flush=True)
        code = 130
        return
    text, failed = sweep.summary(runs)
    print(text, flush=True)
    checked = not args.override
    outcomes = [assess(t, args.workdir, checked) for t in available]
    date = datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d')
    header = (f'Measured on {date} with `python -m train.reproduce '
              f'{" ".join(shlex.quote(a) for a in argv)}`'
              + ('' if checked else ' (overridden configs: tolerances not checked)') + ':\n\n')
    result = header + table(outcomes, skipped)
    print('\n' + result, end='', flush=True)
    if args.readme:
      write_between_markers(args.readme, result)
      print(f'Wrote the table into {args.readme}.', flush=True)
    outside = [o.target.name for o in outcomes if o.status == 'outside tolerance']
    if outside:
      print(f'error: outside tolerance: {", ".join(outside)}', file=sys.stderr)
    code = 1 if (failed or outside) else 0

  status = cli.run(reproduce)
  return status or code


if __name__ == '__main__':
  sys.exit(main())
