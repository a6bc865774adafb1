"""Suite-wide settings.

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
