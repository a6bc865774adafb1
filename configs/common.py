"""The keys every experiment config shares, with their defaults.

Each config file starts from `base()` and overrides what its experiment needs, so any run can be
shortened or re-seeded the same way: `--config.num_train_steps=100 --config.seed=1`. The input
pipeline's options live in the section `config.data`, which a config file builds with
`data.options(config.dataset, KEY=VALUE, ...)` (only what differs from the pipeline's defaults);
every option can then be set as `--config.data.KEY=VALUE`.
"""

import ml_collections
from ml_collections.config_dict import placeholder


def base() -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.seed = 0
  # Data.
  config.dataset = ''
  config.data_dir = placeholder(str)  # tfds data_dir; None: $TFDS_DATA_DIR or ~/tensorflow_datasets.
  config.batch_size = 128  # global, over all devices and hosts.
  config.eval_batch_size = placeholder(int)  # None: batch_size.
  config.data = ml_collections.ConfigDict()  # the pipeline's options: data.options(dataset, ...)
  # Model and task.
  config.model = ''
  config.model_kwargs = ml_collections.ConfigDict()
  config.task = 'classification'
  config.task_kwargs = ml_collections.ConfigDict()
  # Optimisation (train/optim.py documents each key).
  config.optimizer = 'sgd'
  config.learning_rate = 0.1
  config.momentum = 0.9
  config.nesterov = False
  config.weight_decay = 0.0
  config.schedule = 'constant'
  config.warmup_steps = 0
  config.decay_boundaries = ()
  config.decay_factor = 0.1
  config.grad_clip_norm = placeholder(float)
  config.skip_nonfinite_updates = False
  # Mixed precision: 'bfloat16' computes forward and backward in bf16 (fast on TPUs and recent
  # GPUs; slower on most CPUs); parameters, optimiser state, loss and metrics stay float32.
  config.compute_dtype = 'float32'
  config.tensorboard_images = True  # filters and feature maps in TensorBoard at each eval
  # Devices: split parameters and optimiser state over the 'data' axis (FSDP-style) instead of
  # replicating them; for models that do not fit one device.
  config.shard_params = False
  # Loop.
  config.num_train_steps = 1000
  config.log_every_steps = 50
  config.eval_every_steps = 500
  config.checkpoint_every_steps = 500
  config.keep_checkpoints = 3
  return config


def steps_for_epochs(epochs: float, num_examples: int, batch_size: int) -> int:
  return int(round(epochs * (num_examples // batch_size)))


def model_kwargs(model: str, **values) -> ml_collections.ConfigDict:
  """`model_kwargs` listing every simple constructor argument of registry model `model`.

  Arguments not given in `values` are typed placeholders (None: the model's own default applies;
  the trainer drops None values), so each can still be set from the command line, e.g.
  `--config.model_kwargs.dropout=0.5`, and a misspelled one is refused with a suggestion.
  """
  import dataclasses
  import functools

  import models

  constructor = models.registry()[model]
  fixed = {}
  while isinstance(constructor, functools.partial):
    fixed = {**constructor.keywords, **fixed}
    constructor = constructor.func
  kwargs = ml_collections.ConfigDict()
  for field in dataclasses.fields(constructor):
    if field.name in ('parent', 'name') or not field.init:
      continue
    default = fixed.get(field.name, field.default)
    if isinstance(default, (bool, int, float, str)):
      kind = type(default)
    elif isinstance(default, (tuple, list)):
      kind = tuple
    elif default is None or default is dataclasses.MISSING:
      kind = object
    else:
      continue  # initialisers, dtypes and other objects are not command-line material
    kwargs[field.name] = placeholder(kind)
  for key, value in values.items():
    if key not in kwargs:
      raise KeyError(f"model '{model}' has no argument '{key}'")
    kwargs[key] = value
  return kwargs
