"""Shared fixtures: the real embedding model, temporary content folders, databases."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parent.parent
MODEL_CACHE = Path(os.environ.get("MOMENT_MODEL_CACHE", ROOT / ".moment" / "models"))


@pytest.fixture(scope="session")
def embedder():
    """The real default embedder (all-MiniLM-L6-v2 on ONNX), shared by the whole session."""
    from indexer.embedding import load_embedder

    return load_embedder("all-MiniLM-L6-v2", "onnx", MODEL_CACHE)


class ContentFolder:
    """A content folder in a temporary directory, written file by file."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def write(self, rel: str, text: str | bytes, dedent: bool = True) -> Path:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(textwrap.dedent(text).lstrip("\n") if dedent else text, encoding="utf-8")
        return path

    def markdown(self, rel: str, title: str, body: str, type_: str = "job-aid", **meta) -> Path:
        lines = [f"title: {title}", f"type: {type_}", f"owner: {meta.pop('owner', 'U0TESTOWN1')}"]
        lines += [f"{k}: {v}" for k, v in meta.items()]
        return self.write(
            rel, "---\n" + "\n".join(lines) + "\n---\n" + textwrap.dedent(body).lstrip("\n"), dedent=False
        )

    def remove(self, rel: str) -> None:
        (self.root / rel).unlink()


@pytest.fixture
def content(tmp_path) -> ContentFolder:
    return ContentFolder(tmp_path / "content")


@pytest.fixture
def store(tmp_path):
    from indexer.store import IndexStore

    return IndexStore(tmp_path / "index")


def _database_params() -> list:
    params = ["sqlite"]
    if os.environ.get("TEST_DATABASE_URL"):
        params.append("postgresql")
    return params


@pytest.fixture(params=_database_params())
def database_url(request, tmp_path) -> str:
    """A fresh, empty database: a SQLite file, and (with TEST_DATABASE_URL) a PostgreSQL schema of its own."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'moment.db'}"
        return
    import uuid

    from sqlalchemy import create_engine, text

    base = os.environ["TEST_DATABASE_URL"]
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in base else "?"
    yield f"{base}{separator}options=-csearch_path%3D{schema}"
    with admin.connect() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture
def database(database_url):
    from assistant.db.database import Database

    db = Database(database_url)
    db.upgrade()
    yield db
    db.dispose()
