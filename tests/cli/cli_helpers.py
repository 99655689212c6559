"""What the CLI tests share: running ``evflex`` in this process as a user's shell would."""

from __future__ import annotations

import warnings

from evflex.cli.main import main


def run_in_process(capsys, args) -> tuple[int, str, str]:
    """``evflex ARGS`` through :func:`evflex.cli.main.main`, with the interpreter's own warning
    filters (as a user's process has them; pytest shows more): (code, stdout, stderr)."""
    capsys.readouterr()
    with warnings.catch_warnings():
        warnings.resetwarnings()
        for category in (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning):
            warnings.simplefilter("ignore", category)
        code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err
