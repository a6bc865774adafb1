"""The results this repository reproduces: one `Target` per row of README.md's results table.

Each target names a config (with its variant), the overrides it runs with, the metric the trainer
reports for it (its final `eval_*` value), our expected value with a tolerance, the published
reference where one exists (and its source), the suites it belongs to, and how to prepare its data.
`train.reproduce` runs a suite's targets through the sweep machinery and writes the table.

Suites: `quick` (minutes; shortened runs that check the machinery end to end, what the tests
run), `cpu` (every CPU-sized row of the table, with the real configs: hours on 2 cores) and `gpu`
(the rows measured on a GPU).
"""

from __future__ import annotations

import dataclasses

SUITES = ('quick', 'cpu', 'gpu')


@dataclasses.dataclass(frozen=True)
class Reference:
  """A published figure to compare with (in the metric's units; accuracies as fractions)."""
  value: float
  source: str


@dataclasses.dataclass(frozen=True)
class Target:
  """One reproducible result.

  Attributes:
    name: the target's name (also its directory under the reproduce workdir).
    config: `configs/NAME.py[:variant]`.
    metric: the trainer's final metric it is judged by, e.g. `eval_accuracy`.
    description: what the metric measures, for the table.
    expected: our value (mean over seeds) from the README; None: not measured yet.
    tolerance: how far the mean over seeds may lie from `expected` (absolute, either side).
    suites: the suites it belongs to.
    overrides: config overrides (KEY, VALUE as text), e.g. shorter runs for `quick`.
    reference: the published figure, or None.
    prepare: the command that prepares its data; None for data that ships with the code.
    then: a command for further figures of the README row (beam search, test BLEU), run by hand
      on the finished workdir (`{workdir}` is replaced).
    percent: show values as percentages.
    seeds: how many seeds (0..seeds-1) `train.reproduce` runs unless `--seeds` says: 3, or 5
      for the targets whose run takes at most about 4 minutes on one core.
  """
  name: str
  config: str
  metric: str
  description: str
  expected: float | None
  tolerance: float
  suites: tuple[str, ...]
  overrides: tuple[tuple[str, str], ...] = ()
  reference: Reference | None = None
  prepare: str | None = None
  then: str = ''
  percent: bool = False
  seeds: int = 3

  def within_tolerance(self, value: float) -> bool | None:
    """Whether `value` lies within `tolerance` of `expected`; None when nothing is expected."""
    if self.expected is None:
      return None
    return abs(value - self.expected) <= self.tolerance + 1e-12


ZALANDO = ('Zalando Research, Fashion-MNIST README benchmark table '
           '(github.com/zalandoresearch/fashion-mnist#benchmark)')
KIM = ('Kim 2014, "Convolutional Neural Networks for Sentence Classification", MR; a CNN on '
       'the 10,662 balanced MR sentences, not our 12,752 Rotten Tomatoes snippets (57.8% fresh)')
ZAREMBA = ('Zaremba et al. 2014, "Recurrent Neural Network Regularization", PTB test perplexity; '
           'the config runs on its default corpus until PTB is prepared as a tfds dataset')
TORCHVISION = 'torchvision pretrained weights, ImageNet-1k val acc@1 (torchvision model docs)'

_SHORT = (('num_train_steps', '300'), ('eval_every_steps', '300'),
          ('checkpoint_every_steps', '300'))
_FMNIST = 'python -m data.prepare fashion_mnist'
_END_EVAL = (('eval_every_steps', '5000'),)  # the README's Ding times: evaluating at the end only

TARGETS: tuple[Target, ...] = (
    # quick: shortened runs, minutes in all; their expected values were measured with them.
    Target('digits_quick', 'configs/default.py', 'eval_accuracy',
           'test accuracy (360 images), 300 steps', 0.935, 0.03, ('quick',), _SHORT, percent=True),
    Target('addition_quick', 'configs/addition_seq2seq.py', 'eval_token_accuracy',
           'held-out token accuracy, greedy, 400 steps', 0.61, 0.03, ('quick',),
           (('num_train_steps', '400'), ('eval_every_steps', '400'),
            ('checkpoint_every_steps', '400')), percent=True),
    Target('fashion_mnist_quick', 'configs/fashion_mnist_convnet.py', 'eval_accuracy',
           'test accuracy (10,000 images), 300 steps', 0.879, 0.02, ('quick',), _SHORT,
           prepare=_FMNIST, percent=True),
    # cpu: the README's CPU rows with their real configs.
    Target('digits', 'configs/default.py', 'eval_accuracy', 'test accuracy (360 images)',
           0.9963, 0.01, ('cpu',), percent=True, seeds=5),
    Target('fashion_mnist_convnet', 'configs/fashion_mnist_convnet.py', 'eval_accuracy',
           'test accuracy (10,000 images)', 0.9310, 0.005, ('cpu',),
           reference=Reference(0.916, f'2 Conv+pooling (TensorFlow tutorial), {ZALANDO}'),
           prepare=_FMNIST, percent=True),
    Target('movie_reviews_lstm', 'configs/movie_reviews_lstm.py', 'eval_accuracy',
           'test accuracy (1,275 snippets; majority class 57.8%)', 0.7984, 0.015, ('cpu',),
           reference=Reference(0.815, f'CNN-non-static, {KIM}'),
           prepare='python -m data.prepare movie_reviews', percent=True, seeds=5),
    Target('shakespeare_char_lstm', 'configs/shakespeare_char_lstm.py', 'eval_bits_per_char',
           'bits per character on Macbeth (held out)', 2.264, 0.05, ('cpu',),
           prepare='python -m data.prepare shakespeare'),
    Target('addition_attention', 'configs/addition_seq2seq.py', 'eval_exact_match',
           'exact match, 2,000 held-out sums, greedy', 0.9945, 0.005, ('cpu',),
           then='python -m train.evaluate --workdir={workdir} --beam_size=4', percent=True),
    Target('addition_noattention', 'configs/addition_seq2seq.py:noattention', 'eval_exact_match',
           'exact match, 2,000 held-out sums, greedy', 0.9890, 0.008, ('cpu',),
           then='python -m train.evaluate --workdir={workdir} --beam_size=4', percent=True,
           seeds=5),
    Target('reversal_attention', 'configs/reversal_seq2seq.py', 'eval_exact_match',
           'held-out exact match, lengths 1-30, greedy', 0.9995, 0.003, ('cpu',),
           then='python -m train.evaluate --workdir={workdir} --beam_size=4', percent=True),
    Target('reversal_noattention', 'configs/reversal_seq2seq.py:noattention', 'eval_exact_match',
           'held-out exact match, lengths 1-30, greedy', 0.5795, 0.05, ('cpu',),
           then='python -m train.evaluate --workdir={workdir} --beam_size=4', percent=True),
    Target('dates_attention', 'configs/dates_seq2seq.py', 'eval_exact_match',
           'held-out exact match', 1.0, 0.005, ('cpu',), percent=True),
    Target('dates_noattention', 'configs/dates_seq2seq.py:noattention', 'eval_exact_match',
           'held-out exact match', 1.0, 0.005, ('cpu',), percent=True),
    Target('ding_attention', 'configs/ding_translation.py', 'eval_bleu',
           'validation BLEU (tokens, greedy), 2,764 pairs; test sacreBLEU via train.translate',
           8.09, 0.6, ('cpu',), _END_EVAL, prepare='python -m data.prepare ding_en_de',
           then='python -m train.translate --workdir={workdir} --split=test --beam_size=4'),
    Target('ding_noattention', 'configs/ding_translation.py:noattention', 'eval_bleu',
           'validation BLEU (tokens, greedy), 2,764 pairs; test sacreBLEU via train.translate',
           5.76, 0.6, ('cpu',), _END_EVAL, prepare='python -m data.prepare ding_en_de',
           then='python -m train.translate --workdir={workdir} --split=test --beam_size=4'),
    Target('digit_captions', 'configs/digit_captions.py', 'eval_exact_match',
           'whole-caption exact match, 2,000 held-out strips (greedy)', 0.9713, 0.01, ('cpu',),
           percent=True),
    Target('co2_forecast', 'configs/co2_forecast.py', 'eval_rmse',
           'test RMSE, ppm, 13 weeks ahead (naive last value 2.099)', 0.752, 0.05, ('cpu',)),
    Target('msft_forecast', 'configs/msft_forecast.py', 'eval_rmse',
           'test RMSE, $, 5 trading days ahead (naive 1.1521)', 1.1448, 0.01, ('cpu',),
           seeds=5),
    # gpu: rows measured on a GPU, and published models we have configs for.
    Target('fashion_mnist_convnet_gpu', 'configs/fashion_mnist_convnet.py', 'eval_accuracy',
           'test accuracy (10,000 images)', 0.9343, 0.005, ('gpu',),
           reference=Reference(0.916, f'2 Conv+pooling (TensorFlow tutorial), {ZALANDO}'),
           prepare=_FMNIST, percent=True),
    Target('fashion_mnist_vgg', 'configs/fashion_mnist_vgg.py', 'eval_accuracy',
           'test accuracy (10,000 images)', 0.9432, 0.005, ('gpu',),
           reference=Reference(0.935, f'VGG16 26M parameters, {ZALANDO}'), prepare=_FMNIST,
           percent=True),
    Target('ptb_small', 'configs/ptb_lstm_zaremba.py:small', 'eval_perplexity',
           'validation perplexity', None, 0.0, ('gpu',),
           reference=Reference(114.5, f'small model, {ZAREMBA}'),
           prepare='tfds build tiny_shakespeare --file_format=array_record'),
    Target('ptb_medium', 'configs/ptb_lstm_zaremba.py:medium', 'eval_perplexity',
           'validation perplexity', None, 0.0, ('gpu',),
           reference=Reference(82.7, f'medium model, {ZAREMBA}'),
           prepare='tfds build tiny_shakespeare --file_format=array_record'),
    Target('imagenet_alexnet', 'configs/imagenet_alexnet.py', 'eval_accuracy',
           'ImageNet val top-1, trained from scratch', None, 0.0, ('gpu',),
           reference=Reference(0.56522, f'AlexNet, {TORCHVISION}'),
           prepare='tfds build imagenet2012 --file_format=array_record (ILSVRC tars in '
                   'DATA_DIR/downloads/manual/)', percent=True),
    Target('imagenet_vgg16', 'configs/imagenet_vgg16.py', 'eval_accuracy',
           'ImageNet val top-1, trained from scratch', None, 0.0, ('gpu',),
           reference=Reference(0.71592, f'VGG-16, {TORCHVISION}'),
           prepare='tfds build imagenet2012 --file_format=array_record (ILSVRC tars in '
                   'DATA_DIR/downloads/manual/)', percent=True),
)


def suite(name: str) -> list[Target]:
  """The targets of suite `name`; ValueError for an unknown suite."""
  if name not in SUITES:
    raise ValueError(f"unknown suite '{name}'; suites: {', '.join(SUITES)}")
  return [t for t in TARGETS if name in t.suites]


def by_name(names: list[str], targets: list[Target]) -> list[Target]:
  """The targets called `names`, in that order; ValueError naming an unknown one."""
  known = {t.name: t for t in targets}
  missing = [n for n in names if n not in known]
  if missing:
    raise ValueError(f"no target {', '.join(repr(n) for n in missing)} in this suite; "
                     f"targets: {', '.join(known)}")
  return [known[n] for n in names]
