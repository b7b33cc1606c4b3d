"""The worker's build id: a digest of Signoff's code, the same for the same code, another when a
file changes or is added."""

from __future__ import annotations

from pathlib import Path

from workflows.build_id import code_digest, worker_build_id


def test_the_digest_follows_the_code(tmp_path: Path) -> None:
    package = tmp_path / "workflows"
    (package / "ledger").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "ledger" / "store.py").write_text("LIMIT = 1\n")
    (package / "notes.txt").write_text("not code")
    first = code_digest([package])
    assert code_digest([package]) == first
    (package / "notes.txt").write_text("still not code")
    assert code_digest([package]) == first
    (package / "ledger" / "store.py").write_text("LIMIT = 2\n")
    changed = code_digest([package])
    assert changed != first
    (package / "ledger" / "extra.py").write_text("")
    assert code_digest([package]) not in (first, changed)


def test_the_worker_build_id_names_signoff() -> None:
    build_id = worker_build_id()
    assert build_id.startswith("signoff-") and len(build_id) == len("signoff-") + 32
    assert worker_build_id() == build_id
