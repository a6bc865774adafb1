"""Tasks over token sequences: sequence classification and language modelling.

SequenceClassification ('sequence_classification'): batches of `tokens` `[batch, time]`,
`length` `[batch]` and `label` `[batch]`; the model is called as `model(tokens, length)`; loss and
metrics are those of image classification (softmax cross-entropy, top-1 `accuracy`).

LanguageModel ('language_model'): batches of `inputs`, `targets` `[batch, time]`, `weights`
`[batch, time]` (1 on scored tokens) and, in training, `reset` `[batch]` (data/text.py). The
model is called as `model(inputs, reset)`. Metric sums are per token, over tokens whose weight is
1 in rows that are not padding (`mask`); `count` is the number of such tokens. So

  loss = mean token negative log-likelihood (nats),
  perplexity = exp(loss),  bits_per_char = loss / ln 2  (with `bits_per_char=True`, i.e. for
  character-level models; it is then bits per token = bits per character),
  accuracy = fraction of next tokens predicted exactly (argmax),

all computed once from the sums of the whole split (`finalize`), so evaluation is exact.
Sampling text from a trained language model is the command `python -m train.sample`.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import optax

from models.cpu_kernels import argmax_matches
from train.tasks import Batch, Classification, Sums, Task, example_weights

LN2 = math.log(2.0)


class SequenceClassification(Classification):
  """Classification of padded token sequences; the model reads `(tokens, length)`."""

  def model_inputs(self, batch: Batch) -> tuple:
    return (batch['tokens'], batch['length'])


class LanguageModel(Task):
  """Next-token cross-entropy with per-token weights; perplexity and bits per character.

  Args:
    bits_per_char: also report `bits_per_char` (for character-level models).
  """

  def __init__(self, bits_per_char: bool = False):
    self.bits_per_char = bits_per_char

  def model_inputs(self, batch: Batch) -> tuple:
    return (batch['inputs'], batch.get('reset'))

  def loss_and_sums(self, logits: jax.Array, batch: Batch) -> tuple[jax.Array, Sums]:
    targets = batch['targets']
    weights = batch['weights'].astype(jnp.float32) if 'weights' in batch else \
        jnp.ones(targets.shape, jnp.float32)
    weights = weights * example_weights(batch, targets.shape[0])[:, None]
    logits = logits.astype(jnp.float32)
    nll = optax.softmax_cross_entropy_with_integer_labels(logits, targets)
    correct = argmax_matches(logits, targets).astype(jnp.float32)
    count = weights.sum()
    sums = {'loss': (nll * weights).sum(), 'accuracy': (correct * weights).sum(), 'count': count}
    return sums['loss'] / jnp.maximum(count, 1.0), sums

  def finalize(self, sums: dict[str, float]) -> dict[str, float]:
    metrics = super().finalize(sums)
    metrics['perplexity'] = math.exp(min(metrics['loss'], 700.0))
    if self.bits_per_char:
      metrics['bits_per_char'] = metrics['loss'] / LN2
    return metrics
