"""The captioning task: teacher-forced cross-entropy; greedy decoding from the image in evaluation.

Batch (data/digit_strips.py, data/coco_captions.py): `image` `[B, H, W, C]`, `decoder_inputs`
`[B, T]` (BOS + caption), `targets` `[B, T]` (caption + EOS), `target_mask` `[B, T]`, and in
evaluation `mask` `[B]` (False on padding examples).

Metrics are those of the sequence-to-sequence task (train/seq_tasks.py), summed over the whole
split and divided once at the end:
  loss            teacher-forced cross-entropy per caption token (EOS included).
  accuracy        teacher-forced next-token accuracy per caption token.
  exact_match     (eval) greedy decoding from the image alone: the whole caption up to and
                  including EOS is right.
  token_accuracy  (eval) greedy decoding: fraction of caption positions (EOS included) right.
"""

from __future__ import annotations

from train.seq_tasks import Seq2Seq
from train.tasks import Batch


class Captioning(Seq2Seq):
  """Image -> caption training with teacher forcing; evaluation decodes greedily.

  Args:
    label_smoothing: smoothing of the training targets (0: plain cross-entropy).
  """

  def model_inputs(self, batch: Batch) -> tuple:
    return batch['image'], batch['decoder_inputs']

  def apply(self, apply_fn, variables, batch: Batch, *, train: bool, rngs=None, mutable=False):
    if train:
      return apply_fn(variables, *self.model_inputs(batch), train=True, rngs=rngs,
                      mutable=mutable)
    # One encoder pass for both the teacher-forced metrics and greedy decoding.
    logits, decoded = apply_fn(variables, *self.model_inputs(batch),
                               max_length=batch['targets'].shape[1],
                               method='logits_and_greedy_decode')
    return {'logits': logits, 'predictions': decoded['tokens']}
