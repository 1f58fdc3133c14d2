"""The shared test helpers: seeds that replay in any process."""

import inspect
import os
import subprocess
import sys

from tests.helpers import seed_of


def test_seed_of_is_the_same_in_every_process():
    """`hash()` of a string changes with PYTHONHASHSEED; the seed of a name must not. The function's own source runs
    in fresh interpreters with two salts (without importing torch, which `tests.helpers` does)."""
    code = f"import zlib\n{inspect.getsource(seed_of)}\nprint(seed_of('trecvit_debug', 'pyav'))"
    seeds = {
        subprocess.run(
            [sys.executable, "-c", code],
            env={**os.environ, "PYTHONHASHSEED": salt},
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        for salt in ("1", "2")
    }
    assert seeds == {str(seed_of("trecvit_debug", "pyav"))}
    assert seed_of("trecvit_debug") != seed_of("trecvit_debug_lru")
