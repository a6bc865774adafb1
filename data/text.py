"""Text helpers shared by the text pipelines: tokenisation, vocabularies, padding, LM streams.

Classification (sequence -> label) datasets become fixed-shape arrays:

  tokens  int32 `[n, max_length]`  token ids, padded with `PAD_ID` = 0 at the end
  length  int32 `[n]`              true lengths (>= 1; a text with no token becomes `[<unk>]`)
  label   int32 `[n]`

Every batch has the same shape because the trainer compiles its steps ahead of time for one batch
shape. So "bucketing" here means choosing that one padded length: `choose_max_length` returns the
smallest multiple of 8 covering a given fraction of the training texts (longer texts are cut at
the end). Masking by `length` keeps the padding out of the model's result.

Language-model datasets are one token stream per split. Training uses truncated backpropagation
through time (TBPTT), as Zaremba et al. (2014) and Karpathy's char-rnn do: the training stream is
cut into `batch_size` contiguous rows, and training step `s` reads window `s mod W` of every row
(`W` windows of `seq_len` tokens per row make an epoch), so row `r` of step `s + 1` continues row
`r` of step `s`. The model carries its recurrent state from one step to the next (flax variable
collection 'carry', kept by the trainer in `state.model_state`, so it is checkpointed) and zeroes
it where the batch's `reset` flag is set: at window 0, the start of every epoch.

How the batch of a step is found: the trainer's `pipeline.train_batches` asks a source for
`fetch(indices, rng)` with a *random* permutation slice as `indices` and
`rng = np.random.default_rng([seed, step, 1 + process_index])`. `StreamSource` ignores which
indices it gets (only how many) and reads `step` and `process_index` back from the rng's seed
(`rng.bit_generator.seed_seq.entropy`), so the batch of step `s` is a pure function of `s`, a
resumed run reads exactly the windows an uninterrupted one would, and each process gets its own
contiguous block of rows. Called with `rng=None` (the trainer's shape probe) it is an ordinary
random-access source over examples `i = window * batch_size + row`.

Evaluation covers the held-out stream exactly once (`eval_rows`): the stream's `M` predictions
(input token t, target token t + 1) are cut into rows of `row_length` scored tokens; each row is
read from a zero state, preceded by the `context` tokens before it in the stream, which are fed
but not scored (weight 0). So every token is scored exactly once, with at least `context` tokens
of history, and the model needs no state across evaluation batches.
"""

from __future__ import annotations

import collections
import dataclasses
import math
import re
import unicodedata
from typing import Any, Iterable, Sequence

import numpy as np

from data.pipeline import ArraySource, Batch, Dataset, DatasetFacts, read_records

PAD = '<pad>'
UNK = '<unk>'
EOS = '<eos>'
PAD_ID = 0

# Typographic characters mapped to their ASCII forms before tokenising.
_ASCII = str.maketrans({
    '\u2018': "'", '\u2019': "'", '\u201b': "'", '\u2032': "'", '`': "'",
    '\u201c': '"', '\u201d': '"', '\u201e': '"', '\u2033': '"',
    '\u2013': '-', '\u2014': '-', '\u2212': '-', '\u00a0': ' ',
})
# A word is letters/digits with inner apostrophes ("don't", "o'er"); any other visible character
# is a token of its own ("179-minute" -> '179', '-', 'minute').
_TOKEN = re.compile(r"[^\W_]+(?:'[^\W_]+)*|\S")


def normalize(text: str, lowercase: bool = True) -> str:
  """Unicode NFKC, typographic quotes and dashes as ASCII ('…' becomes '...'), lower-cased."""
  text = unicodedata.normalize('NFKC', text).translate(_ASCII)
  return text.lower() if lowercase else text


def tokenize(text: str, lowercase: bool = True) -> list[str]:
  """Splits `text` into words and single punctuation marks, e.g.

  `tokenize("It's a 179-minute “epic”!")` == `["it's", 'a', '179', '-', 'minute', '"', 'epic',
  '"', '!']`.
  """
  return _TOKEN.findall(normalize(text, lowercase))


@dataclasses.dataclass(frozen=True)
class Vocabulary:
  """A fixed token <-> id mapping. Unknown tokens map to `UNK`'s id.

  Attributes:
    tokens: the tokens in id order; `tokens[i]` has id `i`. Must contain `UNK`.
  """

  tokens: tuple[str, ...]

  def __post_init__(self):
    if len(set(self.tokens)) != len(self.tokens):
      raise ValueError('Vocabulary tokens must be distinct.')
    if UNK not in self.tokens:
      raise ValueError(f'Vocabulary must contain {UNK!r}.')
    object.__setattr__(self, '_ids', {t: i for i, t in enumerate(self.tokens)})

  @classmethod
  def build(cls, texts: Iterable[Sequence[str]], min_count: int = 1, max_size: int | None = None,
            specials: Sequence[str] = (PAD, UNK)) -> 'Vocabulary':
    """The `specials` (ids 0, 1, ...), then tokens by decreasing count, ties alphabetically.

    Args:
      texts: tokenised texts (lists of tokens, or strings for characters), training data only.
      min_count: keep tokens seen at least this often.
      max_size: at most this many ids in all, specials included (None: no limit).
      specials: reserved tokens placed first; must include `UNK`.
    """
    counts = collections.Counter()
    for text in texts:
      counts.update(text)
    for special in specials:
      counts.pop(special, None)
    ranked = sorted((t for t, c in counts.items() if c >= min_count), key=lambda t: (-counts[t], t))
    if max_size is not None:
      ranked = ranked[:max(max_size - len(specials), 0)]
    return cls(tuple(specials) + tuple(ranked))

  def __len__(self) -> int:
    return len(self.tokens)

  @property
  def unk_id(self) -> int:
    return self._ids[UNK]

  def id(self, token: str) -> int:
    return self._ids.get(token, self._ids[UNK])

  def encode(self, tokens: Sequence[str]) -> np.ndarray:
    """Token ids, int32 `[len(tokens)]`."""
    ids, unk = self._ids, self._ids[UNK]
    return np.fromiter((ids.get(t, unk) for t in tokens), np.int32, count=len(tokens))

  def decode(self, ids: Iterable[int]) -> list[str]:
    return [self.tokens[int(i)] for i in ids]


def pad(sequences: Sequence[np.ndarray], max_length: int,
        pad_id: int = PAD_ID) -> tuple[np.ndarray, np.ndarray]:
  """Right-pads (or cuts at the end) id sequences to `max_length`.

  Returns:
    (ids int32 `[n, max_length]`, lengths int32 `[n]`, each `min(len(sequence), max_length)`).
  """
  ids = np.full((len(sequences), max_length), pad_id, np.int32)
  lengths = np.zeros((len(sequences),), np.int32)
  for i, sequence in enumerate(sequences):
    n = min(len(sequence), max_length)
    ids[i, :n] = sequence[:n]
    lengths[i] = n
  return ids, lengths


def choose_max_length(lengths: Sequence[int], coverage: float = 1.0, multiple: int = 8,
                      cap: int | None = None) -> int:
  """The smallest multiple of `multiple` that is >= a `coverage` fraction of `lengths`.

  E.g. `coverage=0.99` pads every batch to the 99th percentile (rounded up), cutting the longest
  1% of texts; `cap` bounds the result (long documents such as IMDB reviews).
  """
  lengths = np.sort(np.asarray(lengths))
  if not len(lengths):
    raise ValueError('choose_max_length needs at least one length.')
  index = min(max(int(math.ceil(coverage * len(lengths))) - 1, 0), len(lengths) - 1)
  length = max(int(lengths[index]), 1)
  length = -(-length // multiple) * multiple
  return min(length, cap) if cap else length


def as_str(value) -> str:
  """A tfds `Text` value (bytes without TensorFlow, str elsewhere) as str."""
  return value.decode('utf-8') if isinstance(value, bytes) else str(value)


def read_examples(source, chunk: int = 4096) -> list[dict]:
  """Every example of a random-access tfds source (`tfds.data_source`), in order."""
  examples = []
  for start in range(0, len(source), chunk):
    keys = list(range(start, min(start + chunk, len(source))))
    examples.extend(read_records(source, keys))  # one batched read
  return examples


# ---------------------------------------------------------------------------------------------
# Sequence classification.


@dataclasses.dataclass(frozen=True)
class TextClassificationFacts(DatasetFacts):
  """A text classification dataset (batches: `tokens`, `length`, `label`).

  Attributes:
    num_classes: labels are `0 .. num_classes - 1`.
    vocab: the vocabulary of the token ids (built on the training texts).
    max_length: the padded length of every batch.
    class_names: the name of each label, in label order (may be empty).
  """

  num_classes: int
  vocab: Vocabulary
  max_length: int
  class_names: tuple[str, ...] = ()

  def model_kwargs(self) -> dict[str, Any]:
    return {'vocab_size': len(self.vocab), 'num_classes': self.num_classes}


@dataclasses.dataclass(frozen=True)
class ClassificationOptions:
  """Options of every text classification pipeline (each adds where its texts come from).

  Attributes:
    lowercase: lower-case before tokenising.
    vocab_min_count: keep words seen at least this often in training.
    vocab_size: at most this many ids including `<pad>` and `<unk>` (None: every kept word).
    max_length: padded length (None: `choose_max_length(training lengths, length_coverage,
      cap=max_length_cap)`).
    length_coverage: fraction of training texts that fit the chosen length when `max_length`
      is None.
    max_length_cap: upper bound on the chosen length (None: no bound).
  """

  lowercase: bool = True
  vocab_min_count: int = 1
  vocab_size: int | None = None
  max_length: int | None = None
  length_coverage: float = 1.0
  max_length_cap: int | None = None


def classification_dataset(train_texts: Sequence[str], train_labels: Sequence[int],
                           eval_texts: Sequence[str], eval_labels: Sequence[int],
                           num_classes: int, options: ClassificationOptions,
                           class_names: Sequence[str] = ()) -> Dataset:
  """Tokenises, builds the vocabulary from the training texts, pads; returns a `Dataset`.

  `options`: a `ClassificationOptions` (or a pipeline's subclass of it).
  Batches: `tokens` int32 `[batch, max_length]`, `length` int32 `[batch]`, `label` int32.
  Facts: `TextClassificationFacts`.
  """
  lowercase = options.lowercase
  train_tokens = [tokenize(t, lowercase) for t in train_texts]
  eval_tokens = [tokenize(t, lowercase) for t in eval_texts]
  vocab = Vocabulary.build(train_tokens, min_count=options.vocab_min_count,
                           max_size=options.vocab_size)
  max_length = options.max_length or choose_max_length(
      [len(t) for t in train_tokens], options.length_coverage, cap=options.max_length_cap)

  def arrays(tokens, labels):
    ids = [vocab.encode(t) if t else np.array([vocab.unk_id], np.int32) for t in tokens]
    padded, lengths = pad(ids, max_length)
    return {'tokens': padded, 'length': lengths, 'label': np.asarray(labels, np.int32)}

  return Dataset(
      train=ArraySource(arrays(train_tokens, train_labels)),
      eval=ArraySource(arrays(eval_tokens, eval_labels)),
      facts=TextClassificationFacts(num_classes, vocab, max_length, tuple(class_names)),
  )


# ---------------------------------------------------------------------------------------------
# Language modelling.


@dataclasses.dataclass(frozen=True)
class LanguageModelFacts(DatasetFacts):
  """A language-model dataset (TBPTT training windows, exact evaluation rows).

  Attributes:
    vocab: the vocabulary of the token ids (built on the training text).
    level: 'char' or 'word'.
    steps_per_epoch: training steps per pass over the training stream (windows per row).
    train_tokens: tokens in the training stream.
    eval_tokens: scored predictions of the evaluation rows (each held-out token once).
  """

  vocab: Vocabulary
  level: str
  steps_per_epoch: int
  train_tokens: int
  eval_tokens: int

  def model_kwargs(self) -> dict[str, Any]:
    return {'vocab_size': len(self.vocab)}


class StreamSource:
  """Truncated-BPTT training windows over one token stream (see the module docstring).

  The stream is cut into `batch_size` contiguous rows of `len(stream) // batch_size` tokens (the
  tail that does not fill a row is dropped); window `w` of a row is its tokens
  `[w * seq_len, (w + 1) * seq_len)` as inputs and the same shifted by one as targets.

  Batches: `inputs`, `targets` int32 `[rows, seq_len]`, `weights` float32 `[rows, seq_len]`
  (all 1), `reset` bool `[rows]` (True at window 0: start the carried state afresh).

  Args:
    stream: int token ids `[n]`.
    batch_size: the global batch size (number of rows).
    seq_len: BPTT length (time steps per training step).
  """

  def __init__(self, stream: np.ndarray, batch_size: int, seq_len: int):
    stream = np.asarray(stream, np.int32)
    row_length = len(stream) // batch_size
    self.windows = (row_length - 1) // seq_len if row_length else 0
    if self.windows < 1:
      raise ValueError(
          f'The training stream ({len(stream)} tokens) is too short for batch_size {batch_size} '
          f'rows of seq_len {seq_len} + 1 tokens; lower batch_size or seq_len.')
    self.rows = stream[:batch_size * row_length].reshape(batch_size, row_length)
    self.batch_size = batch_size
    self.seq_len = seq_len

  def __len__(self) -> int:
    """`batch_size * windows`, so the trainer's epoch (`len // batch_size` steps) is one pass."""
    return self.batch_size * self.windows

  def window(self, window: np.ndarray, rows: np.ndarray) -> Batch:
    """Window `window[k]` of row `rows[k]` for each k."""
    window, rows = np.asarray(window), np.asarray(rows)
    columns = window[:, None] * self.seq_len + np.arange(self.seq_len + 1)[None, :]
    tokens = self.rows[rows[:, None], columns]
    return {'inputs': tokens[:, :-1], 'targets': tokens[:, 1:],
            'weights': np.ones((len(rows), self.seq_len), np.float32), 'reset': window == 0}

  def train_indices(self, batch_size: int, seed: int, step: int) -> np.ndarray:
    """The global batch at `step`: window `step % windows` of every row, in row order (no
    shuffling, so each row's carried state continues where the previous step left it)."""
    del seed
    if batch_size != self.batch_size:
      raise ValueError(f'StreamSource was cut into {self.batch_size} rows, but the trainer reads '
                       f'batches of {batch_size}; build it with the training batch_size.')
    return (step % self.windows) * self.batch_size + np.arange(batch_size)

  def fetch(self, indices: np.ndarray, rng: np.random.Generator | None) -> Batch:
    """Example `i` is window `i // batch_size` of row `i % batch_size` (no randomness)."""
    del rng
    indices = np.asarray(indices)
    return self.window(indices // self.batch_size, indices % self.batch_size)


def eval_rows(stream: np.ndarray, row_length: int, context: int = 0,
              pad_id: int = PAD_ID) -> dict[str, np.ndarray]:
  """Cuts a held-out stream into rows that score each of its predictions exactly once.

  With `M = len(stream) - 1` predictions (input `stream[t]`, target `stream[t + 1]`), row `r`
  holds inputs `stream[r * L : r * L + context + L]` (`L = row_length`); it scores positions
  `[0, context + L)` if `r == 0`, else its last `L` positions (the first `context` are history
  only). Positions past the stream are padding with weight 0.

  Returns:
    `inputs`, `targets` int32 `[rows, context + row_length]`, `weights` float32 (1 where scored).
  """
  stream = np.asarray(stream, np.int32)
  predictions = len(stream) - 1
  if predictions < 1:
    raise ValueError('The evaluation stream needs at least two tokens.')
  num_rows = max(1, -(-(predictions - context) // row_length))
  width = context + row_length
  positions = np.arange(num_rows)[:, None] * row_length + np.arange(width)[None, :]
  valid = positions < predictions
  scored = valid & ((np.arange(width) >= context)[None, :] | (np.arange(num_rows) == 0)[:, None])
  safe = np.where(valid, positions, 0)
  return {'inputs': np.where(valid, stream[safe], pad_id).astype(np.int32),
          'targets': np.where(valid, stream[safe + 1], pad_id).astype(np.int32),
          'weights': scored.astype(np.float32)}


def word_stream(text: str, lowercase: bool = True) -> list[str]:
  """Word tokens of `text`, each non-empty line followed by `EOS` (Penn Treebank style)."""
  tokens = []
  for line in text.splitlines():
    words = tokenize(line, lowercase)
    if words:
      tokens.extend(words)
      tokens.append(EOS)
  return tokens


@dataclasses.dataclass(frozen=True)
class LanguageModelOptions:
  """Options of every language-model pipeline (each adds where its texts come from).

  Attributes:
    level: 'char' (characters) or 'word' (lines of words, each ended by `<eos>`).
    lowercase: lower-case the words (word level only).
    vocab_min_count: keep words seen at least this often in training (word level only).
    vocab_size: at most this many ids including the specials (word level; None: every word).
    seq_len: BPTT length, time steps per training step.
    eval_row_length: scored tokens per evaluation row (None: 8 * seq_len).
    eval_context: unscored history tokens before each evaluation row (None: seq_len).
  """

  level: str = 'char'
  lowercase: bool = True
  vocab_min_count: int = 1
  vocab_size: int | None = None
  seq_len: int = 35
  eval_row_length: int | None = None
  eval_context: int | None = None


def language_model_dataset(train_text: str, eval_text: str, options: LanguageModelOptions,
                           batch_size: int | None) -> Dataset:
  """A TBPTT training `StreamSource` and exact evaluation rows from two texts.

  Args:
    train_text, eval_text: the two texts.
    options: a `LanguageModelOptions` (or a pipeline's subclass of it).
    batch_size: the trainer's global training batch size: the training stream is cut into this
      many rows.

  Characters or words of the evaluation text missing from the training vocabulary become `<unk>`.
  Facts: `LanguageModelFacts`.

  Raises:
    ValueError: `batch_size` is None, or `level` is neither 'char' nor 'word'.
  """
  if batch_size is None:
    raise ValueError('A language-model pipeline cuts its training stream into batch_size rows: '
                     'pass batch_size (the trainer\'s global training batch size).')
  level = options.level
  if level == 'char':
    train_tokens, eval_tokens = train_text, eval_text
    vocab = Vocabulary.build([train_tokens], specials=(UNK,))
  elif level == 'word':
    train_tokens = word_stream(train_text, lowercase=options.lowercase)
    eval_tokens = word_stream(eval_text, lowercase=options.lowercase)
    vocab = Vocabulary.build([train_tokens], min_count=options.vocab_min_count,
                             max_size=options.vocab_size, specials=(UNK, EOS))
  else:
    raise ValueError(f"level must be 'char' or 'word', got {level!r}.")
  seq_len = options.seq_len
  train = StreamSource(vocab.encode(train_tokens), batch_size, seq_len)
  context = options.eval_context
  rows = eval_rows(vocab.encode(eval_tokens), options.eval_row_length or 8 * seq_len,
                   context=seq_len if context is None else context)
  return Dataset(
      train=train,
      eval=ArraySource(rows),
      facts=LanguageModelFacts(vocab, level, train.windows, len(train_tokens),
                               int(rows['weights'].sum())),
  )
