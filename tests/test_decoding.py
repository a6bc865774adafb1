"""Tests of models/decoding.py: the stacked-cell step, greedy decoding and beam search, both on a
pure toy decoder (against NumPy and brute force) and through seq2seq and captioning models
(against plain-Python decoders that call the model's own `decode_step` one hypothesis at a time).
"""

import itertools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import models
from models import decoding, rnn

PAD, BOS, EOS = 0, 1, 2


def _log_softmax(x):
  x = np.asarray(x, np.float64)
  x = x - x.max(-1, keepdims=True)
  return x - np.log(np.exp(x).sum(-1, keepdims=True))


def _penalty(length, alpha):
  return ((5.0 + length) / 6.0) ** alpha


# Plain-Python reference decoders over one example: `step(state, token) -> (state, logits
# [vocab], extras)`, where `state` is whatever the step wants (never batched, never gathered).


def reference_greedy(step, state, max_length, banned):
  token, finished, log_prob, tokens, extras = BOS, False, 0.0, [], []
  for _ in range(max_length):
    state, logits, extra = step(state, token)
    log_probs = _log_softmax(logits)
    allowed = log_probs.copy()
    allowed[list(banned)] = -np.inf
    token = int(np.argmax(allowed))
    if finished:
      token = PAD
    else:
      log_prob += log_probs[token]
    finished = finished or token == EOS
    tokens.append(token)
    extras.append(extra)
  length = tokens.index(EOS) + 1 if EOS in tokens else max_length
  return tokens, length, log_prob, extras


def reference_beam(step, state, beam_size, max_length, alpha, banned):
  """Returns [(score, log_prob, tokens padded to max_length, length)], best first."""
  hypotheses = [(0.0, [], state)]  # log_prob, tokens, state after the last token
  for position in range(max_length):
    candidates = []
    for log_prob, tokens, state in hypotheses:
      if EOS in tokens:
        candidates.append((log_prob, tokens, state))
        continue
      new_state, logits, _ = step(state, tokens[-1] if tokens else BOS)
      log_probs = _log_softmax(logits)
      for token in range(len(log_probs)):
        if token not in banned:
          candidates.append((log_prob + log_probs[token], tokens + [token], new_state))

    def score(candidate):
      tokens = candidate[1]
      length = tokens.index(EOS) + 1 if EOS in tokens else position + 1
      return candidate[0] / _penalty(length, alpha)

    hypotheses = sorted(candidates, key=score, reverse=True)[:beam_size]
  out = []
  for log_prob, tokens, _ in hypotheses:
    length = tokens.index(EOS) + 1 if EOS in tokens else max_length
    out.append((log_prob / _penalty(length, alpha), log_prob,
                tokens + [PAD] * (max_length - len(tokens)), length))
  return out


def _check_beams(result, expected_per_example, rtol=1e-5, atol=1e-5):
  """The drivers' beam dict against the reference's lists (only real hypotheses compared)."""
  for b, expected in enumerate(expected_per_example):
    n = len(expected)
    assert (np.asarray(result['scores'])[b, n:] < -1e29).all()
    np.testing.assert_array_equal(np.asarray(result['beams'])[b, :n], [e[2] for e in expected])
    np.testing.assert_allclose(np.asarray(result['scores'])[b, :n], [e[0] for e in expected],
                               rtol=rtol, atol=atol)
    np.testing.assert_allclose(np.asarray(result['log_prob'])[b, :n], [e[1] for e in expected],
                               rtol=rtol, atol=atol)
    np.testing.assert_array_equal(result['tokens'][b], expected[0][2])
    assert int(result['lengths'][b]) == expected[0][3]


# A pure toy decoder: h' = tanh(h W + E[token] + context), logits = h' U.


def _toy(vocab, hidden=6, seed=0, scale=3.0):
  rng = np.random.default_rng(seed)
  return {'E': rng.standard_normal((vocab, hidden)).astype(np.float32),
          'W': (rng.standard_normal((hidden, hidden)) / np.sqrt(hidden)).astype(np.float32),
          'U': (scale * rng.standard_normal((hidden, vocab))).astype(np.float32)}


def _toy_step(params):
  def step(module, h, tokens, context):
    assert module is None
    h = jnp.tanh(h @ params['W'] + jnp.asarray(params['E'])[tokens] + context)
    return h, h @ params['U'], h
  return step


def _toy_numpy_step(params, context):
  p = {k: v.astype(np.float64) for k, v in params.items()}

  def step(h, token):
    h = np.tanh(h @ p['W'] + p['E'][token] + context)
    return h, h @ p['U'], h
  return step


def test_greedy_decode_matches_a_numpy_loop():
  vocab, batch, length = 7, 5, 6
  params = _toy(vocab)
  rng = np.random.default_rng(1)
  h0 = rng.standard_normal((batch, 6)).astype(np.float32)
  context = rng.standard_normal((batch, 6)).astype(np.float32)
  banned = (PAD, BOS, 5)
  out = jax.jit(lambda h0, c: decoding.greedy_decode(
      _toy_step(params), h0, batch_size=batch, max_length=length, bos_id=BOS, pad_id=PAD,
      eos_id=EOS, bias=decoding.never_emit_bias(vocab, banned), context=c))(h0, context)
  assert out['tokens'].shape == (batch, length) and out['tokens'].dtype == jnp.int32
  assert out['extras'].shape == (batch, length, 6)
  ended = 0
  for b in range(batch):
    tokens, n, log_prob, extras = reference_greedy(
        _toy_numpy_step(params, context[b].astype(np.float64)), h0[b].astype(np.float64),
        length, banned)
    np.testing.assert_array_equal(out['tokens'][b], tokens)
    assert int(out['lengths'][b]) == n
    np.testing.assert_allclose(out['log_prob'][b], log_prob, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out['extras'][b], np.stack(extras), rtol=1e-5, atol=1e-5)
    assert 5 not in tokens
    ended += EOS in tokens
  assert 0 < ended  # the EOS handling was exercised


def test_beam_search_as_wide_as_every_hypothesis_is_exact_search():
  """16 beams over the 3 emittable tokens {EOS, 3, 4} for 3 steps hold every hypothesis (15):
  the result is all of them, ranked by the length-normalised probability computed by brute
  force."""
  vocab, batch, length, alpha = 16, 2, 3, 0.6
  params = _toy(vocab, seed=2, scale=1.5)
  rng = np.random.default_rng(3)
  h0 = rng.standard_normal((batch, 6)).astype(np.float32)
  context = rng.standard_normal((batch, 6)).astype(np.float32)
  banned = [i for i in range(vocab) if i not in (EOS, 3, 4)]
  out = decoding.beam_search(
      _toy_step(params), h0, batch_size=batch, beam_size=vocab, max_length=length, alpha=alpha,
      bos_id=BOS, pad_id=PAD, eos_id=EOS, bias=decoding.never_emit_bias(vocab, banned),
      context=context)
  for b in range(batch):
    step = _toy_numpy_step(params, context[b].astype(np.float64))
    every = []
    for n in range(1, length + 1):
      for body in itertools.product((3, 4), repeat=n - 1):
        for last in ((EOS, 3, 4) if n == length else (EOS,)):
          tokens = list(body) + [last]
          h, log_prob, previous = h0[b].astype(np.float64), 0.0, BOS
          for token in tokens:
            h, logits, _ = step(h, previous)
            log_prob += _log_softmax(logits)[token]
            previous = token
          every.append((log_prob / _penalty(n, alpha), log_prob,
                        tokens + [PAD] * (length - n), n))
    assert len(every) == 15
    _check_beams({k: v[b:b + 1] for k, v in out.items()}, [sorted(every, reverse=True)])


@pytest.mark.parametrize('beam_size, alpha', [(3, 1.0), (4, 1.0), (4, 0.0), (1, 1.0)])
def test_beam_search_matches_a_python_beam_search(beam_size, alpha):
  vocab, batch, length = 8, 3, 6
  params = _toy(vocab, seed=7, scale=1.5)  # (alpha 1: the length penalty changes the ranking)
  rng = np.random.default_rng(5)
  h0 = rng.standard_normal((batch, 6)).astype(np.float32)
  context = rng.standard_normal((batch, 6)).astype(np.float32)
  banned = (PAD, BOS, 6)
  out = jax.jit(lambda h0, c: decoding.beam_search(
      _toy_step(params), h0, batch_size=batch, beam_size=beam_size, max_length=length,
      alpha=alpha, bos_id=BOS, pad_id=PAD, eos_id=EOS,
      bias=decoding.never_emit_bias(vocab, banned), context=c))(h0, context)
  assert out['beams'].shape == (batch, beam_size, length)
  expected = [reference_beam(_toy_numpy_step(params, context[b].astype(np.float64)),
                             h0[b].astype(np.float64), beam_size, length, alpha, banned)
              for b in range(batch)]
  _check_beams(out, expected)
  if beam_size == 1:  # one beam is greedy decoding
    greedy = decoding.greedy_decode(
        _toy_step(params), h0, batch_size=batch, max_length=length, bos_id=BOS, pad_id=PAD,
        eos_id=EOS, bias=decoding.never_emit_bias(vocab, banned), context=context)
    np.testing.assert_array_equal(out['tokens'], greedy['tokens'])


def test_beam_wider_than_the_vocabulary_is_an_error_and_bias_and_helpers_by_hand():
  params = _toy(4)
  with pytest.raises(ValueError, match='larger than the vocabulary'):
    decoding.beam_search(_toy_step(params), jnp.zeros((1, 6)), batch_size=1, beam_size=5,
                         max_length=2, alpha=0.0, bos_id=BOS, pad_id=PAD, eos_id=EOS,
                         bias=decoding.never_emit_bias(4, ()), context=jnp.zeros((1, 6)))
  np.testing.assert_array_equal(decoding.never_emit_bias(5, (0, 3, 9, -1)),
                                np.array([-1e30, 0, 0, -1e30, 0], np.float32))
  np.testing.assert_array_equal(
      decoding.sequence_lengths(jnp.array([[3, 2, 0], [3, 4, 5], [2, 0, 0]]), EOS), [2, 3, 1])
  assert float(decoding.length_penalty(7, 0.5)) == pytest.approx(np.sqrt(2.0))
  x = jnp.arange(6).reshape(2, 3)
  tiled = decoding.tile(x, 2)
  np.testing.assert_array_equal(tiled, [[0, 1, 2], [0, 1, 2], [3, 4, 5], [3, 4, 5]])
  picked = decoding.gather_beams(jnp.arange(4) * 10, jnp.array([[1, 1], [1, 0]]), 2, 2)
  np.testing.assert_array_equal(picked, [10, 10, 30, 20])


# The stacked-cell step.


class _Stack(nn.Module):
  cell_type: str = 'lstm'

  @nn.compact
  def __call__(self, carries, x, projected=False):
    cells = [rnn.make_cell(self.cell_type, 4, name=f'cell{i}') for i in range(2)]
    if projected:
      x = cells[0].project(x) + 1.0  # an extra term added to the projection, as input feeding
    return decoding.step_cells(cells, carries, x, projected=projected, between=lambda h: 0.5 * h)


def _numpy_lstm(p, carry, x, extra=0.0):
  h, c = carry
  z = x @ p['input_projection']['kernel'] + p['input_projection']['bias'] + extra
  i, f, g, o = np.split(z + h @ p['recurrent_kernel'], 4, axis=-1)
  sig = lambda v: 1 / (1 + np.exp(-v))
  c = sig(f) * c + sig(i) * np.tanh(g)
  return (sig(o) * np.tanh(c), c)


@pytest.mark.parametrize('projected', [False, True])
def test_step_cells_matches_numpy_with_dropout_stand_in_between_layers(projected):
  rng = np.random.default_rng(6)
  x = rng.standard_normal((3, 5)).astype(np.float32)
  carries = tuple((rng.standard_normal((3, 4)).astype(np.float32),
                   rng.standard_normal((3, 4)).astype(np.float32)) for _ in range(2))
  module = _Stack()
  variables = module.init(jax.random.PRNGKey(0), carries, x, projected)
  new, top = module.apply(variables, carries, x, projected)
  p = jax.tree.map(lambda a: np.asarray(a, np.float64), variables['params'])
  first = _numpy_lstm(p['cell0'], carries[0], x, 1.0 if projected else 0.0)
  second = _numpy_lstm(p['cell1'], carries[1], 0.5 * first[0])
  for got, want in zip(jax.tree.leaves(new), jax.tree.leaves((first, second))):
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(top, second[0], rtol=1e-5, atol=1e-5)


# Through the models, against the reference decoders calling the model's own decode_step.


def _one(tree, b):
  return jax.tree.map(lambda a: a[b:b + 1], tree)


def _model_step(model, variables, context):
  """A reference `step` for one example from the model's `decode_step` (batch of one)."""
  apply = jax.jit(lambda v, s, t, c: model.apply(v, s, t, c, method='decode_step'))

  def step(state, token):
    state, logits, extra = apply(variables, state, jnp.array([token], jnp.int32), context)
    return state, np.asarray(logits)[0], None if extra is None else np.asarray(extra)[0]
  return step


SEQ2SEQ_VARIANTS = [dict(attention='dot'),
                    dict(attention=None, cell_type='gru', num_layers=2, bidirectional_encoder=True)]


@pytest.mark.parametrize('kwargs', SEQ2SEQ_VARIANTS, ids=['dot', 'gru2-bi-noattention'])
def test_seq2seq_decoding_matches_reference_decoders(kwargs):
  model = models.create('seq2seq', vocab_size=12, embed_dim=8, hidden_size=8, **kwargs)
  rng = np.random.default_rng(0)
  lengths = np.array([6, 3, 1], np.int32)
  inputs = rng.integers(3, 12, (3, 6)).astype(np.int32)
  inputs[np.arange(6)[None] >= lengths[:, None]] = PAD
  variables = jax.jit(model.init)(jax.random.PRNGKey(0), inputs, lengths, inputs[:, :4])
  variables['params']['output_projection']['kernel'] *= 8.0  # no near-ties
  greedy, beam = jax.jit(lambda v: (
      model.apply(v, inputs, lengths, max_length=6, never_emit=(5,), method='greedy_decode'),
      model.apply(v, inputs, lengths, beam_size=3, alpha=0.6, max_length=6, never_emit=(5,),
                  method='beam_search')))(variables)
  encoded = model.apply(variables, inputs, lengths, method='encode')
  banned = (PAD, BOS, 5)
  expected_beams = []
  for b in range(3):
    context = _one(encoded, b)
    start = model.apply(variables, context, method='decode_start')
    step = _model_step(model, variables, context)
    tokens, n, log_prob, weights = reference_greedy(step, start, 6, banned)
    np.testing.assert_array_equal(greedy['tokens'][b], tokens)
    assert int(greedy['lengths'][b]) == n
    np.testing.assert_allclose(greedy['log_prob'][b], log_prob, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(greedy['attention'][b], np.stack(weights), rtol=1e-5, atol=1e-5)
    expected_beams.append(reference_beam(step, start, 3, 6, 0.6, banned))
  _check_beams(beam, expected_beams)


@pytest.mark.parametrize('kwargs', [{}, dict(image_as='state', num_layers=2)],
                         ids=['image-input', 'image-state-2-layers'])
def test_caption_decoding_matches_reference_decoders(kwargs):
  model = models.create('caption_tiny', **kwargs)
  images = np.random.default_rng(1).standard_normal((3, 8, 40, 1)).astype(np.float32)
  variables = jax.jit(model.init)(jax.random.PRNGKey(0), images, np.ones((3, 4), np.int32))
  variables['params']['output_projection']['kernel'] *= 20.0  # no near-ties
  greedy, beam = jax.jit(lambda v: (
      model.apply(v, images, max_length=6, method='greedy_decode'),
      model.apply(v, images, beam_size=4, alpha=0.6, max_length=6, method='beam_search')))(
          variables)
  image_vector = model.apply(variables, images, method='encode')
  expected_beams = []
  for b in range(3):
    start = model.apply(variables, image_vector[b:b + 1], method='decode_start')
    step = _model_step(model, variables, None)
    tokens, n, log_prob, _ = reference_greedy(step, start, 6, (PAD, BOS))
    np.testing.assert_array_equal(greedy['tokens'][b], tokens)
    assert int(greedy['lengths'][b]) == n
    np.testing.assert_allclose(greedy['log_prob'][b], log_prob, rtol=1e-5, atol=1e-5)
    expected_beams.append(reference_beam(step, start, 4, 6, 0.6, (PAD, BOS)))
  _check_beams(beam, expected_beams)


# Parameter trees (checkpoints of the models from before decoding was shared still load).

_TREES = {
    'seq2seq_attention': {
        'combine/kernel': (16, 8), 'feed_projection/kernel': (8, 32),
        'decoder_cells_0/input_projection/bias': (32,),
        'decoder_cells_0/input_projection/kernel': (8, 32),
        'decoder_cells_0/recurrent_kernel': (8, 32),
        'encoder/l0/input_projection/bias': (32,), 'encoder/l0/input_projection/kernel': (8, 32),
        'encoder/l0/recurrent_kernel': (8, 32), 'output_projection/bias': (12,),
        'output_projection/kernel': (8, 12), 'source_embedding/embedding': (12, 8),
        'target_embedding/embedding': (12, 8)},
    'seq2seq': {
        'decoder_cells_0/input_projection/bias': (32,),
        'decoder_cells_0/input_projection/kernel': (8, 32),
        'decoder_cells_0/recurrent_kernel': (8, 32),
        'encoder/l0/input_projection/bias': (32,), 'encoder/l0/input_projection/kernel': (8, 32),
        'encoder/l0/recurrent_kernel': (8, 32), 'output_projection/bias': (12,),
        'output_projection/kernel': (8, 12), 'source_embedding/embedding': (12, 8),
        'target_embedding/embedding': (12, 8)},
    'caption_lstm': {  # the decoder's part (the encoder is models.cnn.VGG's)
        'cells_0/input_projection/bias': (1024,), 'cells_0/input_projection/kernel': (128, 1024),
        'cells_0/recurrent_kernel': (256, 1024), 'embedding/embedding': (13, 128),
        'output_projection/bias': (13,), 'output_projection/kernel': (256, 13)},
    'lstm_forecaster': {
        'decoder_cells_0/input_projection/bias': (256,),
        'decoder_cells_0/input_projection/kernel': (2, 256),
        'decoder_cells_0/recurrent_kernel': (64, 256),
        'encoder/l0/input_projection/bias': (256,), 'encoder/l0/input_projection/kernel': (2, 256),
        'encoder/l0/recurrent_kernel': (64, 256), 'output_layer/bias': (1,),
        'output_layer/kernel': (64, 1)},
}


@pytest.mark.parametrize('name', sorted(_TREES))
def test_parameter_trees_are_unchanged(name):
  key = jax.random.PRNGKey(0)
  if name.startswith('seq2seq'):
    model = models.create(name, vocab_size=12, embed_dim=8, hidden_size=8)
    tokens = jnp.ones((2, 5), jnp.int32)
    args = (tokens, jnp.array([5, 3]), tokens)
  elif name.startswith('caption'):
    model = models.create(name)
    args = (jnp.zeros((2, 8, 40, 1)), jnp.ones((2, 5), jnp.int32))
  else:
    model = models.create(name)
    args = (jnp.zeros((2, 7, 1)), jnp.zeros((2, 5)))
  params = jax.eval_shape(model.init, key, *args)['params']
  got = {'/'.join(k.key for k in path): tuple(leaf.shape)
         for path, leaf in jax.tree_util.tree_leaves_with_path(params)
         if not (name.startswith('caption') and path[0].key == 'encoder')}
  assert got == _TREES[name]
