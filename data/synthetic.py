"""Synthetic sequence-to-sequence tasks: multi-digit addition, sequence reversal, date formats.

Each task is a deterministic set of (source string, target string) problems drawn from
`data_seed`: `train_size + test_size` distinct problems (no source string twice), of which a
random `test_size` are held out for evaluation, so no test problem appears in training and both
splits follow the same distribution. Strings are
encoded character by character in a per-task vocabulary with PAD=0, BOS=1, EOS=2, padded to
fixed maximum lengths that depend on the task's settings only.

  addition  '123+45' -> '168': each operand has 1..num_digits digits (digit count uniform,
            then the value uniform); source length 2*num_digits+1, target num_digits+1.
  reversal  'hdbfa' -> 'afbdh': min_length..max_length symbols from the first alphabet_size
            lower-case letters.
  dates     'March 5, 2021', 'Mar 5, 2021', '5 March 2021', '05/03/21' (day/month/year),
            '05.03.2021', 'march 5 2021', 'Friday, March 5, 2021', '5-Mar-2021' -> '2021-03-05'
            for days from 1950-01-01 to 2049-12-31 (two-digit years 50-99 are 19xx).

Batches (`fetch`): `inputs` `[B, S]` int32 (source ids, PAD after the end), `input_lengths` `[B]`
int32, `decoder_inputs` `[B, T]` int32 (BOS + target, PAD), `targets` `[B, T]` int32 (target +
EOS, PAD), `target_mask` `[B, T]` bool (True on target and EOS), with T = max target length + 1.

Options: `AdditionOptions`, `ReversalOptions`, and `ProblemSetOptions` (dates).
"""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any, Callable, Sequence

import numpy as np

from data.pipeline import ArraySource, Dataset, DatasetFacts

PAD, BOS, EOS = 0, 1, 2
SPECIALS = ('<pad>', '<bos>', '<eos>')

Problem = tuple[str, str]


class Vocabulary:
  """Characters <-> ids; ids 0, 1, 2 are PAD, BOS, EOS, then `chars` in order."""

  def __init__(self, chars: str):
    if len(set(chars)) != len(chars) or any(ord(c) > 127 for c in chars):
      raise ValueError(f'vocabulary characters must be distinct ASCII, got {chars!r}')
    self.chars = chars
    self.tokens = SPECIALS + tuple(chars)
    self._lookup = np.full(128, -1, np.int32)
    self._lookup[[ord(c) for c in chars]] = np.arange(len(SPECIALS), len(self.tokens))

  def __len__(self) -> int:
    return len(self.tokens)

  def encode(self, strings: Sequence[str], length: int) -> tuple[np.ndarray, np.ndarray]:
    """Strings -> (ids `[n, length]` int32, PAD-padded; lengths `[n]` int32)."""
    lengths = np.array([len(s) for s in strings], np.int32)
    if len(strings) and lengths.max() > length:
      raise ValueError(f'a string is longer ({lengths.max()}) than the maximum length {length}')
    raw = np.array([s.encode('ascii') for s in strings], dtype=f'S{length}')
    codes = raw.view(np.uint8).reshape(len(strings), length)
    ids = np.where(codes == 0, PAD, self._lookup[codes])
    if (ids < 0).any():
      bad = sorted({chr(c) for c in codes[ids < 0]})
      raise ValueError(f'characters {bad} are not in the vocabulary {self.chars!r}')
    return ids.astype(np.int32), lengths

  def decode(self, ids: Sequence[int]) -> str:
    """Ids -> string, stopping at the first EOS and skipping PAD and BOS."""
    out = []
    for i in ids:
      i = int(i)
      if i == EOS:
        break
      if i >= len(SPECIALS):
        out.append(self.tokens[i])
    return ''.join(out)


@dataclasses.dataclass(frozen=True)
class Seq2SeqFacts(DatasetFacts):
  """A synthetic character-level sequence-to-sequence task (batches: module docstring).

  Attributes:
    vocab: the task's character `Vocabulary` (sources and targets share it).
    source_length: `S`, the padded source length.
    max_decode_length: `T`, decoder steps (the longest target + EOS).
    pad_id, bos_id, eos_id: the special token ids.
  """

  vocab: Vocabulary
  source_length: int
  max_decode_length: int
  pad_id: int = PAD
  bos_id: int = BOS
  eos_id: int = EOS

  def model_kwargs(self) -> dict[str, Any]:
    return {'vocab_size': len(self.vocab), 'max_decode_length': self.max_decode_length,
            'pad_id': self.pad_id, 'bos_id': self.bos_id, 'eos_id': self.eos_id}


@dataclasses.dataclass(frozen=True)
class ProblemSetOptions:
  """Options of every synthetic task (all of the `dates` pipeline's).

  Attributes:
    data_seed: seed of the problem set; the training `seed` does not change the problems.
    train_size: training problems.
    test_size: held-out problems.
  """

  data_seed: int = 0
  train_size: int = 50_000
  test_size: int = 2_000


@dataclasses.dataclass(frozen=True)
class AdditionOptions(ProblemSetOptions):
  """Options of the `addition` pipeline (and those of `ProblemSetOptions`).

  Attributes:
    num_digits: the most digits of an operand.
  """

  num_digits: int = 3


@dataclasses.dataclass(frozen=True)
class ReversalOptions(ProblemSetOptions):
  """Options of the `reversal` pipeline (and those of `ProblemSetOptions`).

  Attributes:
    min_length: the fewest symbols of a source string.
    max_length: the most symbols of a source string.
    alphabet_size: symbols are the first `alphabet_size` lower-case letters (1..26).
  """

  min_length: int = 1
  max_length: int = 10
  alphabet_size: int = 10


def encode_problems(problems: Sequence[Problem], vocab: Vocabulary, source_length: int,
                    target_length: int) -> dict[str, np.ndarray]:
  """Problems -> the batch arrays described in the module docstring (T = target_length + 1)."""
  sources, targets = zip(*problems) if problems else ((), ())
  inputs, input_lengths = vocab.encode(sources, source_length)
  target_ids, lengths = vocab.encode(targets, target_length)
  n = len(problems)
  with_eos = np.concatenate([target_ids, np.zeros((n, 1), np.int32)], axis=1)
  with_eos[np.arange(n), lengths] = EOS
  decoder_inputs = np.concatenate([np.full((n, 1), BOS, np.int32), target_ids], axis=1)
  target_mask = np.arange(target_length + 1)[None, :] <= lengths[:, None]
  return {'inputs': inputs, 'input_lengths': input_lengths, 'decoder_inputs': decoder_inputs,
          'targets': with_eos, 'target_mask': target_mask}


def unique_problems(sample: Callable[[np.random.Generator], Problem], count: int,
                    rng: np.random.Generator, what: str) -> list[Problem]:
  """`count` problems with distinct sources, drawn by `sample(rng)` in a reproducible order."""
  seen: dict[str, str] = {}
  tries = 0
  while len(seen) < count:
    tries += 1
    if tries > 20 * count + 1000:
      raise ValueError(f'cannot draw {count} distinct {what} problems (only {len(seen)} found); '
                       'lower train_size/test_size or enlarge the task')
    source, target = sample(rng)
    seen.setdefault(source, target)
  return list(seen.items())


# The tasks.


def _number(rng: np.random.Generator, max_digits: int) -> int:
  digits = int(rng.integers(1, max_digits + 1))
  low = 0 if digits == 1 else 10 ** (digits - 1)
  return int(rng.integers(low, 10 ** digits))


def addition_problem(rng: np.random.Generator, num_digits: int) -> Problem:
  a, b = _number(rng, num_digits), _number(rng, num_digits)
  return f'{a}+{b}', str(a + b)


def reversal_problem(rng: np.random.Generator, min_length: int, max_length: int,
                     alphabet: str) -> Problem:
  length = int(rng.integers(min_length, max_length + 1))
  source = ''.join(alphabet[i] for i in rng.integers(0, len(alphabet), size=length))
  return source, source[::-1]


MONTHS = ('January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September',
          'October', 'November', 'December')
DATE_FORMATS = (
    lambda d: f'{MONTHS[d.month - 1]} {d.day}, {d.year}',
    lambda d: f'{MONTHS[d.month - 1][:3]} {d.day}, {d.year}',
    lambda d: f'{d.day} {MONTHS[d.month - 1]} {d.year}',
    lambda d: f'{d.day:02d}/{d.month:02d}/{d.year % 100:02d}',
    lambda d: f'{d.day:02d}.{d.month:02d}.{d.year}',
    lambda d: f'{MONTHS[d.month - 1].lower()} {d.day} {d.year}',
    lambda d: f'{d:%A}, {MONTHS[d.month - 1]} {d.day}, {d.year}',
    lambda d: f'{d.day}-{MONTHS[d.month - 1][:3]}-{d.year}',
)
FIRST_DATE, LAST_DATE = datetime.date(1950, 1, 1), datetime.date(2049, 12, 31)
DATE_CHARS = '0123456789 ,./-' + ''.join(sorted(set(
    ''.join(MONTHS) + ''.join(MONTHS).lower() + 'MondayTuesdayWednesdayThursdayFridaySaturdaySunday'
) - set(' ')))
DATE_SOURCE_LENGTH = len('Wednesday, September 30, 2049')


def date_problem(rng: np.random.Generator) -> Problem:
  days = (LAST_DATE - FIRST_DATE).days + 1
  day = FIRST_DATE + datetime.timedelta(days=int(rng.integers(0, days)))
  return DATE_FORMATS[int(rng.integers(0, len(DATE_FORMATS)))](day), day.isoformat()


def _build(options: ProblemSetOptions, name: str, sample: Callable[[np.random.Generator], Problem],
           vocab: Vocabulary, source_length: int, target_length: int) -> Dataset:
  train_size, test_size = options.train_size, options.test_size
  rng = np.random.default_rng([options.data_seed, sum(map(ord, name))])
  problems = unique_problems(sample, train_size + test_size, rng, name)
  # Split at random, not by drawing order: early draws hold more of the small sub-populations
  # (e.g. the 100 one-digit sums) before they run out, so a test set of the first draws would
  # over-represent what training rarely sees.
  order = rng.permutation(len(problems))
  test = [problems[i] for i in order[:test_size]]
  train = [problems[i] for i in order[test_size:]]
  return Dataset(
      train=ArraySource(encode_problems(train, vocab, source_length, target_length)),
      eval=ArraySource(encode_problems(test, vocab, source_length, target_length)),
      facts=Seq2SeqFacts(vocab, source_length, target_length + 1))


def create_addition(options: AdditionOptions, *, data_dir: str | None = None,
                    batch_size: int | None = None) -> Dataset:
  """'123+45' -> '168' with operands of up to `num_digits` digits (`data_dir`, `batch_size`:
  not used)."""
  del data_dir, batch_size
  n = options.num_digits
  return _build(options, 'addition', lambda rng: addition_problem(rng, n),
                Vocabulary('0123456789+'), 2 * n + 1, n + 1)


def create_reversal(options: ReversalOptions, *, data_dir: str | None = None,
                    batch_size: int | None = None) -> Dataset:
  """A string of `min_length`..`max_length` letters -> the string reversed (`data_dir`,
  `batch_size`: not used)."""
  del data_dir, batch_size
  low, high, size = options.min_length, options.max_length, options.alphabet_size
  if not (1 <= low <= high and 1 <= size <= 26):
    raise ValueError('reversal needs 1 <= min_length <= max_length and 1 <= alphabet_size <= 26')
  alphabet = 'abcdefghijklmnopqrstuvwxyz'[:size]
  return _build(options, 'reversal', lambda rng: reversal_problem(rng, low, high, alphabet),
                Vocabulary(alphabet), high, high)


def create_dates(options: ProblemSetOptions, *, data_dir: str | None = None,
                 batch_size: int | None = None) -> Dataset:
  """Dates in eight human formats -> ISO 'YYYY-MM-DD' (`data_dir`, `batch_size`: not used)."""
  del data_dir, batch_size
  return _build(options, 'dates', date_problem, Vocabulary(DATE_CHARS), DATE_SOURCE_LENGTH, 10)
