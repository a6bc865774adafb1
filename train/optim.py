"""Optimisers and learning-rate schedules, from the config.

Config keys:
  optimizer: 'sgd' (with `momentum`, `nesterov`), 'adam' or 'adamw' (`b1`, `b2`, `eps`).
  learning_rate: peak learning rate.
  weight_decay: L2 penalty. For 'sgd' and 'adam' it is added to the gradient before the update
    (coupled, as in the AlexNet and VGG papers and `torch.optim.SGD`); for 'adamw' it is decoupled.
    It applies to every parameter, as in those papers.
  schedule: 'constant'; 'step' (multiply by `decay_factor` at each of `decay_boundaries`, given as
    steps, or as fractions of `num_train_steps` when all are < 1); 'cosine' (to 0 at the end);
    'warmup_cosine' (linear warm-up over `warmup_steps`, then cosine to 0).
  warmup_steps: linear warm-up length, also usable with 'step' and 'constant'.
  grad_clip_norm: clip the global gradient norm to this value (None: no clipping).
  Fine-tuning (configs/finetune_folder.py, train/init_from.py): `head` names the output layer;
  `freeze_backbone` leaves every other parameter unchanged (their updates are zero; batch-norm
  statistics still follow the new data), `backbone_learning_rate_multiplier` scales their
  learning rate instead (0.1: ten times smaller than the head's). Weight decay and momentum
  and gradient clipping apply within each group.
"""

from __future__ import annotations

import jax
import optax


def _boundaries(config) -> list[int]:
  boundaries = list(config.get('decay_boundaries', None) or [])
  if boundaries and all(0 < b < 1 for b in boundaries):
    boundaries = [int(b * config.num_train_steps) for b in boundaries]
  return [int(b) for b in boundaries]


def create_schedule(config) -> optax.Schedule:
  lr = config.learning_rate
  total = config.num_train_steps
  warmup = int(config.get('warmup_steps', 0) or 0)
  name = config.get('schedule', 'constant')
  if name == 'constant':
    main = optax.constant_schedule(lr)
  elif name == 'step':
    factor = config.get('decay_factor', 0.1)
    main = optax.piecewise_constant_schedule(
        lr, {max(b - warmup, 0): factor for b in _boundaries(config)})
  elif name in ('cosine', 'warmup_cosine'):
    main = optax.cosine_decay_schedule(lr, max(total - warmup, 1))
  else:
    raise ValueError(f"Unknown schedule '{name}'; use constant, step, cosine or warmup_cosine.")
  if not warmup:
    return main
  return optax.join_schedules([optax.linear_schedule(0.0, lr, warmup), main], [warmup])


def create_optimizer(config) -> optax.GradientTransformation:
  """The config's optimiser; with a `head` and a frozen or slower backbone, the head and the
  rest get their own (`optax.multi_transform` over the top-level parameter names)."""
  head = config.get('head', None)
  frozen = bool(config.get('freeze_backbone', False))
  multiplier = config.get('backbone_learning_rate_multiplier', 1.0)
  if multiplier is None:
    multiplier = 1.0
  if multiplier < 0:
    raise ValueError(f'backbone_learning_rate_multiplier must be >= 0, got {multiplier}')
  if not head and (frozen or multiplier != 1.0):
    raise ValueError('freeze_backbone and backbone_learning_rate_multiplier need the output '
                     'layer named in config.head, which --config.init_from=WORKDIR sets')
  if not head or (not frozen and multiplier == 1.0):
    return _create_optimizer(config, 1.0)
  backbone = optax.set_to_zero() if frozen else _create_optimizer(config, multiplier)

  def labels(params):
    return {name: jax.tree.map(lambda _, n=name: 'head' if n == head else 'backbone', value)
            for name, value in params.items()}

  return optax.multi_transform({'head': _create_optimizer(config, 1.0), 'backbone': backbone},
                               labels)


def _create_optimizer(config, scale: float) -> optax.GradientTransformation:
  """The optimiser of `config` with its learning rate (schedule) multiplied by `scale`."""
  base = create_schedule(config)
  schedule = base if scale == 1.0 else (lambda step: scale * base(step))
  name = config.get('optimizer', 'sgd')
  weight_decay = config.get('weight_decay', 0.0) or 0.0
  parts = []
  clip = config.get('grad_clip_norm', None)
  if clip:
    parts.append(optax.clip_by_global_norm(clip))
  if name == 'sgd':
    if weight_decay:
      parts.append(optax.add_decayed_weights(weight_decay))
    parts.append(optax.sgd(schedule, momentum=config.get('momentum', 0.9) or None,
                           nesterov=config.get('nesterov', False)))
  elif name == 'adam':
    if weight_decay:
      parts.append(optax.add_decayed_weights(weight_decay))
    parts.append(optax.adam(schedule, b1=config.get('b1', 0.9), b2=config.get('b2', 0.999),
                            eps=config.get('eps', 1e-8)))
  elif name == 'adamw':
    parts.append(optax.adamw(schedule, b1=config.get('b1', 0.9), b2=config.get('b2', 0.999),
                             eps=config.get('eps', 1e-8), weight_decay=weight_decay))
  else:
    raise ValueError(f"Unknown optimizer '{name}'; use sgd, adam or adamw.")
  return optax.chain(*parts)
