"""The recipe the synthetic seq2seq experiments share (configs/*_seq2seq.py).

A character-level LSTM encoder-decoder (models/seq2seq.py) trained with teacher forcing and Adam,
evaluated by greedy decoding (`eval_exact_match`). Variant '' uses Luong dot attention with input
feeding (`seq2seq_attention`); ':noattention' is the same network without attention (`seq2seq`).
Each experiment file sets its dataset keys (data/synthetic.py) and its length of training.
"""

from configs import common

MODELS = {'': 'seq2seq_attention', 'noattention': 'seq2seq'}


def base(experiment: str, variant: str, **model_kwargs):
  """The shared config; `model_kwargs` override the model's (embed_dim 32, hidden_size 256)."""
  if variant not in MODELS:
    raise ValueError(f"Unknown variant '{variant}' of {experiment}; use ':noattention' or none.")
  config = common.base()
  config.task = 'seq2seq'
  config.model = MODELS[variant]
  config.model_kwargs = common.model_kwargs(
      config.model, **{'embed_dim': 32, 'hidden_size': 256, **model_kwargs})
  config.batch_size = 128
  config.eval_batch_size = 500
  config.optimizer = 'adam'
  config.learning_rate = 3e-3
  config.schedule = 'warmup_cosine'
  config.warmup_steps = 100
  config.grad_clip_norm = 1.0
  config.num_train_steps = 3_000
  config.log_every_steps = 100
  config.eval_every_steps = 1_000
  config.checkpoint_every_steps = 1_000
  return config
