"""IMDB movie-review sentiment (Maas et al. 2011) with an LSTM over the first 400 tokens.

Needs the tfds dataset `imdb_reviews` prepared in array_record format (once, where TensorFlow is
installed: `tfds build imdb_reviews --data_dir=DIR --file_format=array_record`), then:
  python -m train.main --config=configs/imdb_lstm.py --workdir=workdirs/imdb_lstm \
      --config.data_dir=DIR

Data: 25,000 train / 25,000 test reviews (balanced), lower-cased words and punctuation, the
20,000 most frequent training words, each review cut to its first 400 tokens.
Model: embedding 128 -> BiLSTM 2x128 -> max over time -> dropout -> 2 classes; AdamW, 4 epochs.
Not measured here (no IMDB offline); bidirectional LSTMs of this size usually reach 86-89%.
"""

import data
from configs import common

TRAIN_EXAMPLES = 25_000


def get_config():
  config = common.base()
  config.dataset = 'imdb_reviews'
  config.data = data.options(config.dataset, vocab_size=20_000, max_length=400)
  config.model = 'bilstm_classifier'
  config.model_kwargs = common.model_kwargs(
      config.model, embedding_size=128, hidden_size=128, pooling='max', embedding_dropout=0.3,
      dropout=0.5)
  config.task = 'sequence_classification'
  config.batch_size = 64
  config.optimizer = 'adamw'
  config.learning_rate = 2e-3
  config.weight_decay = 1e-4
  config.schedule = 'warmup_cosine'
  config.warmup_steps = 200
  config.grad_clip_norm = 5.0
  epochs = 4
  steps_per_epoch = TRAIN_EXAMPLES // config.batch_size
  config.num_train_steps = epochs * steps_per_epoch
  config.log_every_steps = 100
  config.eval_every_steps = steps_per_epoch
  config.checkpoint_every_steps = steps_per_epoch
  return config
