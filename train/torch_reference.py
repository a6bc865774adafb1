"""PyTorch versions of benchmarked architectures, for same-process speed comparisons only.

PyTorch is a benchmark extra (`pip install -e '.[bench]'`), never a dependency of the models. Each
builder mirrors a registry model layer for layer (same parameter count, checked by the benchmark
test) and returns an `nn.Module`; the `*_step` functions wrap one in an idiomatic PyTorch train
step (forward, loss, backward, `torch.optim.SGD` with momentum), and `*_eval` in an inference step.

Recurrent layers are the stock `torch.nn.LSTM/GRU/RNN` (and `nn.LSTMCell` for a decoder stepped
by hand). PyTorch gives the LSTM and tanh RNN two bias vectors per layer, `b_ih` and `b_hh`, that
only ever appear added; the registry models keep their sum (models/rnn.py `params_from_torch`).
So that parameter counts agree, `_single_bias` turns each `b_hh` into a zero buffer: the kernels
PyTorch runs and the work they do are unchanged, only that redundant vector gets no gradient.
"""

from __future__ import annotations

import torch
from torch import nn


def convnet(num_classes: int = 10, in_channels: int = 1, size: int = 28) -> nn.Module:
  """The registry's `convnet`: conv32-avgpool-conv64-avgpool-dense256-dense."""
  return nn.Sequential(
      nn.Conv2d(in_channels, 32, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2),
      nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2),
      nn.Flatten(), nn.Linear(64 * (size // 4) ** 2, 256), nn.ReLU(), nn.Linear(256, num_classes))


_VGG = {
    'A': [64, 'M', 128, 'M', 256, 256, 'M', 512, 512, 'M', 512, 512, 'M'],
    'D': [64, 64, 'M', 128, 128, 'M', 256, 256, 256, 'M', 512, 512, 512, 'M', 512, 512, 512, 'M'],
}


def vgg(config: str = 'A', batch_norm: bool = True, num_classes: int = 10,
        hidden_features=(512, 512), size: int = 32, dropout: float = 0.5) -> nn.Module:
  """torchvision's VGG layout with a classifier sized for `size`x`size` inputs."""
  layers, channels = [], 3
  for item in _VGG[config]:
    if item == 'M':
      layers.append(nn.MaxPool2d(2))
      size //= 2
      continue
    layers.append(nn.Conv2d(channels, item, 3, padding=1))
    if batch_norm:
      layers.append(nn.BatchNorm2d(item))
    layers.append(nn.ReLU(inplace=True))
    channels = item
  layers.append(nn.Flatten())
  width = channels * size * size
  for hidden in hidden_features:
    layers += [nn.Linear(width, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout)]
    width = hidden
  layers.append(nn.Linear(width, num_classes))
  return nn.Sequential(*layers)


def classification_step(model: nn.Module, lr: float = 0.01, momentum: float = 0.9,
                        channels_last: bool = False):
  """A train step function `step(images, labels)` (forward, backward, SGD with momentum)."""
  if channels_last:
    model = model.to(memory_format=torch.channels_last)
  optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
  loss_fn = nn.CrossEntropyLoss()
  model.train()

  def step(images, labels):
    optimizer.zero_grad(set_to_none=True)
    loss = loss_fn(model(images), labels)
    loss.backward()
    optimizer.step()
    return loss

  return step


def _single_bias(module: nn.Module) -> nn.Module:
  """Replaces every `bias_hh*` parameter of an LSTM/RNN (layer or cell) by a zero buffer."""
  for name, value in list(module.named_parameters(recurse=False)):
    if name.startswith('bias_hh'):
      delattr(module, name)
      module.register_buffer(name, torch.zeros_like(value.detach()))
  if isinstance(module, nn.RNNBase):
    module._init_flat_weights()  # pylint: disable=protected-access
  return module


class LanguageModel(nn.Module):
  """The registry's `lstm_lm` / `gru_lm` / `rnn_lm`: embedding, stacked RNN, dense to the
  vocabulary. Time-major, as PyTorch's word_language_model example: tokens `[time, batch]`."""

  def __init__(self, cell_type: str, vocab_size: int, hidden_size: int, num_layers: int = 2):
    super().__init__()
    self.embed = nn.Embedding(vocab_size, hidden_size)
    layer = {'lstm': nn.LSTM, 'gru': nn.GRU, 'rnn': nn.RNN}[cell_type]
    self.rnn = layer(hidden_size, hidden_size, num_layers)
    if cell_type != 'gru':
      _single_bias(self.rnn)
    self.output = nn.Linear(hidden_size, vocab_size)

  def forward(self, tokens, hidden=None):
    outputs, hidden = self.rnn(self.embed(tokens), hidden)
    return self.output(outputs), hidden


def language_model(cell_type: str = 'lstm', vocab_size: int = 10_000, hidden_size: int = 200,
                   num_layers: int = 2) -> nn.Module:
  return LanguageModel(cell_type, vocab_size, hidden_size, num_layers)


def _detach(hidden):
  if hidden is None:
    return None
  return tuple(h.detach() for h in hidden) if isinstance(hidden, tuple) else hidden.detach()


def language_model_step(model: LanguageModel, lr: float = 0.01, momentum: float = 0.9):
  """`step(inputs, targets)`, both `[time, batch]`: truncated BPTT, the state carried (detached)
  from the previous call, as PyTorch's word_language_model example trains."""
  optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
  loss_fn = nn.CrossEntropyLoss()
  model.train()
  state = {'hidden': None}

  def step(inputs, targets):
    optimizer.zero_grad(set_to_none=True)
    logits, hidden = model(inputs, _detach(state['hidden']))
    state['hidden'] = hidden
    loss = loss_fn(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
    loss.backward()
    optimizer.step()
    return loss

  return step


def language_model_eval(model: LanguageModel):
  """`evaluate(inputs, targets)`: loss and next-token accuracy from a zero state, no gradients."""
  loss_fn = nn.CrossEntropyLoss(reduction='sum')

  @torch.no_grad()
  def evaluate(inputs, targets):
    model.eval()
    logits, _ = model(inputs)
    flat = logits.reshape(-1, logits.shape[-1])
    return loss_fn(flat, targets.reshape(-1)), (flat.argmax(-1) == targets.reshape(-1)).sum()

  return evaluate


class Seq2SeqAttention(nn.Module):
  """The registry's `seq2seq_attention`: LSTM encoder (packed by source length), LSTM decoder with
  Luong dot attention and input feeding, stepped with `nn.LSTMCell` (as OpenNMT-py does).
  Batch-first tensors: source `[batch, source]`, decoder inputs `[batch, target]`."""

  def __init__(self, vocab_size: int, embed_dim: int = 32, hidden_size: int = 256,
               pad_id: int = 0, bos_id: int = 1):
    super().__init__()
    self.pad_id, self.bos_id = pad_id, bos_id
    self.source_embedding = nn.Embedding(vocab_size, embed_dim)
    self.target_embedding = nn.Embedding(vocab_size, embed_dim)
    self.encoder = _single_bias(nn.LSTM(embed_dim, hidden_size, batch_first=True))
    self.decoder = _single_bias(nn.LSTMCell(embed_dim + hidden_size, hidden_size))
    self.combine = nn.Linear(2 * hidden_size, hidden_size, bias=False)
    self.output = nn.Linear(hidden_size, vocab_size)

  def encode(self, inputs, lengths):
    packed = nn.utils.rnn.pack_padded_sequence(self.source_embedding(inputs), lengths.cpu(),
                                               batch_first=True, enforce_sorted=False)
    memory, (h, c) = self.encoder(packed)
    memory, _ = nn.utils.rnn.pad_packed_sequence(memory, batch_first=True,
                                                 total_length=inputs.shape[1])
    return memory, inputs != self.pad_id, (h[0], c[0])

  def step(self, embedded, state, feed, memory, mask):
    h, c = self.decoder(torch.cat([embedded, feed], -1), state)
    scores = torch.bmm(memory, h.unsqueeze(2)).squeeze(2).masked_fill(~mask, float('-inf'))
    context = torch.bmm(torch.softmax(scores, -1).unsqueeze(1), memory).squeeze(1)
    h_tilde = torch.tanh(self.combine(torch.cat([context, h], -1)))
    return (h, c), h_tilde, self.output(h_tilde)

  def forward(self, inputs, lengths, decoder_inputs):
    """Teacher-forced logits `[batch, target, vocab]`."""
    memory, mask, state = self.encode(inputs, lengths)
    feed = memory.new_zeros(memory.shape[0], memory.shape[2])
    embedded = self.target_embedding(decoder_inputs)
    logits = []
    for t in range(decoder_inputs.shape[1]):
      state, feed, out = self.step(embedded[:, t], state, feed, memory, mask)
      logits.append(out)
    return torch.stack(logits, 1)

  def greedy_decode(self, inputs, lengths, max_length: int):
    """Token ids `[batch, max_length]`, each step fed its own argmax (PAD and BOS never drawn)."""
    memory, mask, state = self.encode(inputs, lengths)
    feed = memory.new_zeros(memory.shape[0], memory.shape[2])
    token = inputs.new_full((inputs.shape[0],), self.bos_id)
    tokens = []
    for _ in range(max_length):
      state, feed, out = self.step(self.target_embedding(token), state, feed, memory, mask)
      out[:, [self.pad_id, self.bos_id]] = float('-inf')
      token = out.argmax(-1)
      tokens.append(token)
    return torch.stack(tokens, 1)


def seq2seq_attention(vocab_size: int = 14, embed_dim: int = 32,
                      hidden_size: int = 256) -> nn.Module:
  return Seq2SeqAttention(vocab_size, embed_dim, hidden_size)


def seq2seq_step(model: Seq2SeqAttention, lr: float = 0.01, momentum: float = 0.9):
  """`step(inputs, lengths, decoder_inputs, targets)`: teacher-forced cross-entropy over the
  target tokens (PAD targets ignored)."""
  optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
  loss_fn = nn.CrossEntropyLoss(ignore_index=model.pad_id)
  model.train()

  def step(inputs, lengths, decoder_inputs, targets):
    optimizer.zero_grad(set_to_none=True)
    logits = model(inputs, lengths, decoder_inputs)
    loss = loss_fn(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
    loss.backward()
    optimizer.step()
    return loss

  return step


def seq2seq_eval(model: Seq2SeqAttention):
  """`evaluate(...)`: what the seq2seq task's eval step computes: teacher-forced loss and
  accuracy, and greedy decoding with exact match."""
  loss_fn = nn.CrossEntropyLoss(ignore_index=model.pad_id, reduction='sum')

  @torch.no_grad()
  def evaluate(inputs, lengths, decoder_inputs, targets):
    model.eval()
    logits = model(inputs, lengths, decoder_inputs)
    loss = loss_fn(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
    decoded = model.greedy_decode(inputs, lengths, targets.shape[1])
    hits = (decoded == targets) | (targets == model.pad_id)
    return loss, (logits.argmax(-1) == targets).sum(), hits.all(-1).sum()

  return evaluate


def count_parameters(model: nn.Module) -> int:
  return sum(p.numel() for p in model.parameters())
