"""Text pipelines over tensorflow-datasets: imdb_reviews, glue/sst2, tiny_shakespeare, any corpus.

All read a prepared tfds dataset (array_record) through `tfds.data_source`, without TensorFlow,
and never download: a dataset that is not prepared under `data_dir` raises
`data.DatasetNotFoundError` at once, saying how to prepare it (official builders need TensorFlow
to prepare, once: `tfds build NAME --data_dir=DIR --file_format=array_record`).

| pipeline         | tfds name        | train / eval       | what                                |
|------------------|------------------|--------------------|-------------------------------------|
| imdb_reviews     | imdb_reviews     | train / test       | 25k + 25k movie reviews, 2 classes  |
| glue_sst2        | glue/sst2        | train / validation | 67k + 872 SST sentences, 2 classes  |
|                  |                  |                    | (test labels are hidden: -1)        |
| tiny_shakespeare | tiny_shakespeare | train / test       | Karpathy's 1 MB char-rnn file,      |
|                  |                  |                    | character level by default          |
| tfds_text_lm     | `tfds_name`      | train / test       | any corpus with a text feature      |

Classification pipelines produce what `text.classification_dataset` documents (`tokens`,
`length`, `label`; vocabulary from the training split only). Language-model pipelines join the
`text_key` feature of every example of a split with newlines (one example for tiny_shakespeare;
one sentence per example for corpora such as lm1b) and produce `text.language_model_dataset`'s
TBPTT training stream and exact evaluation rows.

Options: `ImdbOptions`, `Sst2Options` (over `text.ClassificationOptions`), `TextLmOptions` and
`TinyShakespeareOptions` (over `text.LanguageModelOptions`); the tfds data directory is the
`data_dir` argument (None: `$TFDS_DATA_DIR` or `~/tensorflow_datasets`).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from data import text as text_lib
from data.images import open_split
from data.pipeline import Dataset

IMDB_CLASS_NAMES = ('neg', 'pos')
SST2_CLASS_NAMES = ('negative', 'positive')
IMDB_MAX_LENGTH = 400


def read_texts(name: str, split: str, data_dir: str | None, text_key: str = 'text',
               label_key: str | None = 'label') -> tuple[list[str], np.ndarray | None]:
  """Texts (and labels int32 `[n]`, or None) of a prepared tfds split, in its order."""
  examples = text_lib.read_examples(open_split(name, split, data_dir))
  texts = [text_lib.as_str(e[text_key]) for e in examples]
  if label_key is None:
    return texts, None
  return texts, np.asarray([int(e[label_key]) for e in examples], np.int32)


@dataclasses.dataclass(frozen=True)
class ImdbOptions(text_lib.ClassificationOptions):
  """Options of the `imdb_reviews` pipeline (and those of `text.ClassificationOptions`).

  Attributes:
    tfds_name: the tfds dataset read, e.g. 'imdb_reviews:1.0.0' to pin a version.
    train_split: the tfds split trained on (slices such as 'train[:10%]' work).
    eval_split: the tfds split evaluated.
    text_key: the text feature.
    max_length_cap: upper bound on the chosen padded length (reviews are long).
  """

  tfds_name: str = 'imdb_reviews'
  train_split: str = 'train'
  eval_split: str = 'test'
  text_key: str = 'text'
  max_length_cap: int | None = IMDB_MAX_LENGTH


@dataclasses.dataclass(frozen=True)
class Sst2Options(text_lib.ClassificationOptions):
  """Options of the `glue_sst2` pipeline (and those of `text.ClassificationOptions`).

  Attributes:
    tfds_name: the tfds dataset read.
    train_split: the tfds split trained on.
    eval_split: the tfds split evaluated (the test split's labels are hidden).
    text_key: the text feature.
  """

  tfds_name: str = 'glue/sst2'
  train_split: str = 'train'
  eval_split: str = 'validation'
  text_key: str = 'sentence'


@dataclasses.dataclass(frozen=True)
class TextLmOptions(text_lib.LanguageModelOptions):
  """Options of the `tfds_text_lm` pipeline (and those of `text.LanguageModelOptions`).

  Attributes:
    tfds_name: the tfds dataset read, a corpus with a text feature (required; e.g. a custom
      builder over PTB).
    train_split: the tfds split trained on.
    eval_split: the tfds split evaluated.
    text_key: the text feature; a split's examples are joined with newlines.
    level: 'word' (lines of words, each ended by `<eos>`) or 'char'.
  """

  tfds_name: str | None = None
  train_split: str = 'train'
  eval_split: str = 'test'
  text_key: str = 'text'
  level: str = 'word'


@dataclasses.dataclass(frozen=True)
class TinyShakespeareOptions(TextLmOptions):
  """Options of the `tiny_shakespeare` pipeline (those of `TextLmOptions`, other defaults).

  Attributes:
    tfds_name: the tfds dataset read.
    level: 'char' or 'word'.
  """

  tfds_name: str | None = 'tiny_shakespeare'
  level: str = 'char'


def _classification(options: ImdbOptions | Sst2Options, data_dir: str | None,
                    class_names) -> Dataset:
  name, text_key = options.tfds_name, options.text_key
  train = read_texts(name, options.train_split, data_dir, text_key)
  test = read_texts(name, options.eval_split, data_dir, text_key)
  if (test[1] < 0).any():
    raise ValueError(f'{name} split {options.eval_split} has hidden labels (-1); evaluate on a '
                     f'labelled split (--config.data.eval_split).')
  return text_lib.classification_dataset(*train, *test, len(class_names), options, class_names)


def create_imdb_reviews(options: ImdbOptions, *, data_dir: str | None = None,
                        batch_size: int | None = None) -> Dataset:
  """IMDB movie reviews (Maas et al. 2011): 25,000 train / 25,000 test, labels neg = 0, pos = 1.

  `batch_size` is not used.
  """
  del batch_size
  return _classification(options, data_dir, IMDB_CLASS_NAMES)


def create_sst2(options: Sst2Options, *, data_dir: str | None = None,
                batch_size: int | None = None) -> Dataset:
  """GLUE SST-2: 67,349 train / 872 validation sentences, labels negative = 0, positive = 1.

  `batch_size` is not used.
  """
  del batch_size
  return _classification(options, data_dir, SST2_CLASS_NAMES)


def create_language_model(options: TextLmOptions, *, data_dir: str | None = None,
                          batch_size: int | None = None) -> Dataset:
  """A TBPTT language-model dataset from the text feature of a tfds corpus (see above), its
  training stream cut into `batch_size` rows."""
  name = options.tfds_name
  if not name:
    raise ValueError('tfds_text_lm needs --config.data.tfds_name (a tfds dataset with a text '
                     'feature).')
  text_key = options.text_key
  train, _ = read_texts(name, options.train_split, data_dir, text_key, None)
  test, _ = read_texts(name, options.eval_split, data_dir, text_key, None)
  return text_lib.language_model_dataset('\n'.join(train), '\n'.join(test), options, batch_size)


def create_tiny_shakespeare(options: TinyShakespeareOptions, *, data_dir: str | None = None,
                            batch_size: int | None = None) -> Dataset:
  """Karpathy's tiny Shakespeare (1,003,854 / 55,770 / 55,770 characters), character level."""
  return create_language_model(options, data_dir=data_dir, batch_size=batch_size)
