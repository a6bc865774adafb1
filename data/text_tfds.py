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

Config keys read (besides those of data/text.py):
  data_dir: tfds data directory; None means `$TFDS_DATA_DIR` or `~/tensorflow_datasets`.
  tfds_name: the tfds dataset to read (defaults above), e.g. a version 'imdb_reviews:1.0.0' or a
    corpus of your own (a custom builder with a text feature, e.g. PTB).
  train_split, eval_split: tfds split strings (defaults above; slices such as 'train[:10%]' work).
  text_key: the text feature (default 'text'; 'sentence' for glue/sst2).
  max_length: padded length for classification (default: all of the longest training text, but
    at most 400 tokens for imdb_reviews).
"""

from __future__ import annotations

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


def _classification(config, name: str, eval_split: str, text_key: str, class_names,
                    max_length_cap: int | None = None) -> Dataset:
  name = config.get('tfds_name', None) or name
  data_dir = config.get('data_dir', None)
  text_key = config.get('text_key', None) or text_key
  train = read_texts(name, config.get('train_split', None) or 'train', data_dir, text_key)
  test = read_texts(name, config.get('eval_split', None) or eval_split, data_dir, text_key)
  if (test[1] < 0).any():
    raise ValueError(f'{name} split {config.get("eval_split", None) or eval_split} has hidden '
                     f'labels (-1); evaluate on a labelled split (--config.eval_split).')
  return text_lib.classification_dataset(*train, *test, len(class_names), config, class_names,
                                         default_max_length_cap=max_length_cap)


def create_imdb_reviews(config) -> Dataset:
  """IMDB movie reviews (Maas et al. 2011): 25,000 train / 25,000 test, labels neg = 0, pos = 1."""
  return _classification(config, 'imdb_reviews', 'test', 'text', IMDB_CLASS_NAMES,
                         IMDB_MAX_LENGTH)


def create_sst2(config) -> Dataset:
  """GLUE SST-2: 67,349 train / 872 validation sentences, labels negative = 0, positive = 1."""
  return _classification(config, 'glue/sst2', 'validation', 'sentence', SST2_CLASS_NAMES)


def create_language_model(config, name: str | None = None, level: str = 'word') -> Dataset:
  """A TBPTT language-model dataset from the text feature of a tfds corpus (see above)."""
  name = config.get('tfds_name', None) or name
  if not name:
    raise ValueError('tfds_text_lm needs --config.tfds_name (a tfds dataset with a text feature).')
  data_dir = config.get('data_dir', None)
  text_key = config.get('text_key', None) or 'text'
  train, _ = read_texts(name, config.get('train_split', None) or 'train', data_dir, text_key, None)
  test, _ = read_texts(name, config.get('eval_split', None) or 'test', data_dir, text_key, None)
  return text_lib.language_model_dataset('\n'.join(train), '\n'.join(test), config,
                                         default_level=level)


def create_tiny_shakespeare(config) -> Dataset:
  """Karpathy's tiny Shakespeare (1,003,854 / 55,770 / 55,770 characters), character level."""
  return create_language_model(config, 'tiny_shakespeare', level='char')
