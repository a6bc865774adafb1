"""Real time series for multi-step forecasting: windows cut from one series, split by date.

Series (the data ship inside PyPI packages, so nothing is downloaded at run time):

  msft      Microsoft daily closing price (US dollars, split-adjusted), 1986-03-13 to
            2017-11-10, 7,983 trading days: `pmdarima.datasets.load_msft()`.
  co2       Atmospheric CO2 at Mauna Loa (ppm), weekly, 1958-03-29 to 2001-12-29, 2,284 weeks:
            `statsmodels.api.datasets.co2`. Its 59 missing weeks (all before 1986) are filled by
            linear interpolation in time; the validation and test parts have none.
  sunspots  Yearly sunspot number, 1700-2008, 309 years: `statsmodels.api.datasets.sunspots`.

Chronological split, by date: the training part is every value dated before `train_end`, the
validation part those from `train_end` to before `validation_end`, the test part the rest (the
defaults per series are in `SERIES`). A window's *targets* all lie in one part; its inputs are the
`input_length` values before them and may reach back into the previous part, as a forecaster
running on that date would see them. So no target is ever seen in training outside its part.

Windows: the forecast origin t is the index of the last input value; inputs are x[t-L+1 .. t],
targets x[t+1 .. t+H] (L = `input_length`, H = `horizon`, several steps ahead). Training origins
advance by `window_stride`, evaluation origins by `eval_stride` (default 1: every origin).

Normalisation (`Scaler`), fitted on the training part only: optionally the log (`log_transform`,
on for prices, so that errors are relative and the scale of changes stays roughly constant over
30 years of growth), then z = (x - loc) / scale with loc the mean of the training part and scale
the standard deviation of its one-step changes. A typical one-step change is then about 1 in z
units, which is what a forecaster that predicts changes from the last value outputs.

Batches: `inputs` `[B, L, 1]` float32 (normalised), `targets` `[B, H]` float32 (normalised),
`target_values` `[B, H]` float32 and `last_value` `[B]` float32 (original units, for metrics and
the naive last-value baseline), and the scaler per example, `loc`, `scale` `[B]` float32 and `log`
`[B]` bool, so a task can map predictions back to original units without knowing the series.
Two more baselines come with each window, in original units, for the task to score beside the
naive last value: `drift_forecast` `[B, H]`, the last value moved by the training part's mean
one-step change per step (in log space for log series: a constant growth rate), and, for a
seasonal series, `seasonal_forecast` `[B, H]`: the value one season (`season_length` steps)
before each target plus the change over the last season, x[t+k-S] + (x[t] - x[t-S]) (origins
earlier than one season read index 0 instead; every evaluation window is later than that).

Options: `Options`.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import numpy as np

from data.pipeline import ArraySource, Dataset, DatasetFacts


@dataclasses.dataclass(frozen=True)
class Series:
  """One raw series: `dates` `[T]` datetime64[D], increasing; `values` `[T]` float64."""
  name: str
  dates: np.ndarray
  values: np.ndarray
  units: str


def _missing(package: str, series: str) -> Exception:
  from data import DatasetNotFoundError
  return DatasetNotFoundError(
      f"the '{series}' series ships inside the PyPI package {package}, which is not installed: "
      f'run `pip install {package}` (or `pip install -e .` in this repository).')


def load_msft() -> Series:
  try:
    from pmdarima import datasets
  except ImportError:
    raise _missing('pmdarima', 'msft') from None
  frame = datasets.load_msft()
  dates = np.asarray(frame['Date'], dtype='datetime64[D]')
  return Series('msft', dates, frame['Close'].to_numpy(np.float64), 'USD')


def load_co2() -> Series:
  try:
    from statsmodels.api import datasets
  except ImportError:
    raise _missing('statsmodels', 'co2') from None
  frame = datasets.co2.load_pandas().data
  dates = np.asarray(frame.index.values, dtype='datetime64[D]')
  values = frame['co2'].to_numpy(np.float64)
  known = np.isfinite(values)
  days = dates.astype(np.int64)
  values = np.interp(days, days[known], values[known])
  return Series('co2', dates, values, 'ppm')


def load_sunspots() -> Series:
  try:
    from statsmodels.api import datasets
  except ImportError:
    raise _missing('statsmodels', 'sunspots') from None
  frame = datasets.sunspots.load_pandas().data
  years = frame['YEAR'].to_numpy().astype(int)
  dates = np.array([f'{y:04d}-01-01' for y in years], dtype='datetime64[D]')
  return Series('sunspots', dates, frame['SUNACTIVITY'].to_numpy(np.float64), 'sunspots')


@dataclasses.dataclass(frozen=True)
class SeriesDefaults:
  load: Callable[[], Series]
  train_end: str
  validation_end: str
  log_transform: bool
  season_length: int = 0  # steps per season for the seasonal baseline; 0: none


# name -> loader and default split; the test part is everything from validation_end on.
SERIES = {
    'msft': SeriesDefaults(load_msft, '2011-01-01', '2014-01-01', True),  # 6,255 / 754 / 974 days
    # 1,658 / 313 / 313 weeks; seasons of 52 weeks.
    'co2': SeriesDefaults(load_co2, '1990-01-01', '1996-01-01', False, 52),
    # 250 / 30 / 29 years; the 11-year solar cycle.
    'sunspots': SeriesDefaults(load_sunspots, '1950-01-01', '1980-01-01', False, 11),
}


@dataclasses.dataclass(frozen=True)
class Scaler:
  """z = (f(x) - loc) / scale with f = log or identity; see the module docstring. `drift` is
  the mean one-step change of f(x) over the fitted (training) part."""
  loc: float
  scale: float
  log: bool = False
  drift: float = 0.0

  @classmethod
  def fit(cls, values: np.ndarray, log: bool = False) -> Scaler:
    """Fits on `values` `[T]` (the training part only), T >= 2."""
    values = np.asarray(values, np.float64)
    if values.size < 2:
      raise ValueError(f'cannot fit a scaler on {values.size} value(s); the training part is '
                       'too short (move train_end later)')
    if log and (values <= 0).any():
      raise ValueError('log_transform needs positive values; set '
                       '--config.data.log_transform=False')
    f = np.log(values) if log else values
    scale = float(np.std(np.diff(f)))
    if not np.isfinite(scale) or scale == 0:
      raise ValueError('the training part never changes; cannot normalise its changes')
    return cls(float(np.mean(f)), scale, bool(log), float(np.mean(np.diff(f))))

  def transform(self, values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, np.float64)
    return ((np.log(values) if self.log else values) - self.loc) / self.scale

  def inverse(self, z: np.ndarray) -> np.ndarray:
    f = np.asarray(z, np.float64) * self.scale + self.loc
    return np.exp(f) if self.log else f


@dataclasses.dataclass(frozen=True)
class ForecastingFacts(DatasetFacts):
  """A forecasting dataset: windows of one series (batches: module docstring).

  Attributes:
    series: the raw series the windows come from.
    scaler: the normalisation fitted on the training part.
    parts: part name ('train', 'validation', 'test') -> (first date, last date, values).
    eval_origin_dates: `[n]` datetime64[D], the forecast origin of each evaluation window.
    units: the series' units (e.g. 'USD').
    input_length: `L`, input values per window.
    horizon: `H`, steps forecast per window.
  """

  series: Series
  scaler: Scaler
  parts: dict[str, tuple[str, str, int]]
  eval_origin_dates: np.ndarray
  units: str
  input_length: int
  horizon: int

  def model_kwargs(self) -> dict[str, Any]:
    return {'horizon': self.horizon}


@dataclasses.dataclass(frozen=True)
class Options:
  """Options of the `timeseries` pipeline.

  Attributes:
    series: the series, a name of `SERIES` ('msft', 'co2', 'sunspots').
    input_length: `L`, input values per window.
    horizon: `H`, steps forecast per window.
    window_stride: steps between training forecast origins.
    eval_stride: steps between evaluation forecast origins.
    eval_split: the part evaluated, 'test' or 'validation' (for choosing settings).
    train_end: ISO date, the training part is every value before it (None: the series' default).
    validation_end: ISO date, the validation part ends before it (None: the series' default).
    log_transform: model the log of the values (None: the series' default; on for prices).
    season_length: steps per season of the seasonal baseline (None: the series' default; 0: no
      seasonal baseline).
  """

  series: str = 'msft'
  input_length: int = 60
  horizon: int = 5
  window_stride: int = 1
  eval_stride: int = 1
  eval_split: str = 'test'
  train_end: str | None = None
  validation_end: str | None = None
  log_transform: bool | None = None
  season_length: int | None = None


def split_bounds(dates: np.ndarray, train_end: str, validation_end: str) -> tuple[int, int]:
  """Indices (a, b): training part `[0, a)`, validation `[a, b)`, test `[b, T)`."""
  a = int(np.searchsorted(dates, np.datetime64(train_end, 'D')))
  b = int(np.searchsorted(dates, np.datetime64(validation_end, 'D')))
  if not 0 < a < b < len(dates):
    raise ValueError(f'the split {train_end} / {validation_end} leaves an empty part of a series '
                     f'dated {dates[0]} to {dates[-1]}; choose dates inside it, train_end first')
  return a, b


def window_origins(start: int, stop: int, input_length: int, horizon: int,
                   stride: int = 1) -> np.ndarray:
  """Forecast origins t whose targets `x[t+1 .. t+horizon]` lie in `[start, stop)` and whose
  inputs `x[t-input_length+1 .. t]` start at index 0 or later; every `stride`-th, from the first."""
  if input_length < 1 or horizon < 1 or stride < 1:
    raise ValueError('input_length, horizon and stride must be positive, got '
                     f'{input_length}, {horizon}, {stride}')
  first = max(start - 1, input_length - 1)
  return np.arange(first, stop - horizon, stride)


def make_windows(values: np.ndarray, scaler: Scaler, origins: np.ndarray, input_length: int,
                 horizon: int, season_length: int = 0) -> dict[str, np.ndarray]:
  """The batch arrays of the module docstring for each origin `[n]` of the series `values` `[T]`."""
  z = scaler.transform(values)
  inputs = origins[:, None] + np.arange(1 - input_length, 1)[None, :]
  steps = np.arange(1, horizon + 1)[None, :]
  outputs = origins[:, None] + steps
  n = len(origins)
  f_last = np.log(values[origins]) if scaler.log else values[origins]
  drift = f_last[:, None] + steps * scaler.drift
  baselines = {'drift_forecast': (np.exp(drift) if scaler.log else drift).astype(np.float32)}
  if season_length:
    if horizon > season_length:
      raise ValueError(f'the seasonal baseline needs horizon <= season_length ({horizon} > '
                       f'{season_length}); set --config.data.season_length=0 to drop it')
    back = lambda index: values[np.maximum(index, 0)]
    baselines['seasonal_forecast'] = (
        back(outputs - season_length)
        + (values[origins] - back(origins - season_length))[:, None]).astype(np.float32)
  return {
      **baselines,
      'inputs': z[inputs][..., None].astype(np.float32),
      'targets': z[outputs].astype(np.float32),
      'target_values': values[outputs].astype(np.float32),
      'last_value': values[origins].astype(np.float32),
      'loc': np.full((n,), scaler.loc, np.float32),
      'scale': np.full((n,), scaler.scale, np.float32),
      'log': np.full((n,), scaler.log, bool),
  }


def _or(value, default):
  return default if value is None else value


def create(options: Options, *, data_dir: str | None = None,
           batch_size: int | None = None) -> Dataset:
  """Train windows of the training part, eval windows of `eval_split` ('test' or 'validation').

  `data_dir` and `batch_size` are not used (the series ship inside PyPI packages).
  """
  del data_dir, batch_size
  name = options.series
  if name not in SERIES:
    raise ValueError(f"Unknown series '{name}'; use one of {', '.join(SERIES)}.")
  defaults = SERIES[name]
  series = defaults.load()
  input_length, horizon = options.input_length, options.horizon
  stride, eval_stride = options.window_stride, options.eval_stride
  eval_split = options.eval_split
  log = bool(_or(options.log_transform, defaults.log_transform))
  a, b = split_bounds(series.dates, _or(options.train_end, defaults.train_end),
                      _or(options.validation_end, defaults.validation_end))
  scaler = Scaler.fit(series.values[:a], log)
  parts = {'train': (0, a), 'validation': (a, b), 'test': (b, len(series.values))}
  if eval_split not in ('test', 'validation'):
    raise ValueError(f"eval_split must be 'test' or 'validation', got {eval_split!r}")
  train_origins = window_origins(*parts['train'], input_length, horizon, stride)
  eval_origins = window_origins(*parts[eval_split], input_length, horizon, eval_stride)
  for part, origins in (('train', train_origins), (eval_split, eval_origins)):
    if not len(origins):
      raise ValueError(f'the {part} part of {name} is too short for one window of '
                       f'input_length {input_length} + horizon {horizon}')
  season_length = _or(options.season_length, defaults.season_length)
  windows = lambda origins: make_windows(series.values, scaler, origins, input_length, horizon,
                                         season_length)
  return Dataset(
      train=ArraySource(windows(train_origins)),
      eval=ArraySource(windows(eval_origins)),
      facts=ForecastingFacts(
          series, scaler, {k: (str(series.dates[i]), str(series.dates[j - 1]), j - i)
                           for k, (i, j) in parts.items()},
          series.dates[eval_origins], series.units, input_length, horizon))
