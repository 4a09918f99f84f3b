"""Shared fixtures: the real embedding model, temporary content folders, databases."""

from __future__ import annotations

import os
import textwrap
from contextlib import contextmanager
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

pytest_plugins = ["tests.lrs", "tests.slack_fixtures"]

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

    def vpn_token_page(self, owner: str = "U0TESTOWN1") -> Path:
        """A job aid with a heading per step of the procedure, reviewed on 2026-09-01."""
        return self.markdown(
            "it/vpn-token.md",
            "Reset a VPN hardware token",
            """
            # Reset a VPN hardware token
            ## Before you start
            Find the serial number on the back of the token.
            ## Steps
            1. Open the self-service portal at portal.brightline.example.
            2. Choose Reset token and enter the serial number.
            3. Wait for the six-digit code to change, then sign in to the VPN again.
            ## If it still fails
            Call the IT desk on extension 4400.
            """,
            owner=owner,
            tags="[vpn, remote-access]",
            reviewed="2026-09-01",
            review_every=180,
            url="https://intranet.brightline.example/kb/vpn-token",
        )

    def van_inspection_video(self) -> None:
        """A training video: a WebVTT transcript of three cues and its sidecar."""
        cues = [
            ("00:00:00.000", "00:00:06.000", "Welcome to the daily van inspection walk-around."),
            ("00:00:06.000", "00:00:14.000", "Start with the tyres: check pressure and tread depth on all four."),
            ("00:00:14.000", "00:00:22.000", "Then check the lights, the indicators and the brake lights."),
        ]
        vtt = "WEBVTT\n\n" + "".join(f"{a} --> {b}\n{t}\n\n" for a, b, t in cues)
        self.write("videos/van-inspection.vtt", vtt, dedent=False)
        self.write(
            "videos/van-inspection.yml",
            "title: Daily van inspection\ntype: video\nowner: U0TESTOWN1\ntags: [vans, safety]\n"
            "url: https://learn.brightline.example/videos/van-inspection\n",
        )


@pytest.fixture(scope="session")
def corpus(tmp_path_factory, embedder):
    """A small content set with near neighbours, a stale page, a video and a PDF-like page."""
    from indexer.build import build_index
    from indexer.store import IndexStore

    root = tmp_path_factory.mktemp("answers")
    content = ContentFolder(root / "content")
    content.vpn_token_page()
    content.markdown(
        "it/password.md",
        "Reset your network password",
        """
        ## Steps
        1. Press Ctrl+Alt+Del and choose Change a password.
        2. Passwords need 14 characters and expire every 90 days.
        """,
        tags="[password, accounts]",
        reviewed="2026-10-01",
        review_every=365,
    )
    content.markdown(
        "hr/mileage.md",
        "Mileage claims",
        """
        # Mileage claims
        ## Rates
        Own car: 67 cents per mile. Company vans: no mileage claim, use the fuel card.
        ## How to claim
        Submit the claim in Expensify within 30 days with the trip's start and end addresses.
        """,
        type_="procedure",
        tags="[expenses, mileage]",
        reviewed="2024-01-15",
        review_every=180,
        url="https://intranet.brightline.example/hr/mileage",
    )
    content.markdown(
        "safety/loto.md",
        "Lockout/tagout before panel work",
        """
        ## Steps
        1. Tell everyone affected that the panel will be shut down.
        2. Switch off the breaker, apply your personal padlock and a danger tag.
        3. Test for zero energy with a voltage tester before touching any conductor.
        """,
        type_="procedure",
        tags="[safety, loto]",
    )
    content.van_inspection_video()
    store = IndexStore(root / "index")
    build_index(content.root, store, embedder)
    return store


@pytest.fixture
def content(tmp_path) -> ContentFolder:
    return ContentFolder(tmp_path / "content")


@pytest.fixture
def store(tmp_path):
    from indexer.store import IndexStore

    return IndexStore(tmp_path / "index")


def database_params() -> list:
    """SQLite always; PostgreSQL too with TEST_DATABASE_URL, in the slow tier (`make test-fast` runs each
    database test once, on SQLite; `make test` on both)."""
    params: list = ["sqlite"]
    if os.environ.get("TEST_DATABASE_URL"):
        params.append(pytest.param("postgresql", marks=pytest.mark.slow))
    return params


@contextmanager
def fresh_database(kind: str, directory: Path):
    """The URL of a fresh, empty database: a SQLite file in `directory`, or a PostgreSQL schema of its own
    (dropped afterwards) on TEST_DATABASE_URL."""
    if kind == "sqlite":
        yield f"sqlite:///{directory / 'moment.db'}"
        return
    import uuid

    from sqlalchemy import create_engine, text

    base = os.environ["TEST_DATABASE_URL"]
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in base else "?"
    try:
        yield f"{base}{separator}options=-csearch_path%3D{schema}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=database_params())
def database_url(request, tmp_path) -> str:
    """A fresh, empty database: a SQLite file, and (with TEST_DATABASE_URL) a PostgreSQL schema of its own."""
    with fresh_database(request.param, tmp_path) as url:
        yield url


@pytest.fixture
def database(database_url):
    from assistant.db.database import Database

    db = Database(database_url)
    db.upgrade()
    yield db
    db.dispose()
