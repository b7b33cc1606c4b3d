"""The worker's build id, as Temporal records it on each workflow task the worker completes: a
digest of the code the worker runs (Signoff's `policies` and `workflows` packages, and the
Temporal SDK's version).

Left unset, the SDK makes one by reading and hashing the bytecode of every loaded module (some
1,300, the dependencies' too): a quarter of a second of CPU at each worker's start. Signoff's
own code is what a build id tells apart; a dependency changes only with the SDK's version or a
release."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

import temporalio.service

import policies
import workflows

SIGNOFF_PACKAGES = (Path(policies.__file__).parent, Path(workflows.__file__).parent)


def code_digest(packages: Iterable[Path]) -> str:
    """A digest of every Python file under `packages`: their paths and contents."""
    digest = hashlib.sha256()
    for package in packages:
        for path in sorted(package.rglob("*.py")):
            name = f"{package.name}/{path.relative_to(package).as_posix()}"
            digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def worker_build_id() -> str:
    """`signoff-<digest>`: the digest of Signoff's code and of the Temporal SDK's version."""
    code = code_digest(SIGNOFF_PACKAGES)
    sdk = temporalio.service.__version__
    return "signoff-" + hashlib.sha256(f"{code}:{sdk}".encode()).hexdigest()[:32]
