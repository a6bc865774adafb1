"""The sequence-to-sequence task: teacher-forced cross-entropy; greedy decoding in evaluation.

Batch (data/synthetic.py): `inputs` `[B, S]`, `input_lengths` `[B]`, `decoder_inputs` `[B, T]`
(BOS + target), `targets` `[B, T]` (target + EOS), `target_mask` `[B, T]`, and in evaluation
`mask` `[B]` (False on padding examples).

Metrics (sums, divided once at the end over the whole split):
  loss            teacher-forced cross-entropy per target token (EOS included).
  accuracy        teacher-forced next-token accuracy per target token.
  exact_match     (eval) greedy decoding, no teacher forcing: the whole output up to and
                  including EOS equals the target (so it also stopped at the right place).
  token_accuracy  (eval) greedy decoding: fraction of target positions (EOS included) predicted
                  correctly, position by position.
  bleu            (eval, with `bleu=True`) corpus BLEU (0-100) of the greedy outputs against the
                  targets, on token ids, each cut at its first EOS (EOS itself not counted):
                  the n-gram statistics are summed in the eval step, the score computed once
                  from the totals (train/bleu.py; equal to sacrebleu with tokenize='none').
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from models.cpu_kernels import argmax_matches
from train import bleu as bleu_lib
from train.tasks import Batch, Sums, Task, example_weights


class Seq2Seq(Task):
  """Encoder-decoder training with teacher forcing; evaluation decodes greedily.

  Args:
    label_smoothing: smoothing of the training targets (0: plain cross-entropy, computed from
      the integer labels without a one-hot matrix).
    bleu: also compute `bleu` in evaluation.
    eos_id: the end-of-sequence id (hypotheses and references end before it).
    unk_id: if set, reference n-grams containing this id match nothing in BLEU.
  """

  def __init__(self, label_smoothing: float = 0.0, bleu: bool = False, eos_id: int = 2,
               unk_id: int | None = None):
    self.label_smoothing = label_smoothing
    self.bleu = bleu
    self.eos_id = eos_id
    self.unk_id = unk_id

  def model_inputs(self, batch: Batch) -> tuple:
    return batch['inputs'], batch['input_lengths'], batch['decoder_inputs']

  def apply(self, apply_fn, variables, batch: Batch, *, train: bool, rngs=None, mutable=False):
    outputs = super().apply(apply_fn, variables, batch, train=train, rngs=rngs, mutable=mutable)
    if train:
      return outputs
    decoded = apply_fn(variables, batch['inputs'], batch['input_lengths'],
                       max_length=batch['targets'].shape[1], method='greedy_decode')
    return {'logits': outputs, 'predictions': decoded['tokens']}

  def loss_and_sums(self, outputs, batch: Batch) -> tuple[jax.Array, Sums]:
    logits = outputs['logits'] if isinstance(outputs, dict) else outputs
    targets = batch['targets']
    weights = example_weights(batch, targets.shape[0])
    token_weights = batch['target_mask'].astype(jnp.float32) * weights[:, None]
    logits = logits.astype(jnp.float32)
    if self.label_smoothing:
      labels = optax.smooth_labels(jax.nn.one_hot(targets, logits.shape[-1]), self.label_smoothing)
      losses = optax.softmax_cross_entropy(logits, labels)
    else:
      losses = optax.softmax_cross_entropy_with_integer_labels(logits, targets)
    tokens = token_weights.sum()
    correct = argmax_matches(logits, targets).astype(jnp.float32)
    sums = {'loss': (losses * token_weights).sum(), 'accuracy': (correct * token_weights).sum(),
            'tokens': tokens, 'count': weights.sum()}
    if isinstance(outputs, dict):
      hits = (outputs['predictions'] == targets) | ~batch['target_mask'].astype(bool)
      sums['exact_match'] = (hits.all(-1).astype(jnp.float32) * weights).sum()
      sums['token_accuracy'] = ((outputs['predictions'] == targets) * token_weights).sum()
      if self.bleu:
        sums.update(self.bleu_sums(outputs['predictions'], batch, weights))
    return sums['loss'] / jnp.maximum(tokens, 1.0), sums

  def bleu_sums(self, predictions: jax.Array, batch: Batch, weights: jax.Array) -> Sums:
    """BLEU statistics of `predictions` `[B, T]` against `targets`, summed over real examples."""
    is_eos = predictions == self.eos_id
    hyp_lengths = jnp.where(is_eos.any(-1), jnp.argmax(is_eos, -1), predictions.shape[-1])
    ref_lengths = batch['target_mask'].astype(jnp.int32).sum(-1) - 1  # EOS excluded
    stats = bleu_lib.ngram_stats(predictions, hyp_lengths, batch['targets'], ref_lengths,
                                 unk_id=self.unk_id)
    return bleu_lib.weighted_sums(stats, weights)

  def finalize(self, sums: dict[str, float]) -> dict[str, float]:
    tokens, count = max(sums['tokens'], 1.0), max(sums['count'], 1.0)
    metrics = {'loss': sums['loss'] / tokens, 'accuracy': sums['accuracy'] / tokens}
    if 'exact_match' in sums:
      metrics['exact_match'] = sums['exact_match'] / count
      metrics['token_accuracy'] = sums['token_accuracy'] / tokens
    if 'bleu_hyp_length' in sums:
      metrics['bleu'] = bleu_lib.bleu_from_sums(sums)
    return metrics
