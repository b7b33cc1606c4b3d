"""The digest of what a request approves: a version's source, run and a manifest of its
artifact files (path, size, SHA-256), read through MLflow's artifact API, and how two digests
differ in words.

Files are listed through the tracking server (`artifacts/list` for a run's files, the logged
model's `artifacts/directories` in MLflow 3) and streamed through `model-versions/get-artifact`,
so the artifact store can be anything the server reads (local, S3, proxied). Nothing is held
in memory beyond one chunk of one file. Files above the size limit are recorded by path and
size only, and the digest says so.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass

from workflows.domain import ArtifactDigest, ArtifactFile
from workflows.mlflow_client import ArtifactEntry, MlflowRegistry, ModelVersion

CHUNK = 1 << 20
"""Bytes read (and hashed) at a time."""
MAX_MANIFEST_FILES = 2_000
"""Above this many files the manifest itself is not kept (it lands in workflow history and on
every ledger write of the request); its hash still pins every file."""

Progress = Callable[[str], None]


@dataclass(frozen=True)
class _Root:
    """Where a version's files are listed: a run's directory, or a logged model."""

    run_id: str | None = None
    prefix: str = ""
    """The version's directory within the run ("model"); files are named from the run root."""
    model_id: str | None = None


async def _root(registry: MlflowRegistry, version: ModelVersion) -> _Root | None:
    source = version.source or ""
    if source.startswith("runs:/"):
        run_id, _, prefix = source.removeprefix("runs:/").partition("/")
        return _Root(run_id=run_id, prefix=prefix.strip("/"))
    if source.startswith("models:/m-") or version.model_id:
        model_id = version.model_id or source.removeprefix("models:/").split("/")[0]
        return _Root(model_id=model_id)
    if version.run_id:
        artifact_uri = (await registry.get_run_artifact_uri(version.run_id)).rstrip("/")
        if artifact_uri and source.startswith(artifact_uri + "/"):
            return _Root(run_id=version.run_id, prefix=source[len(artifact_uri) + 1 :].strip("/"))
    return None


async def _list(registry: MlflowRegistry, root: _Root, path: str | None) -> list[ArtifactEntry]:
    if root.model_id is not None:
        return await registry.list_logged_model_artifacts(root.model_id, path)
    assert root.run_id is not None
    return await registry.list_run_artifacts(root.run_id, path)


async def _walk(registry: MlflowRegistry, root: _Root, progress: Progress) -> list[ArtifactEntry]:
    """Every file under the root, depth first, sorted by path."""
    files: list[ArtifactEntry] = []
    pending: list[str | None] = [root.prefix or None]
    while pending:
        directory = pending.pop()
        progress(f"listing {directory or 'the root'}")
        for entry in await _list(registry, root, directory):
            if entry.is_dir:
                pending.append(entry.path)
            else:
                files.append(entry)
    return sorted(files, key=lambda entry: entry.path)


async def _hash(
    registry: MlflowRegistry, version: ModelVersion, root: _Root, entry: ArtifactEntry,
    progress: Progress,
) -> ArtifactFile:  # fmt: skip
    """Stream one file through the tracking server and hash it."""
    relative = entry.path[len(root.prefix) + 1 :] if root.prefix else entry.path
    sha = hashlib.sha256()
    size = 0
    async with registry.stream_model_version_artifact(
        version.name, version.version, relative
    ) as response:
        async for chunk in response.aiter_bytes(CHUNK):
            sha.update(chunk)
            size += len(chunk)
            progress(f"{entry.path}: {size} bytes")
    return ArtifactFile(path=entry.path, size=size, sha256=sha.hexdigest())


def digest_of(
    source: str | None, run_id: str | None, files: list[ArtifactFile], listed: bool
) -> str:
    canonical = json.dumps(
        {
            "source": source,
            "run_id": run_id,
            "listed": listed,
            "files": [[f.path, f.size, f.sha256] for f in files],
        },
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


async def compute_digest(
    registry: MlflowRegistry,
    version: ModelVersion,
    *,
    max_file_mb: float,
    now_ms: int,
    progress: Progress,
) -> ArtifactDigest:
    """The digest of the version as MLflow serves it now. `progress` is called after every
    chunk and listing (the activity heartbeats from it)."""
    root = await _root(registry, version)
    limit = int(max_file_mb * 1024 * 1024)
    files: list[ArtifactFile] = []
    if root is not None:
        for entry in await _walk(registry, root, progress):
            if entry.size is not None and entry.size > limit:
                files.append(ArtifactFile(path=entry.path, size=entry.size))
            else:
                files.append(await _hash(registry, version, root, entry, progress))
    return _digest(version, files, root is not None, max_file_mb, now_ms)


def _digest(
    version: ModelVersion,
    files: list[ArtifactFile],
    listed: bool,
    max_file_mb: float,
    now_ms: int,
) -> ArtifactDigest:
    notes: list[str] = []
    unhashed = [f.path for f in files if f.sha256 is None]
    if unhashed:
        notes.append(
            f"{len(unhashed)} file(s) above {max_file_mb:g} MB recorded by path and size only, "
            f"not hashed: {', '.join(unhashed[:5])}{' …' if len(unhashed) > 5 else ''}"
        )
    if not listed:
        notes.append(
            f"the files of source {version.source!r} cannot be listed through MLflow's "
            "artifact API; only the source and run are pinned"
        )
    kept = files
    if len(files) > MAX_MANIFEST_FILES:
        notes.append(f"{len(files)} files: the manifest is pinned by its hash, not listed")
        kept = []
    return ArtifactDigest(
        source=version.source,
        run_id=version.run_id,
        sha256=digest_of(version.source, version.run_id, files, listed),
        files=kept,
        file_count=len(files),
        total_bytes=sum(f.size for f in files),
        max_file_mb=max_file_mb,
        listed=listed,
        note="; ".join(notes) or None,
        computed_ms=now_ms,
    )


def _short(sha: str | None) -> str:
    return sha[:12] if sha else "not hashed"


def digest_changes(pinned: ArtifactDigest, now: ArtifactDigest) -> list[str]:
    """How the artifacts changed since `pinned`, one phrase per change ("model/file.pkl: size
    1200 → 1300"); empty when they are the same."""
    if pinned.sha256 == now.sha256:
        return []
    changes: list[str] = []
    if pinned.source != now.source:
        changes.append(f"source: {pinned.source} → {now.source}")
    if pinned.run_id != now.run_id:
        changes.append(f"run: {pinned.run_id} → {now.run_id}")
    before = {f.path: f for f in pinned.files}
    after = {f.path: f for f in now.files}
    for path in sorted(before.keys() | after.keys()):
        old, new = before.get(path), after.get(path)
        if old is None:
            changes.append(f"{path}: added ({new.size} bytes)")  # type: ignore[union-attr]
        elif new is None:
            changes.append(f"{path}: removed")
        elif old.size != new.size:
            changes.append(f"{path}: size {old.size} → {new.size}")
        elif old.sha256 != new.sha256:
            changes.append(f"{path}: sha256 {_short(old.sha256)} → {_short(new.sha256)}")
    return changes or [f"manifest sha256 {_short(pinned.sha256)} → {_short(now.sha256)}"]


def describe_digest(digest: ArtifactDigest) -> str:
    """One line for the record: "artifacts sha256 1a2b3c4d5e6f (3 files, 1234 bytes)"."""
    text = (
        f"artifacts sha256 {digest.sha256[:12]} ({digest.file_count} file(s), "
        f"{digest.total_bytes} bytes)"
    )
    return f"{text}; {digest.note}" if digest.note else text
