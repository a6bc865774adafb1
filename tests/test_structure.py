"""The package's structure, read from the source: no import cycles, no private cross-module
names, no references to files outside the repository."""

import ast
import os
import re

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGES = ('configs', 'data', 'models', 'train')


def project_modules() -> dict[str, str]:
  """Dotted module name -> file path, for every module of the four packages."""
  modules = {}
  for package in PACKAGES:
    for directory, _, files in os.walk(os.path.join(REPO, package)):
      for name in files:
        if name.endswith('.py'):
          path = os.path.join(directory, name)
          dotted = os.path.relpath(path, REPO)[:-3].replace(os.sep, '.')
          modules[dotted.removesuffix('.__init__')] = path
  return modules


MODULES = project_modules()


def imports_of(module: str) -> list[tuple[str, str | None, int]]:
  """(imported project module, imported name or None, line) for every import in `module`,
  at any depth (imports inside functions count: they run too)."""
  with open(MODULES[module]) as f:
    tree = ast.parse(f.read())
  package = module if MODULES[module].endswith('__init__.py') else module.rpartition('.')[0]
  found = []
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      for alias in node.names:
        if alias.name in MODULES:
          found.append((alias.name, None, node.lineno))
    elif isinstance(node, ast.ImportFrom):
      base = node.module or ''
      if node.level:
        parts = package.split('.')[:len(package.split('.')) - node.level + 1]
        base = '.'.join(parts + ([base] if base else []))
      for alias in node.names:
        submodule = f'{base}.{alias.name}'
        if submodule in MODULES:
          found.append((submodule, None, node.lineno))
        elif base in MODULES:
          found.append((base, alias.name, node.lineno))
  return found


def import_graph() -> dict[str, set[str]]:
  return {module: {target for target, _, _ in imports_of(module) if target != module}
          for module in MODULES}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
  """The strongly connected components of more than one module (Tarjan's algorithm)."""
  index, low, stack, on_stack, result = {}, {}, [], set(), []

  def visit(node):
    index[node] = low[node] = len(index)
    stack.append(node)
    on_stack.add(node)
    for target in sorted(graph[node]):
      if target not in index:
        visit(target)
        low[node] = min(low[node], low[target])
      elif target in on_stack:
        low[node] = min(low[node], index[target])
    if low[node] == index[node]:
      component = []
      while True:
        member = stack.pop()
        on_stack.discard(member)
        component.append(member)
        if member == node:
          break
      if len(component) > 1:
        result.append(sorted(component))

  for node in sorted(graph):
    if node not in index:
      visit(node)
  return result


def test_cycle_finder_finds_a_cycle():
  assert cycles({'a': {'b'}, 'b': {'c'}, 'c': {'a'}, 'd': {'a'}}) == [['a', 'b', 'c']]
  assert cycles({'a': {'b'}, 'b': set()}) == []


def test_the_import_graph_is_real():
  graph = import_graph()
  assert 'train.experiment' in graph['train.trainer']
  assert 'train.checkpoint' in graph['train.experiment']


def test_no_import_cycles():
  assert cycles(import_graph()) == []


def test_no_module_imports_a_private_name_of_another():
  offences = []
  for module in MODULES:
    for target, name, line in imports_of(module):
      if name and name.startswith('_') and target != module:
        offences.append(f'{MODULES[module]}:{line}: from {target} import {name}')
  assert offences == []


def test_no_module_uses_a_private_attribute_of_another():
  """`module._name` where `module` is an imported project module (aliases included)."""
  offences = []
  for module, path in MODULES.items():
    with open(path) as f:
      tree = ast.parse(f.read())
    aliases = {}
    for node in ast.walk(tree):
      if isinstance(node, ast.Import):
        for alias in node.names:
          if alias.name in MODULES:
            aliases[alias.asname or alias.name.split('.')[0]] = alias.name
      elif isinstance(node, ast.ImportFrom) and node.module:
        for alias in node.names:
          if f'{node.module}.{alias.name}' in MODULES:
            aliases[alias.asname or alias.name] = f'{node.module}.{alias.name}'
    for node in ast.walk(tree):
      if (isinstance(node, ast.Attribute) and node.attr.startswith('_')
          and not node.attr.startswith('__') and isinstance(node.value, ast.Name)
          and node.value.id in aliases and aliases[node.value.id] != module):
        offences.append(f'{path}:{node.lineno}: {node.value.id}.{node.attr}')
  assert offences == []


@pytest.mark.parametrize('pattern', [r'\.\./shared', r'PERF\.md', r'DESIGN\.md', r'DATA\.md'])
def test_nothing_cites_files_outside_the_repository(pattern):
  paths = list(MODULES.values()) + [os.path.join(REPO, 'README.md')]
  paths += [os.path.join(REPO, 'docs', name) for name in os.listdir(os.path.join(REPO, 'docs'))
            if name.endswith('.md')]
  cited = []
  for path in paths:
    with open(path) as f:
      for number, line in enumerate(f, 1):
        if re.search(pattern, line):
          cited.append(f'{os.path.relpath(path, REPO)}:{number}')
  assert cited == []
