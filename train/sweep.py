"""Runs a grid of training runs: `python -m train.sweep --config=CFG --workdir=ROOT --sweep=K=V1,V2`.

  python -m train.sweep --config=configs/default.py --workdir=workdirs/sweep \\
      --sweep=learning_rate=0.002,0.001 --sweep=seed=0,1,2 --parallel=2 --config.num_train_steps=500

runs the product of the `--sweep` values (without `--sweep`, the list of override dicts that the
config file's `get_sweep()` returns, as big_vision's configs define their sweeps; `get_sweep(variant)`
when `--config` names a variant). Each point is an ordinary training workdir `ROOT/NAME`, its name
made of its values (`learning_rate=0.002,seed=1`), trained by

  python -m train.main --config=CFG --workdir=ROOT/NAME --config.KEY=VALUE ...

as a subprocess, so a crash stays inside its run. Its output goes to `ROOT/NAME/stdout.log` and
`stderr.log`, the command to `ROOT/NAME/sweep.json`; train.main writes `config.json`, `metrics.jsonl`
and `run.json`. Other `--config.KEY=VALUE` flags apply to every point.

`--executor=local` (the default) runs `--parallel` runs at a time, each pinned to its own share of
this process's cores (`os.sched_setaffinity`, which also sizes XLA:CPU's thread pool) with thread
counts set to match (one-core shares: `XLA_FLAGS=--xla_cpu_multi_thread_eigen=false
intra_op_parallelism_threads=1`; OMP/MKL/OPENBLAS_NUM_THREADS always). `--executor=slurm` submits the
same commands through submitit to SLURM (`--partition`, `--time`, `--gpus_per_run`,
`--cpus_per_run`, `--parallel` as the job array's parallelism); `--executor=submitit_local` uses
submitit's local executor (all runs at once, for testing).

One line per run shows its state (queued, running, done, failed, skipped, stopped), step and latest
metric, redrawn in place on a terminal and printed on each change of state otherwise. A failed run
does not stop the others: the last line of its stderr is listed at the end and the exit code is 1.
Running the same sweep again skips the points that finished with the same command (their
`run.json` says finished) and resumes the others from their newest checkpoints. Ctrl-C or SIGTERM
stop the sweep: running runs get SIGTERM, save a checkpoint and exit; exit code 130 (143 for
SIGTERM). A second Ctrl-C ends the sweep at once.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.machinery
import importlib.util
import inspect
import itertools
import json
import os
import re
import signal
import subprocess
import sys
import time
from typing import Any, Iterable, Sequence, TextIO

from train import cli
from train import run_info

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXECUTORS = ('local', 'slurm', 'submitit_local')
STDOUT, STDERR, RECORD = 'stdout.log', 'stderr.log', 'sweep.json'
_MAX_NAME = 200


@dataclasses.dataclass(frozen=True)
class Point:
  """One run of a sweep: its directory name and its config overrides (KEY, VALUE as text)."""
  name: str
  overrides: tuple[tuple[str, str], ...]


def format_value(value: Any) -> str:
  """`value` as train.main's `--config.KEY=VALUE` reads it (tuples as `(1, 2)`)."""
  if isinstance(value, (list, tuple)):
    return '(' + ', '.join(format_value(v) for v in value) + (',)' if len(value) == 1 else ')')
  return str(value)


def point_name(overrides: Sequence[tuple[str, str]]) -> str:
  """`key=value,key=value`, filesystem-safe: in values, characters other than letters, digits
  and `._+-` become `_`; names longer than 200 characters are cut and end in a hash of the whole."""
  if not overrides:
    return 'base'
  name = ','.join(f'{key}={value}' for key, value in overrides)
  safe = ','.join(f'{key}=' + re.sub(r'[^\w.+-]', '_', value)
                  for key, value in overrides).lstrip('.')
  if len(safe) > _MAX_NAME:
    safe = safe[:_MAX_NAME - 9] + '-' + hashlib.sha1(name.encode()).hexdigest()[:8]
  return safe


def parse_sweep_flag(text: str) -> tuple[str, list[str]]:
  """`KEY=V1,V2,...` -> (KEY, [V1, V2, ...]); ValueError (a usage error) if malformed."""
  key, sep, values = text.partition('=')
  key = key.strip().removeprefix('config.')
  if not sep or not re.fullmatch(r'[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*', key):
    raise cli.UsageError(f'--sweep={text}: expected KEY=V1,V2,... (e.g. --sweep=seed=0,1,2)')
  items = [v.strip() for v in values.split(',')]
  if not values.strip() or any(not v for v in items):
    raise cli.UsageError(f'--sweep={text}: empty value; give KEY=V1,V2,...')
  if len(set(items)) != len(items):
    raise cli.UsageError(f'--sweep={text}: a value is repeated')
  return key, items


def product_points(specs: Sequence[tuple[str, Sequence[str]]]) -> list[Point]:
  """The product of the values, the first key varying slowest."""
  keys = [key for key, _ in specs]
  if len(set(keys)) != len(keys):
    raise cli.UsageError(f'--sweep names a key twice: {", ".join(keys)}')
  points = []
  for values in itertools.product(*(values for _, values in specs)):
    overrides = tuple(zip(keys, values))
    points.append(Point(point_name(overrides), overrides))
  _check_unique(points, '--sweep')
  return points


def _check_unique(points: Sequence[Point], source: str) -> None:
  names = [p.name for p in points]
  repeated = sorted({n for n in names if names.count(n) > 1})
  if repeated:
    raise ValueError(f'{source}: points with the same name: {", ".join(repeated)}')


def dict_points(sweep: Iterable[dict[str, Any]], source: str) -> list[Point]:
  """Points from a list of override dicts (a config's `get_sweep()`); their names must differ."""
  points = []
  for i, item in enumerate(sweep):
    if not isinstance(item, dict) or not all(isinstance(k, str) for k in item):
      raise ValueError(f'{source}: item {i} is not a dict of config overrides: {item!r}')
    overrides = tuple((key, format_value(value)) for key, value in item.items())
    points.append(Point(point_name(overrides), overrides))
  _check_unique(points, source)
  return points


def config_sweep(spec: str) -> list[Point] | None:
  """The points of `get_sweep([variant])` in the config file `PATH[:variant]`; None if it has
  no `get_sweep`. A variant is passed only to a `get_sweep` that takes an argument."""
  path, has_variant, variant = spec.partition(':')
  if not os.path.isfile(path):
    raise cli.UsageError(f'config file {path} not found')
  try:
    loader = importlib.machinery.SourceFileLoader('_sweep_config', path)
    module = importlib.util.module_from_spec(importlib.util.spec_from_loader(loader.name, loader))
    loader.exec_module(module)
  except Exception as error:  # a config file can raise anything while it loads
    raise ValueError(f'cannot load {path}: {type(error).__name__}: {cli.one_line(error)}') from None
  get_sweep = getattr(module, 'get_sweep', None)
  if not callable(get_sweep):
    return None
  takes_variant = bool(inspect.signature(get_sweep).parameters)
  try:
    sweep = get_sweep(variant) if (has_variant and takes_variant) else get_sweep()
  except Exception as error:  # the config's own code
    raise ValueError(f'{path}: get_sweep() failed: {type(error).__name__}: '
                     f'{cli.one_line(error)}') from None
  return dict_points(sweep, f'{path}: get_sweep()')


def command(config: str, workdir: str, point: Point, extra: Sequence[str] = ()) -> list[str]:
  """The train.main command line of `point` (without the interpreter)."""
  return (['-m', 'train.main', f'--config={config}', f'--workdir={workdir}', *extra]
          + [f'--config.{key}={value}' for key, value in point.overrides])


def core_shares(cores: Sequence[int], parallel: int) -> list[list[int]]:
  """`cores` dealt out to `parallel` runs: disjoint equal shares, or one core each in turn
  when there are more runs than cores."""
  cores = sorted(cores)
  if parallel >= len(cores):
    return [[cores[i % len(cores)]] for i in range(parallel)]
  size = len(cores) // parallel
  return [cores[i * size:(i + 1) * size] for i in range(parallel)]


def thread_env(threads: int, environ: dict[str, str] | None = None) -> dict[str, str]:
  """The environment of a run limited to `threads` threads (XLA:CPU, OpenMP, MKL, OpenBLAS)."""
  env = dict(os.environ if environ is None else environ)
  for name in ('OMP_NUM_THREADS', 'MKL_NUM_THREADS', 'OPENBLAS_NUM_THREADS'):
    env[name] = str(threads)
  if threads == 1:
    flags = env.get('XLA_FLAGS', '')
    extra = '--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1'
    env['XLA_FLAGS'] = f'{flags} {extra}'.strip() if 'multi_thread_eigen' not in flags else flags
  return env


def child_env(environ: dict[str, str] | None = None) -> dict[str, str]:
  """`environ` with this repository on PYTHONPATH, so `-m train.main` works from any directory."""
  env = dict(os.environ if environ is None else environ)
  paths = [p for p in env.get('PYTHONPATH', '').split(os.pathsep) if p]
  if REPO not in paths:
    env['PYTHONPATH'] = os.pathsep.join([REPO, *paths])
  return env


def last_line(path: str) -> str:
  """The last non-empty line of a text file ('' if none)."""
  try:
    with open(path, 'rb') as f:
      f.seek(0, os.SEEK_END)
      f.seek(max(0, f.tell() - 8192))
      lines = [l.strip() for l in f.read().decode(errors='replace').splitlines() if l.strip()]
  except OSError:
    return ''
  return lines[-1] if lines else ''


def is_finished(workdir: str, argv: Sequence[str]) -> bool:
  """Whether `workdir` holds a finished run trained by the command `argv`.

  The commands are compared without their `--workdir`: a sweep root reached by another path
  (moved, renamed, through a link) holds the same runs.
  """
  info = run_info.read(workdir)
  if not (info and info.get('finished')):
    return False
  try:
    with open(os.path.join(workdir, RECORD), encoding='utf-8') as f:
      recorded = json.load(f).get('command')
  except (OSError, ValueError, AttributeError):
    return False
  return isinstance(recorded, list) and _without_workdir(recorded) == _without_workdir(argv)


def _without_workdir(argv: Sequence[str]) -> list[str]:
  """`argv` without its `--workdir=PATH` (or `--workdir PATH`) argument."""
  kept, skip = [], False
  for arg in argv:
    if skip:
      skip = False
    elif arg == '--workdir':
      skip = True
    elif not arg.startswith('--workdir='):
      kept.append(arg)
  return kept


_STEP = re.compile(r'step (\d+)/(\d+)')
_METRIC = re.compile(r'(eval_\w+|train_loss) (-?[\d.]+(?:e-?\d+)?|nan|inf)')


class Run:
  """One point's run: its command, workdir, state and latest progress."""

  def __init__(self, point: Point, root: str, argv: list[str], label: str | None = None):
    self.point, self.argv = point, argv
    self.label = point.name if label is None else label  # what the progress lines call it
    self.workdir = os.path.join(root, point.name)
    self.state = 'queued'
    self.returncode: int | None = None
    self.error = ''
    self.step = self.total = None
    self.metric = ''

  def prepare(self) -> None:
    """Creates the workdir and records the command (before the run starts)."""
    os.makedirs(self.workdir, exist_ok=True)
    with open(os.path.join(self.workdir, RECORD), 'w', encoding='utf-8') as f:
      json.dump({'command': self.argv, 'overrides': dict(self.point.overrides)}, f, indent=2)

  def refresh(self) -> None:
    """Reads step/total and the latest metric from the run's stdout log."""
    try:
      with open(os.path.join(self.workdir, STDOUT), 'rb') as f:
        f.seek(0, os.SEEK_END)
        f.seek(max(0, f.tell() - 4096))
        text = f.read().decode(errors='replace')
    except OSError:
      return
    steps = _STEP.findall(text)
    if steps:
      self.step, self.total = int(steps[-1][0]), int(steps[-1][1])
    for line in reversed(text.splitlines()):
      found = _METRIC.findall(line)
      if found:
        evals = [m for m in found if m[0].startswith('eval_')]
        name, value = (evals or found)[0]
        self.metric = f'{name} {value}'
        break

  def finish(self, returncode: int) -> None:
    self.returncode = returncode
    self.refresh()
    info = run_info.read(self.workdir) or {}
    if info.get('finished'):  # trained, evaluated and saved: a signal while it exited is moot
      self.state = 'done'
    elif returncode == 0:
      self.state = 'stopped'
    else:
      self.state = 'failed'
      self.error = (last_line(os.path.join(self.workdir, STDERR))
                    or f'exit code {returncode}, no output on stderr')

  def line(self) -> str:
    parts = [self.label, self.state]
    if self.step is not None:
      parts.append(f'step {self.step}/{self.total}')
    if self.metric:
      parts.append(self.metric)
    return '  '.join(parts)


class Display:
  """One line per run: redrawn in place on a terminal, else one line per change of state."""

  def __init__(self, runs: list[Run], stream: TextIO = sys.stdout):
    self.runs, self.stream = runs, stream
    self.tty = stream.isatty()
    self._drawn = 0
    self._states = {id(run): None for run in runs}

  def update(self) -> None:
    if self.tty:
      width = 200
      if self._drawn:
        self.stream.write(f'\x1b[{self._drawn}F')
      for run in self.runs:
        self.stream.write('\x1b[2K' + run.line()[:width] + '\n')
      self._drawn = len(self.runs)
    else:
      for i, run in enumerate(self.runs):
        if self._states[id(run)] != run.state:
          self._states[id(run)] = run.state
          self.stream.write(f'[{i + 1}/{len(self.runs)}] {run.line()}\n')
    self.stream.flush()


class Stop(Exception):
  """SIGTERM or Ctrl-C asked the sweep to stop."""

  def __init__(self, signum: int):
    super().__init__(signal.Signals(signum).name)
    self.signum = signum


class LocalExecutor:
  """Runs at most `parallel` subprocesses at a time, each on its own share of the cores."""

  def __init__(self, parallel: int, cores: Sequence[int] | None = None):
    self.parallel = parallel
    cores = sorted(os.sched_getaffinity(0)) if cores is None else list(cores)
    self.shares = core_shares(cores, parallel)
    self.limit_threads = parallel > 1

  def run(self, runs: list[Run], display: Display, poll_s: float = 0.5) -> None:
    queue = [run for run in runs if run.state == 'queued']
    running: dict[int, tuple[Run, subprocess.Popen, Any]] = {}
    free = list(range(self.parallel))
    try:
      while queue or running:
        while queue and free:
          slot = free.pop(0)
          run = queue.pop(0)
          running[slot] = (run, *self._start(run, self.shares[slot]))
        display.update()
        time.sleep(poll_s)
        for slot, (run, process, files) in list(running.items()):
          run.refresh()
          if process.poll() is not None:
            for f in files:
              f.close()
            run.finish(process.returncode)
            del running[slot]
            free.append(slot)
        display.update()
    except Stop:
      for run, process, _ in running.values():
        if process.poll() is None:
          process.send_signal(signal.SIGTERM)  # train.main checkpoints and exits
      for run, process, files in running.values():
        process.wait()
        for f in files:
          f.close()
        run.finish(process.returncode)
      display.update()
      raise

  def _start(self, run: Run, cores: list[int]):
    run.prepare()
    env = child_env(thread_env(len(cores)) if self.limit_threads else None)
    stdout = open(os.path.join(run.workdir, STDOUT), 'ab')
    stderr = open(os.path.join(run.workdir, STDERR), 'wb')

    def pin():  # in the child, before exec
      if self.limit_threads:
        os.sched_setaffinity(0, cores)

    process = subprocess.Popen([sys.executable, *run.argv], stdout=stdout, stderr=stderr,
                               stdin=subprocess.DEVNULL, env=env, preexec_fn=pin,
                               start_new_session=True)  # our signals, not the terminal's
    run.state = 'running'
    return process, (stdout, stderr)


class Job:
  """What submitit runs on a cluster node: the run's train.main, output to its log files.

  SIGTERM (a cancelled or preempted job) is passed on to train.main, which checkpoints.
  """

  def __init__(self, argv: list[str], workdir: str, threads: int | None):
    self.argv, self.workdir, self.threads = argv, workdir, threads

  def __call__(self) -> int:
    env = child_env(thread_env(self.threads) if self.threads else None)
    with open(os.path.join(self.workdir, STDOUT), 'ab') as out, \
         open(os.path.join(self.workdir, STDERR), 'wb') as err:
      process = subprocess.Popen([sys.executable, *self.argv], stdout=out, stderr=err,
                                 stdin=subprocess.DEVNULL, env=env)
      previous = signal.signal(signal.SIGTERM, lambda *_: process.send_signal(signal.SIGTERM))
      try:
        return process.wait()
      finally:
        signal.signal(signal.SIGTERM, previous)


class SubmititExecutor:
  """Submits every run as a submitit job (SLURM, or submitit's local executor for testing)."""

  def __init__(self, folder: str, cluster: str, parallel: int, partition: str | None = None,
               time_min: int = 60, gpus_per_run: int = 0, cpus_per_run: int | None = None):
    try:
      import submitit
    except ImportError:
      raise RuntimeError("--executor=slurm needs submitit: pip install -e '.[sweep]'") from None
    try:
      self.executor = submitit.AutoExecutor(folder=folder, cluster=cluster)
    except RuntimeError as error:
      raise RuntimeError(f'--executor={"slurm" if cluster == "slurm" else "submitit_local"}: '
                         f'{cli.one_line(error)} (run it where SLURM is, or use '
                         f'--executor=local)') from None
    parameters: dict[str, Any] = {'timeout_min': time_min}
    if cluster == 'slurm':
      parameters.update(slurm_array_parallelism=parallel, gpus_per_node=gpus_per_run,
                        tasks_per_node=1)
      if partition:
        parameters['slurm_partition'] = partition
      if cpus_per_run:
        parameters['cpus_per_task'] = cpus_per_run
    self.executor.update_parameters(**parameters)
    self.threads = cpus_per_run

  def run(self, runs: list[Run], display: Display, poll_s: float = 1.0) -> None:
    todo = [run for run in runs if run.state == 'queued']
    for run in todo:
      run.prepare()
    os.environ.update(child_env())  # the job processes import train.sweep
    with self.executor.batch():
      jobs = [self.executor.submit(Job(run.argv, run.workdir, self.threads)) for run in todo]
    pending = dict(zip(todo, jobs))
    try:
      while pending:
        display.update()
        time.sleep(poll_s)
        for run, job in list(pending.items()):
          run.refresh()
          if job.done():
            try:
              code = job.result()
            except Exception as error:  # submitit's own failure (the job died, was killed)
              run.finish(1)
              run.error = run.error or cli.one_line(error)
            else:
              run.finish(code)
            del pending[run]
          elif run.state == 'queued' and os.path.exists(os.path.join(run.workdir, STDERR)):
            run.state = 'running'
        display.update()
    except Stop:
      for run, job in pending.items():
        job.cancel(check=False)
        run.state = 'stopped'
      display.update()
      raise


def build_runs(config: str, root: str, points: Sequence[Point], extra: Sequence[str],
               prefix: str = '') -> list[Run]:
  """A Run per point, labelled `prefix` + its name; finished ones are marked 'skipped'."""
  runs = []
  for point in points:
    workdir = os.path.join(root, point.name)
    run = Run(point, root, command(config, workdir, point, extra), prefix + point.name)
    if is_finished(run.workdir, run.argv):
      run.state = 'skipped'
      run.refresh()
    runs.append(run)
  return runs


def run_sweep(runs: list[Run], executor, stream: TextIO = sys.stdout) -> list[Run]:
  """Runs the queued `runs` with `executor`; SIGTERM and Ctrl-C raise Stop once they are
  stopped. Returns `runs`."""
  display = Display(runs, stream)

  def on_signal(signum, frame):
    raise Stop(signum)

  previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
  for s in previous:
    signal.signal(s, on_signal)
  try:
    executor.run(runs, display)
  finally:
    for s, handler in previous.items():
      signal.signal(s, handler)
  return runs


def summary(runs: Sequence[Run]) -> tuple[str, int]:
  """The sweep's closing lines and its exit code (1 if a run failed)."""
  counts = {state: sum(r.state == state for r in runs)
            for state in ('done', 'skipped', 'failed', 'stopped', 'queued')}
  text = ', '.join(f'{n} {state}' for state, n in counts.items() if n)
  lines = [f'Sweep: {len(runs)} runs: {text}.' if runs else 'Sweep: nothing to run.']
  failed = [r for r in runs if r.state == 'failed']
  for run in failed:
    lines.append(f'failed: {run.label}: {run.error} (log: {run.workdir}/{STDERR})')
  return '\n'.join(lines), 1 if failed else 0


def split_config_overrides(argv: Sequence[str]) -> tuple[list[str], list[str]]:
  """(the sweep's own arguments, the `--config.KEY=VALUE` flags for every run)."""
  own, extra = [], []
  for arg in argv:
    (extra if arg.startswith('--config.') else own).append(arg)
  for arg in extra:
    if '=' not in arg:
      raise cli.UsageError(f'{arg}: give config overrides as --config.KEY=VALUE')
  return own, extra


def add_executor_flags(parser) -> None:
  """The flags of how runs are executed, shared with train.reproduce."""
  parser.add_argument('--parallel', type=int, default=1,
                      help='Runs at a time (local: the cores are shared out between them; slurm: '
                           'the job array parallelism).')
  parser.add_argument('--executor', choices=EXECUTORS, default='local')
  parser.add_argument('--partition', default=None, help='SLURM partition.')
  parser.add_argument('--time', type=int, default=60, help='Minutes per run (submitit timeout).')
  parser.add_argument('--gpus_per_run', type=int, default=0, help='GPUs per run (SLURM).')
  parser.add_argument('--cpus_per_run', type=int, default=None,
                      help='CPUs per run (SLURM; threads per run on the node).')


def make_executor(args, root: str):
  if args.parallel < 1:
    raise cli.UsageError(f'--parallel must be at least 1, got {args.parallel}')
  if args.executor == 'local':
    return LocalExecutor(args.parallel)
  cluster = 'slurm' if args.executor == 'slurm' else 'local'
  return SubmititExecutor(os.path.join(root, '.submitit'), cluster, args.parallel,
                          args.partition, args.time, args.gpus_per_run, args.cpus_per_run)


def main(argv: Sequence[str] | None = None) -> int:
  own, extra = split_config_overrides(sys.argv[1:] if argv is None else argv)
  parser = cli.Parser(prog='python -m train.sweep', description=__doc__.split('\n\n')[0])
  parser.add_argument('--config', required=True, help='configs/NAME.py[:variant]')
  parser.add_argument('--workdir', required=True, help='The sweep root: one workdir per point.')
  parser.add_argument('--sweep', action='append', default=[], metavar='KEY=V1,V2,...',
                      help='Values of one config key; several --sweep flags give their product.')
  add_executor_flags(parser)
  parser.add_argument('--dry_run', action='store_true', help='List the commands and stop.')
  args = parser.parse_args(own)
  code = 0

  def sweep():
    nonlocal code
    if args.sweep:
      points = product_points([parse_sweep_flag(s) for s in args.sweep])
    else:
      points = config_sweep(args.config) or [Point('base', ())]
    runs = build_runs(args.config, args.workdir, points, extra)
    if args.dry_run:
      for run in runs:
        print(f'{run.state}: python {" ".join(run.argv)}')
      return
    executor = make_executor(args, args.workdir)
    try:
      run_sweep(runs, executor)
    except Stop as stop:
      text, _ = summary(runs)
      print(f'{text}\n{stop} received: stopped; run the same command to resume.', flush=True)
      code = 130 if stop.signum == signal.SIGINT else 143
      return
    text, code = summary(runs)
    print(text, flush=True)

  status = cli.run(sweep)
  return status or code


if __name__ == '__main__':
  sys.exit(main())
