"""Tasks over token sequences: sequence classification and language modelling; a sampler CLI.

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

Sampling from a trained language model (loads the workdir's config and newest checkpoint):

    python -m train.lm_tasks --workdir=DIR [--prompt=TEXT] [--length=600] [--temperature=0.8]
        [--seed=0]
"""

from __future__ import annotations

import json
import math
import os
import sys
from typing import Any

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


# ---------------------------------------------------------------------------------------------
# Sampling command.


def load_for_sampling(workdir: str, step: int | None = None) -> tuple[Any, Any, dict, int]:
  """(model, params, dataset meta (with `vocab` and `level`), step) of a language-model run.

  The vocabulary is rebuilt from the run's config (the pipeline builds it from the training text
  deterministically); the parameters come from the newest checkpoint (or `step`).
  """
  import ml_collections
  import orbax.checkpoint as ocp

  import data as data_lib
  import models
  from train import trainer

  with open(os.path.join(workdir, 'config.json')) as f:
    config = ml_collections.ConfigDict(json.load(f))
  dataset = data_lib.create(config)
  if 'vocab' not in dataset.meta:
    raise ValueError(f'{workdir} is not a language-model run (its dataset has no vocabulary).')
  kwargs = trainer._model_kwargs(config, dataset.meta)  # pylint: disable=protected-access
  model = models.create(config.model, **kwargs)
  manager = ocp.CheckpointManager(os.path.abspath(os.path.join(workdir, 'checkpoints')))
  step = manager.latest_step() if step is None else step
  if step is None:
    raise ValueError(f'{workdir} has no checkpoint.')
  restored = manager.restore(step, args=ocp.args.StandardRestore())
  manager.close()
  return model, restored['params'], dataset.meta, step


def generate(model, params, vocab, prompt: str, length: int, temperature: float, seed: int,
             level: str = 'char') -> str:
  """The prompt followed by `length` sampled tokens, as text."""
  from data import text as text_lib
  from models import heads

  tokens = list(prompt) if level == 'char' else text_lib.word_stream(prompt)[:-1]
  ids = heads.sample(model, params, vocab.encode(tokens), length, temperature, seed,
                     exclude=(vocab.unk_id,))
  words = vocab.decode(ids)
  if level == 'char':
    return prompt + ''.join(words)
  return prompt + ' ' + ' '.join('\n' if w == text_lib.EOS else w for w in words)


def main(argv: list[str] | None = None) -> int:
  from train import cli
  parser = cli.Parser(prog='python -m train.lm_tasks',
                      description='Sample text from a trained language model.')
  parser.add_argument('--workdir', required=True)
  parser.add_argument('--prompt', default='\n')
  parser.add_argument('--length', type=int, default=600)
  parser.add_argument('--temperature', type=float, default=0.8)
  parser.add_argument('--seed', type=int, default=0)
  parser.add_argument('--step', type=int, default=None, help='checkpoint step (default: newest)')
  args = parser.parse_args(argv)

  def command():
    model, params, meta, step = load_for_sampling(args.workdir, args.step)
    text = generate(model, params, meta['vocab'], args.prompt, args.length, args.temperature,
                    args.seed, meta.get('level', 'char'))
    print(f'# {args.workdir}, step {step}, temperature {args.temperature}, seed {args.seed}',
          file=sys.stderr)
    print(text)

  return cli.run(command)


if __name__ == '__main__':
  sys.exit(main())
