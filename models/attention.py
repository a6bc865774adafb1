"""Luong (multiplicative) attention: Luong, Pham & Manning 2015, "Effective Approaches to
Attention-based Neural Machine Translation", section 3.1 (global attention).

For a decoder state (query) `s_t` and encoder states (memory) `h_1 .. h_S`:

  score(s_t, h_i) = s_t^T h_i                    'dot' (the default; needs equal sizes)
                  = s_t^T W h_i                  'general'
                  = v^T tanh(W [s_t; h_i])       'concat'
  a_t = softmax_i(score(s_t, h_i)) over the unmasked source positions
  c_t = sum_i a_t,i h_i                          the context vector

The query-independent half of each score (`W h_i`, and `W_h h_i` of the concat form's
`W [s; h] = W_s s + W_h h`) is computed once per source sentence by `precompute`, so a decoder
that calls attention at every step inside a scan does not redo it.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

Array = jax.Array

SCORES = ('dot', 'general', 'concat')


class LuongAttention(nn.Module):
  """Global attention with a source mask; returns the context vector and the weights.

  Attributes:
    score: 'dot', 'general' or 'concat'.
    attention_size: width of the concat form's hidden layer (default: the query size).
    query_size: the decoder state's size; for 'general' and 'concat' it must be known before the
      first query when `precompute` is called first (default: the memory size).

  Parameters: 'general' `W` `[query, memory]`; 'concat' `W_query` `[query, A]`, `W_memory`
  `[memory, A]` (together the paper's `W` acting on `[s; h]`) and `v` `[A]`.
  """
  score: str = 'dot'
  attention_size: int | None = None
  query_size: int | None = None

  def _check(self):
    if self.score not in SCORES:
      raise ValueError(f"score must be one of {', '.join(map(repr, SCORES))}, got {self.score!r}")

  def _query_size(self, memory_size: int) -> int:
    return self.query_size or memory_size

  @nn.compact
  def precompute(self, memory: Array) -> Any:
    """The query-independent part of the scores for memory `[batch, source, M]`.

    'dot': nothing; 'general': `W h_i` `[batch, source, Q]`; 'concat': `W_memory h_i`
    `[batch, source, A]`.
    """
    self._check()
    m = memory.shape[-1]
    q = self._query_size(m)
    if self.score == 'dot':
      return None
    if self.score == 'general':
      w = self.param('W', nn.initializers.lecun_normal(), (q, m))
      return memory @ w.T
    a = self.attention_size or q
    w_memory = self.param('W_memory', nn.initializers.lecun_normal(), (m, a))
    return memory @ w_memory

  @nn.compact
  def scores(self, query: Array, memory: Array, precomputed: Any = None) -> Array:
    """Unnormalised scores `[batch, ..., source]` for queries `[batch, ..., Q]` (`...` is empty
    for one decoder step, or target time for all steps at once)."""
    self._check()
    if precomputed is None and self.score != 'dot':
      precomputed = self.precompute(memory)
    keys = memory if self.score == 'dot' else precomputed
    single = query.ndim == 2
    q = query[:, None, :] if single else query  # [batch, queries, Q]
    if self.score in ('dot', 'general'):
      if q.shape[-1] != keys.shape[-1]:
        raise ValueError(f"'{self.score}' attention needs query size {keys.shape[-1]}, "
                         f'got {q.shape[-1]}')
      scores = jnp.einsum('bqd,bsd->bqs', q, keys)
    else:
      a = keys.shape[-1]
      w_query = self.param('W_query', nn.initializers.lecun_normal(), (q.shape[-1], a))
      v = self.param('v', nn.initializers.lecun_normal(), (a, 1))[:, 0]
      hidden = jnp.tanh((q @ w_query)[:, :, None, :] + keys[:, None, :, :])  # [b, q, s, A]
      scores = hidden @ v
    return scores[:, 0] if single else scores

  def __call__(self, query: Array, memory: Array, mask: Array | None = None,
               precomputed: Any = None) -> tuple[Array, Array]:
    """Attends from `query` to `memory`.

    Args:
      query: decoder state(s), `[batch, Q]` (one step) or `[batch, target, Q]` (all steps).
      memory: encoder outputs `[batch, source, M]`.
      mask: `[batch, source]` bool, False on padding; masked positions get weight exactly 0.
      precomputed: `precompute(memory)`, to reuse across decoder steps.

    Returns:
      (context `[batch, M]` or `[batch, target, M]`, weights `[batch, source]` or
      `[batch, target, source]`, each row summing to 1 over the unmasked positions).
    """
    scores = self.scores(query, memory, precomputed).astype(jnp.float32)
    if mask is not None:
      mask = mask if query.ndim == 2 else mask[:, None, :]
      scores = jnp.where(mask, scores, jnp.finfo(scores.dtype).min)
    weights = jax.nn.softmax(scores, axis=-1)
    if mask is not None:
      weights = jnp.where(mask, weights, 0.0)
    weights = weights.astype(memory.dtype)
    if query.ndim == 2:
      context = jnp.einsum('bs,bsm->bm', weights, memory)
    else:
      context = jnp.einsum('bts,bsm->btm', weights, memory)
    return context, weights
