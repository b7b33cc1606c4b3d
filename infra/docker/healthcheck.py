"""The image's HEALTHCHECK: the API answers GET /healthz on SIGNOFF_PORT (standard library only,
so it runs in the image without anything else). Exit 0 healthy, 1 not."""

import os
import sys
import urllib.request

port = os.environ.get("SIGNOFF_PORT", "8000")
try:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=4) as answer:  # noqa: S310 - loopback, fixed scheme
        sys.exit(0 if answer.status == 200 else 1)
except OSError:
    sys.exit(1)
