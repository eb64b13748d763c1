"""Container health probe: exit 0 when the service's ``/health`` answers 200, else 1.

Compose runs it inside the service's container (``python /app/healthcheck.py``); the slim image has
no curl. The port is the service's ``METRICS_PORT`` (its environment, as the service reads it), the
host is the loopback address: ``/health`` answers 503 while a check fails (Redis unreachable, feed
disconnected, database down), which makes the container unhealthy and holds back whatever
``depends_on`` it with ``condition: service_healthy``.

Usage: ``healthcheck.py [PORT]`` (default ``$METRICS_PORT``); the timeout is ``HEALTHCHECK_TIMEOUT``
seconds (default 3).
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request


def probe(port: int, timeout: float) -> tuple[bool, str]:
    """GET ``http://127.0.0.1:<port>/health``; (True, body) on 200, (False, reason) otherwise."""
    url = f"http://127.0.0.1:{port}/health"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status == 200, response.read(2048).decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return False, f"HTTP {exc.code}: {exc.read(2048).decode(errors='replace')}"
    except (urllib.error.URLError, OSError) as exc:
        return False, f"{url}: {exc}"


def main(argv: list[str]) -> int:
    """Probe once; print the outcome for ``docker inspect``; return the exit status."""
    raw_port = argv[1] if len(argv) > 1 else os.environ.get("METRICS_PORT", "")
    if not raw_port.isdigit():
        sys.stderr.write("healthcheck: give the port as argument or METRICS_PORT\n")
        return 1  # docker reserves exit status 2
    ok, detail = probe(int(raw_port), float(os.environ.get("HEALTHCHECK_TIMEOUT", "3")))
    (sys.stdout if ok else sys.stderr).write(detail.strip() + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
