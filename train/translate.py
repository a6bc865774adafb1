"""Translates a held-out split with a trained seq2seq checkpoint and reports sacrebleu.

    python -m train.translate --workdir=DIR [--split=test] [--beam_size=4] [--alpha=0.6]
        [--max_length=N] [--batch_size=256] [--output=FILE] [--show=3]

Rebuilds the run's dataset from `DIR/config.json` with `eval_split=--split` (the vocabularies
come from the training split, so they are the run's), restores the newest checkpoint, decodes
every source sentence of the split (beam search with GNMT length normalisation, or greedy with
`--beam_size=1`), detokenises the outputs and scores them with `sacrebleu.corpus_bleu` (default
13a tokenisation, cased) against the untokenised references. Also prints the token-level BLEU
(`tokenize='none'` on the pipeline's tokens, what training's `eval_bleu` measures for greedy
outputs). Decoding stops at `--max_length` tokens (default: the model's `max_decode_length`, the
training length limit + 1), never at a length read from the references. Decoding never emits
`<unk>` (its detokenised text could match nothing, and 13a would split it into three tokens)
unless `--allow_unk`.
"""

from __future__ import annotations

import sys

import numpy as np

from train import cli


def translate(workdir: str, split: str = 'test', beam_size: int = 4, alpha: float = 0.6,
              max_length: int | None = None, batch_size: int = 256,
              allow_unk: bool = False) -> dict:
  """Decodes `split` with the newest checkpoint of `workdir`.

  Returns a dict: `hypotheses` and `references` (detokenised text), `sources`, `bleu`
  (sacrebleu, 13a), `token_bleu` (sacrebleu on the pipeline's tokens), `signature`, `step`.

  Raises:
    FileNotFoundError: the workdir or its checkpoint does not exist.
    ValueError: the workdir is not a translation run.
  """
  import sacrebleu

  from data import pipeline
  from data import translation
  from train import experiment

  run = experiment.restore(workdir, config_overrides={'data': {'eval_split': split}})
  dataset, model, step = run.dataset, run.model, run.step
  if not isinstance(dataset.facts, translation.TranslationFacts):
    raise ValueError(f'{workdir} is not a translation run (its dataset has no target vocabulary).')
  length = max_length or model.max_decode_length
  never_emit = () if allow_unk else (translation.UNK_ID,)
  if beam_size > 1:
    decode = run.compiled(lambda model, variables, batch: model.apply(
        variables, batch['inputs'], batch['input_lengths'], beam_size=beam_size, alpha=alpha,
        max_length=length, never_emit=never_emit, method='beam_search'))
  else:
    decode = run.compiled(lambda model, variables, batch: model.apply(
        variables, batch['inputs'], batch['input_lengths'], max_length=length,
        never_emit=never_emit, method='greedy_decode'))
  vocab = dataset.facts.target_vocab
  hyp_tokens = []
  for batch in pipeline.eval_batches(dataset.eval, batch_size):
    tokens = np.asarray(decode({'inputs': batch['inputs'],
                                'input_lengths': batch['input_lengths']})['tokens'])
    hyp_tokens.extend(translation.decode_ids(vocab, row)
                      for row, real in zip(tokens, batch['mask']) if real)
  pairs = dataset.facts.eval_pairs
  references = [' '.join(german.split()) for _, german in pairs]
  hypotheses = [translation.detokenize(t) for t in hyp_tokens]
  metric = sacrebleu.BLEU()
  score = metric.corpus_score(hypotheses, [references])
  token_bleu = sacrebleu.corpus_bleu(
      [' '.join(t) for t in hyp_tokens],
      [[' '.join(translation.tokenize(r)) for r in references]], tokenize='none', force=True)
  signature = metric.get_signature()
  return {'hypotheses': hypotheses, 'references': references,
          'sources': [english for english, _ in pairs], 'bleu': score.score,
          'bleu_text': str(score), 'token_bleu': token_bleu.score, 'signature': str(signature),
          'step': step}


def main(argv: list[str] | None = None) -> int:
  parser = cli.Parser(prog='python -m train.translate', description=__doc__.split('\n')[0])
  parser.add_argument('--workdir', required=True)
  parser.add_argument('--split', default='test', help="'test', 'validation', or a tfds split")
  parser.add_argument('--beam_size', type=int, default=4, help='1: greedy decoding')
  parser.add_argument('--alpha', type=float, default=0.6, help='GNMT length-penalty exponent')
  parser.add_argument('--max_length', type=int, default=None)
  parser.add_argument('--allow_unk', action='store_true',
                      help='let decoding emit <unk> (by default it never does)')
  parser.add_argument('--batch_size', type=int, default=256)
  parser.add_argument('--output', default=None, help='write the translations here, one a line')
  parser.add_argument('--show', type=int, default=3, help='print this many examples')
  args = parser.parse_args(argv)

  def command():
    result = translate(args.workdir, args.split, args.beam_size, args.alpha, args.max_length,
                       args.batch_size, args.allow_unk)
    if args.output:
      with open(args.output, 'w', encoding='utf-8') as f:
        f.write(''.join(h + '\n' for h in result['hypotheses']))
    for i in range(min(args.show, len(result['hypotheses']))):
      print(f'source:     {result["sources"][i]}\nreference:  {result["references"][i]}\n'
            f'hypothesis: {result["hypotheses"][i]}\n')
    decoding = f'beam {args.beam_size}, alpha {args.alpha}' if args.beam_size > 1 else 'greedy'
    print(f'{args.workdir} step {result["step"]}, {args.split} ({len(result["hypotheses"])} '
          f'sentences), {decoding}: sacreBLEU {result["bleu"]:.2f} (token-level BLEU '
          f'{result["token_bleu"]:.2f})\n{result["bleu_text"]}\n{result["signature"]}')

  return cli.run(command)


if __name__ == '__main__':
  sys.exit(main())
