"""Samples text from a trained language model.

    python -m train.sample --workdir=DIR [--prompt=TEXT] [--length=600] [--temperature=0.8]
        [--seed=0] [--step=N]

Restores the workdir's newest checkpoint (or `--step`) through the experiment API; the vocabulary
is the run's own (the pipeline rebuilds it deterministically from the training text). The prompt
is read in one call, then each token is drawn from `softmax(logits / temperature)` and fed back
(`--temperature=0` takes the most likely token); the same seed gives the same text. `<unk>` is
never drawn.

Errors are one line `error: ...`: exit code 2 for the command line, 1 for anything else.
"""

from __future__ import annotations

import sys

from train import cli


def generate(model, params, vocab, prompt: str, length: int, temperature: float, seed: int,
             level: str = 'char') -> str:
  """The prompt followed by `length` sampled tokens, as text (`level` 'char' or 'word')."""
  from data import text as text_lib
  from models import heads

  tokens = list(prompt) if level == 'char' else text_lib.word_stream(prompt)[:-1]
  ids = heads.sample(model, params, vocab.encode(tokens), length, temperature, seed,
                     exclude=(vocab.unk_id,))
  words = vocab.decode(ids)
  if level == 'char':
    return prompt + ''.join(words)
  return prompt + ' ' + ' '.join('\n' if w == text_lib.EOS else w for w in words)


def sample(workdir: str, prompt: str, length: int, temperature: float, seed: int,
           step: int | None = None) -> tuple[str, int]:
  """(the prompt and `length` sampled tokens as text, the checkpoint step) of a workdir.

  Raises:
    FileNotFoundError: no workdir, config or checkpoint.
    ValueError: the workdir is not a language-model run, or a bad length or temperature.
  """
  from data import text as text_lib
  from train import experiment

  if length < 1:
    raise cli.UsageError(f'--length must be at least 1, got {length}')
  if temperature < 0:
    raise cli.UsageError(f'--temperature must be 0 or more, got {temperature}')
  run = experiment.restore(workdir, step)
  facts = run.dataset.facts
  if not isinstance(facts, text_lib.LanguageModelFacts):
    raise ValueError(f'{workdir} is not a language-model run (its dataset has no vocabulary).')
  text = generate(run.model, run.state.params, facts.vocab, prompt, length, temperature, seed,
                  facts.level)
  return text, run.step


def main(argv: list[str] | None = None) -> int:
  parser = cli.Parser(prog='python -m train.sample',
                      description='Sample text from a trained language model.')
  parser.add_argument('--workdir', required=True)
  parser.add_argument('--prompt', default='\n')
  parser.add_argument('--length', type=int, default=600)
  parser.add_argument('--temperature', type=float, default=0.8)
  parser.add_argument('--seed', type=int, default=0)
  parser.add_argument('--step', type=int, default=None, help='checkpoint step (default: newest)')
  args = parser.parse_args(argv)

  def command():
    text, step = sample(args.workdir, args.prompt, args.length, args.temperature, args.seed,
                        args.step)
    print(f'# {args.workdir}, step {step}, temperature {args.temperature}, seed {args.seed}',
          file=sys.stderr)
    print(text)

  return cli.run(command)


if __name__ == '__main__':
  sys.exit(main())
