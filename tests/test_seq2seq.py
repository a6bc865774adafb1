"""Tests of Luong attention, the seq2seq model and its decoding, the synthetic data and the task."""

import datetime
import functools
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import models
from configs import addition_seq2seq
from data import synthetic
from models import decoding, seq2seq
from models.attention import LuongAttention
from train import seq_tasks
from train import trainer
from compiled_apply import apply as _apply

TOL = dict(rtol=1e-5, atol=1e-5)


def _rng(seed=0):
  return np.random.default_rng(seed)



def _softmax(x):
  e = np.exp(x - x.max(-1, keepdims=True))
  return e / e.sum(-1, keepdims=True)


# Attention.


@pytest.mark.parametrize('score', ['dot', 'general', 'concat'])
def test_attention_matches_numpy(score):
  batch, source, size = 2, 5, 4
  rng = _rng(1)
  query = rng.standard_normal((batch, size)).astype(np.float32)
  memory = rng.standard_normal((batch, source, size)).astype(np.float32)
  mask = np.array([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0]], bool)
  layer = LuongAttention(score)
  variables = layer.init(jax.random.PRNGKey(0), query, memory, mask)
  context, weights = _apply(layer, variables, query, memory, mask)
  p = variables.get('params', {})
  expected_scores = np.zeros((batch, source), np.float32)
  for b in range(batch):
    for i in range(source):
      s, h = query[b], memory[b, i]
      if score == 'dot':
        expected_scores[b, i] = s @ h
      elif score == 'general':
        expected_scores[b, i] = s @ np.asarray(p['W']) @ h
      else:
        w = np.concatenate([np.asarray(p['W_query']), np.asarray(p['W_memory'])])  # W [s; h]
        expected_scores[b, i] = np.asarray(p['v'])[:, 0] @ np.tanh(np.concatenate([s, h]) @ w)
  expected = np.stack([_softmax(expected_scores[0]),
                       np.concatenate([_softmax(expected_scores[1, :2]), np.zeros(3)])])
  np.testing.assert_allclose(weights, expected, **TOL)
  np.testing.assert_allclose(context, np.einsum('bs,bsd->bd', expected, memory), **TOL)
  assert (np.asarray(weights)[1, 2:] == 0.0).all()  # masked: exactly zero
  np.testing.assert_allclose(np.asarray(weights).sum(-1), 1.0, rtol=1e-6)
  # All target steps at once give the same as one step at a time; precomputed keys too.
  queries = rng.standard_normal((batch, 3, size)).astype(np.float32)
  context_all, weights_all = _apply(layer, variables, queries, memory, mask)
  keys = _apply(layer, variables, memory, method='precompute')
  for t in range(3):
    c, w = _apply(layer, variables, queries[:, t], memory, mask, keys)
    np.testing.assert_allclose(weights_all[:, t], w, **TOL)
    np.testing.assert_allclose(context_all[:, t], c, **TOL)


def test_attention_rejects_unknown_score_and_size_mismatch():
  with pytest.raises(ValueError, match='score'):
    LuongAttention('additive').init(jax.random.PRNGKey(0), jnp.zeros((1, 2)), jnp.zeros((1, 3, 2)))
  with pytest.raises(ValueError, match='query size'):
    LuongAttention('dot').init(jax.random.PRNGKey(0), jnp.zeros((1, 2)), jnp.zeros((1, 3, 4)))


# The model.

VOCAB = 12


def _batch(seed=0, batch=3, source=6, target=5):
  rng = _rng(seed)
  lengths = np.array([source, 3, 1][:batch], np.int32)
  inputs = rng.integers(3, VOCAB, (batch, source)).astype(np.int32)
  inputs[np.arange(source)[None, :] >= lengths[:, None]] = synthetic.PAD
  decoder_inputs = rng.integers(3, VOCAB, (batch, target)).astype(np.int32)
  decoder_inputs[:, 0] = synthetic.BOS
  return inputs, lengths, decoder_inputs


@functools.lru_cache(maxsize=None)
def _model(**kwargs):
  model = seq2seq.Seq2Seq(vocab_size=VOCAB, embed_dim=8, hidden_size=8, **kwargs)
  inputs, lengths, decoder_inputs = _batch()
  variables = jax.jit(model.init)(jax.random.PRNGKey(0), inputs, lengths, decoder_inputs)
  # Sharpen the output distribution so that decoding choices are not near-ties.
  params = variables['params']
  params['output_projection']['kernel'] = params['output_projection']['kernel'] * 8.0
  return model, variables


def _sequence_log_prob(model, variables, inputs, lengths, tokens):
  """Teacher-forced log p(tokens | inputs), summed up to and including the first EOS."""
  decoder_inputs = np.concatenate([np.full((len(tokens), 1), synthetic.BOS), tokens[:, :-1]],
                                  1).astype(np.int32)
  logits, _ = _apply(model, variables, inputs, lengths, decoder_inputs, return_attention=True)
  log_probs = np.asarray(jax.nn.log_softmax(logits))
  picked = np.take_along_axis(log_probs, np.asarray(tokens)[..., None], -1)[..., 0]
  is_eos = np.asarray(tokens) == synthetic.EOS
  first_eos = np.where(is_eos.any(-1), is_eos.argmax(-1), tokens.shape[1] - 1)
  valid = np.arange(tokens.shape[1])[None, :] <= first_eos[:, None]
  return (picked * valid).sum(-1)


MODEL_VARIANTS = [
    dict(attention='dot'),  # input feeding: attention inside the training scan
    dict(attention='general', input_feeding=False, bidirectional_encoder=True, num_layers=2),
    dict(attention=None, cell_type='gru'),
]


@pytest.mark.parametrize('kwargs', MODEL_VARIANTS, ids=lambda k: '-'.join(map(str, k.values())))
def test_greedy_decoding_agrees_with_teacher_forcing(kwargs):
  """The decoding scan and the teacher-forced forward are the same model: greedy's log-prob of
  its own output equals the teacher-forced score of that output, and each greedy token is the
  argmax of the teacher-forced logits given the greedy prefix."""
  model, variables = _model(**kwargs)
  inputs, lengths, _ = _batch()
  out = _apply(model, variables, inputs, lengths, max_length=6, method='greedy_decode')
  tokens = np.asarray(out['tokens'])
  assert tokens.shape == (3, 6) and out['attention'].shape == (3, 6, 6)
  np.testing.assert_allclose(out['log_prob'],
                             _sequence_log_prob(model, variables, inputs, lengths, tokens), **TOL)
  decoder_inputs = np.concatenate([np.full((3, 1), synthetic.BOS), tokens[:, :-1]], 1)
  decoder_inputs = decoder_inputs.astype(np.int32)
  logits, weights = _apply(model, variables, inputs, lengths, decoder_inputs,
                                return_attention=True)
  valid = np.arange(6)[None, :] < np.asarray(out['lengths'])[:, None]
  allowed = np.asarray(logits).copy()
  allowed[..., [synthetic.PAD, synthetic.BOS]] = -np.inf  # never emitted
  np.testing.assert_array_equal(np.where(valid, np.argmax(allowed, -1), 0),
                                np.where(valid, tokens, 0))
  np.testing.assert_allclose(np.where(valid[..., None], weights, 0),
                             np.where(valid[..., None], out['attention'], 0), **TOL)
  if kwargs['attention']:
    np.testing.assert_allclose(np.asarray(weights).sum(-1), 1.0, rtol=1e-5)
    assert (np.asarray(weights)[1, :, 3:] == 0).all()  # source padding gets no attention


def test_source_padding_does_not_change_outputs():
  model, variables = _model(attention='dot')
  inputs, lengths, decoder_inputs = _batch()
  padded = np.concatenate([inputs, np.zeros((3, 4), np.int32)], axis=1)
  logits = _apply(model, variables, inputs, lengths, decoder_inputs)
  logits_padded, weights = _apply(model, variables, padded, lengths, decoder_inputs,
                                       return_attention=True)
  np.testing.assert_allclose(logits, logits_padded, **TOL)
  assert weights.shape == (3, 5, 10)


def test_beam_search_of_width_one_is_greedy():
  model, variables = _model(attention='dot')
  inputs, lengths, _ = _batch(seed=2)
  greedy = _apply(model, variables, inputs, lengths, max_length=6, method='greedy_decode')
  beam = _apply(model, variables, inputs, lengths, beam_size=1, alpha=0.0, max_length=6,
                     method='beam_search')
  np.testing.assert_array_equal(beam['tokens'], greedy['tokens'])
  np.testing.assert_allclose(beam['log_prob'][:, 0], greedy['log_prob'], **TOL)


@pytest.mark.parametrize('alpha', [0.0, 0.6])
def test_beam_search_scores_at_least_greedy(alpha):
  model, variables = _model(attention='dot')
  inputs, lengths, _ = _batch(seed=3)
  greedy = _apply(model, variables, inputs, lengths, max_length=6, method='greedy_decode')
  beam = _apply(model, variables, inputs, lengths, beam_size=4, alpha=alpha, max_length=6,
                     method='beam_search')
  beams = np.asarray(beam['beams'])
  assert beams.shape == (3, 4, 6)
  scores = np.asarray(beam['scores'])
  assert (np.diff(scores, axis=1) <= 0).all()  # best first
  # The reported log-probabilities are the model's own (teacher-forced) scores of the beams.
  for k in range(4):
    real = scores[:, k] > -1e29
    np.testing.assert_allclose(
        np.asarray(beam['log_prob'])[real, k],
        _sequence_log_prob(model, variables, inputs, lengths, beams[:, k])[real], **TOL)
  greedy_lengths = np.asarray(greedy['lengths'])
  greedy_score = np.asarray(greedy['log_prob']) / np.asarray(
      decoding.length_penalty(greedy_lengths, alpha))
  finished = (np.asarray(greedy['tokens']) == synthetic.EOS).any(-1)
  assert finished.any()
  assert (scores[finished, 0] >= greedy_score[finished] - 1e-5).all()
  # Finished beams end with EOS and are PAD afterwards.
  for b in range(3):
    for k in range(4):
      row = beams[b, k]
      if scores[b, k] > -1e29 and (row == synthetic.EOS).any():
        end = int(np.argmax(row == synthetic.EOS))
        assert (row[end + 1:] == synthetic.PAD).all() and (row[:end] > synthetic.EOS).all()


def test_decoding_stops_at_eos():
  model, variables = _model(attention='dot')
  params = jax.tree.map(lambda x: x, variables['params'])
  inputs, lengths, _ = _batch()
  # EOS always wins: one token, then PAD.
  bias = np.zeros(VOCAB, np.float32)
  bias[synthetic.EOS] = 1e4
  eos_params = {**params, 'output_projection': {**params['output_projection'],
                                                'bias': jnp.asarray(bias)}}
  out = _apply(model, {'params': eos_params}, inputs, lengths, max_length=6, method='greedy_decode')
  np.testing.assert_array_equal(out['tokens'], [[synthetic.EOS, 0, 0, 0, 0, 0]] * 3)
  np.testing.assert_array_equal(out['lengths'], [1, 1, 1])
  beam = _apply(model, {'params': eos_params}, inputs, lengths, beam_size=4, alpha=0.6,
                max_length=6, method='beam_search')
  np.testing.assert_array_equal(beam['tokens'], [[synthetic.EOS, 0, 0, 0, 0, 0]] * 3)
  # An ordinary model: everything after the first EOS is PAD.
  out = _apply(model, variables, inputs, lengths, max_length=6, method='greedy_decode')
  for row, n in zip(np.asarray(out['tokens']), np.asarray(out['lengths'])):
    if (row == synthetic.EOS).any():
      assert row[n - 1] == synthetic.EOS and (row[n:] == synthetic.PAD).all()


def test_registry_and_every_parameter_gets_a_gradient():
  for name in ('seq2seq', 'seq2seq_attention', 'seq2seq_attention_general',
               'seq2seq_attention_concat', 'seq2seq_gru_attention', 'seq2seq_tiny'):
    assert name in models.names()
  model = models.create('seq2seq_tiny', vocab_size=VOCAB)
  inputs, lengths, decoder_inputs = _batch()
  variables = jax.jit(model.init)(jax.random.PRNGKey(0), inputs, lengths, decoder_inputs)

  @jax.jit
  def grads(params):
    return jax.grad(lambda p: (_apply(model, {'params': p}, inputs, lengths, decoder_inputs,
                                           train=True, rngs={'dropout': jax.random.PRNGKey(1)})
                               ** 2).sum())(params)

  for path, g in jax.tree_util.tree_leaves_with_path(grads(variables['params'])):
    assert np.abs(np.asarray(g)).max() > 0, jax.tree_util.keystr(path)


# Data.


def _options(create, **kwargs):
  """The options dataclass of synthetic pipeline `create`, with `kwargs`."""
  import typing
  return typing.get_type_hints(create)['options'](**kwargs)


@pytest.mark.parametrize('create, options', [
    (synthetic.create_addition, dict(num_digits=2)),
    (synthetic.create_reversal, dict(min_length=2, max_length=12, alphabet_size=6)),
    (synthetic.create_dates, {}),
])
def test_synthetic_data_is_deterministic_held_out_and_correct(create, options):
  config = _options(create, train_size=3000, test_size=300, data_seed=5, **options)
  dataset = create(config)
  again = create(config)
  vocab = dataset.facts.vocab
  assert len(dataset.train) == 3000 and len(dataset.eval) == 300
  train = dataset.train.fetch(np.arange(3000), None)
  test = dataset.eval.fetch(np.arange(300), None)
  for name, array in train.items():
    np.testing.assert_array_equal(array, again.train.fetch(np.arange(3000), None)[name])
  assert train['inputs'].dtype == np.int32 and train['targets'].dtype == np.int32
  # Held out: no test source appears in training, and no source repeats.
  train_sources = {vocab.decode(row) for row in train['inputs']}
  test_sources = [vocab.decode(row) for row in test['inputs']]
  assert len(train_sources) == 3000 and len(set(test_sources)) == 300
  assert not train_sources & set(test_sources)
  # Both splits follow the same distribution (the held-out set is a random subset).
  # (Splitting by drawing order would put ~20% one-digit sums in the test set and ~1% in training.)
  bins = train['inputs'].shape[1] + 1
  histograms = [np.bincount(split['input_lengths'], minlength=bins) / len(split['input_lengths'])
                for split in (train, test)]
  assert np.abs(histograms[0] - histograms[1]).max() < 0.08
  # A different data seed gives different problems.
  other = create(_options(create, train_size=3000, test_size=300, data_seed=6, **options))
  assert not np.array_equal(other.eval.fetch(np.arange(300), None)['inputs'], test['inputs'])
  # Layout: decoder inputs are BOS + target, targets are target + EOS, masks and lengths agree.
  n = train['input_lengths']
  assert ((train['inputs'] != synthetic.PAD).sum(1) == n).all()
  assert (train['decoder_inputs'][:, 0] == synthetic.BOS).all()
  shifted = train['targets'][:, :-1]
  np.testing.assert_array_equal(train['decoder_inputs'][:, 1:],
                                np.where(shifted == synthetic.EOS, synthetic.PAD, shifted))
  target_lengths = train['target_mask'].sum(1)
  assert (train['targets'][np.arange(3000), target_lengths - 1] == synthetic.EOS).all()
  assert (train['targets'][~train['target_mask']] == synthetic.PAD).all()
  meta = dataset.facts.model_kwargs()
  assert meta['vocab_size'] == len(vocab) and meta['max_decode_length'] == train['targets'].shape[1]
  # The answers are right.
  for row_in, row_out in zip(test['inputs'][:100], test['targets'][:100]):
    source, target = vocab.decode(row_in), vocab.decode(row_out)
    if create is synthetic.create_addition:
      a, b = source.split('+')
      assert int(target) == int(a) + int(b) and len(a) <= 3 and len(b) <= 3
    elif create is synthetic.create_reversal:
      assert target == source[::-1] and 2 <= len(source) <= 12 and set(source) <= set('abcdef')
    else:
      expected = datetime.date.fromisoformat(target)
      assert str(expected.day) in source
      assert (str(expected.year) in source or
              source.endswith(f'/{expected.year % 100:02d}'))


def test_vocabulary_round_trip_and_errors():
  vocab = synthetic.Vocabulary('0123456789+')
  ids, lengths = vocab.encode(['12+3', '7'], 6)
  np.testing.assert_array_equal(lengths, [4, 1])
  assert ids[1, 1:].tolist() == [0] * 5 and vocab.decode(ids[0]) == '12+3'
  with pytest.raises(ValueError, match='not in the vocabulary'):
    vocab.encode(['1-2'], 6)
  with pytest.raises(ValueError, match='longer'):
    vocab.encode(['1234567'], 6)
  with pytest.raises(ValueError, match='distinct'):
    synthetic.create_addition(synthetic.AdditionOptions(num_digits=1, train_size=200, test_size=10))


# The task and the trainer.


def test_task_metrics_by_hand():
  task = seq_tasks.Seq2Seq()
  targets = np.array([[5, 6, 2, 0], [7, 2, 0, 0], [5, 2, 0, 0]], np.int32)
  target_mask = targets != 0
  targets[target_mask.sum(1) - 1 < 0] = 0
  batch = {'targets': jnp.asarray(targets), 'target_mask': jnp.asarray(target_mask),
           'mask': jnp.asarray([True, True, False])}
  predictions = np.array([[5, 6, 2, 0], [7, 3, 2, 0], [5, 2, 0, 0]], np.int32)
  logits = jax.nn.one_hot(targets, 8) * 10.0  # teacher-forced: all right
  _, sums = task.loss_and_sums({'logits': logits, 'predictions': jnp.asarray(predictions)}, batch)
  metrics = task.finalize({k: float(v) for k, v in sums.items()})
  assert sums['count'] == 2 and sums['tokens'] == 5  # the third example is padding
  assert metrics['exact_match'] == 0.5  # the second stops one token late
  assert metrics['token_accuracy'] == pytest.approx(4 / 5)
  assert metrics['accuracy'] == 1.0 and metrics['loss'] < 1e-3


def test_tiny_seq2seq_trains_through_the_trainer(tmp_path):
  config = addition_seq2seq.get_config()
  with config.unlocked():
    config.data.num_digits = 2
    config.data.train_size, config.data.test_size = 256, 40
    config.model = 'seq2seq_tiny'
    config.model_kwargs = {}
    config.batch_size = 32
    config.eval_batch_size = 32  # 40 test problems: the last batch is padded and masked
    config.num_train_steps = 4
    config.warmup_steps = 0
    config.log_every_steps = 2
    config.eval_every_steps = 2
    config.checkpoint_every_steps = 4
  final = trainer.train_and_evaluate(config, str(tmp_path))
  assert 0.0 <= final['eval_exact_match'] <= 1.0
  assert final['eval_loss'] > 0 and 0.0 <= final['eval_token_accuracy'] <= 1.0
  with open(os.path.join(tmp_path, 'metrics.jsonl')) as f:
    rows = [json.loads(line) for line in f]
  assert [r['step'] for r in rows if 'eval_exact_match' in r] == [2, 4]
  assert any('train_loss' in r for r in rows)
