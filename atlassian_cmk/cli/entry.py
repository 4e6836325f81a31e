"""The `cmkctl` console script: Ctrl-C is handled from the first instruction, before the heavy imports.

Importing `cli.main` loads boto3 and botocore (a few hundred milliseconds); a Ctrl-C in that time would
otherwise print a KeyboardInterrupt traceback. Until `main` installs its own handler, Ctrl-C is one
line and exit 130: nothing has been read or changed yet.
"""

import os
import signal
import sys


def _while_starting(signum: int, frame: object) -> None:
    try:
        sys.stderr.write("\ncmkctl: interrupted: while starting; nothing was read or changed\n")
        sys.stderr.flush()
    finally:
        os._exit(130)  # ExitCode.INTERRUPTED, not imported: importing it is what we are protecting


def entry_point() -> None:
    signal.signal(signal.SIGINT, _while_starting)
    from atlassian_cmk.cli.main import entry_point as run

    run()
