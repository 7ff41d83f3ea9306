"""Profile one syncd pass in-process: `python -m tests.bench._profile OUT.prof -- SYNCD ARGS`.

Runs `syncd.cli.main(args)` under cProfile (imports happen inside the profile too, as in a real
`python -m syncd`) and dumps the stats to OUT.prof; exits with syncd's exit code.
"""

from __future__ import annotations

import cProfile
import sys


def main(argv: list[str]) -> int:
    out, separator, *syncd_args = argv
    if separator != "--":
        raise SystemExit("usage: python -m tests.bench._profile OUT.prof -- SYNCD ARGS")
    profiler = cProfile.Profile()
    profiler.enable()
    from syncd.cli import main as syncd_main

    code = syncd_main(syncd_args)
    profiler.disable()
    profiler.dump_stats(out)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
