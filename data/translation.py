"""Translation pipelines: the Ding English->German example sentences, and tfds translation sets.

Ding (`ding_en_de`): the human-translated example sentences and phrases of the Ding dictionary
(TU Chemnitz), as packaged by FreeDict in the Debian package `dict-freedict-eng-deu` (GPL/AGPL;
fetched at set-up time, never committed). Run

    python -m data.prepare ding_en_de [--data_dir=DIR]

once: it fetches the .deb with `apt-get download` (no root), copies the dictd files
`freedict-eng-deu.index` and `freedict-eng-deu.dict.dz` into `DIR/downloads/manual/ding_en_de/`,
verifies them (55,241 distinct pairs, SHA-256 of the pairs) and builds the tfds dataset
`ding_en_de` (array_record, no TensorFlow) with the splits below.

The dictd format: the `.index` has one line per headword, `headword TAB offset TAB length`, the
numbers in dictd's base64 (digits `A-Za-z0-9+/`, most significant first); offset and length
locate the entry's text in the uncompressed `.dict.dz` (dictzip, readable as plain gzip). In an
entry an example is a line `      "English"  - German` (`EXAMPLE`). Each distinct (English,
German) pair is kept once, whichever entries it appears in.

Split (fixed, seeded, the same on every machine; `split_pairs`): pairs are grouped by their
English side, lower-cased with whitespace collapsed (451 English sentences have several German
translations). A permutation of the groups (seed 0) puts the first 5% of groups in `test`, the
next 5% in `validation` and the rest in `train`: 2,739 / 2,739 / 49,293 English sentences
(2,759 / 2,764 / 49,718 pairs). No test (or validation) English sentence occurs in training.

Tokenisation (`tokenize` / `detokenize`, reversible): Unicode NFC, then words (letters and digits,
with inner apostrophes: "don't") and single punctuation marks. Where two tokens touch (no space
between), the punctuation one carries the joiner `JOINER` on that side (OpenNMT's
joiner_annotate): "Hello, world!" -> ['Hello', '￭,', 'world', '￭!']. `detokenize` joins with
spaces and removes the spaces next to joiners, so `detokenize(tokenize(s)) == ' '.join(s.split())`
for any NFC text. Case is kept (German nouns are capitalised; BLEU on the text is cased).

Batches (the format of data/synthetic.py, which models/seq2seq.py and train/seq_tasks.py serve):
`inputs` `[B, S]` int32 source ids (PAD after the end), `input_lengths` `[B]`, `decoder_inputs`
`[B, T]` (BOS + target), `targets` `[B, T]` (target + EOS), `target_mask` `[B, T]`. Ids: PAD 0,
BOS 1, EOS 2, UNK 3, then tokens by training frequency; separate source and target vocabularies
built on the training pairs only (`vocab_min_count`, `vocab_size`).

Length limits: training pairs longer than `max_source_length` or `max_target_length` tokens are
dropped (and counted in the log). The evaluation split is never filtered or cut: its arrays are
padded to its own longest sentence (the trainer compiles the eval step for that shape), so the
whole split is scored.

Options: `DingOptions` (over `TranslationOptions`).

tfds translation sets (`create_tfds`, registered as `tfds_translation`): any tfds dataset with a
`Translation` feature, read with `tfds.data_source` (no TensorFlow), e.g. `ted_hrlr_translate/
pt_to_en` or `wmt14_translate/de-en`; options `TfdsTranslationOptions`.
"""

from __future__ import annotations

import collections
import dataclasses
import gzip
import hashlib
import logging
import os
import re
import unicodedata
from typing import Any, Iterable, Sequence

import numpy as np
import tensorflow_datasets as tfds

from data import DatasetNotFoundError
from data import text as text_lib
from data.images import resolve_data_dir
from data.pipeline import ArraySource, Dataset, DatasetFacts

NAME = 'ding_en_de'
MANUAL_SUBDIR = 'ding_en_de'
PREPARE_COMMAND = 'python -m data.prepare ding_en_de'
DEBIAN_PACKAGE = 'dict-freedict-eng-deu'
PACKAGE_DIR = 'usr/share/dictd'
INDEX_FILE = 'freedict-eng-deu.index'
DICT_FILE = 'freedict-eng-deu.dict.dz'
FILES = (INDEX_FILE, DICT_FILE)
NUM_PAIRS = 55_241
# SHA-256 of the distinct pairs, sorted, each written 'English\tGerman\n' (UTF-8).
PAIRS_SHA256 = 'd1a9445124a52c0492e7060079a5791f72835065c09d81954a51307d05e28da2'
SPLIT_SEED = 0
HELD_OUT_FRACTION = 0.05  # each of test and validation, in English sentences
SPLITS = ('train', 'validation', 'test')

EXAMPLE = re.compile(r'^ +"(.*)"  - (.*)$')

PAD, BOS, EOS, UNK = '<pad>', '<bos>', '<eos>', '<unk>'
SPECIALS = (PAD, BOS, EOS, UNK)
PAD_ID, BOS_ID, EOS_ID, UNK_ID = 0, 1, 2, 3
JOINER = '\uffed'  # '￭'

Pair = tuple[str, str]
log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------------
# The dictd format.

_B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'
_B64_VALUE = {c: i for i, c in enumerate(_B64)}


def decode_dictd_number(text: str) -> int:
  """A dictd index number: base64 digits `A-Za-z0-9+/`, most significant first ('BM' = 76)."""
  value = 0
  for c in text:
    if c not in _B64_VALUE:
      raise ValueError(f'{text!r} is not a dictd base64 number')
    value = value * 64 + _B64_VALUE[c]
  return value


def read_index(path: str | os.PathLike) -> list[tuple[str, int, int]]:
  """(headword, offset, length) of every line of a dictd `.index` file."""
  entries = []
  with open(path, encoding='utf-8') as f:
    for number, line in enumerate(f, 1):
      line = line.rstrip('\n')
      if not line:
        continue
      fields = line.split('\t')
      if len(fields) < 3:
        raise ValueError(f'{path}:{number}: expected headword<TAB>offset<TAB>length')
      entries.append((fields[0], decode_dictd_number(fields[1]), decode_dictd_number(fields[2])))
  return entries


def read_entries(index_path: str | os.PathLike, dict_path: str | os.PathLike) -> list[str]:
  """The text of every distinct entry of a dictd dictionary, in offset order."""
  with gzip.open(dict_path, 'rb') as f:  # dictzip is gzip with a random-access table
    content = f.read()
  spans = sorted({(offset, length) for _, offset, length in read_index(index_path)})
  entries = []
  for offset, length in spans:
    if offset + length > len(content):
      raise ValueError(f'{index_path}: entry at {offset}+{length} lies past the end of '
                       f'{dict_path} ({len(content)} bytes)')
    entries.append(content[offset:offset + length].decode('utf-8'))
  return entries


def example_pairs(entry: str) -> list[Pair]:
  """The (English, German) examples of one entry: its lines `  "English"  - German`."""
  pairs = []
  for line in entry.split('\n'):
    match = EXAMPLE.match(line)
    if match:
      english, german = match.group(1).strip(), match.group(2).strip()
      if english and german:
        pairs.append((english, german))
  return pairs


def read_pairs(directory: str | os.PathLike) -> list[Pair]:
  """The distinct example pairs of the dictd files in `directory`, sorted."""
  pairs = set()
  for entry in read_entries(os.path.join(directory, INDEX_FILE),
                            os.path.join(directory, DICT_FILE)):
    pairs.update(example_pairs(entry))
  return sorted(pairs)


def pairs_sha256(pairs: Iterable[Pair]) -> str:
  digest = hashlib.sha256()
  for english, german in sorted(pairs):
    digest.update(f'{english}\t{german}\n'.encode('utf-8'))
  return digest.hexdigest()


def english_key(english: str) -> str:
  """What makes two English sides the same sentence for the split: case and spacing ignored."""
  return ' '.join(unicodedata.normalize('NFC', english).lower().split())


def split_pairs(pairs: Sequence[Pair], seed: int = SPLIT_SEED,
                fraction: float = HELD_OUT_FRACTION) -> dict[str, list[Pair]]:
  """The fixed split of the module docstring: split name -> pairs, each in sorted order."""
  groups: dict[str, list[Pair]] = collections.defaultdict(list)
  for pair in sorted(set(pairs)):
    groups[english_key(pair[0])].append(pair)
  keys = sorted(groups)
  order = np.random.default_rng(seed).permutation(len(keys))
  held_out = int(round(fraction * len(keys)))
  parts = {'test': order[:held_out], 'validation': order[held_out:2 * held_out],
           'train': order[2 * held_out:]}
  return {name: sorted(p for i in indices for p in groups[keys[i]])
          for name, indices in parts.items()}


# ---------------------------------------------------------------------------------------------
# The tfds builder.


def default_manual_dir(data_dir: str | None = None) -> str:
  return os.path.join(resolve_data_dir(data_dir), 'downloads', 'manual', MANUAL_SUBDIR)


def find_files(manual_dir: str | os.PathLike) -> str | None:
  """The directory holding both dictd files: `manual_dir` or its `ding_en_de/`; else None."""
  for directory in (os.fspath(manual_dir), os.path.join(os.fspath(manual_dir), MANUAL_SUBDIR)):
    if all(os.path.isfile(os.path.join(directory, f)) for f in FILES):
      return directory
  return None


class DingEnDe(tfds.core.GeneratorBasedBuilder):
  """Ding's English->German example pairs from the FreeDict dictd files in the manual dir."""

  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'dict-freedict-eng-deu 2022.04.21 (Ding 1.9); seeded split.'}
  MANUAL_DOWNLOAD_INSTRUCTIONS = (
      f'Run `{PREPARE_COMMAND} --data_dir=DIR`, or put {INDEX_FILE} and {DICT_FILE} (from the '
      f'Debian package {DEBIAN_PACKAGE}, {PACKAGE_DIR}/) in DIR/downloads/manual/{MANUAL_SUBDIR}/.')

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(
        builder=self,
        description='Human-translated English->German example sentences of the Ding dictionary.',
        features=tfds.features.FeaturesDict({'en': tfds.features.Text(),
                                             'de': tfds.features.Text()}),
        supervised_keys=('en', 'de'),
        disable_shuffling=True,
        homepage='https://dict.tu-chemnitz.de/',
    )

  def _split_generators(self, dl_manager):
    directory = find_files(dl_manager.manual_dir)
    if directory is None:
      raise DatasetNotFoundError(f'{INDEX_FILE} and {DICT_FILE} are not in '
                                 f'{dl_manager.manual_dir}: run '
                                 f'`{PREPARE_COMMAND} --data_dir=DIR`.')
    splits = split_pairs(read_pairs(directory))
    return {name: self._generate_examples(splits[name]) for name in SPLITS}

  def _generate_examples(self, pairs):
    for i, (english, german) in enumerate(pairs):
      yield i, {'en': english, 'de': german}


def builder(data_dir: str | None = None) -> DingEnDe:
  return DingEnDe(data_dir=resolve_data_dir(data_dir), file_format='array_record')


def prepare(data_dir: str | None = None, manual_dir: str | None = None) -> DingEnDe:
  """Prepares `ding_en_de` from the dictd files in `manual_dir` unless it is prepared already.

  Raises:
    DatasetNotFoundError: not prepared, and the dictd files are not in `manual_dir`.
  """
  data_dir = resolve_data_dir(data_dir)
  result = builder(data_dir)
  if result.is_prepared():
    return result
  manual_dir = os.path.abspath(os.path.expanduser(manual_dir or default_manual_dir(data_dir)))
  if find_files(manual_dir) is None:
    raise DatasetNotFoundError(
        f'The Ding English-German pairs are not prepared in {data_dir} and {INDEX_FILE} / '
        f'{DICT_FILE} are not in {manual_dir}: run `{PREPARE_COMMAND} --data_dir={data_dir}` '
        f'(or pass --config.data_dir=DIR of a prepared copy).')
  result.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=manual_dir))
  return result


def load_split(prepared, split: str, source_key: str = 'en',
               target_key: str = 'de') -> list[Pair]:
  """(source, target) texts of a prepared split (tfds split strings such as 'train+validation')."""
  examples = text_lib.read_examples(prepared.as_data_source(split=split))
  return [(text_lib.as_str(e[source_key]), text_lib.as_str(e[target_key])) for e in examples]


# ---------------------------------------------------------------------------------------------
# Tokenisation.

_TOKEN = re.compile(r"[^\W_]+(?:'[^\W_]+)*|\S")


def _is_word(token: str) -> bool:
  return token[0].isalnum()


def tokenize(text: str, lowercase: bool = False) -> list[str]:
  """Words and punctuation marks; a joiner marks the side where a punctuation mark touches a token.

  `tokenize('Er sagt: "Nein."')` == `['Er', 'sagt', '￭:', '"￭', 'Nein', '￭.', '￭"']`.
  """
  text = unicodedata.normalize('NFC', text)
  if lowercase:
    text = text.lower()
  matches = list(_TOKEN.finditer(text))
  tokens = [m.group() for m in matches]
  for i in range(1, len(matches)):
    if matches[i].start() != matches[i - 1].end():
      continue
    if not _is_word(tokens[i]):  # the right token is punctuation: it carries the joiner
      tokens[i] = JOINER + tokens[i]
    else:
      tokens[i - 1] = tokens[i - 1] + JOINER
  return tokens


def detokenize(tokens: Sequence[str]) -> str:
  """The inverse of `tokenize` (up to whitespace): spaces next to joiners are removed."""
  text = ' '.join(tokens)
  return text.replace(JOINER + ' ', '').replace(' ' + JOINER, '').replace(JOINER, '')


def build_vocabulary(texts: Iterable[Sequence[str]], min_count: int = 1,
                     max_size: int | None = None) -> text_lib.Vocabulary:
  """PAD, BOS, EOS, UNK (ids 0-3), then tokens by decreasing training count."""
  return text_lib.Vocabulary.build(texts, min_count=min_count, max_size=max_size,
                                   specials=SPECIALS)


def decode_ids(vocab: text_lib.Vocabulary, ids: Iterable[int]) -> list[str]:
  """Token strings up to the first EOS, PAD and BOS skipped."""
  tokens = []
  for i in ids:
    i = int(i)
    if i == EOS_ID:
      break
    if i not in (PAD_ID, BOS_ID):
      tokens.append(vocab.tokens[i])
  return tokens


def encode_pairs(source: Sequence[Sequence[str]], target: Sequence[Sequence[str]],
                 source_vocab: text_lib.Vocabulary, target_vocab: text_lib.Vocabulary,
                 source_length: int, target_length: int) -> dict[str, np.ndarray]:
  """Tokenised pairs -> batch arrays (module docstring); T = target_length + 1.

  Raises:
    ValueError: a sentence is longer than its length, or empty.
  """
  n = len(source)
  inputs, input_lengths = text_lib.pad([source_vocab.encode(s) for s in source], source_length)
  target_ids, lengths = text_lib.pad([target_vocab.encode(t) for t in target], target_length)
  if n and (input_lengths.min() < 1 or lengths.min() < 1):
    raise ValueError('every sentence needs at least one token')
  if any(len(s) > source_length for s in source) or any(len(t) > target_length for t in target):
    raise ValueError('a sentence is longer than the maximum length')
  with_eos = np.concatenate([target_ids, np.zeros((n, 1), np.int32)], axis=1)
  with_eos[np.arange(n), lengths] = EOS_ID
  decoder_inputs = np.concatenate([np.full((n, 1), BOS_ID, np.int32), target_ids], axis=1)
  target_mask = np.arange(target_length + 1)[None, :] <= lengths[:, None]
  return {'inputs': inputs, 'input_lengths': input_lengths, 'decoder_inputs': decoder_inputs,
          'targets': with_eos, 'target_mask': target_mask}


@dataclasses.dataclass(frozen=True)
class TranslationOptions:
  """Options of every translation pipeline (each adds where its pairs come from).

  Attributes:
    max_source_length: training pairs with more source tokens are dropped.
    max_target_length: training pairs with more target tokens are dropped.
    vocab_min_count: keep tokens seen at least this often in training (per side).
    vocab_size: at most this many ids per side, specials included (None: no limit).
    lowercase_source: lower-case the source side before tokenising.
  """

  max_source_length: int = 40
  max_target_length: int = 40
  vocab_min_count: int = 2
  vocab_size: int | None = None
  lowercase_source: bool = False


@dataclasses.dataclass(frozen=True)
class DingOptions(TranslationOptions):
  """Options of the `ding_en_de` pipeline (and those of `TranslationOptions`).

  Attributes:
    manual_dir: where the dictd files are (None: `<data_dir>/downloads/manual/ding_en_de`); read
      only when the dataset is not prepared yet.
    train_split: the split trained on ('train+validation' for a final run).
    eval_split: the split evaluated, 'validation' or 'test'.
  """

  manual_dir: str | None = None
  train_split: str = 'train'
  eval_split: str = 'validation'


@dataclasses.dataclass(frozen=True)
class TfdsTranslationOptions(TranslationOptions):
  """Options of the `tfds_translation` pipeline (and those of `TranslationOptions`).

  Attributes:
    tfds_name: the tfds dataset read, with a `Translation` feature (required; e.g.
      'ted_hrlr_translate/pt_to_en').
    source_language: the feature's source key, e.g. 'pt' (required).
    target_language: the feature's target key, e.g. 'en' (required).
    train_split: the tfds split trained on.
    eval_split: the tfds split evaluated.
  """

  tfds_name: str | None = None
  source_language: str | None = None
  target_language: str | None = None
  train_split: str = 'train'
  eval_split: str = 'validation'


@dataclasses.dataclass(frozen=True)
class TranslationFacts(DatasetFacts):
  """A translation dataset (batches: module docstring).

  Attributes:
    source_vocab, target_vocab: the vocabularies (built on the kept training pairs).
    max_decode_length: decoder steps of the training batches (max_target_length + 1).
    eval_pairs: the untokenised (source, target) evaluation pairs, in the eval source's order.
    dropped_train: training pairs dropped for exceeding the length limits.
    lowercase_source: whether the source side was lower-cased before tokenising.
    pad_id, bos_id, eos_id: the special token ids.
  """

  source_vocab: text_lib.Vocabulary
  target_vocab: text_lib.Vocabulary
  max_decode_length: int
  eval_pairs: tuple[Pair, ...]
  dropped_train: int = 0
  lowercase_source: bool = False
  pad_id: int = PAD_ID
  bos_id: int = BOS_ID
  eos_id: int = EOS_ID

  def model_kwargs(self) -> dict[str, Any]:
    return {'vocab_size': len(self.source_vocab), 'target_vocab_size': len(self.target_vocab),
            'max_decode_length': self.max_decode_length, 'pad_id': self.pad_id,
            'bos_id': self.bos_id, 'eos_id': self.eos_id}


def translation_dataset(train_pairs: Sequence[Pair], eval_pairs: Sequence[Pair],
                        options: TranslationOptions, name: str = 'translation') -> Dataset:
  """Tokenises, filters training pairs by length, builds vocabularies, encodes; see the docstring.

  Facts: `TranslationFacts`.
  """
  lowercase = options.lowercase_source
  max_source, max_target = options.max_source_length, options.max_target_length
  train_source = [tokenize(s, lowercase) for s, _ in train_pairs]
  train_target = [tokenize(t) for _, t in train_pairs]
  keep = [i for i in range(len(train_pairs))
          if 1 <= len(train_source[i]) <= max_source and 1 <= len(train_target[i]) <= max_target]
  dropped = len(train_pairs) - len(keep)
  if not keep:
    raise ValueError(f'{name}: no training pair fits max_source_length {max_source} and '
                     f'max_target_length {max_target}.')
  if dropped:
    log.info('%s: dropped %d of %d training pairs longer than %d source / %d target tokens',
             name, dropped, len(train_pairs), max_source, max_target)
  train_source = [train_source[i] for i in keep]
  train_target = [train_target[i] for i in keep]
  min_count, max_size = options.vocab_min_count, options.vocab_size
  source_vocab = build_vocabulary(train_source, min_count, max_size)
  target_vocab = build_vocabulary(train_target, min_count, max_size)
  eval_pairs = [(s, t) for s, t in eval_pairs if s.strip() and t.strip()]
  if not eval_pairs:
    raise ValueError(f'{name}: the evaluation split has no pairs.')
  eval_source = [tokenize(s, lowercase) for s, _ in eval_pairs]
  eval_target = [tokenize(t) for _, t in eval_pairs]
  eval_source_length = max(len(s) for s in eval_source)
  eval_target_length = max(len(t) for t in eval_target)
  return Dataset(
      train=ArraySource(encode_pairs(train_source, train_target, source_vocab, target_vocab,
                                     max_source, max_target)),
      eval=ArraySource(encode_pairs(eval_source, eval_target, source_vocab, target_vocab,
                                    eval_source_length, eval_target_length)),
      facts=TranslationFacts(source_vocab, target_vocab, max_target + 1, tuple(eval_pairs),
                             dropped, lowercase))


def create_ding(options: DingOptions, *, data_dir: str | None = None,
                batch_size: int | None = None) -> Dataset:
  """Ding English->German (see the module docstring), prepared in `data_dir` on first use;
  `batch_size` is not used."""
  del batch_size
  prepared = prepare(data_dir, options.manual_dir)
  return translation_dataset(load_split(prepared, options.train_split),
                             load_split(prepared, options.eval_split), options, NAME)


def create_tfds(options: TfdsTranslationOptions, *, data_dir: str | None = None,
                batch_size: int | None = None) -> Dataset:
  """A tfds dataset with a `Translation` feature, e.g. ted_hrlr_translate/pt_to_en.

  The vocabularies come from the training split only; `batch_size` is not used.
  """
  from data.images import not_prepared_message, open_split

  del batch_size
  name = options.tfds_name
  source_key, target_key = options.source_language, options.target_language
  if not (name and source_key and target_key):
    raise ValueError('tfds_translation needs --config.data.tfds_name, '
                     '--config.data.source_language and --config.data.target_language (e.g. '
                     'ted_hrlr_translate/pt_to_en, pt, en).')

  def read(split):
    try:
      source = open_split(name, split, data_dir)
    except tfds.core.registered.DatasetNotFoundError:  # tfds has no builder code for it here
      raise DatasetNotFoundError(not_prepared_message(name, resolve_data_dir(data_dir))) from None
    examples = text_lib.read_examples(source)
    if examples and not {source_key, target_key} <= set(examples[0]):
      raise ValueError(f'{name} has the languages {sorted(examples[0])}, not '
                       f'{source_key!r} and {target_key!r}.')
    return [(text_lib.as_str(e[source_key]), text_lib.as_str(e[target_key])) for e in examples]

  return translation_dataset(read(options.train_split), read(options.eval_split), options, name)
