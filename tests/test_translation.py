"""Translation: the dictd parser, the Ding split, the tokeniser, BLEU against sacrebleu, the tfds
pipeline on mock data, and the missing-data messages."""

import functools
import gzip
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import sacrebleu
import tensorflow_datasets as tfds
from compiled_apply import apply as _apply

from data import DatasetNotFoundError
from data import prepare as prepare_lib
from data import translation
from train import bleu
from train import seq_tasks

# ---------------------------------------------------------------------------------------------
# A tiny hand-built dictd dictionary.

_B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'


def _b64(number):
  digits = ''
  while True:
    number, digit = divmod(number, 64)
    digits = _B64[digit] + digits
    if not number:
      return digits


def _entries(num_sentences=30):
  entries = [
      ('00-database-info', 'A test dictionary\n     "Apfel" is a noun, not an example.\n'),
      ('house', 'house /haʊs/\nHaus <neut>\n      "the house is red"  - das Haus ist rot\n'
                '      "He said: „Hi!“"  - Er sagte: „Hallo!“\n see: {houses}\n'),
      # The same example under a second headword: kept once.
      ('red', 'red\nrot\n      "the house is red"  - das Haus ist rot\n'
              '      "The house is red"  - Das Haus ist rot.\n'),
  ]
  for i in range(num_sentences):
    entries.append((f'word{i}', f'word{i}\nWort{i}\n      "I see word {i} here"  - Ich sehe '
                                f'Wort {i} hier\n'))
  return entries


def write_dictd(directory, entries=None):
  """Writes `freedict-eng-deu.index` and `.dict.dz` (plain gzip) for `entries`."""
  entries = _entries() if entries is None else entries
  content, index = b'', []
  for headword, text in entries:
    data = text.encode('utf-8')
    index.append(f'{headword}\t{_b64(len(content))}\t{_b64(len(data))}\n')
    content += data
  index.append(f'red again\t{_b64(0)}\t{_b64(3)}\n')  # a second headword for the same bytes
  os.makedirs(directory, exist_ok=True)
  with open(os.path.join(directory, translation.INDEX_FILE), 'w', encoding='utf-8') as f:
    f.write(''.join(index))
  with gzip.open(os.path.join(directory, translation.DICT_FILE), 'wb') as f:
    f.write(content)
  return directory


def test_dictd_numbers():
  assert translation.decode_dictd_number('A') == 0
  assert translation.decode_dictd_number('BM') == 76  # from the real index: ' and a half ... BM'
  assert translation.decode_dictd_number('/') == 63
  assert translation.decode_dictd_number('BAA') == 4096
  with pytest.raises(ValueError):
    translation.decode_dictd_number('A-')


def test_read_pairs_of_a_hand_built_dictionary(tmp_path):
  directory = write_dictd(tmp_path / 'dict')
  pairs = translation.read_pairs(directory)
  assert ('the house is red', 'das Haus ist rot') in pairs
  assert ('He said: „Hi!“', 'Er sagte: „Hallo!“') in pairs
  assert ('The house is red', 'Das Haus ist rot.') in pairs
  assert ('I see word 7 here', 'Ich sehe Wort 7 hier') in pairs
  assert len(pairs) == 3 + 30  # the duplicate kept once, the '"Apfel"' line is no example
  assert pairs == sorted(pairs)
  index = translation.read_index(os.path.join(directory, translation.INDEX_FILE))
  assert index[1][0] == 'house' and index[-1] == ('red again', 0, 3)


def test_split_groups_english_sentences_and_has_no_leakage():
  rng = np.random.default_rng(1)
  pairs = [(f'sentence {i}', f'Satz {i}') for i in range(400)]
  # Case and spacing variants of one English sentence, and a sentence with two translations.
  pairs += [('Sentence 5', 'Satz fünf'), ('sentence  5', 'Satz Nummer 5'),
            ('sentence 9', 'noch ein Satz 9')]
  rng.shuffle(pairs)
  splits = translation.split_pairs(pairs)
  assert splits == translation.split_pairs(list(reversed(pairs)))  # order-independent, seeded
  assert sum(len(v) for v in splits.values()) == len(set(pairs))
  keys = {name: {translation.english_key(e) for e, _ in v} for name, v in splits.items()}
  assert not keys['test'] & keys['train'] and not keys['validation'] & keys['train']
  assert not keys['test'] & keys['validation']
  assert len(keys['test']) == len(keys['validation']) == 20  # 5% of 400 English sentences
  five = [name for name, v in splits.items() if any(translation.english_key(e) == 'sentence 5'
                                                    for e, _ in v)]
  assert len(five) == 1 and sum(translation.english_key(e) == 'sentence 5'
                                for e, _ in splits[five[0]]) == 3
  assert splits != translation.split_pairs(pairs, seed=1)


@pytest.mark.parametrize('text, tokens', [
    ('Hello, world!', ['Hello', '￭,', 'world', '￭!']),
    ('Er sagt: "Nein."', ['Er', 'sagt', '￭:', '"￭', 'Nein', '￭.', '￭"']),
    ("don't (really) e-cars...", ["don't", '(￭', 'really', '￭)', 'e', '￭-￭', 'cars', '￭.',
                                  '￭.', '￭.']),
    ('„f Strich“ …', ['„￭', 'f', 'Strich', '￭“', '…']),
])
def test_tokenize(text, tokens):
  assert translation.tokenize(text) == tokens
  assert translation.detokenize(tokens) == text


def test_tokenizer_round_trip_on_random_text():
  rng = np.random.default_rng(0)
  alphabet = list('abcÄöüß019 ,.;:!?"\'()-/…„“') + ['  ']
  for _ in range(300):
    text = ''.join(rng.choice(alphabet, size=int(rng.integers(1, 30))))
    assert translation.detokenize(translation.tokenize(text)) == ' '.join(text.split()), text


# ---------------------------------------------------------------------------------------------
# BLEU.


def _sacrebleu(hyps, refs):
  return sacrebleu.corpus_bleu(hyps, [refs], tokenize='none', force=True).score


def _ours(hyp, hyp_lengths, ref, ref_lengths, unk_id=None):
  stats = jax.jit(bleu.ngram_stats, static_argnames=('max_order', 'unk_id'))(
      np.asarray(hyp), np.asarray(hyp_lengths), np.asarray(ref), np.asarray(ref_lengths),
      unk_id=unk_id)
  sums = bleu.weighted_sums(stats, jnp.ones(len(hyp)))
  return bleu.bleu_from_sums({k: float(v) for k, v in sums.items()})


def _strings(ids, lengths):
  return [' '.join(f't{i}' for i in row[:n]) for row, n in zip(ids, lengths)]


def test_bleu_equals_sacrebleu_on_random_corpora():
  rng = np.random.default_rng(0)
  for trial in range(30):  # three shapes (few compilations); random contents and lengths
    batch, th, tr = ((7, 9, 11), (3, 12, 5), (1, 2, 3))[trial % 3]
    vocab = int(rng.integers(2, 7))
    hyp, ref = rng.integers(0, vocab, (batch, th)), rng.integers(0, vocab, (batch, tr))
    hyp_lengths, ref_lengths = rng.integers(0, th + 1, batch), rng.integers(1, tr + 1, batch)
    expected = _sacrebleu(_strings(hyp, hyp_lengths), _strings(ref, ref_lengths))
    assert _ours(hyp, hyp_lengths, ref, ref_lengths) == pytest.approx(expected, abs=1e-9)


def _pad(rows, width):
  return np.array([row + [99] * (width - len(row)) for row in rows]), [len(r) for r in rows]


@pytest.mark.parametrize('hyps, refs', [
    ([[1, 2, 3, 4, 5]], [[1, 2, 3, 4, 5]]),  # perfect: 100
    ([[1, 2, 3]], [[4, 5, 6, 7]]),  # zero matches: 0
    ([[1, 2, 3, 4]], [[1, 2, 3, 4, 5, 6, 7, 8]]),  # brevity penalty
    ([[7, 7, 7, 7, 7, 7]], [[7, 7, 1, 2, 3, 4]]),  # repeated unigrams clipped at 2
    ([[1, 2, 1, 2, 1, 2]], [[1, 2, 5, 1, 2, 6]]),  # repeated bigrams clipped
    ([[1, 2, 3, 5], [4, 4]], [[1, 2, 3, 4], [4, 4, 4, 4, 4]]),  # no 4-gram match: smoothing
    ([[], [1, 2, 3, 4, 5, 6]], [[1, 2], [1, 2, 3, 4, 5, 6]]),  # an empty hypothesis
    ([[1]], [[1, 2, 3]]),  # no n-grams of order > 1
])
def test_bleu_equals_sacrebleu_on_hand_made_cases(hyps, refs):
  hyp, hyp_lengths = _pad(hyps, 8)
  ref, ref_lengths = _pad(refs, 9)
  expected = _sacrebleu(_strings(hyp, hyp_lengths), _strings(ref, ref_lengths))
  assert _ours(hyp, hyp_lengths, ref, ref_lengths) == pytest.approx(expected, abs=1e-9)
  if hyps == refs:
    assert expected == pytest.approx(100.0)


def test_bleu_unknown_reference_words_never_match():
  hyp, ref = np.array([[3, 5, 6, 7]]), np.array([[3, 5, 6, 7]])
  ours = _ours(hyp, [4], ref, [4], unk_id=3)
  assert ours < 100.0
  assert ours == pytest.approx(_sacrebleu(['<unk> t5 t6 t7'], ['<unk-in-reference> t5 t6 t7']))


def test_seq2seq_task_bleu_sums_match_sacrebleu():
  """The eval step's path: predictions cut at EOS, targets by their mask, padding rows out."""
  eos, pad = 2, 0
  predictions = np.array([[5, 6, 7, 2, 0, 0], [5, 5, 5, 5, 5, 5], [8, 9, 2, 0, 0, 0],
                          [5, 6, 2, 0, 0, 0]])
  targets = np.array([[5, 6, 7, 8, 2, 0], [5, 9, 2, 0, 0, 0], [8, 9, 2, 0, 0, 0],
                      [9, 9, 9, 9, 9, 2]])
  batch = {'targets': targets, 'target_mask': (np.cumsum(targets == eos, 1) -
                                                (targets == eos)) == 0,
           'mask': np.array([True, True, True, False])}
  task = seq_tasks.Seq2Seq(bleu=True, eos_id=eos)
  sums = task.bleu_sums(jnp.asarray(predictions), batch, jnp.asarray(batch['mask'], jnp.float32))
  ours = bleu.bleu_from_sums({k: float(v) for k, v in sums.items()})
  hyps = ['t5 t6 t7', 't5 t5 t5 t5 t5 t5', 't8 t9']
  refs = ['t5 t6 t7 t8', 't5 t9', 't8 t9']
  assert ours == pytest.approx(_sacrebleu(hyps, refs), abs=1e-9)
  assert float(sums['bleu_ref_length']) == 8 and float(sums['bleu_hyp_length']) == 11
  del pad


def test_seq2seq_loss_with_integer_labels_equals_one_hot():
  rng = np.random.default_rng(0)
  logits = jnp.asarray(rng.normal(size=(3, 4, 11)), jnp.float32)
  targets = rng.integers(0, 11, (3, 4))
  mask = np.array([[1, 1, 1, 0], [1, 1, 0, 0], [1, 1, 1, 1]], bool)
  batch = {'targets': jnp.asarray(targets), 'target_mask': jnp.asarray(mask)}
  loss, _ = seq_tasks.Seq2Seq().loss_and_sums(logits, batch)
  reference = optax.softmax_cross_entropy(logits, jax.nn.one_hot(targets, 11))
  assert float(loss) == pytest.approx(float((reference * mask).sum() / mask.sum()), rel=1e-6)


# ---------------------------------------------------------------------------------------------
# Pipelines.


def _options(cls=translation.TranslationOptions, **values):
  """Options `cls` with short length limits and every token kept, then `values`."""
  return cls(**{'max_source_length': 16, 'max_target_length': 16, 'vocab_min_count': 1,
                **values})


def test_ding_prepare_and_pipeline_on_a_hand_built_dictionary(tmp_path):
  manual = write_dictd(tmp_path / 'manual')
  data_dir = str(tmp_path / 'tfds')
  logs = []
  prepare_lib.prepare_ding(data_dir, manual_dir=str(manual), fetch=False, log=logs.append,
                           verify=False)
  assert any('33 distinct' in line for line in logs)
  prepare_lib.prepare_ding(data_dir, manual_dir=str(manual), fetch=False, log=logs.append)
  assert 'nothing to do' in logs[-1]  # idempotent
  with pytest.raises(prepare_lib.PrepareError, match='33 example pairs, expected 55241'):
    prepare_lib.verify_ding(str(manual))
  dataset = translation.create_ding(_options(translation.DingOptions, eval_split='test'),
                                    data_dir=data_dir)
  splits = translation.split_pairs(translation.read_pairs(manual))
  assert list(dataset.facts.eval_pairs) == splits['test']
  assert len(dataset.train) == len(splits['train'])
  batch = dataset.eval.fetch(np.arange(len(dataset.eval)), None)
  vocab = dataset.facts.target_vocab
  for i, (_, german) in enumerate(dataset.facts.eval_pairs):
    tokens = translation.tokenize(german)
    n = len(tokens)
    assert batch['decoder_inputs'][i, 0] == translation.BOS_ID
    assert batch['targets'][i, n] == translation.EOS_ID and batch['target_mask'][i].sum() == n + 1
    assert list(batch['decoder_inputs'][i, 1:n + 1]) == list(batch['targets'][i, :n])
    assert translation.decode_ids(vocab, batch['targets'][i]) == [
        t if t in vocab.tokens else translation.UNK for t in tokens]
  assert dataset.facts.model_kwargs()['target_vocab_size'] == len(vocab)


def test_length_limits_drop_long_training_pairs_only(tmp_path):
  train = [('a b c', 'x y'), ('a b c d e f', 'x'), ('a', 'x y z w v')]
  dataset = translation.translation_dataset(
      train, [('a b c d e f g', 'x y z w v u')], _options(max_source_length=4,
                                                          max_target_length=3))
  assert len(dataset.train) == 1 and dataset.facts.dropped_train == 2
  batch = dataset.eval.fetch(np.array([0]), None)
  assert batch['input_lengths'][0] == 7 and batch['target_mask'][0].sum() == 7  # never cut
  assert set(dataset.facts.source_vocab.tokens[4:]) == {'a', 'b', 'c'}  # training pairs only


def test_tfds_pipeline_on_mock_ted_data():
  options = _options(translation.TfdsTranslationOptions, tfds_name='ted_hrlr_translate/pt_to_en',
                     source_language='pt', target_language='en')
  with tfds.testing.mock_data(num_examples=12):
    dataset = translation.create_tfds(options, data_dir='/nonexistent_tfds_dir')
    train_pairs = translation.load_split(
        tfds.builder('ted_hrlr_translate/pt_to_en'), 'train', 'pt', 'en')
  train_tokens = {t for _, en in train_pairs for t in translation.tokenize(en)}
  assert set(dataset.facts.target_vocab.tokens[4:]) <= train_tokens
  assert len(dataset.eval) == 12 and dataset.facts.model_kwargs()['vocab_size'] > 4
  batch = dataset.train.fetch(np.arange(4), None)
  assert set(batch) == {'inputs', 'input_lengths', 'decoder_inputs', 'targets', 'target_mask'}
  assert (batch['target_mask'].sum(1) >= 2).all()


def test_missing_data_errors_name_the_fix(tmp_path):
  with pytest.raises(DatasetNotFoundError, match='python -m data.prepare ding_en_de') as error:
    translation.create_ding(_options(translation.DingOptions), data_dir=str(tmp_path))
  assert '\n' not in str(error.value)
  wmt = _options(translation.TfdsTranslationOptions, tfds_name='wmt14_translate/de-en',
                 source_language='en', target_language='de')
  with pytest.raises(DatasetNotFoundError, match='tfds build wmt14_translate/de-en') as error:
    translation.create_tfds(wmt, data_dir=str(tmp_path))
  assert '\n' not in str(error.value)
  assert prepare_lib.main(['ding_en_de', f'--data_dir={tmp_path}', '--no_fetch']) == 1


def test_decoding_never_emits_banned_ids():
  import models
  model = models.create('seq2seq_tiny', vocab_size=9, max_decode_length=4)
  rng = np.random.default_rng(0)
  inputs = jnp.asarray(rng.integers(3, 9, (3, 4)), jnp.int32)
  lengths = jnp.array([4, 3, 1], jnp.int32)
  variables = jax.jit(functools.partial(model.init, train=False))(
      jax.random.PRNGKey(0), inputs, lengths, inputs)
  free = np.asarray(_apply(model, variables, inputs, lengths, method='greedy_decode')['tokens'])
  emitted = free[(free != translation.EOS_ID) & (free != translation.PAD_ID)]
  banned = int(np.bincount(emitted).argmax())  # the id greedy decoding emits most
  for method, kwargs in (('greedy_decode', {}), ('beam_search', {'beam_size': 2})):
    tokens = np.asarray(_apply(model, variables, inputs, lengths, never_emit=(banned,),
                               method=method, **kwargs)['tokens'])
    assert banned not in tokens
