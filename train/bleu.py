"""Corpus BLEU (Papineni et al. 2002) from n-gram statistics summed over a split, as sacrebleu.

Corpus BLEU is a function of sums: for n = 1..4 the clipped n-gram matches (each distinct
hypothesis n-gram counts at most as often as it occurs in the reference) and the hypothesis
n-gram totals, and the summed hypothesis and reference lengths. So it fits the trainer's
sums-then-finalize design: `ngram_stats` computes a batch's statistics inside the jitted eval step
on token ids, the trainer adds them up over the whole split, and `corpus_bleu` turns the totals
into the score. `corpus_bleu` is sacrebleu's `BLEU.compute_bleu` with its defaults (exponential
smoothing of zero-match orders, brevity penalty `exp(1 - ref / hyp)` when the hypotheses are
shorter), so on the same token strings it equals
`sacrebleu.corpus_bleu(hyps, [refs], tokenize='none', force=True).score` (tested).
"""

from __future__ import annotations

import math
from typing import Sequence

import jax
import jax.numpy as jnp

MAX_ORDER = 4


def ngram_stats(hyp: jax.Array, hyp_lengths: jax.Array, ref: jax.Array, ref_lengths: jax.Array,
                max_order: int = MAX_ORDER, unk_id: int | None = None) -> dict[str, jax.Array]:
  """Per-sentence BLEU statistics of token-id hypotheses against one reference each.

  Args:
    hyp: hypothesis ids `[batch, Th]`; only the first `hyp_lengths` count.
    hyp_lengths: `[batch]` int (e.g. tokens before EOS).
    ref: reference ids `[batch, Tr]`; only the first `ref_lengths` count.
    ref_lengths: `[batch]` int.
    max_order: largest n.
    unk_id: if given, a reference n-gram containing this id matches nothing (an out-of-vocabulary
      reference word is never right).

  Returns:
    `matches` and `totals` `[batch, max_order]` (clipped matches and hypothesis n-grams for
    n = 1..max_order), `hyp_length` and `ref_length` `[batch]`; all int32.
  """
  hyp, ref = jnp.asarray(hyp), jnp.asarray(ref)
  hyp_lengths = jnp.asarray(hyp_lengths, jnp.int32)
  ref_lengths = jnp.asarray(ref_lengths, jnp.int32)
  batch, th = hyp.shape
  tr = ref.shape[1]
  equal = hyp[:, :, None] == ref[:, None, :]  # [batch, Th, Tr]
  if unk_id is not None:
    equal = equal & (ref != unk_id)[:, None, :]
  same = hyp[:, :, None] == hyp[:, None, :]  # [batch, Th, Th]
  matches, totals = [], []
  match_run, same_run = equal, same  # n-grams starting at (i, j) equal so far
  for n in range(1, max_order + 1):
    if n > 1:
      match_run = match_run[:, :-1, :-1] & equal[:, n - 1:, n - 1:]
      same_run = same_run[:, :-1, :-1] & same[:, n - 1:, n - 1:]
    starts_h, starts_r = th - n + 1, tr - n + 1
    if starts_h <= 0 or starts_r <= 0:
      matches.append(jnp.zeros((batch,), jnp.int32))
    else:
      valid_h = jnp.arange(starts_h)[None, :] + n <= hyp_lengths[:, None]  # [batch, I]
      valid_r = jnp.arange(starts_r)[None, :] + n <= ref_lengths[:, None]  # [batch, J]
      in_ref = (match_run & valid_h[:, :, None] & valid_r[:, None, :]).sum(-1)
      both = same_run & valid_h[:, :, None] & valid_h[:, None, :]
      in_hyp = both.sum(-1)
      earlier = jnp.arange(starts_h)[None, :] < jnp.arange(starts_h)[:, None]  # [i, i'] i' < i
      first = valid_h & ~(both & earlier[None]).any(-1)  # count each distinct n-gram once
      matches.append((first * jnp.minimum(in_hyp, in_ref)).sum(-1).astype(jnp.int32))
    totals.append(jnp.maximum(hyp_lengths - n + 1, 0))
  return {'matches': jnp.stack(matches, -1), 'totals': jnp.stack(totals, -1).astype(jnp.int32),
          'hyp_length': hyp_lengths, 'ref_length': ref_lengths}


def corpus_bleu(matches: Sequence[float], totals: Sequence[float], hyp_length: float,
                ref_length: float) -> float:
  """BLEU in [0, 100] from summed statistics, exactly as sacrebleu's defaults compute it."""
  matches = [int(round(m)) for m in matches]
  totals = [int(round(t)) for t in totals]
  hyp_length, ref_length = int(round(hyp_length)), int(round(ref_length))
  brevity = 1.0
  if hyp_length < ref_length:
    brevity = math.exp(1 - ref_length / hyp_length) if hyp_length > 0 else 0.0
  if not any(matches):
    return 0.0
  precisions = [0.0] * len(matches)
  smooth = 1.0
  for n, (match, total) in enumerate(zip(matches, totals)):
    if total == 0:
      break
    if match == 0:  # sacrebleu's 'exp' smoothing (mteval-v13a)
      smooth *= 2
      precisions[n] = 100.0 / (smooth * total)
    else:
      precisions[n] = 100.0 * match / total
  log_sum = sum(math.log(p) if p > 0 else -9999999999 for p in precisions)
  return brevity * math.exp(log_sum / len(precisions))


def sum_keys(max_order: int = MAX_ORDER) -> list[str]:
  """Names of the scalar sums a task keeps for BLEU (the trainer sums scalars only)."""
  return (['bleu_hyp_length', 'bleu_ref_length'] + [f'bleu_matches_{n}' for n in
                                                    range(1, max_order + 1)]
          + [f'bleu_totals_{n}' for n in range(1, max_order + 1)])


def weighted_sums(stats: dict[str, jax.Array], weights: jax.Array) -> dict[str, jax.Array]:
  """`ngram_stats` of a batch -> the scalar sums of `sum_keys`, padding examples (weight 0) out."""
  weights = weights.astype(jnp.float32)
  sums = {'bleu_hyp_length': (stats['hyp_length'] * weights).sum(),
          'bleu_ref_length': (stats['ref_length'] * weights).sum()}
  for n in range(stats['matches'].shape[-1]):
    sums[f'bleu_matches_{n + 1}'] = (stats['matches'][:, n] * weights).sum()
    sums[f'bleu_totals_{n + 1}'] = (stats['totals'][:, n] * weights).sum()
  return sums


def bleu_from_sums(sums: dict[str, float], max_order: int = MAX_ORDER) -> float:
  return corpus_bleu([sums[f'bleu_matches_{n}'] for n in range(1, max_order + 1)],
                     [sums[f'bleu_totals_{n}'] for n in range(1, max_order + 1)],
                     sums['bleu_hyp_length'], sums['bleu_ref_length'])
