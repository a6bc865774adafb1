"""What each kind of task contributes to the one trainer: model inputs, loss and metrics.

A task turns a batch and the model's outputs into (1) the scalar loss to differentiate and (2) a
dict of metric *sums* over the batch, including `count`, the number of real (unmasked) examples.
Sums add up exactly across batches, devices and hosts; `finalize` divides once at the end, so an
evaluation over a padded last batch is exact.
"""

from __future__ import annotations

import importlib
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from models.cpu_kernels import argmax_matches

Batch = dict[str, Any]
Sums = dict[str, jax.Array]


class Task:
  """The interface `train.trainer` drives. Subclasses set the loss and metrics.

  `apply` runs the model on a batch; the default calls `apply_fn(variables, *model_inputs(batch))`.
  A task whose evaluation differs from its training forward pass (e.g. greedy decoding instead of
  teacher forcing) overrides `apply` and looks at `train`.
  """

  def prepare(self, batch: Batch) -> Batch:
    """The batch as the model sees it, computed inside the compiled step before the cast to the
    compute dtype (e.g. uint8 images normalised to float32); by default the batch itself."""
    return batch

  def model_inputs(self, batch: Batch) -> tuple:
    """Positional arguments of `model.apply` after the variables."""
    raise NotImplementedError

  def apply(self, apply_fn, variables, batch: Batch, *, train: bool, rngs=None, mutable=False):
    return apply_fn(variables, *self.model_inputs(batch), train=train, rngs=rngs, mutable=mutable)

  def loss_and_sums(self, outputs: Any, batch: Batch) -> tuple[jax.Array, Sums]:
    """Mean loss over the batch's real examples, and metric sums (with `count`)."""
    raise NotImplementedError

  def finalize(self, sums: dict[str, float]) -> dict[str, float]:
    """Metric values from accumulated sums; by default each sum divided by `count`."""
    count = max(sums['count'], 1.0)
    return {name: value / count for name, value in sums.items() if name != 'count'}


def example_weights(batch: Batch, batch_size: int) -> jax.Array:
  """`[batch]` float32: 1 for real examples, 0 for padding (`mask` absent means all real)."""
  mask = batch.get('mask')
  if mask is None:
    return jnp.ones((batch_size,), jnp.float32)
  return mask.astype(jnp.float32)


class Classification(Task):
  """Softmax cross-entropy over `num_classes`; metrics `loss` and `accuracy` (top-1).

  Batch: `image` `[batch, height, width, channels]` (float, or uint8 pixels that `prepare` maps
  to float32 `x / 255`, standardised with `image_mean` and `image_std` when given: the dataset's
  `ClassificationFacts.task_kwargs()`), `label` `[batch]` int, optional `mask`.
  """

  def __init__(self, label_smoothing: float = 0.0, image_mean=None, image_std=None):
    self.label_smoothing = label_smoothing
    if (image_mean is None) != (image_std is None):
      raise ValueError('Classification: give both image_mean and image_std, or neither.')
    self.image_mean = None if image_mean is None else tuple(float(m) for m in image_mean)
    self.image_std = None if image_std is None else tuple(float(s) for s in image_std)

  def prepare(self, batch: Batch) -> Batch:
    image = batch.get('image')
    if image is None or image.dtype != jnp.uint8:
      return batch
    # As data.images.normalizer computes it on the host: x / 255, then (x - mean) * (1 / std).
    image = jnp.asarray(image).astype(jnp.float32) / jnp.float32(255)
    if self.image_mean is not None:
      mean = jnp.asarray(self.image_mean, jnp.float32)
      inv_std = jnp.asarray(1 / np.asarray(self.image_std, np.float32), jnp.float32)
      image = (image - mean) * inv_std
    return {**batch, 'image': image}

  def model_inputs(self, batch: Batch) -> tuple:
    return (batch['image'],)

  def loss_and_sums(self, logits: jax.Array, batch: Batch) -> tuple[jax.Array, Sums]:
    labels = batch['label']
    weights = example_weights(batch, labels.shape[0])
    logits = logits.astype(jnp.float32)
    num_classes = logits.shape[-1]
    targets = optax.smooth_labels(jax.nn.one_hot(labels, num_classes), self.label_smoothing) \
        if self.label_smoothing else jax.nn.one_hot(labels, num_classes)
    losses = optax.softmax_cross_entropy(logits, targets)
    count = weights.sum()
    correct = argmax_matches(logits, labels).astype(jnp.float32)
    sums = {'loss': (losses * weights).sum(), 'accuracy': (correct * weights).sum(), 'count': count}
    return sums['loss'] / jnp.maximum(count, 1.0), sums


# name -> class, or "module:Class" for tasks defined in their own modules (imported on use).
_TASKS: dict[str, Any] = {
    'classification': Classification,
    'seq2seq': 'train.seq_tasks:Seq2Seq',
    'sequence_classification': 'train.lm_tasks:SequenceClassification',
    'language_model': 'train.lm_tasks:LanguageModel',
    'forecasting': 'train.forecast_tasks:Forecasting',
    'captioning': 'train.caption_tasks:Captioning',
}


def create(name: str, **kwargs: Any) -> Task:
  if name not in _TASKS:
    raise ValueError(f"Unknown task '{name}'. Known tasks: {', '.join(sorted(_TASKS))}.")
  task = _TASKS[name]
  if isinstance(task, str):
    module_name, class_name = task.split(':')
    task = getattr(importlib.import_module(module_name), class_name)
  return task(**kwargs)
