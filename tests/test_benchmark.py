"""The benchmark command runs and writes its records; the PyTorch twins are the same networks."""

import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

import models
from train import benchmark, torch_reference

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_benchmark_command_writes_records(tmp_path):
  path = tmp_path / 'bench.json'
  result = subprocess.run(
      [sys.executable, '-m', 'train.benchmark', '--model=convnet', '--batch_size=16',
       '--repeats=2', '--steps=1', f'--json={path}'], cwd=REPO, capture_output=True, text=True,
      timeout=300)
  assert result.returncode == 0, result.stderr
  records = json.loads(path.read_text())
  assert [r['step'] for r in records] == ['train', 'inference']
  for record in records:
    for key in ('model', 'unit', 'ours', 'reference', 'ratio', 'compile_s', 'device'):
      assert key in record
    assert record['ours'] > 0 and record['reference'] > 0
    assert record['ratio'] == pytest.approx(record['ours'] / record['reference'])
    assert record['flops_per_s'] > 0 and 0 < record['peak_fraction']
  assert 'convnet' in result.stdout and 'ratio' in result.stdout


def test_unknown_benchmark_is_one_line():
  result = subprocess.run([sys.executable, '-m', 'train.benchmark', '--model=resnet'], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
  assert result.returncode == 2
  assert result.stderr.strip().startswith("error: no benchmark for 'resnet'")


@pytest.mark.parametrize('name', sorted(benchmark.BENCHMARKS))
def test_torch_twin_has_the_same_parameter_count(name):
  spec = benchmark.BENCHMARKS[name]
  model = models.create(spec.model, num_classes=spec.num_classes, **spec.model_kwargs)
  shapes = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0),
                                             np.zeros((1, *spec.input_shape), np.float32)))
  ours = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(shapes['params']))
  assert torch_reference.count_parameters(spec.torch_model()) == ours
