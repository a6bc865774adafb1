"""Heads over the recurrent layers of models/rnn.py: a sequence classifier and a language model.

SequenceClassifier (`rnn_classifier`, `lstm_classifier`, `gru_classifier`, `bilstm_classifier`):

  tokens `[batch, time]` -> embedding `[batch, time, E]` -> `rnn.RNN` (stacked, optionally
  bidirectional, masked by `lengths`) -> one vector per sequence `[batch, D * H]` -> dropout ->
  dense -> logits `[batch, num_classes]`

  The vector is, by `pooling`: 'last', the final hidden state at each sequence's true length
  (forward) and at its first token (reverse direction); 'mean', the mean of the outputs over the
  true length; 'max', their element-wise maximum over the true length. Padding never counts.

LanguageModel (`lstm_lm`, `gru_lm`, `rnn_lm`), as Zaremba, Sutskever & Vinyals (2014):

  inputs `[batch, time]` -> embedding -> dropout -> L recurrent layers, dropout after each ->
  dense over the vocabulary (or the transposed embedding, `tie_weights`) -> logits
  `[batch, time, vocab_size]`

  Dropout is on the non-recurrent connections only (the paper's recipe). `init_scale` s draws
  every parameter uniformly from [-s, s], as the paper does (0.1 / 0.05 / 0.04 for its small /
  medium / large models; the LSTM forget-gate bias then starts at `forget_bias` + U(-s, s), 0 in
  the paper). The layers are the cells of models/rnn.py driven by `rnn.scan_steps` (input
  projection hoisted out of the scan), built here so that they can take those initialisers.

  Truncated BPTT: in training, when the variable collection 'carry' is present and mutable, the
  model starts from the carry of the previous training batch (zeroed per row where `reset` is
  True) and stores its final carry back (without gradient). The trainer keeps every non-'params'
  collection in its state, so the state flows across steps and is checkpointed. `model.init`
  creates that collection with zeros shaped for the initialisation batch. In evaluation
  (`train=False`) the model always starts from zeros (or `initial_carry`) and stores nothing, so
  evaluation never depends on where training stopped.

`sample(model, params, prompt_ids, length, temperature, seed)` draws a continuation, one token at
a time inside one `jax.lax.scan`.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Sequence

import flax.linen as nn
from flax.linen.dtypes import promote_dtype
import jax
import jax.numpy as jnp
import numpy as np

from models import layers
from models import rnn

Array = jax.Array


class SequenceClassifier(nn.Module):
  """Embedding -> RNN -> pooled vector -> dense (see the module docstring).

  Attributes:
    vocab_size: number of token ids (id 0 is padding; its embedding is never read).
    num_classes: number of output classes.
    embedding_size: E.
    hidden_size: H per direction.
    cell_type: 'lstm', 'gru' or 'rnn'.
    num_layers: stacked recurrent layers.
    bidirectional: add a reverse-time direction (D = 2).
    pooling: 'last', 'mean' or 'max'.
    embedding_dropout: dropout on the embedded tokens (training only).
    dropout: dropout between recurrent layers and on the pooled vector (training only).
    cell_ops: the recurrent cells' elementwise pieces (`rnn.CellOps`; CPU forms from
      `models.create` on CPU).
  """
  vocab_size: int
  num_classes: int
  embedding_size: int = 128
  hidden_size: int = 128
  cell_type: str = 'lstm'
  num_layers: int = 1
  bidirectional: bool = False
  pooling: str = 'last'
  embedding_dropout: float = 0.0
  dropout: float = 0.0
  cell_ops: rnn.CellOps = rnn.CellOps()

  @nn.compact
  def __call__(self, tokens: Array, lengths: Array | None = None, *, train: bool = False) -> Array:
    """tokens int `[batch, time]`, lengths int `[batch]` (None: all full) -> logits `[batch, C]`."""
    if self.pooling not in ('last', 'mean', 'max'):
      raise ValueError(f"pooling must be 'last', 'mean' or 'max', got {self.pooling!r}")
    batch, time = tokens.shape
    if lengths is None:
      lengths = jnp.full((batch,), time, jnp.int32)
    x = nn.Embed(self.vocab_size, self.embedding_size, name='embed')(tokens)
    x = nn.Dropout(self.embedding_dropout, deterministic=not train)(x)
    layer = rnn.RNN(self.hidden_size, self.cell_type, self.num_layers, self.bidirectional,
                    self.dropout, cell_ops=self.cell_ops, name='rnn')
    outputs, carries = layer(x, lengths, train=train)
    if self.pooling == 'last':
      features = rnn.final_hidden(carries, layer.num_directions)
    else:
      if self.pooling == 'mean':  # outputs past a sequence's length are zero
        features = outputs.sum(axis=1) / jnp.maximum(lengths, 1)[:, None].astype(outputs.dtype)
      else:
        valid = (jnp.arange(time)[None, :] < lengths[:, None])[..., None]  # [batch, time, 1]
        features = jnp.where(valid, outputs, -jnp.inf).max(axis=1)
        features = jnp.where(lengths[:, None] > 0, features, 0.0)
    features = nn.Dropout(self.dropout, deterministic=not train)(features)
    return nn.Dense(self.num_classes, name='classifier')(features)


class LanguageModel(nn.Module):
  """Embedding -> stacked recurrent layers with dropout -> vocabulary logits, with TBPTT state.

  Attributes:
    vocab_size: V.
    hidden_size: H, each layer's state size.
    embedding_size: E (None: H; must equal H when tying weights).
    num_layers: L.
    cell_type: 'lstm', 'gru' or 'rnn'.
    dropout: rate on the embeddings and on every layer's outputs (training only).
    tie_weights: score the vocabulary with the transposed embedding (Press & Wolf 2017) instead of
      a separate dense layer (an output bias is kept).
    init_scale: if set, every parameter starts uniform in [-init_scale, init_scale]; None uses
      the defaults of Flax and models/rnn.py.
    forget_bias: LSTM forget-gate bias added at initialisation.
    unroll: `lax.scan` unroll factor.
    cell_ops: the recurrent cells' elementwise pieces (`rnn.CellOps`).
    output_dense: the module of the untied output layer, called as `output_dense(vocab_size)`
      on `[batch * time, H]` (`nn.Dense`'s parameters).
    output_affine: `output_affine(x, kernel, bias)` = `x @ kernel + bias`, the tied output layer.
      `models.create` passes the bias-folding CPU forms of these two on CPU.
  """
  vocab_size: int
  hidden_size: int = 256
  embedding_size: int | None = None
  num_layers: int = 2
  cell_type: str = 'lstm'
  dropout: float = 0.0
  tie_weights: bool = False
  init_scale: float | None = None
  forget_bias: float = 1.0
  unroll: int = 1
  cell_ops: rnn.CellOps = rnn.CellOps()
  output_dense: Callable[..., nn.Module] = nn.Dense
  output_affine: Callable[..., Array] = layers.affine

  def zero_carry(self, batch_size: int, dtype=jnp.float32) -> tuple[Any, ...]:
    """One zero carry per layer (an `[batch, H]` array, or (h, c) for the LSTM)."""
    cell = rnn.make_cell(self.cell_type, self.hidden_size, parent=None)
    return tuple(cell.zero_carry(batch_size, dtype) for _ in range(self.num_layers))

  @nn.compact
  def __call__(self, inputs: Array, reset: Array | None = None, *, train: bool = False,
               initial_carry: Sequence[Any] | None = None, return_carry: bool = False):
    """Logits for the next token at every position.

    Args:
      inputs: int token ids `[batch, time]`.
      reset: optional bool `[batch]`: rows whose carried state restarts from zero (training).
      train: dropout on, and the carried state is read and written (see the module docstring).
      initial_carry: start from this carry (one per layer) instead of zeros / the carried one.
      return_carry: also return the final carry.

    Returns:
      logits `[batch, time, vocab_size]`, and the final carry if `return_carry`.
    """
    batch = inputs.shape[0]
    embedding_size = self.embedding_size or self.hidden_size
    if self.tie_weights and embedding_size != self.hidden_size:
      raise ValueError(f'tie_weights needs embedding_size == hidden_size, got {embedding_size} '
                       f'and {self.hidden_size}')
    if self.init_scale:
      init = _symmetric_uniform(self.init_scale)
      cell_inits = {'kernel_init': init, 'recurrent_kernel_init': init, 'bias_init': init}
      embed_init, dense_inits = init, {'kernel_init': init, 'bias_init': init}
    else:
      cell_inits, dense_inits = {}, {}
      embed_init = nn.initializers.normal(stddev=1.0)  # nn.Embed's default

    carried = None
    if self.is_initializing() or self.has_variable('carry', 'state'):
      carried = self.variable('carry', 'state', self.zero_carry, batch)
    use_carried = train and carried is not None and self.is_mutable_collection('carry')
    if initial_carry is not None:
      carry = tuple(initial_carry)
    elif use_carried:
      carry = carried.value
      leading = jax.tree.leaves(carry)[0].shape[0]
      if leading != batch:
        raise ValueError(f'The carried state is for batches of {leading} rows, this batch has '
                         f'{batch}; initialise the model on a training batch.')
      carry = jax.lax.stop_gradient(carry)
    else:
      carry = self.zero_carry(batch)
    if reset is not None:
      keep = ~jnp.asarray(reset, bool)[:, None]
      carry = jax.tree.map(lambda c: jnp.where(keep, c, jnp.zeros_like(c)), carry)

    embed = nn.Embed(self.vocab_size, embedding_size, embedding_init=embed_init, name='embed')
    x = embed(inputs)
    x = nn.Dropout(self.dropout, deterministic=not train)(x)
    x = jnp.swapaxes(x, 0, 1)  # time-major [time, batch, features]
    finals = []
    for layer in range(self.num_layers):
      cell = rnn.make_cell(self.cell_type, self.hidden_size, forget_bias=self.forget_bias,
                           ops=self.cell_ops, name=f'l{layer}', **cell_inits)
      final, x = cell.scan(carry[layer], cell.project(x), unroll=self.unroll)
      finals.append(final)
      x = nn.Dropout(self.dropout, deterministic=not train)(x)
    # Scored as ONE 2-D product `[batch * time, H] x [H, V]` whose rows are already batch-major:
    # transposing the small `[time, batch, H]` costs little, while a 3-D product (or transposing
    # the `[.., V]` logits) makes XLA move the large logits and their gradient
    # (docs/performance.md).
    time = x.shape[0]
    x = jnp.swapaxes(x, 0, 1).reshape(batch * time, x.shape[-1])
    if self.tie_weights:
      bias = self.param('output_bias', dense_inits.get('bias_init', nn.initializers.zeros_init()),
                        (self.vocab_size,))
      x, embedding, bias = promote_dtype(x, embed.embedding, bias, dtype=embed.dtype)
      logits = self.output_affine(x, embedding.T, bias)
    else:
      logits = self.output_dense(self.vocab_size, name='output', **dense_inits)(x)
    logits = logits.reshape(batch, time, self.vocab_size)
    finals = tuple(finals)
    if use_carried and initial_carry is None:
      carried.value = jax.lax.stop_gradient(finals)
    return (logits, finals) if return_carry else logits


def _symmetric_uniform(scale: float):
  """Initialiser drawing uniformly from [-scale, scale] (any shape)."""

  def init(key, shape, dtype=jnp.float32):
    return jax.random.uniform(key, shape, dtype, -scale, scale)

  return init


def sample(model: LanguageModel, params: Any, prompt_ids: Sequence[int], length: int,
           temperature: float = 1.0, seed: int = 0, exclude: Sequence[int] = ()) -> np.ndarray:
  """Draws `length` tokens after `prompt_ids` from the language model.

  The prompt is read in one call; then each token is drawn from `softmax(logits / temperature)`
  (`temperature=0` takes the most likely token) and fed back, inside one `jax.lax.scan`. The same
  seed gives the same text. Ids in `exclude` (e.g. `<unk>`) are never drawn.

  Returns:
    int32 `[length]`: the drawn token ids (without the prompt).
  """
  prompt = jnp.asarray(prompt_ids, jnp.int32)[None, :]
  if prompt.shape[1] < 1:
    raise ValueError('sample needs a prompt of at least one token.')
  variables = {'params': params}

  @jax.jit
  def run(key):
    logits, carry = model.apply(variables, prompt, return_carry=True)

    def draw(key, logits):
      if exclude:
        logits = logits.at[:, jnp.asarray(exclude)].set(-jnp.inf)
      if temperature == 0:
        return jnp.argmax(logits, -1).astype(jnp.int32)
      return jax.random.categorical(key, logits / temperature).astype(jnp.int32)

    def body(state, key):
      carry, last_logits = state
      token = draw(key, last_logits)
      logits, carry = model.apply(variables, token[:, None], initial_carry=carry,
                                  return_carry=True)
      return (carry, logits[:, -1]), token[0]

    _, tokens = jax.lax.scan(body, (carry, logits[:, -1]), jax.random.split(key, length))
    return tokens

  return np.asarray(run(jax.random.PRNGKey(seed)))


MODELS = {
    'rnn_classifier': SequenceClassifier,
    'lstm_classifier': functools.partial(SequenceClassifier, cell_type='lstm'),
    'gru_classifier': functools.partial(SequenceClassifier, cell_type='gru'),
    'bilstm_classifier': functools.partial(SequenceClassifier, cell_type='lstm',
                                           bidirectional=True),
    'lstm_lm': functools.partial(LanguageModel, cell_type='lstm'),
    'gru_lm': functools.partial(LanguageModel, cell_type='gru'),
    'rnn_lm': functools.partial(LanguageModel, cell_type='rnn'),
}
