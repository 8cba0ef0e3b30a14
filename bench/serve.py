"""Serve an ASGI app factory the way `ydt serve` serves the real one.

The app and the bare baseline both start through this file, so their uvicorn
settings (workers, proxy headers, event loop, HTTP parser, logging) cannot
differ: any gap in the results is the application's, not the server's.

Usage: python -m bench.serve MODULE:FACTORY PORT WORKERS
"""

from __future__ import annotations

import os
import sys

import uvicorn

from app.core.config import filing_turns_per_process


def main() -> int:
    target, port, workers = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    # As `ydt serve` shares the filing's turns among its workers (unset only;
    # the bare baseline reads no setting).
    os.environ.setdefault("YDT_FILING_STATEMENTS_IN_FLIGHT", str(filing_turns_per_process(workers)))
    # Mirrors app.cli.cmd_serve; the host is loopback because load comes from
    # this machine only.
    uvicorn.run(
        target,
        factory=True,
        host="127.0.0.1",
        port=port,
        workers=workers,
        proxy_headers=True,
        log_config=None,
        timeout_graceful_shutdown=20,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
