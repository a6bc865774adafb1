"""English->German translation of the Ding dictionary's example sentences, LSTM encoder-decoder.

Prepare the data once (Debian's dict-freedict-eng-deu through apt; GPL, not committed):
  python -m data.prepare ding_en_de
Run (attention; the no-attention baseline with :noattention):
  python -m train.main --config=configs/ding_translation.py --workdir=workdirs/ding_attention
  python -m train.main --config=configs/ding_translation.py:noattention \
      --workdir=workdirs/ding_noattention
Held-out test BLEU (sacrebleu on detokenised text, beam search):
  python -m train.translate --workdir=workdirs/ding_attention --split=test --beam_size=4

Data (data/translation.py): 55,241 distinct human-translated example pairs, split by English
sentence (seed 0) into 49,718 train / 2,764 validation / 2,759 test pairs; no test English sentence
is in training. Words and punctuation, case kept; vocabularies from the training pairs only
(tokens seen twice or more, at most `vocab_size` per side, the rest `<unk>`); training pairs over
`max_source_length` / `max_target_length` tokens are dropped, evaluation pairs never are.
Limits: 16 tokens a side in training (1,167 longer training pairs dropped), vocabularies of
4,000 (source) and 4,000 (target) ids; German compounds make the target side rich (19,159
training tokens are seen twice or more), so many words are <unk>: subwords would help, and a
bigger vocabulary would, but cost CPU time this budget lacks.
Model (variant ''): word embeddings (96), one-layer LSTM encoder and decoder (192), Luong dot
attention with input feeding; ':noattention' is the same network without attention
(h~_t = h_t). Adam 3e-3, warm-up (100) + cosine, gradient clipping at 1, dropout 0.1, batch 64,
5,000 steps (6.4 epochs). Training evaluates greedy decoding on the validation split:
`eval_bleu` (token-level corpus BLEU on ids; a reference <unk> never matches),
`eval_exact_match`. `train.translate` reports sacreBLEU (13a, cased) on the detokenised test
split, decoding without <unk>.

Measured (quiet 2-vCPU AMD EPYC, the two runs at once, evaluating only at the end with
--config.eval_every_steps=5000; 2026-11-26), after 5,000 steps:
                                      attention (2,205,088 params)  :noattention (1,983,904)
  validation eval_bleu (greedy)       8.09                          5.76
  validation eval_exact_match         21.74%                        19.61%
  test sacreBLEU, beam 4 (alpha 0.6)  8.60                          4.97
  test sacreBLEU, greedy              6.11                          3.98
  training wall time                  14 min 07 s                   11 min 38 s
(`python -m train.translate --workdir=... --split=test --beam_size=4`, or `--beam_size=1`: about
15 s each.) An earlier 1,000-step version of this recipe, on a machine loaded by other jobs, gave
test sacreBLEU 5.27 vs 4.72 (beam 4) in about 23 min each. Both models are small and the
vocabularies cut at 4,000 words: this measures the gap attention makes, not an attainable score.
"""

import data
from configs import common

MODELS = {'': 'seq2seq_attention', 'noattention': 'seq2seq'}


def get_config(variant: str = ''):
  if variant not in MODELS:
    raise ValueError(f"Unknown variant '{variant}' of ding_translation; use ':noattention' or "
                     'none.')
  config = common.base()
  config.dataset = 'ding_en_de'
  # Evaluated on the validation split; tokens seen twice in training, cased.
  config.data = data.options(config.dataset, max_source_length=16, max_target_length=16,
                             vocab_size=4_000)
  config.task = 'seq2seq'
  config.task_kwargs = {'bleu': True, 'unk_id': 3, 'eos_id': 2}
  config.model = MODELS[variant]
  config.model_kwargs = common.model_kwargs(config.model, embed_dim=96, hidden_size=192,
                                            dropout=0.1)
  config.batch_size = 64
  config.eval_batch_size = 500
  config.optimizer = 'adam'
  config.learning_rate = 3e-3
  config.schedule = 'warmup_cosine'
  config.warmup_steps = 100
  config.grad_clip_norm = 1.0
  config.num_train_steps = 5_000
  config.log_every_steps = 100
  config.eval_every_steps = 1_000
  config.checkpoint_every_steps = 1_000
  config.tensorboard_images = False
  return config
