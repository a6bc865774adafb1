"""Sequence to sequence: an RNN encoder, an RNN decoder with Luong attention, and decoding.

Encoder: embedding -> `rnn.RNN` (LSTM/GRU/RNN, stacked, optionally bidirectional) masked by the
source lengths; its outputs are the attention memory `[batch, source, H]` and its final carries
(taken at each sentence's true length) start the decoder.

Decoder (Luong, Pham & Manning 2015): at step t, with `y_{t-1}` the previous target token,

  h_t   = cell([embed(y_{t-1}); h~_{t-1}], h_{t-1})   (h~_{t-1} only with input feeding)
  c_t, a_t = attention(h_t, encoder outputs)         (dot, general or concat: models/attention.py)
  h~_t  = tanh(W_c [c_t; h_t])                        the attentional hidden state
  p(y_t | y_<t, x) = softmax(W_s h~_t + b_s)

With `attention=None` it is the plain encoder-decoder baseline (Sutskever et al. 2014; Cho et al.
2014): `h~_t = h_t`, the whole source reaches the decoder through the encoder's final state.

Training uses teacher forcing (`__call__`): without input feeding the decoder recurrence is a
scan over hoisted input projections and attention runs for all target steps in one batched
product; with input feeding attention sits inside the scan (the embeddings' input projection is
still hoisted). Decoding (`greedy_decode`, `beam_search`) runs `models.decoding`'s drivers over
`decode_step`, one decoder step from the previous token; after a sequence emits EOS it emits PAD.

Token ids: PAD 0, BOS 1, EOS 2 by default (data/synthetic.py's vocabularies).
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

from models import decoding, rnn
from models.attention import LuongAttention

Array = jax.Array

_SCAN = dict(variable_broadcast='params', split_rngs={'params': False, 'dropout': True})

class Seq2Seq(nn.Module):
  """Encoder-decoder with optional Luong attention.

  Attributes:
    vocab_size: source vocabulary size.
    target_vocab_size: target vocabulary size (default: `vocab_size`, a shared vocabulary).
    embed_dim: embedding width (source and target embeddings are separate).
    hidden_size: encoder hidden size per direction; the decoder's is this times the number of
      encoder directions (the final forward and reverse states are concatenated to start it).
    cell_type: 'lstm', 'gru' or 'rnn', for encoder and decoder.
    num_layers: layers of the encoder and of the decoder.
    bidirectional_encoder: run the encoder in both directions.
    attention: 'dot', 'general', 'concat', or None for the no-attention baseline.
    input_feeding: feed h~_{t-1} to the decoder input (Luong's input feeding); attention only.
    dropout: on embeddings, between layers and on h~_t (training only).
    pad_id, bos_id, eos_id: special token ids.
    max_decode_length: default number of steps for `greedy_decode` / `beam_search`.
    unroll: scan unroll factor.
    cell_ops: the cells' elementwise pieces (`rnn.CellOps`; `models.create` passes the CPU forms
      on CPU).
  """
  vocab_size: int = 16
  target_vocab_size: int | None = None
  embed_dim: int = 64
  hidden_size: int = 128
  cell_type: str = 'lstm'
  num_layers: int = 1
  bidirectional_encoder: bool = False
  attention: str | None = 'dot'
  input_feeding: bool = True
  dropout: float = 0.0
  pad_id: int = 0
  bos_id: int = 1
  eos_id: int = 2
  max_decode_length: int = 32
  unroll: int = 1
  cell_ops: rnn.CellOps = rnn.CellOps()

  @property
  def decoder_size(self) -> int:
    return self.hidden_size * (2 if self.bidirectional_encoder else 1)

  @property
  def _feeds(self) -> bool:
    return bool(self.attention) and self.input_feeding

  def setup(self):
    target_vocab = self.target_vocab_size or self.vocab_size
    self.source_embedding = nn.Embed(self.vocab_size, self.embed_dim)
    self.target_embedding = nn.Embed(target_vocab, self.embed_dim)
    self.encoder = rnn.RNN(self.hidden_size, self.cell_type, num_layers=self.num_layers,
                           bidirectional=self.bidirectional_encoder, dropout=self.dropout,
                           unroll=self.unroll, cell_ops=self.cell_ops)
    size = self.decoder_size
    self.decoder_cells = [rnn.make_cell(self.cell_type, size, ops=self.cell_ops)
                          for _ in range(self.num_layers)]
    if self.attention:
      self.attention_layer = LuongAttention(self.attention, query_size=size)
      self.combine = nn.Dense(size, use_bias=False)  # W_c
      if self.input_feeding:
        gates = type(self.decoder_cells[0]).num_gates * size
        self.feed_projection = nn.Dense(gates, use_bias=False)
    self.output_projection = nn.Dense(target_vocab)  # W_s, b_s
    self.drop = nn.Dropout(self.dropout)

  # Encoder.

  def encode(self, inputs: Array, input_lengths: Array, train: bool = False) -> dict[str, Any]:
    """Encodes source tokens `[batch, source]` (int, padded at the end), lengths `[batch]`.

    Returns a dict: `memory` `[batch, source, D]` (zero past each length), `mask` `[batch, source]`,
    `keys` (the attention's precomputed part), `carries` (the decoder's initial carry per layer).
    """
    embedded = self.drop(self.source_embedding(inputs), deterministic=not train)
    memory, finals = self.encoder(embedded, input_lengths, train=train)
    if self.bidirectional_encoder:  # concatenate each layer's forward and reverse final states
      finals = tuple(jax.tree.map(lambda f, b: jnp.concatenate([f, b], -1), finals[2 * l],
                                  finals[2 * l + 1]) for l in range(self.num_layers))
    mask = jnp.arange(inputs.shape[1])[None, :] < input_lengths[:, None]
    keys = self.attention_layer.precompute(memory) if self.attention else None
    return {'memory': memory, 'mask': mask, 'keys': keys, 'carries': tuple(finals)}

  # Decoder pieces.

  def _attend(self, h: Array, encoded: dict[str, Any], train: bool) -> tuple[Array, Array]:
    """h `[batch, (target,) D]` -> (h~, attention weights `[batch, (target,) source]`)."""
    if not self.attention:
      weights = jnp.zeros(h.shape[:-1] + encoded['mask'].shape[-1:], h.dtype)
      return self.drop(h, deterministic=not train), weights
    context, weights = self.attention_layer(h, encoded['memory'], encoded['mask'],
                                            encoded['keys'])
    h_tilde = jnp.tanh(self.combine(jnp.concatenate([context, h], axis=-1)))
    return self.drop(h_tilde, deterministic=not train), weights

  def _decoder_step(self, carries, feed, projected, encoded, train):
    """One decoder step from the projected embedding `[batch, G*D]` of the previous token.

    Returns (carries, h~ `[batch, D]`, logits `[batch, vocab]`, weights `[batch, source]`).
    """
    if self._feeds:
      projected = projected + self.feed_projection(feed)
    carries, h = decoding.step_cells(self.decoder_cells, carries, projected, projected=True,
                                     between=lambda x: self.drop(x, deterministic=not train))
    h_tilde, weights = self._attend(h, encoded, train)
    return carries, h_tilde, self.output_projection(h_tilde), weights

  def _embed_tokens(self, tokens: Array, train: bool) -> Array:
    """Previous tokens `[...]` -> layer-0 input projection `[..., G*D]`."""
    embedded = self.drop(self.target_embedding(tokens), deterministic=not train)
    return self.decoder_cells[0].project(embedded)

  def _never_emitted(self, never_emit: tuple[int, ...] = ()) -> Array:
    """`[vocab]`: -1e30 on PAD, BOS (decoding never emits them; EOS ends a sequence) and the ids
    in `never_emit` (e.g. `<unk>`), else 0."""
    vocab = self.target_vocab_size or self.vocab_size
    return decoding.never_emit_bias(vocab, (self.pad_id, self.bos_id) + tuple(never_emit))

  def _zero_feed(self, batch: int, dtype=jnp.float32) -> Array:
    return jnp.zeros((batch, self.decoder_size), dtype)

  def decode_start(self, encoded: dict[str, Any]) -> tuple[Any, Array]:
    """The decoder's state before the first step, from `encode`'s dict: (carries, one per layer;
    h~ `[batch, D]`, zeros: the input feed of the first step)."""
    return encoded['carries'], self._zero_feed(encoded['memory'].shape[0],
                                               encoded['memory'].dtype)

  def decode_step(self, state: tuple[Any, Array], tokens: Array, encoded: dict[str, Any]):
    """One decoding step (no dropout): state (carries, h~), previous tokens `[batch]` int and
    `encode`'s dict -> (new state, logits `[batch, target_vocab]`, attention weights
    `[batch, source]`, zeros without attention)."""
    carries, feed = state
    carries, h_tilde, logits, weights = self._decoder_step(
        carries, feed, self._embed_tokens(tokens, False), encoded, False)
    return (carries, h_tilde), logits, weights

  # Training: teacher forcing.

  def __call__(self, inputs: Array, input_lengths: Array, decoder_inputs: Array,
               train: bool = False, return_attention: bool = False):
    """Teacher-forced logits.

    Args:
      inputs: source tokens `[batch, source]` int, padded with PAD at the end.
      input_lengths: `[batch]` int.
      decoder_inputs: `[batch, target]` int: BOS followed by the target (shifted right).
      train: enables dropout (rng 'dropout').
      return_attention: also return the attention weights.

    Returns:
      logits `[batch, target, target_vocab]`; with `return_attention`, (logits, weights
      `[batch, target, source]`), zeros for the no-attention model.
    """
    encoded = self.encode(inputs, input_lengths, train)
    projected = self._embed_tokens(jnp.swapaxes(decoder_inputs, 0, 1), train)  # [T, B, G*D]
    if self._feeds:

      def body(module, state, projected_t, encoded):
        carries, feed = state
        carries, h_tilde, logits, weights = module._decoder_step(carries, feed, projected_t,
                                                                 encoded, train)
        return (carries, h_tilde), (logits, weights)

      scan = nn.scan(body, in_axes=(0, nn.broadcast), unroll=self.unroll, **_SCAN)
      state = (encoded['carries'], self._zero_feed(inputs.shape[0], projected.dtype))
      _, (logits, weights) = scan(self, state, projected, encoded)
      logits, weights = jnp.swapaxes(logits, 0, 1), jnp.swapaxes(weights, 0, 1)
    else:  # the recurrence does not see attention: hoisted projections, batched attention
      h = projected
      for layer, cell in enumerate(self.decoder_cells):
        if layer:
          h = cell.project(self.drop(h, deterministic=not train))
        _, h = rnn.scan_steps(cell.step_fn(), encoded['carries'][layer], h, unroll=self.unroll)
      h_tilde, weights = self._attend(jnp.swapaxes(h, 0, 1), encoded, train)
      logits = self.output_projection(h_tilde)
    return (logits, weights) if return_attention else logits

  # Decoding.

  def greedy_decode(self, inputs: Array, input_lengths: Array, max_length: int | None = None,
                    never_emit: tuple[int, ...] = ()) -> dict[str, Array]:
    """Greedy decoding without teacher forcing: each step feeds back its own argmax.

    PAD, BOS and the ids in `never_emit` (e.g. `<unk>`) are never predicted. Returns a dict:
    `tokens` `[batch, max_length]` (int32; the prediction up to and including EOS, then PAD),
    `lengths` `[batch]` (tokens up to and including EOS; max_length if none), `log_prob`
    `[batch]` (of the emitted tokens up to EOS),
    `attention` `[batch, max_length, source]` (for plotting; rows after EOS are meaningless).
    """
    encoded = self.encode(inputs, input_lengths, train=False)
    out = decoding.greedy_decode(
        type(self).decode_step, self.decode_start(encoded), batch_size=inputs.shape[0],
        max_length=max_length or self.max_decode_length, bos_id=self.bos_id, pad_id=self.pad_id,
        eos_id=self.eos_id, bias=self._never_emitted(never_emit), context=encoded, module=self,
        unroll=self.unroll)
    return {'tokens': out['tokens'], 'lengths': out['lengths'], 'log_prob': out['log_prob'],
            'attention': out['extras']}

  def beam_search(self, inputs: Array, input_lengths: Array, beam_size: int = 4,
                  alpha: float = 0.6, max_length: int | None = None,
                  never_emit: tuple[int, ...] = ()) -> dict[str, Array]:
    """Beam search with GNMT length normalisation (`models.decoding.beam_search`).

    Finished hypotheses (ended by EOS) compete with alive ones for the `beam_size` places by
    `log_prob / decoding.length_penalty(length, alpha)`, length counting EOS; `beam_size=1` is
    greedy decoding; a hypothesis still alive after `max_length` steps is scored at that length.
    PAD, BOS and the ids in `never_emit` are never emitted. Raises ValueError if `beam_size` exceeds
    the target vocabulary.

    Returns a dict: `tokens` `[batch, max_length]` (the best hypothesis up to and including EOS,
    then PAD), `beams` `[batch, beam, max_length]` best first, `scores` `[batch, beam]`,
    `log_prob` `[batch, beam]` (unnormalised), `lengths` `[batch]` of the best.
    """
    encoded = self.encode(inputs, input_lengths, train=False)
    return decoding.beam_search(
        type(self).decode_step, self.decode_start(encoded), batch_size=inputs.shape[0],
        beam_size=beam_size, max_length=max_length or self.max_decode_length, alpha=alpha,
        bos_id=self.bos_id, pad_id=self.pad_id, eos_id=self.eos_id,
        bias=self._never_emitted(never_emit), context=encoded, module=self, unroll=self.unroll)


MODELS: dict[str, Callable[..., nn.Module]] = {
    'seq2seq': functools.partial(Seq2Seq, attention=None),
    'seq2seq_attention': functools.partial(Seq2Seq, attention='dot'),
    'seq2seq_attention_general': functools.partial(Seq2Seq, attention='general'),
    'seq2seq_attention_concat': functools.partial(Seq2Seq, attention='concat'),
    'seq2seq_gru_attention': functools.partial(Seq2Seq, attention='dot', cell_type='gru'),
    # Test-only: a few thousand parameters.
    'seq2seq_tiny': functools.partial(Seq2Seq, attention='dot', embed_dim=8, hidden_size=16),
}
