"""Content sources: a web source's first sync and its re-sync, and answer quality through a web source.

1. First sync of a 1,000-page intranet on loopback (sourcestub/web.py: CivicActions Guidebook pages, cycled
   and numbered to make 1,000, served with ETags, a sitemap and robots.txt): pages/s for the whole sync
   (crawl, extract, embed, build, publish), in process with the model loaded.
2. Re-sync after 10 pages change: Moment requests only the pages whose sitemap lastmod moved (the 10),
   embeds only them, and publishes (`Sources.sync`). Repeated; medians. Then the daily full pass once: every
   page asked conditionally (304 for the 990 others). The plain approach, in the same run: re-fetch every
   page unconditionally, extract it, and re-embed every chunk with sentence-transformers on PyTorch into one
   FAISS flat index. `--rate` is the source's requests a second (0, the default here: as fast as loopback
   answers; a deployment's default is 2).
3. `moment eval` on the CivicActions questions, the guidebook read (a) from its folder and (b) served as an
   intranet and synced by a web source (gold paths mapped to the synced items by URL): the same figures are
   expected.

    .venv/bin/python bench/sources.py [--quick] [--pages 1000] [--rate 0] [--no-eval]

The guidebook is "CivicActions Guidebook" © 2017-2024 CivicActions, CC BY 4.0 (every page served says so).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import MOMENT, ROOT, child_env, common_args, fmt, moment_embedder, plain_model, side_by_side, write_result

sys.path.insert(0, str(ROOT))

from sourcestub.web import CORPUS, WebSite, guidebook_pages


def intranet_pages(count: int) -> dict[str, str]:
    """`count` pages made from the guidebook's, each its first ~300 words and a line of its own number."""
    base = list(guidebook_pages().items())
    pages = {}
    for n in range(count):
        rel, text = base[n % len(base)]
        words = text.split(" ")
        body = " ".join(words[:300])
        pages[f"p{n:04d}/{rel}"] = f"{body}\n\nThis is page number {n} of the intranet.\n"
    return pages


def setup(home: Path, embedder):
    from assistant.db.database import Database
    from assistant.operations import IndexOperations
    from assistant.settings import load_settings
    from assistant.sources import Sources
    from indexer.store import IndexStore

    content = home / "content"
    content.mkdir(parents=True, exist_ok=True)
    settings = load_settings(home=home, content_dir=content, index_dir_override=home / "index")
    database = Database(f"sqlite:///{home / 'moment.db'}")
    database.upgrade()
    operations = IndexOperations(settings, database, IndexStore(home / "index"), embedder)
    return Sources(operations)


def chunk_texts(site: WebSite) -> list[str]:
    """The plain approach's re-crawl: every page fetched unconditionally, extracted, chunked to ~180 words."""
    import requests

    from indexer.connectors.web import decode_html, main_content

    texts = []
    for path in site.page_paths:
        response = requests.get(site.url(path), timeout=10)
        html, _title = main_content(decode_html(response.content, response.headers.get("Content-Type")))
        words = re.sub(r"<[^>]+>", " ", html.decode("utf-8")).split()
        texts += [" ".join(words[i : i + 180]) for i in range(0, len(words), 180)]
    return texts


def age_full_pass(sources, name: str) -> None:
    """Make the source's next sync its full pass (as if the last one began a day ago)."""
    from assistant.db.models import ContentSource

    with sources.database.session() as session:
        row = session.get(ContentSource, name)
        row.cursor = {**row.cursor, "full_pass_at": "2000-01-01T00:00:00+00:00"}


def sync_figures(pages: int, repeats: int, plain: bool = True, rate: float = 0) -> dict:
    embedder = moment_embedder()
    home = Path(tempfile.mkdtemp(prefix="moment-bench-sources-"))
    try:
        with WebSite(markdown=intranet_pages(pages)) as site:
            sources = setup(home, embedder)
            sources.add(
                "web",
                "intranet",
                site.url("/kb/index.html"),
                options={"rate": rate, "max_pages": pages + 10, "full_pass_hours": 24},
            )
            start = time.perf_counter()
            first = sources.sync("intranet")
            first_seconds = time.perf_counter() - start
            assert first.status == "ok", first.failures[:3]
            version = sources.operations.store.open(search=False)
            chunks = version.size
            version.close()
            print(f"first sync: {first.added} pages, {chunks} chunks in {first_seconds:.1f} s")
            resync, fetched, loads = [], [], []
            for r in range(repeats + 1):  # the last one is the full pass
                if r == repeats:
                    age_full_pass(sources, "intranet")
                changed = site.page_paths[r * 10 : r * 10 + 10]
                for n, path in enumerate(changed):
                    site.set_page(path, f"# Changed page {r}-{n}\n\nThe new travel policy, revision {r}, item {n}.")
                site.reset_hits()
                loads.append(os.getloadavg()[0])
                start = time.perf_counter()
                result = sources.sync("intranet")
                seconds = time.perf_counter() - start
                sent = sum(site.hits.get(p, 0) - site.not_modified.get(p, 0) for p in site.page_paths)
                asked = len(site.requested)
                assert result.changed == 10, result
                kind = "full pass" if r == repeats else f"re-sync {r + 1}"
                print(f"{kind}: {seconds:.2f} s, {asked} requests, {sent} pages sent in full, {result.changed} changed")
                if r == repeats:
                    full_pass = {"seconds": seconds, "requests": asked, "pages_sent_in_full": sent}
                else:
                    resync.append(seconds)
                    fetched.append(sent)
            print(f"load average (1 min) at the re-syncs: {min(loads):.1f}-{max(loads):.1f}")
            extra = {"full_pass": full_pass, "load_average": [min(loads), max(loads)], "rate": rate}
            if not plain:  # the first sync fetched, extracted and embedded everything: what a full re-sync does
                figures = _report(
                    pages, repeats, first, first_seconds, chunks, resync, fetched, first_seconds, 0.0, 0.0, chunks
                )
                return {**figures, **extra}
            # The plain approach: fetch and extract everything again, embed every chunk again.
            model = plain_model()
            start = time.perf_counter()
            texts = chunk_texts(site)
            fetch_seconds = time.perf_counter() - start
            start = time.perf_counter()
            vectors = model.encode(texts, batch_size=32, normalize_embeddings=True)
            from common import plain_flat_index

            plain_flat_index(vectors)
            embed_seconds = time.perf_counter() - start
            plain = fetch_seconds + embed_seconds
    finally:
        shutil.rmtree(home, ignore_errors=True)
    figures = _report(
        pages, repeats, first, first_seconds, chunks, resync, fetched, plain, fetch_seconds, embed_seconds, len(texts)
    )
    return {**figures, **extra}


def _report(
    pages, repeats, first, first_seconds, chunks, resync, fetched, plain, fetch_seconds, embed_seconds, n_texts
):
    median = statistics.median(resync)
    print()
    print(
        side_by_side(
            f"Re-sync after 10 of {pages} pages change (median of {repeats})",
            [
                ("seconds", fmt(median, " s"), fmt(plain, " s"), fmt(plain / median, "x")),
                ("pages sent in full", str(statistics.median(fetched)), str(pages), ""),
            ],
        )
    )
    plain_parts = f"re-fetch and extract {fmt(fetch_seconds, ' s')}, re-embed {n_texts} chunks"
    print(f"  plain: {plain_parts} {fmt(embed_seconds, ' s')}")
    return {
        "pages": pages,
        "first_sync": {"seconds": first_seconds, "pages_per_second": first.added / first_seconds, "chunks": chunks},
        "resync": {"seconds": resync, "median": median, "pages_sent_in_full": fetched},
        "plain_resync": {
            "seconds": plain,
            "fetch_extract": fetch_seconds,
            "embed": embed_seconds,
            "chunks": n_texts,
            "measured": bool(fetch_seconds or embed_seconds),  # False: the first sync's time stands for it
        },
    }


def moment_cli(home: Path, *args: str, env_extra: dict | None = None) -> str:
    env = child_env(
        MOMENT_HOME=str(home),
        MOMENT_INDEX_DIR=str(home / "index"),
        MOMENT_CONTENT_DIR=str(home / "content"),
        DATABASE_URL=f"sqlite:///{home / 'moment.db'}",
        **(env_extra or {}),
    )
    done = subprocess.run([str(MOMENT), *args], env=env, capture_output=True, text=True, timeout=3600, cwd=home)
    if done.returncode not in (0, 2):
        raise RuntimeError(f"moment {' '.join(args)} failed: {done.stdout[-2000:]} {done.stderr[-2000:]}")
    return done.stdout


def eval_figures() -> dict:
    questions = CORPUS / "questions.jsonl"
    home = Path(tempfile.mkdtemp(prefix="moment-bench-eval-"))
    try:
        (home / "content").mkdir()
        folder = json.loads(moment_cli(home, "eval", str(questions), "--content", str(CORPUS / "corpus"), "--json",
                                       "--no-compare"))  # fmt: skip
        with WebSite(pages=None) as site:
            moment_cli(home, "source", "add", "web", "civic", site.url("/kb/index.html"), "--rate", "0")
            moment_cli(home, "source", "sync", "civic", "--json")
            import sqlite3

            version = (home / "index" / "CURRENT").read_text().strip()
            catalog = sqlite3.connect(home / "index" / "versions" / version / "catalog.sqlite")
            by_url = dict(catalog.execute("SELECT url, path FROM documents"))
            mapped = home / "questions-web.jsonl"
            lines = []
            for line in questions.read_text().splitlines():
                q = json.loads(line)
                q["gold"] = [by_url[site.url("/kb/" + g[:-3] + ".html")] for g in q["gold"]]
                lines.append(json.dumps(q))
            mapped.write_text("\n".join(lines) + "\n")
            web = json.loads(moment_cli(home, "eval", str(mapped), "--index", str(home / "index"), "--json",
                                        "--no-compare"))  # fmt: skip
    finally:
        shutil.rmtree(home, ignore_errors=True)
    keys = ["recall@1", "recall@5", "mrr@10", "first_passage_right", "answered_when_answerable"]

    def pick(report: dict) -> dict:
        flat = report.get("moment", report)
        return {k: flat.get(k) for k in keys if k in flat}

    result = {"folder": pick(folder), "web": pick(web), "systems": {"folder": folder["systems"], "web": web["systems"]}}
    print()
    print("moment eval on CivicActions: folder vs web source")
    for k in result["folder"]:
        print(f"  {k:12} folder {result['folder'][k]}  web {result['web'].get(k)}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    common_args(parser)
    parser.add_argument("--pages", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--rate", type=float, default=0, help="the source's requests a second (0: no limit)")
    parser.add_argument("--no-eval", action="store_true", help="skip part 3")
    parser.add_argument("--no-sync", action="store_true", help="skip parts 1 and 2")
    parser.add_argument(
        "--no-plain",
        action="store_true",
        help="part 2 without the plain approach (its full "
        "re-fetch and re-embed is then estimated by the first sync, which does the same work)",
    )
    args = parser.parse_args()
    pages, repeats = (100, 2) if args.quick else (args.pages, args.repeats)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    data = {} if args.no_sync else {"sync": sync_figures(pages, repeats, plain=not args.no_plain, rate=args.rate)}
    if not args.no_eval:
        data["eval"] = eval_figures()
    write_result("sources", data, args.out)


if __name__ == "__main__":
    main()
