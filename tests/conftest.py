"""Suite-wide settings.

The test process and every command it starts share JAX's persistent compilation cache in
`.pytest_cache/jax-compilation-cache` (capped at 512 MB, which JAX enforces with `filelock`):
dozens of tests start `train.main` on the same tiny configs, and each would otherwise compile the
same train and eval steps again. Entries are keyed by the computation, the JAX version and the
flags, so a cached step is the step a fresh compile would give.

Deprecations are errors in the commands the tests start as subprocesses too (`train.main`,
`train.evaluate`, ...), as `pyproject.toml`'s `filterwarnings` makes them in the test process:
a release of JAX, Flax, optax or orbax that deprecates something the project uses fails the suite
instead of scrolling by. The one exception is named with its reason.
"""

import os

SUBPROCESS_WARNINGS = ','.join([
    'error::DeprecationWarning',
    'error::PendingDeprecationWarning',
    # ml_collections' config_flags loads config files with importlib's load_module() (its code).
    'ignore:the load_module() method is deprecated:DeprecationWarning',
])

os.environ['PYTHONWARNINGS'] = SUBPROCESS_WARNINGS

_CACHE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), '.pytest_cache',
                      'jax-compilation-cache')
os.environ.setdefault('JAX_COMPILATION_CACHE_DIR', _CACHE)
os.environ.setdefault('JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS', '0')
os.environ.setdefault('JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES', '0')
try:  # JAX needs filelock to keep the cache under a size (a test dependency); else unbounded
  import filelock  # noqa: F401  # pylint: disable=unused-import
  os.environ.setdefault('JAX_COMPILATION_CACHE_MAX_SIZE', str(512 * 2**20))
except ImportError:
  pass
