"""Decoding written once: a step through a stack of recurrent cells, greedy and beam search.

Seq2seq (models/seq2seq.py), captioning (models/captioning.py) and forecasting
(models/forecast.py) use these:

* `step_cells(cells, carries, inputs)`: one time step through stacked cells, layer l > 0 reading
  layer l-1's output (with dropout in between), -> (new carries, top layer's h `[batch, H]`).
* `greedy_decode(step, state, ...)`: a scan over output positions feeding back each argmax.
* `beam_search(step, state, ...)`: the same scan over a beam of `beam_size` hypotheses per
  example, GNMT length normalisation (`length_penalty`), finished hypotheses kept in the beam.

The decoders drive a model-supplied step function

  step(module, state, tokens [n], context) -> (state, logits [n, vocab], extras)

where `state` is the decoder's recurrent state (any pytree of `[n, ...]` leaves), `tokens` the
previous token of each sequence (BOS at the first step), `context` what every step reads and
nothing updates (e.g. the encoder's outputs), and `extras` a pytree of per-step outputs to keep
(e.g. attention weights; None for none). `n` is the batch for greedy decoding and
`batch * beam_size` (beam-major within each example) for beam search, which tiles `state` and
`context` itself. With `module` a bound Flax module the scan is `nn.scan` (parameters broadcast,
a fresh dropout rng per step) and `step` is called with that module, e.g. an unbound method
`Model.decode_step`; with `module=None` it is a plain `jax.lax.scan` over a pure `step` (which
receives None as its module).

Both decoders: log-probabilities are computed in float32; `bias` `[vocab]` (see
`never_emit_bias`) is added to them before choosing, so tokens at -1e30 (PAD, BOS, `<unk>`...)
are never emitted; a sequence ends with EOS and emits PAD afterwards, at no cost.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

Array = jax.Array
Step = Callable[[Any, Any, Array, Any], tuple[Any, Array, Any]]

NEG_INF = -1e30  # the log-probability of a token that must not be chosen

_SCAN = dict(variable_broadcast='params', split_rngs={'params': False, 'dropout': True})


def step_cells(cells: Sequence[nn.Module], carries: Sequence[Any], inputs: Array, *,
               projected: bool = False,
               between: Callable[[Array], Array] | None = None) -> tuple[tuple[Any, ...], Array]:
  """One time step through a stack of recurrent cells (`models.rnn` cells, bound).

  Args:
    cells: the layers, bottom first.
    carries: one carry per layer (h `[batch, H]`, or (h, c) for the LSTM).
    inputs: layer 0's input `[batch, in]`, or with `projected=True` its input projection
      `[batch, G*H]` already computed (`cells[0].project(...)`, possibly plus more terms).
    between: applied to each layer's output before the next layer reads it (e.g. dropout).

  Returns:
    (new carries, a tuple per layer; the top layer's output h `[batch, H]`).
  """
  new_carries = []
  if projected:
    carry, h = cells[0].step(carries[0], inputs)
  else:
    carry, h = cells[0](carries[0], inputs)
  new_carries.append(carry)
  for layer in range(1, len(cells)):
    if between is not None:
      h = between(h)
    carry, h = cells[layer](carries[layer], h)
    new_carries.append(carry)
  return tuple(new_carries), h


def never_emit_bias(vocab_size: int, ids: Sequence[int]) -> np.ndarray:
  """`[vocab]` float32: -1e30 on `ids` (tokens decoding must never emit), 0 elsewhere."""
  return np.where(np.isin(np.arange(vocab_size), list(ids)), np.float32(NEG_INF),
                  np.float32(0.0)).astype(np.float32)


def length_penalty(length: Array | int, alpha: float) -> Array:
  """GNMT's length normalisation `((5 + length) / 6) ** alpha` (Wu et al. 2016); 1 at alpha 0."""
  return ((5.0 + jnp.asarray(length, jnp.float32)) / 6.0) ** alpha


def sequence_lengths(tokens: Array, eos_id: int) -> Array:
  """Tokens `[batch, time]` up to and including the first EOS -> `[batch]` int32; `time` if none."""
  is_eos = tokens == eos_id
  return jnp.where(is_eos.any(-1), jnp.argmax(is_eos, -1) + 1, tokens.shape[-1]).astype(jnp.int32)


def tile(tree: Any, k: int) -> Any:
  """Repeats every leaf `[batch, ...]` k times on axis 0: `[batch * k, ...]` (beam-major inside)."""
  return jax.tree.map(lambda x: jnp.repeat(x, k, axis=0), tree)


def gather_beams(tree: Any, indices: Array, batch: int, k: int) -> Any:
  """Selects beams: leaves `[batch * k, ...]`, indices `[batch, k]` into each example's k beams."""

  def gather(x):
    x = x.reshape((batch, k) + x.shape[1:])
    idx = indices.reshape((batch, k) + (1,) * (x.ndim - 2))
    return jnp.take_along_axis(x, idx, axis=1).reshape((batch * k,) + x.shape[2:])

  return jax.tree.map(gather, tree)


def beam_step(step_log_probs: Array, tokens: Array, log_prob: Array, finished: Array,
              lengths: Array, step: Array, alpha: float, pad_id: int, eos_id: int):
  """One step of beam search's bookkeeping.

  Args:
    step_log_probs: `[batch * k, vocab]` float32 log-probabilities of the next token per beam
      (banned tokens already at -1e30).
    tokens: `[batch, k, max_length]` hypotheses so far; log_prob, finished, lengths `[batch, k]`.
    step: the position being written.

  Every alive hypothesis is extended by every token and each finished one is carried over with
  PAD at no cost; the `k` best by `log_prob / length_penalty(length, alpha)` survive.
  Returns `(parent [batch, k], tokens, log_prob, finished, lengths)`; the caller gathers its
  decoder state with `parent`.
  """
  batch, k, _ = tokens.shape
  vocab = step_log_probs.shape[-1]
  pad_only = jnp.where(jnp.arange(vocab) == pad_id, 0.0, jnp.float32(NEG_INF))
  step_log_probs = jnp.where(finished[:, :, None], pad_only,
                             step_log_probs.reshape(batch, k, vocab))
  candidates = log_prob[:, :, None] + step_log_probs  # [batch, k, vocab]
  candidate_lengths = jnp.where(finished, lengths, step + 1)
  scores = candidates / length_penalty(candidate_lengths, alpha)[:, :, None]
  _, best = jax.lax.top_k(scores.reshape(batch, k * vocab), k)
  parent, token = best // vocab, (best % vocab).astype(jnp.int32)
  log_prob = jnp.take_along_axis(candidates.reshape(batch, k * vocab), best, axis=1)
  tokens = jnp.take_along_axis(tokens, parent[:, :, None], axis=1)
  tokens = jax.lax.dynamic_update_slice_in_dim(tokens, token[:, :, None], step, axis=2)
  was_finished = jnp.take_along_axis(finished, parent, axis=1)
  lengths = jnp.where(was_finished, jnp.take_along_axis(lengths, parent, axis=1), step + 1)
  finished = was_finished | (token == eos_id)
  return parent, tokens, log_prob, finished, lengths


def _scan(module, body, carry, xs, context, length, unroll):
  """`body(module, carry, x, context) -> (carry, y)` scanned over `xs` (None: `length` steps)."""
  if module is None:
    return jax.lax.scan(lambda c, x: body(None, c, x, context), carry, xs, length=length,
                        unroll=unroll)
  scan = nn.scan(body, in_axes=(0, nn.broadcast), length=length, unroll=unroll, **_SCAN)
  return scan(module, carry, xs, context)


def greedy_decode(step: Step, state: Any, *, batch_size: int, max_length: int, bos_id: int,
                  pad_id: int, eos_id: int, bias: Array | np.ndarray, context: Any = None,
                  module: nn.Module | None = None, unroll: int = 1) -> dict[str, Any]:
  """Greedy decoding: each step feeds back its own argmax of `log_softmax(logits) + bias`.

  Args:
    step: the model's step function (see the module docstring).
    state: the decoder's initial state, leaves `[batch, ...]`.
    batch_size: batch.
    max_length: output positions decoded.
    bos_id, pad_id, eos_id: the first input; what follows EOS; what ends a sequence.
    bias: `[vocab]`, added to the log-probabilities before the argmax (-1e30: never emitted).
    context: read by every step, passed to `step` unchanged.
    module: the bound Flax module `step` belongs to, or None for a pure `step`.
    unroll: scan unroll factor.

  Returns a dict: `tokens` `[batch, max_length]` int32 (up to and including EOS, then PAD),
  `lengths` `[batch]` int32 (up to and including EOS; max_length if none), `log_prob` `[batch]`
  float32 (of the emitted tokens up to EOS), `extras` (the steps' extras, each leaf
  `[batch, max_length, ...]`; those after EOS are computed but meaningless).
  """

  def body(module, carry, _, context):
    state, token, finished, log_prob = carry
    state, logits, extras = step(module, state, token, context)
    log_probs = jax.nn.log_softmax(logits.astype(jnp.float32))
    prediction = jnp.argmax(log_probs + bias, axis=-1).astype(jnp.int32)
    step_log_prob = jnp.take_along_axis(log_probs, prediction[:, None], axis=-1)[:, 0]
    log_prob = log_prob + jnp.where(finished, 0.0, step_log_prob)
    prediction = jnp.where(finished, pad_id, prediction)
    finished = finished | (prediction == eos_id)
    return (state, prediction, finished, log_prob), (prediction, extras)

  carry = (state, jnp.full((batch_size,), bos_id, jnp.int32), jnp.zeros((batch_size,), bool),
           jnp.zeros((batch_size,), jnp.float32))
  (_, _, _, log_prob), (tokens, extras) = _scan(module, body, carry, None, context, max_length,
                                                unroll)
  tokens = jnp.swapaxes(tokens, 0, 1)
  return {'tokens': tokens, 'lengths': sequence_lengths(tokens, eos_id), 'log_prob': log_prob,
          'extras': jax.tree.map(lambda x: jnp.swapaxes(x, 0, 1), extras)}


def beam_search(step: Step, state: Any, *, batch_size: int, beam_size: int, max_length: int,
                alpha: float, bos_id: int, pad_id: int, eos_id: int, bias: Array | np.ndarray,
                context: Any = None, module: nn.Module | None = None,
                unroll: int = 1) -> dict[str, Array]:
  """Beam search with GNMT length normalisation, as a scan over output positions.

  The beam holds `beam_size` hypotheses per example, alive or finished (ended by EOS). Every
  step extends each alive hypothesis by every token, and carries each finished one over
  unchanged (it can only be followed by PAD, at no cost); of all these candidates the
  `beam_size` with the best score `log_prob / length_penalty(length, alpha)` survive, length
  counting EOS. So finished and alive hypotheses compete for the same places, a finished one
  stays until better ones push it out, and `beam_size=1` is exactly greedy decoding (for any
  alpha: one hypothesis's candidates all have the same length). A hypothesis still alive after
  `max_length` steps is scored at that length. Tokens where `bias` is -1e30 are never emitted.

  Arguments as `greedy_decode`'s; `state` and `context` are given per example (leaves
  `[batch, ...]`) and tiled here to `[batch * beam_size, ...]`; the steps' extras are dropped.

  Returns a dict: `tokens` `[batch, max_length]` (the best hypothesis up to and including EOS,
  then PAD), `beams` `[batch, beam, max_length]` best first, `scores` `[batch, beam]`,
  `log_prob` `[batch, beam]` (unnormalised), `lengths` `[batch]` of the best. Raises ValueError
  if `beam_size` exceeds the vocabulary.
  """
  batch, k = batch_size, beam_size
  vocab = bias.shape[-1]
  if k > vocab:
    raise ValueError(f'beam_size {k} is larger than the vocabulary ({vocab})')

  def body(module, carry, position, context):
    state, tokens, log_prob, finished, lengths = carry
    last = jnp.where(position == 0, bos_id, tokens[:, :, jnp.maximum(position - 1, 0)])
    state, logits, _ = step(module, state, last.reshape(batch * k), context)
    step_log_probs = jax.nn.log_softmax(logits.astype(jnp.float32)) + bias
    parent, tokens, log_prob, finished, lengths = beam_step(
        step_log_probs, tokens, log_prob, finished, lengths, position, alpha, pad_id, eos_id)
    state = gather_beams(state, parent, batch, k)
    return (state, tokens, log_prob, finished, lengths), None

  first = jnp.where(jnp.arange(k) == 0, 0.0, jnp.float32(NEG_INF))  # all beams equal: expand one
  carry = (tile(state, k), jnp.full((batch, k, max_length), pad_id, jnp.int32),
           jnp.broadcast_to(first, (batch, k)), jnp.zeros((batch, k), bool),
           jnp.zeros((batch, k), jnp.int32))
  (_, beams, log_prob, _, lengths), _ = _scan(module, body, carry, jnp.arange(max_length),
                                              tile(context, k), None, unroll)
  scores, order = jax.lax.top_k(log_prob / length_penalty(lengths, alpha), k)
  beams = jnp.take_along_axis(beams, order[:, :, None], axis=1)
  return {'tokens': beams[:, 0], 'beams': beams, 'scores': scores,
          'log_prob': jnp.take_along_axis(log_prob, order, axis=1),
          'lengths': jnp.take_along_axis(lengths, order[:, :1], axis=1)[:, 0]}
