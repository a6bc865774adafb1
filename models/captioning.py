"""Image captioning: a CNN encoder feeding an LSTM decoder (Show and Tell, Vinyals et al. 2015).

Encoder: a VGG-style conv/pool stack from the CNN family (`models.cnn.VGG`: 3x3 convs, optional
batch norm, 2x2 max pools, then its dense layers) whose output layer has `embed_dim` units: the
image vector `v = CNN(I)` `[batch, embed_dim]`, in the word-embedding space.

Decoder: an LSTM (`models.rnn.LSTMCell`, stacked `num_layers` deep) over
  x_{-1} = v,   x_t = W_e S_t  (S_0 = BOS, then the caption),   p_{t+1} = softmax(W_o h_t + b_o)
as in Show and Tell with `image_as='input'` (the default): the image is the first input, seen
once, from a zero state, and its step's output is not scored. With `image_as='state'` the image
instead sets the initial state of every layer, `h_0 = tanh(W_h v)`, `c_0 = tanh(W_c v)`, and the
first input is BOS. Teacher forcing (`__call__`) is one scan per layer over input projections
hoisted out of the recurrence; `greedy_decode` and `beam_search` (GNMT length penalty) are
`models.decoding`'s drivers over `decode_step`, one decoder step from the previous token. PAD and
BOS are never emitted; after EOS a sequence emits PAD.

Calls: `model.apply(variables, images [B, H, W, C], decoder_inputs [B, T], train=bool)` ->
logits `[B, T, vocab]`; `decoder_inputs=None` returns `greedy_decode(images)` instead.
"""

from __future__ import annotations

import functools
from typing import Callable, Sequence, Union

import flax.linen as nn
import jax
import jax.numpy as jnp

from models import cnn, decoding, layers, rnn

Array = jax.Array
_IMAGE_AS = ('input', 'state')


class CaptionLSTM(nn.Module):
  """CNN encoder + LSTM decoder.

  Attributes:
    vocab_size: caption vocabulary size (specials included).
    embed_dim: word embedding width, and the image vector's.
    hidden_size: LSTM hidden size.
    num_layers: stacked LSTM layers.
    encoder_config: the VGG table of the encoder (a `cnn.VGG_CONFIGS` key, or filters and 'M').
    encoder_batch_norm: batch norm after each encoder conv.
    encoder_hidden: hidden dense layers of the encoder before the image vector (VGG's fc1, fc2;
      `(4096, 4096)` gives the classic VGG-16 penultimate features).
    encoder_dropout: dropout after each encoder hidden dense layer (training only).
    image_as: 'input' (the image is the decoder's first input) or 'state' (it sets h_0, c_0).
    dropout: on word embeddings, the image vector, between layers and before the output layer.
    pad_id, bos_id, eos_id: special token ids.
    max_decode_length: default number of steps of `greedy_decode`.
    unroll: scan unroll factor.
    conv: the encoder's convolution module (`layers.Conv2D`; `models.create` passes the CPU form on
      CPU).
    cell_ops: the cells' elementwise pieces (`rnn.CellOps`; `models.create` passes the CPU forms
      on CPU).
  """
  vocab_size: int = 13
  embed_dim: int = 128
  hidden_size: int = 256
  num_layers: int = 1
  encoder_config: Union[str, Sequence[Union[int, str]]] = (32, 32, 'M', 64, 64, 'M')
  encoder_batch_norm: bool = True
  encoder_hidden: Sequence[int] = ()
  encoder_dropout: float = 0.0
  image_as: str = 'input'
  dropout: float = 0.0
  pad_id: int = 0
  bos_id: int = 1
  eos_id: int = 2
  max_decode_length: int = 16
  unroll: int = 1
  conv: cnn.ModuleDef = layers.Conv2D
  cell_ops: rnn.CellOps = rnn.CellOps()

  def setup(self):
    if self.image_as not in _IMAGE_AS:
      raise ValueError(f"image_as must be one of {', '.join(map(repr, _IMAGE_AS))}, "
                       f'got {self.image_as!r}')
    config = (tuple(self.encoder_config) if not isinstance(self.encoder_config, str)
              else self.encoder_config)
    self.encoder = cnn.VGG(config=config, batch_norm=self.encoder_batch_norm,
                           num_classes=self.embed_dim, hidden_features=tuple(self.encoder_hidden),
                           dropout=self.encoder_dropout, conv=self.conv)
    self.embedding = nn.Embed(self.vocab_size, self.embed_dim)
    self.cells = [rnn.make_cell('lstm', self.hidden_size, ops=self.cell_ops)
                  for _ in range(self.num_layers)]
    if self.image_as == 'state':
      self.init_h = nn.Dense(self.num_layers * self.hidden_size)
      self.init_c = nn.Dense(self.num_layers * self.hidden_size)
    self.output_projection = nn.Dense(self.vocab_size)
    self.drop = nn.Dropout(self.dropout)

  def encode(self, images: Array, train: bool = False) -> Array:
    """Images `[batch, H, W, C]` -> the image vector `v` `[batch, embed_dim]`."""
    return self.encoder(images, train=train)

  def initial_state(self, image_vector: Array, train: bool = False):
    """The decoder's starting point from `v` `[batch, embed_dim]`.

    Returns (carries, one (h, c) per layer, each `[batch, hidden]`; the first input's layer-0
    projection `[batch, 4 * hidden]`, or None when the image went into the state and the first
    input is BOS).
    """
    batch = image_vector.shape[0]
    v = self.drop(image_vector, deterministic=not train)
    if self.image_as == 'state':
      hs = jnp.split(jnp.tanh(self.init_h(v)), self.num_layers, axis=-1)
      cs = jnp.split(jnp.tanh(self.init_c(v)), self.num_layers, axis=-1)
      return tuple(zip(hs, cs)), None
    zero = tuple(cell.zero_carry(batch, image_vector.dtype) for cell in self.cells)
    return zero, v

  def _embed(self, tokens: Array, train: bool) -> Array:
    """Tokens `[...]` -> dropped-out embeddings `[..., embed_dim]`."""
    return self.drop(self.embedding(tokens), deterministic=not train)

  def _step(self, carries, x: Array, train: bool):
    """One decoder step from the layer-0 input `x` `[batch, embed_dim]`.

    Returns (new carries, logits `[batch, vocab]`).
    """
    drop = lambda h: self.drop(h, deterministic=not train)
    carries, h = decoding.step_cells(self.cells, carries, x, between=drop)
    return carries, self.output_projection(drop(h))

  def decode_start(self, image_vector: Array):
    """The decoder's carries (one (h, c) per layer) before its first word, BOS, is read: after
    the image step for `image_as='input'`, the image-set state for 'state' (no dropout)."""
    carries, first = self.initial_state(image_vector)
    if first is not None:
      carries, _ = self._step(carries, first, False)
    return carries

  def decode_step(self, carries, tokens: Array, context=None):
    """One decoding step (no dropout): carries and previous tokens `[batch]` int -> (new carries,
    logits `[batch, vocab]`, None). `context` is unused (the image is in the carries)."""
    del context
    carries, logits = self._step(carries, self._embed(tokens, False), False)
    return carries, logits, None

  def __call__(self, images: Array, decoder_inputs: Array | None = None, train: bool = False):
    """Teacher-forced logits `[batch, T, vocab]` for `decoder_inputs` `[batch, T]` (BOS + caption).

    Position t's logits predict `targets[:, t]` (caption + EOS). Without `decoder_inputs`,
    returns `greedy_decode(images)`.
    """
    if decoder_inputs is None:
      return self.greedy_decode(images)
    return self._teacher_forced(self.encode(images, train), decoder_inputs, train)

  def logits_and_greedy_decode(self, images: Array, decoder_inputs: Array,
                               max_length: int | None = None):
    """(`__call__`'s logits, `greedy_decode`'s dict) from one pass of the encoder (evaluation)."""
    v = self.encode(images, train=False)
    return self._teacher_forced(v, decoder_inputs, False), self._greedy(v, max_length)

  def _teacher_forced(self, image_vector: Array, decoder_inputs: Array, train: bool) -> Array:
    carries, first = self.initial_state(image_vector, train)
    x = jnp.swapaxes(self._embed(decoder_inputs, train), 0, 1)  # [T, B, E]
    if first is not None:
      x = jnp.concatenate([first[None], x], axis=0)  # the image is step -1
    for layer, cell in enumerate(self.cells):
      if layer:
        x = self.drop(x, deterministic=not train)
      _, x = rnn.scan_steps(cell.step_fn(), carries[layer], cell.project(x), unroll=self.unroll)
    if first is not None:
      x = x[1:]  # the image step's output predicts nothing
    logits = self.output_projection(self.drop(x, deterministic=not train))
    return jnp.swapaxes(logits, 0, 1)

  def _never_emitted(self) -> Array:
    """`[vocab]`: -1e30 on PAD and BOS, 0 elsewhere."""
    return decoding.never_emit_bias(self.vocab_size, (self.pad_id, self.bos_id))

  def greedy_decode(self, images: Array, max_length: int | None = None) -> dict[str, Array]:
    """Greedy decoding without teacher forcing: each step feeds back its own argmax.

    Returns a dict: `tokens` `[batch, max_length]` int32 (up to and including EOS, then PAD),
    `lengths` `[batch]` (tokens up to and including EOS; max_length if none), `log_prob`
    `[batch]` (of the emitted tokens up to EOS).
    """
    return self._greedy(self.encode(images, train=False), max_length)

  def _greedy(self, image_vector: Array, max_length: int | None) -> dict[str, Array]:
    out = decoding.greedy_decode(
        type(self).decode_step, self.decode_start(image_vector),
        batch_size=image_vector.shape[0], max_length=max_length or self.max_decode_length,
        bos_id=self.bos_id, pad_id=self.pad_id, eos_id=self.eos_id, bias=self._never_emitted(),
        module=self, unroll=self.unroll)
    return {'tokens': out['tokens'], 'lengths': out['lengths'], 'log_prob': out['log_prob']}

  def beam_search(self, images: Array, beam_size: int = 4, alpha: float = 0.6,
                  max_length: int | None = None) -> dict[str, Array]:
    """Beam search with GNMT length normalisation (`models.decoding.beam_search`).

    Finished hypotheses (ended by EOS) compete with alive ones for the `beam_size` places by
    `log_prob / decoding.length_penalty(length, alpha)`; `beam_size=1` is greedy decoding.
    Returns a dict:
    `tokens` `[batch, max_length]` (the best, up to and including EOS, then PAD), `beams`
    `[batch, beam, max_length]` best first, `scores` `[batch, beam]`, `log_prob` `[batch, beam]`,
    `lengths` `[batch]` of the best.
    """
    return decoding.beam_search(
        type(self).decode_step, self.decode_start(self.encode(images, train=False)),
        batch_size=images.shape[0], beam_size=beam_size,
        max_length=max_length or self.max_decode_length, alpha=alpha, bos_id=self.bos_id,
        pad_id=self.pad_id, eos_id=self.eos_id, bias=self._never_emitted(), module=self,
        unroll=self.unroll)


MODELS: dict[str, Callable[..., nn.Module]] = {
    # Digit strips (8 x 40 images): conv32-conv32-pool-conv64-conv64-pool, BN, LSTM 256.
    'caption_lstm': CaptionLSTM,
    # Show and Tell with VGG-16 (configuration D) features: fc1/fc2 4096, then the image vector;
    # for 224x224 photographs (COCO).
    'caption_vgg16_lstm': functools.partial(
        CaptionLSTM, encoder_config='D', encoder_batch_norm=False, encoder_hidden=(4096, 4096),
        encoder_dropout=0.5, embed_dim=512, hidden_size=512, dropout=0.5, max_decode_length=20),
    # Test-only: a few thousand parameters.
    'caption_tiny': functools.partial(CaptionLSTM, embed_dim=8, hidden_size=16,
                                      encoder_config=(4, 'M', 8, 'M')),
}
