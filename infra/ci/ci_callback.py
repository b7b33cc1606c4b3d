#!/usr/bin/env python3
"""Report a CI validation job's outcome to Signoff: `POST <callback_url>` with

    {"request_id": ..., "check": ..., "passed": true|false,
     "details_url": ..., "summary": ..., "callback_token": ...}

(`details_url`, `summary` and `callback_token` only when there is one).

Authentication, first that applies:
1. the one-time callback token Signoff passed to the job, read from the environment variable
   named by `--token-env` (default `CALLBACK_TOKEN`; never pass a secret as an argument, the
   process list and a `set -x` trace would show it), sent in the body;
2. `SIGNOFF_TOKEN` (for example a Jenkins OIDC provider id-token credential), as a bearer;
3. in GitHub Actions with `permissions: id-token: write`, the job's OIDC token for the audience
   `SIGNOFF_OIDC_AUDIENCE` (default `signoff`), as a bearer.

The check name defaults to what Signoff calls a check dispatched to this job:
`github_actions:<owner/repo>/<workflow file>` in GitHub Actions (from `GITHUB_WORKFLOW_REF`),
`jenkins:<job full name>` in Jenkins (from `JOB_NAME`).

Without a callback URL (the job was run by hand, not by Signoff) it reports nothing and exits 0.
Exit 1 when Signoff refused the callback or could not be reached after retries; Signoff then
still learns the outcome by polling the CI system.

Standard library only.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any


def _truthy(text: str) -> bool:
    value = text.strip().lower()
    if value in ("true", "1", "yes", "success", "passed"):
        return True
    if value in ("false", "0", "no", "failure", "failed", ""):
        return False
    raise argparse.ArgumentTypeError(f"{text!r} is not true or false")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    env = os.environ.get
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--passed", type=_truthy, required=True, help="true or false")
    parser.add_argument("--url", default=env("CALLBACK_URL", ""), help="default $CALLBACK_URL")
    parser.add_argument("--request-id", default=env("REQUEST_ID", ""), help="default $REQUEST_ID")
    parser.add_argument("--check", default=env("CHECK", ""), help="default: see above")
    parser.add_argument("--details-url", default=env("DETAILS_URL", ""))
    parser.add_argument("--summary", default="")
    parser.add_argument("--summary-file", help="read the summary from this file, if it exists")
    parser.add_argument("--token-env", default="CALLBACK_TOKEN", metavar="NAME")
    return parser.parse_args(argv)


def default_check() -> str:
    workflow_ref = os.environ.get("GITHUB_WORKFLOW_REF")  # owner/repo/.github/workflows/x.yml@ref
    repository = os.environ.get("GITHUB_REPOSITORY")
    if workflow_ref and repository:
        workflow_file = workflow_ref.split("@", 1)[0].rsplit("/", 1)[-1]
        return f"github_actions:{repository}/{workflow_file}"
    job_name = os.environ.get("JOB_NAME")
    if job_name:
        return f"jenkins:{job_name}"
    return ""


def _get_json(url: str, headers: dict[str, str]) -> dict[str, Any]:
    request = urllib.request.Request(url, headers=headers)  # noqa: S310 - from the runner
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        return json.load(response)


def github_oidc_token(audience: str) -> str | None:
    url = os.environ.get("ACTIONS_ID_TOKEN_REQUEST_URL")
    request_token = os.environ.get("ACTIONS_ID_TOKEN_REQUEST_TOKEN")
    if not url or not request_token:
        return None
    separator = "&" if "?" in url else "?"
    full = f"{url}{separator}audience={urllib.parse.quote(audience, safe='')}"
    headers = {"Authorization": f"Bearer {request_token}", "Accept": "application/json"}
    value = _get_json(full, headers).get("value")
    if not isinstance(value, str) or not value:
        raise RuntimeError("the GitHub Actions token endpoint answered without a token")
    print(f"::add-mask::{value}")  # keep it out of the log, as GitHub's toolkit does
    return value


def build_request(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, str]]:
    """The callback body and headers."""
    summary = args.summary
    if args.summary_file and os.path.exists(args.summary_file):
        with open(args.summary_file, encoding="utf-8") as source:
            summary = source.read().strip() or summary
    body: dict[str, Any] = {
        "request_id": args.request_id,
        "check": args.check or default_check(),
        "passed": args.passed,
    }
    if args.details_url:
        body["details_url"] = args.details_url
    if summary:
        body["summary"] = summary[:2000]
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    callback_token = os.environ.get(args.token_env, "")
    if callback_token:
        body["callback_token"] = callback_token
        return body, headers
    bearer = os.environ.get("SIGNOFF_TOKEN") or github_oidc_token(
        os.environ.get("SIGNOFF_OIDC_AUDIENCE") or "signoff"
    )
    if not bearer:
        raise RuntimeError(
            f"no way to authenticate the callback: ${args.token_env} is empty, SIGNOFF_TOKEN is "
            "not set, and this is not a GitHub Actions job with `permissions: id-token: write`"
        )
    headers["Authorization"] = f"Bearer {bearer}"
    return body, headers


def post(url: str, body: dict[str, Any], headers: dict[str, str], attempts: int = 4) -> int:
    data = json.dumps(body).encode()
    for attempt in range(attempts):
        if attempt:
            time.sleep(2**attempt)
        request = urllib.request.Request(url, data=data, headers=headers, method="POST")  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
                print(f"Signoff accepted the callback ({response.status})")
                return 0
        except urllib.error.HTTPError as err:
            detail = err.read().decode(errors="replace")[:500]
            if err.code < 500 and err.code != 429:
                print(f"Signoff refused the callback ({err.code}): {detail}", file=sys.stderr)
                return 1
            print(f"Signoff answered {err.code}; retrying", file=sys.stderr)
        except (urllib.error.URLError, OSError) as err:
            print(f"cannot reach Signoff at {url} ({err}); retrying", file=sys.stderr)
    print("giving up: Signoff will learn the outcome by polling the CI system", file=sys.stderr)
    return 1


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.url:
        print("no callback URL: this run was not dispatched by Signoff; nothing to report")
        return 0
    if not args.request_id:
        print("a callback URL but no request id: cannot report", file=sys.stderr)
        return 1
    try:
        body, headers = build_request(args)
    except (RuntimeError, OSError, ValueError) as err:
        print(f"cannot report to Signoff: {err}", file=sys.stderr)
        return 1
    if not body["check"]:
        print("cannot tell which check this job is: pass --check", file=sys.stderr)
        return 1
    shown = {k: ("***" if k == "callback_token" else v) for k, v in body.items()}
    print(f"reporting to {args.url}: {json.dumps(shown)}")
    return post(args.url, body, headers)


if __name__ == "__main__":
    sys.exit(main())
