"""One writer for result files: ``<out>.json`` (with the command that made it), ``<out>.md`` and
``<out>.png`` beside it, each written atomically (a killed run leaves the old file or the new one)."""

from __future__ import annotations

import json
import os
import shlex
import sys
import tempfile
from pathlib import Path
from typing import Callable

from anytask.core.io import write_file_atomic


def command_line(prog: str = "anytask") -> str:
    """The command as the user typed it (for the ``command`` field of a result file)."""
    return " ".join([prog, *(shlex.quote(a) for a in sys.argv[1:])])


def write_results(out: str | os.PathLike, results: dict, markdown: str,
                  plot: Callable[[dict, Path], object] | None = None) -> list[Path]:
    """Write the JSON, the Markdown (headed by the command) and, given a plotting function, the PNG (skipped,
    with a warning, where matplotlib is not installed: ``pip install 'anytask[plot]'``)."""
    out = Path(out)
    written = [write_file_atomic(out, (json.dumps(results, indent=1) + "\n").encode())]
    header = f"Command: `{results['command']}`\n\n" if results.get("command") else ""
    written.append(write_file_atomic(out.with_suffix(".md"), (header + markdown).encode()))
    from anytask.core.extras import has

    if plot is not None and not has("matplotlib"):
        import warnings

        warnings.warn("no plot: matplotlib is not installed (pip install 'anytask[plot]')", stacklevel=2)
        plot = None
    if plot is not None:
        png = out.with_suffix(".png")
        fd, tmp = tempfile.mkstemp(prefix=f".{png.stem}.", suffix=".png", dir=png.parent)
        os.close(fd)
        try:
            plot(results, Path(tmp))
            os.chmod(tmp, 0o644)
            os.replace(tmp, png)
        finally:
            Path(tmp).unlink(missing_ok=True)
        written.append(png)
    return written
