"""TED talks translation (tfds `ted_hrlr_translate`, Qi et al. 2018), LSTM encoder-decoder.

The recipe of configs/ding_translation.py (LSTM 192, Luong dot attention, greedy `eval_bleu` on
the validation split; ':noattention' without attention) on a tfds translation set read with
`tfds.data_source` (no TensorFlow at run time). Prepare it once where TensorFlow is installed:
  tfds build ted_hrlr_translate/pt_to_en --data_dir=DIR --file_format=array_record
Run:
  python -m train.main --config=configs/ted_translation.py --config.data_dir=DIR \
      --workdir=workdirs/ted_pt_en
  python -m train.translate --workdir=workdirs/ted_pt_en --split=test
Any tfds set with a `Translation` feature goes through the same pipeline (data/translation.py:
`create_tfds`), e.g. WMT'14 English->German:
  tfds build wmt14_translate/de-en --data_dir=DIR --file_format=array_record
  python -m train.main --config=configs/ted_translation.py --config.data_dir=DIR \
      --config.data.tfds_name=wmt14_translate/de-en --config.data.source_language=en \
      --config.data.target_language=de --config.data.vocab_size=32000 \
      --workdir=workdirs/wmt14_en_de
ted_hrlr_translate/pt_to_en has 51,785 train / 1,193 validation / 1,803 test sentence pairs
(lower-cased, tokenised text). Vocabularies come from the training split only. Not yet measured
here: the data needs TensorFlow to prepare, and none of it can be fetched on this machine.
"""

import data
from configs import ding_translation


def get_config(variant: str = ''):
  config = ding_translation.get_config(variant)
  config.dataset = 'tfds_translation'
  # Evaluated on the validation split; tokens seen twice in training, cased (as ding_translation).
  config.data = data.options(config.dataset, tfds_name='ted_hrlr_translate/pt_to_en',
                             source_language='pt', target_language='en', max_source_length=48,
                             max_target_length=48, vocab_size=16_000)
  config.num_train_steps = 20_000
  config.eval_every_steps = 2_000
  config.checkpoint_every_steps = 2_000
  return config
