"""Summarises training workdirs: `python -m train.report ROOT... [--metric=NAME] [--format=F]`.

  python -m train.report workdirs/sweep                       # a markdown table
  python -m train.report workdirs/sweep --format=json         # groups as JSON
  python -m train.report workdirs/sweep --metric=eval_accuracy --plot=curves.png

Every workdir under the ROOTs (a directory holding `config.json`, or `sweep.json` for a sweep point
that failed before writing one) is read: its `config.json`, `metrics.jsonl` (through
`train.metrics_writer.read_metrics`) and `run.json` (hardware, wall time, finished; written by the
trainer). Runs whose configs differ only in `seed` form a group. For each group the report gives the
config keys that tell the groups apart (the task, dataset and model where those differ, then the
keys that differ between the groups of that one experiment), n, and for each final metric (the eval
row of the last evaluated step) mean ± sample standard deviation (ddof=1; none for n=1) and min-max,
the same of the best value over the eval rows (`best_eval_*`: the highest, the lowest for loss-like
metrics), steps, wall time and hardware. Finished runs only are averaged: unfinished runs (stopped,
interrupted, still running) and failed ones (the last line of their `stderr.log` is an error) are
listed separately. `--format=json` writes a list of groups, each with `group` (its distinguishing
keys), `workdirs`, `n`, `metrics` (`{name: {"mean", "std", "min", "max"}}`), `steps`,
`wall_seconds`, `hardware`, `unfinished` and `failed` (workdirs). `--plot=PATH` draws the metric's
curve per group: the mean over its runs, with the min-max band.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import os
import re
import sys
from typing import Any, Iterable, Sequence

from train import cli
from train import config_checks
from train import metrics_writer
from train import run_info

GROUP_IGNORES = ('seed',)  # keys whose runs are repeats of one experiment
EXPERIMENT_KEYS = ('task', 'dataset', 'model')  # configs that share these: one experiment
_LOWER_IS_BETTER = re.compile(r'loss|perplexity|rmse|mae|error|bits|nll|bpc', re.IGNORECASE)
_SKIP_DIRS = ('checkpoints', 'tensorboard', '.submitit')


def lower_is_better(name: str) -> bool:
  """Whether a smaller value of metric `name` is better (losses, perplexity, errors)."""
  return bool(_LOWER_IS_BETTER.search(name))


def flatten(config: dict[str, Any], prefix: str = '') -> dict[str, Any]:
  """{'a': {'b': 1}} -> {'a.b': 1}; lists become tuples (hashable)."""
  flat = {}
  for key, value in config.items():
    if isinstance(value, dict):
      flat.update(flatten(value, f'{prefix}{key}.'))
    else:
      flat[f'{prefix}{key}'] = tuple(value) if isinstance(value, list) else value
  return flat


@dataclasses.dataclass
class RunRecord:
  """One workdir as the report reads it."""
  workdir: str
  config: dict[str, Any]           # flattened; {} when there is no config.json
  rows: list[dict[str, Any]]
  info: dict[str, Any] | None      # run.json
  state: str                       # 'finished', 'unfinished' or 'failed'
  error: str = ''

  @property
  def step(self) -> int:
    return max((row['step'] for row in self.rows), default=0)

  @property
  def total_steps(self) -> int | None:
    return self.config.get('num_train_steps')

  def final_metrics(self) -> dict[str, float]:
    """The eval metrics of the last evaluated step, and `best_eval_*` over all eval rows."""
    evals = [row for row in self.rows if any(k.startswith('eval_') for k in row)]
    if not evals:
      return {}
    last = max(row['step'] for row in evals)
    final = {}
    for row in evals:
      if row['step'] == last:
        final.update({k: v for k, v in row.items() if k.startswith('eval_') and _is_number(v)})
    for name in list(final):
      values = [row[name] for row in evals if _is_number(row.get(name))]
      final[f'best_{name}'] = min(values) if lower_is_better(name) else max(values)
    return final


def _is_number(value: Any) -> bool:
  return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _last_error(workdir: str) -> str:
  path = os.path.join(workdir, 'stderr.log')
  try:
    with open(path, 'rb') as f:
      lines = [l.strip() for l in f.read().decode(errors='replace').splitlines() if l.strip()]
  except OSError:
    return ''
  if lines and (lines[-1].startswith('error:') or 'Error' in lines[-1]
                or any(l.startswith('Traceback') for l in lines)):
    return lines[-1]
  return ''


def is_workdir(path: str) -> bool:
  return any(os.path.isfile(os.path.join(path, name)) for name in ('config.json', 'sweep.json'))


def find_workdirs(roots: Sequence[str]) -> list[str]:
  """The workdirs at or under each of `roots` (sorted per root; nested workdirs not searched)."""
  found = []
  for root in roots:
    if not os.path.isdir(root):
      raise FileNotFoundError(f'{root} is not a directory')
    if is_workdir(root):
      found.append(root)
      continue
    below = []
    for directory, subdirs, _ in os.walk(root):
      subdirs[:] = sorted(d for d in subdirs if d not in _SKIP_DIRS)
      if directory != root and is_workdir(directory):
        below.append(directory)
        subdirs[:] = []
    found.extend(sorted(below))
  return found


def read_run(workdir: str) -> RunRecord:
  """A workdir's config, metrics, run.json and state."""
  config = {}
  if os.path.isfile(os.path.join(workdir, 'config.json')):
    config = flatten(config_checks.read_workdir_config(workdir).to_dict())
  rows = (metrics_writer.read_metrics(workdir)
          if os.path.isfile(os.path.join(workdir, 'metrics.jsonl')) else [])
  info = run_info.read(workdir)
  record = RunRecord(workdir, config, rows, info, 'unfinished')
  if info is not None:
    finished = bool(info.get('finished'))
  else:  # a workdir from before run.json: finished when the last step was evaluated
    total = record.total_steps
    finished = bool(total) and any(row['step'] >= total and any(k.startswith('eval_') for k in row)
                                   for row in rows)
  if finished:
    record.state = 'finished'
  else:
    record.error = _last_error(workdir)
    if record.error or not config:
      record.state = 'failed'
      record.error = record.error or 'no config.json (the run never started training)'
  return record


def _sweep_overrides(workdir: str) -> dict[str, Any]:
  try:
    with open(os.path.join(workdir, 'sweep.json'), encoding='utf-8') as f:
      return dict(json.load(f).get('overrides', {}))
  except (OSError, ValueError, AttributeError, TypeError):
    return {}


@dataclasses.dataclass
class Group:
  """Runs whose configs differ only in GROUP_IGNORES."""
  key: tuple
  runs: list[RunRecord]
  label: dict[str, Any] = dataclasses.field(default_factory=dict)  # the distinguishing keys

  @property
  def finished(self) -> list[RunRecord]:
    return [r for r in self.runs if r.state == 'finished']

  def metric_names(self) -> list[str]:
    names = {name for run in self.finished for name in run.final_metrics()}
    return sorted(names, key=lambda n: (n.startswith('best_'), n))

  def stats(self, name: str) -> dict[str, float | None] | None:
    """mean, std (ddof=1; None for one run), min, max of `name` over the finished runs that
    have it; None if none has."""
    values = [run.final_metrics()[name] for run in self.finished if name in run.final_metrics()]
    return summarise(values)

  def wall_seconds(self) -> dict[str, float | None] | None:
    return summarise([float(r.info['wall_seconds']) for r in self.finished
                      if r.info and _is_number(r.info.get('wall_seconds'))])

  def steps(self) -> list[int]:
    return sorted({run.step for run in self.finished})

  def hardware(self) -> list[str]:
    return sorted({describe_hardware(r.info) for r in self.finished if r.info})

  def seeds(self) -> list[Any]:
    return [r.config.get('seed') for r in self.finished]


def summarise(values: Sequence[float]) -> dict[str, float | None] | None:
  """{'mean', 'std' (sample, ddof=1; None for one value), 'min', 'max', 'n'} of `values`."""
  if not values:
    return None
  n = len(values)
  mean = sum(values) / n
  std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else None
  return {'mean': mean, 'std': std, 'min': min(values), 'max': max(values), 'n': n}


def describe_hardware(info: dict[str, Any]) -> str:
  """'1x CPU (AMD EPYC, 2 cores)', '8x NVIDIA H100 80GB HBM3'."""
  text = f"{info.get('device_count', '?')}x {info.get('device_kind', '?')}"
  if info.get('platform') == 'cpu' and info.get('host_cpu'):
    cores = info.get('host_cores')
    text = f"{info.get('device_count', '?')}x CPU ({info['host_cpu']}"
    text += f', {cores} core{"s" if cores != 1 else ""})' if cores else ')'
  return text


def differing_keys(configs: Sequence[dict[str, Any]]) -> list[str]:
  """The keys (sorted) whose values are not the same in all of `configs` (absent counts as one)."""
  keys = sorted({k for c in configs for k in c})
  return [k for k in keys if len({c.get(k) for c in configs}) > 1]


def group_runs(records: Iterable[RunRecord]) -> list[Group]:
  """Groups of runs whose configs differ only in `seed`, in order of first appearance.

  Each group is labelled with the keys that tell it from the others: the EXPERIMENT_KEYS that
  differ between all groups, then the keys that differ between the groups of its own experiment
  (same task, dataset and model), those its config has. Groups of different experiments are not
  labelled with every setting their config files happen to differ in (widths, vocabularies,
  options left at None), which would bury what the table compares.
  """
  groups: dict[tuple, Group] = {}
  for record in records:
    if record.config:
      items = {k: v for k, v in record.config.items() if k not in GROUP_IGNORES}
    else:  # a run that failed before writing config.json: its sweep overrides name it
      items = {k: v for k, v in _sweep_overrides(record.workdir).items()
               if k not in GROUP_IGNORES} or {'workdir': record.workdir}
      items['<no config.json>'] = True
    key = tuple(sorted((k, json.dumps(v, sort_keys=True, default=str)) for k, v in items.items()))
    groups.setdefault(key, Group(key, [])).runs.append(record)
  result = list(groups.values())
  configs = [dict(g.key) for g in result if '<no config.json>' not in dict(g.key)]
  across = [k for k in differing_keys(configs) if k in EXPERIMENT_KEYS]
  families: dict[tuple, list[dict[str, Any]]] = {}
  for config in configs:
    families.setdefault(_experiment(config), []).append(config)
  within = {family: differing_keys(members) for family, members in families.items()}
  for group in result:
    config = dict(group.key)
    if '<no config.json>' in config:
      shown = [k for k in config if k != '<no config.json>']
    else:
      shown = across + [k for k in within[_experiment(config)] if k not in across]
    group.label = {k: json.loads(config[k]) for k in shown if k in config}
  return result


def _experiment(config: dict[str, str]) -> tuple:
  """The EXPERIMENT_KEYS values of a group key's config (its values are JSON text)."""
  return tuple(config.get(k, 'null') for k in EXPERIMENT_KEYS)


def label_text(group: Group) -> str:
  if not group.label:
    return '(all runs)'
  return ', '.join(f'{k}={v}' for k, v in group.label.items())


def _number(value: float) -> str:
  return f'{value:.4g}' if abs(value) < 1e5 else f'{value:.0f}'


def format_stats(stats: dict[str, float | None] | None) -> str:
  """'0.9861 ± 0.0039 (0.9833-0.9889)'; a single value alone."""
  if stats is None:
    return ''
  if stats['std'] is None:
    return _number(stats['mean'])
  return (f"{_number(stats['mean'])} ± {_number(stats['std'])} "
          f"({_number(stats['min'])}-{_number(stats['max'])})")


def _selected_metrics(groups: Sequence[Group], metric: str | None) -> list[str]:
  if metric:
    return [metric, f'best_{metric}']
  names = []
  for group in groups:
    names.extend(n for n in group.metric_names() if n not in names)
  return sorted(names, key=lambda n: (n.startswith('best_'), n))


def duration(seconds: float) -> str:
  minutes, secs = divmod(round(seconds), 60)
  hours, minutes = divmod(minutes, 60)
  if hours:
    return f'{hours} h {minutes:02d} min'
  return f'{minutes} min {secs:02d} s' if minutes else f'{secs} s'


def markdown(groups: Sequence[Group], metric: str | None = None) -> str:
  """The report as markdown: a table of groups, then the unfinished and failed runs."""
  shown = [g for g in groups if g.finished]
  names = [n for n in _selected_metrics(shown, metric) if any(g.stats(n) for g in shown)]
  lines = []
  if shown:
    header = ['group', 'n', *names, 'steps', 'wall time per run', 'hardware']
    lines += ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
    for group in shown:
      wall = group.wall_seconds()
      cells = [label_text(group), str(len(group.finished)),
               *(format_stats(group.stats(n)) for n in names),
               ', '.join(map(str, group.steps())),
               duration(wall['mean']) if wall else '', '; '.join(group.hardware())]
      lines.append('| ' + ' | '.join(cells) + ' |')
  else:
    lines.append('No finished runs.')
  for state, title in (('unfinished', 'Unfinished runs (not averaged)'),
                       ('failed', 'Failed runs (not averaged)')):
    runs = [r for g in groups for r in g.runs if r.state == state]
    if runs:
      lines += ['', f'{title}:']
      for run in runs:
        where = f'step {run.step}/{run.total_steps}' if run.total_steps else f'step {run.step}'
        lines.append(f'- {run.workdir}: {where}' + (f': {run.error}' if run.error else ''))
  return '\n'.join(lines) + '\n'


def to_json(groups: Sequence[Group]) -> list[dict[str, Any]]:
  """The groups as JSON-ready dicts (module docstring)."""
  result = []
  for group in groups:
    metrics = {}
    for name in group.metric_names():
      stats = group.stats(name)
      metrics[name] = {k: stats[k] for k in ('mean', 'std', 'min', 'max')}
    result.append({
        'group': group.label, 'workdirs': [r.workdir for r in group.finished],
        'n': len(group.finished), 'seeds': group.seeds(), 'metrics': metrics,
        'steps': group.steps(), 'wall_seconds': group.wall_seconds(),
        'hardware': group.hardware(),
        'unfinished': [r.workdir for r in group.runs if r.state == 'unfinished'],
        'failed': [{'workdir': r.workdir, 'error': r.error}
                   for r in group.runs if r.state == 'failed']})
  return result


def to_csv(groups: Sequence[Group], metric: str | None = None) -> str:
  """One row per group of finished runs: label, n, and mean/std/min/max of each metric."""
  shown = [g for g in groups if g.finished]
  names = _selected_metrics(shown, metric)
  out = io.StringIO()
  writer = csv.writer(out)
  writer.writerow(['group', 'n', *(f'{n}_{s}' for n in names for s in ('mean', 'std', 'min',
                                                                          'max')),
                   'steps', 'wall_seconds', 'hardware'])
  for group in shown:
    row = [label_text(group), len(group.finished)]
    for name in names:
      stats = group.stats(name) or {}
      row += ['' if stats.get(s) is None else stats[s] for s in ('mean', 'std', 'min', 'max')]
    wall = group.wall_seconds()
    row += [' '.join(map(str, group.steps())), '' if not wall else wall['mean'],
            '; '.join(group.hardware())]
    writer.writerow(row)
  return out.getvalue()


def default_metric(groups: Sequence[Group]) -> str | None:
  """eval_accuracy if logged, else the first final eval metric."""
  names = [n for g in groups for n in g.metric_names() if not n.startswith('best_')]
  if 'eval_accuracy' in names:
    return 'eval_accuracy'
  return names[0] if names else None


def plot(groups: Sequence[Group], metric: str, path: str) -> None:
  """Draws `metric` against step, per group: the mean over runs and the min-max band."""
  import matplotlib
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt
  figure, axes = plt.subplots(figsize=(7, 4.5))
  drawn = 0
  for group in groups:
    curves = [{row['step']: row[metric] for row in run.rows if _is_number(row.get(metric))}
              for run in group.finished]
    curves = [c for c in curves if c]
    if not curves:
      continue
    steps = sorted(set.intersection(*(set(c) for c in curves)))
    values = [[c[s] for c in curves] for s in steps]
    mean = [sum(v) / len(v) for v in values]
    line, = axes.plot(steps, mean, marker='o' if len(steps) < 20 else None,
                      label=f'{label_text(group)} (n={len(curves)})')
    axes.fill_between(steps, [min(v) for v in values], [max(v) for v in values],
                      color=line.get_color(), alpha=0.2)
    drawn += 1
  if not drawn:
    plt.close(figure)
    raise ValueError(f'no finished run logged metric {metric!r}; nothing to plot')
  axes.set_xlabel('step')
  axes.set_ylabel(metric)
  axes.grid(alpha=0.3)
  axes.legend(fontsize='small')
  figure.tight_layout()
  figure.savefig(path, dpi=120)
  plt.close(figure)


def collect(roots: Sequence[str]) -> list[Group]:
  """The groups of every workdir under `roots`."""
  workdirs = find_workdirs(roots)
  if not workdirs:
    raise FileNotFoundError(f'no workdirs (directories with config.json) under {", ".join(roots)}')
  return group_runs(read_run(w) for w in workdirs)


def main(argv: Sequence[str] | None = None) -> int:
  parser = cli.Parser(prog='python -m train.report', description=__doc__.split('\n\n')[0])
  parser.add_argument('roots', nargs='+', metavar='ROOT', help='Workdirs or directories of them.')
  parser.add_argument('--metric', default=None,
                      help='Only this final metric and its best value (default: every eval '
                           'metric; the plot: eval_accuracy or the first eval metric).')
  parser.add_argument('--format', choices=('markdown', 'csv', 'json'), default='markdown')
  parser.add_argument('--plot', default=None, metavar='PATH', help='Draw the metric curves here.')
  args = parser.parse_args(argv)

  def report():
    groups = collect(args.roots)
    if args.format == 'json':
      print(json.dumps(to_json(groups), indent=2))
    elif args.format == 'csv':
      sys.stdout.write(to_csv(groups, args.metric))
    else:
      sys.stdout.write(markdown(groups, args.metric))
    if args.plot:
      metric = args.metric or default_metric(groups)
      if metric is None:
        raise ValueError('no eval metric was logged; nothing to plot')
      plot(groups, metric, args.plot)
      print(f'Wrote {args.plot} ({metric}).', file=sys.stderr)

  return cli.run(report)


if __name__ == '__main__':
  sys.exit(main())
