"""Nothing lost, nothing doubled: 1,000 mixed Slack events against the real `moment serve` while its
PostgreSQL database is cut for 10 s and the server is killed (-9) twice.

Moment is the real `moment serve` (gunicorn, 2 workers, the demo content's index) on a PostgreSQL schema of
its own reached through a TCP proxy on loopback (slackstub/network.py): cutting the proxy is the database going
away (a shared server cannot be stopped), and is what a network partition looks like. The Slack Web API is
the test suite's stand-in (slackstub/) in this process; the worker's jobs (mentor deadlines, help-channel
queues) run from here after the load, as `moment worker` runs them.

Events, in a shuffled order, sent by 8 threads as Slack sends them (signed HTTP; an event that gets no
acknowledgement is sent again, as Slack retries, until it is acknowledged): DMs, @mentions, help-channel
questions, Helpful votes on earlier answers, *Ask a mentor* on earlier answers; 10% of message events are
also delivered a second time (a Slack retry), and 5% once more under a new event id (the same message).

Counted at the end, from what the stand-in shows and what the database holds:
  questions   a DM or mention with no answer in its conversation (lost) or more than one (doubled);
              help-channel questions: not queued, answered twice, and how their queue items ended
              (answered, or silent: not sure enough to answer unasked)
  records     questions with no interaction recorded, or more than one
  votes       clicks acknowledged without a vote recorded and without the person being told
  hand-offs   Ask a mentor clicks with no request and no note to the person; requests offered twice to
              one mentor
and the acknowledgement time of every request (p50 / p99 / max).

    TEST_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test .venv/bin/python bench/faults.py
    [--events 1000] [--outage 10] [--kills 2]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import signal
import sys
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import CONTENT_DIR, ROOT, eval_questions, summary, write_result

sys.path.insert(0, str(ROOT))
import requests
from servers import BOT_TOKEN, SIGNING_SECRET, start_moment

from slackstub import payloads as P
from slackstub.api import SlackAPIStub
from slackstub.network import TcpProxy
from slackstub.signing import SlackSender


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--outage", type=float, default=10.0, help="seconds the database is cut")
    parser.add_argument("--kills", type=int, default=2, help="times the server is killed with SIGKILL")
    parser.add_argument("--recovery-limit", type=float, default=600.0, help="seconds the worker may take to finish")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    base = os.environ.get("TEST_DATABASE_URL")
    if not base:
        sys.exit("set TEST_DATABASE_URL to a PostgreSQL database (a schema of its own is made and dropped)")

    from sqlalchemy import create_engine, text

    from assistant.db.database import Database
    from assistant.helpchannels import ChannelScope, HelpChannels

    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    direct = f"{base}{'&' if '?' in base else '?'}options=-csearch_path%3D{schema}"
    questions = [q["question"] for q in eval_questions()][:40]
    from corpus import real_index

    index = real_index(CONTENT_DIR, quiet=True)
    stub = SlackAPIStub(token=BOT_TOKEN).start()
    proxy = TcpProxy("127.0.0.1", 5432).start()
    url = proxy.url_for(direct)
    home = None
    server = None
    try:
        Database(url).upgrade()
        help_channels = [P.uid("C") for _ in range(4)]
        database = Database(direct)
        for channel in help_channels:
            HelpChannels(database, 0.85, "default").configure(channel, "help", ChannelScope(min_confidence=0.05), "U0A")
        database.dispose()
        env = {"DATABASE_URL": url, "MOMENT_CHANNEL_POST_INTERVAL": "0.2", "MOMENT_WEB_THREADS": "8"}
        server = start_moment(stub.api_url, index, tag="-faults", env=env)
        server.wait_ready()
        home = server.log_path.parent
        sender = SlackSender(server.url, SIGNING_SECRET, timeout=10)
        result = run_load(args, stub, proxy, server, sender, questions, help_channels, env, index)
        result.update(count_outcomes(stub, direct, result.pop("sent")))
        print(json.dumps({k: v for k, v in result.items() if k != "acks"}, indent=2))
        write_result("faults", result, args.out)
    finally:
        if server is not None:
            server.stop()
        proxy.stop()
        stub.stop()
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()
        _ = home


def run_load(args, stub, proxy, server, sender, questions, help_channels, env, index) -> dict:
    rng = random.Random(7)
    acks: list[float] = []
    unacked_tries = Counter()
    sent: dict[str, list] = {"dm": [], "mention": [], "help": [], "vote": [], "mentor": []}
    answered: list[tuple[str, int]] = []  # (asker, interaction id) of answers seen so far
    lock = threading.Lock()
    state = {"server": server}

    def deliver(body: dict, kind: str, *, retry: int | None = None) -> None:
        """Send until acknowledged (Slack retries), timing each attempt that is answered."""
        send = sender.interaction if kind == "interaction" else sender.event
        for attempt in range(60):
            started = time.monotonic()
            try:
                response = send(body, retry_num=retry if attempt == 0 else attempt)
                if response.status_code == 200:
                    with lock:
                        acks.append(time.monotonic() - started)
                    return
            except requests.RequestException:
                pass
            with lock:
                unacked_tries[kind] += 1
            time.sleep(1.0)

    def event(kind: str) -> None:
        user = P.uid()
        text = rng.choice(questions)
        if kind == "dm":
            ev = P.im_message(text, user=user)
        elif kind == "mention":
            ev = P.app_mention(text, user=user, channel=P.uid("C"))
        else:
            ev = P.channel_message(text + "?", user=user, channel=rng.choice(help_channels))
        if kind != "dm":  # the channel shows the person's message (its thread can be read)
            stub.add_message(ev["channel"], ev["text"], user=user, ts=ev["ts"])
        envelope = P.event_callback(ev)
        with lock:
            sent[kind].append({"user": user, "channel": ev["channel"], "ts": ev["ts"]})
        deliver(envelope, "event")
        roll = rng.random()
        if roll < 0.10:
            deliver(envelope, "event", retry=1)
        elif roll < 0.15:
            deliver(dict(envelope, event_id=P.new_event_id()), "event")

    def click(kind: str) -> None:
        from assistant.slack import blocks as ui

        with lock:
            if not answered:
                return
            asker, interaction_id = rng.choice(answered)
        user = P.uid() if kind == "vote" else asker
        action = ui.VOTE_HELPFUL if kind == "vote" else ui.ASK_MENTOR
        channel = P.dm_channel(asker)
        payload = P.block_actions(
            action_id=action, value=str(interaction_id), user=user, channel=channel, response_url=stub.response_url()
        )
        with lock:
            sent[kind].append({"user": user, "interaction": interaction_id, "channel": channel})
        deliver(payload, "interaction")

    def harvest() -> None:
        from assistant.slack import blocks as ui

        for call in stub.calls("chat.postMessage"):
            if call.ok and call.params.get("channel", "").startswith("D"):
                button = P.button(call.params.get("blocks"), ui.VOTE_HELPFUL)
                if button:
                    with lock:
                        entry = (call.params["channel"], int(button["value"]))
                        if entry not in answered:
                            answered.append(("U" + entry[0][1:], entry[1]))

    jobs = WorkerJobs(stub, env, index)
    jobs.start()
    kinds = rng.choices(["dm", "mention", "help", "vote", "mentor"], weights=[35, 15, 20, 20, 10], k=args.events)
    outage_at, kill_at = int(args.events * 0.3), [int(args.events * f) for f in (0.55, 0.8)][: args.kills]
    started = time.monotonic()
    timeline = []
    with ThreadPoolExecutor(max_workers=8) as pool:
        for i, kind in enumerate(kinds):
            if i == outage_at:
                proxy.cut()
                timeline.append(("database cut", round(time.monotonic() - started, 1)))
                threading.Timer(
                    args.outage,
                    lambda: (proxy.restore(), timeline.append(("database back", round(time.monotonic() - started, 1)))),
                ).start()
            if i in kill_at:
                kill_and_restart(state, stub, index, env, sender)
                state["killed_at"] = time.monotonic()
                timeline.append(("server killed", round(time.monotonic() - started, 1)))
            if i % 25 == 0:
                harvest()
            pool.submit(event if kind in ("dm", "mention", "help") else click, kind)
            time.sleep(0.05)
    load_ended = time.monotonic()
    timeline.append(("load sent", round(load_ended - started, 1)))
    # What `moment worker` does after the faults, until nothing is left (questions recorded or spooled and
    # not answered, answers not posted, hand-offs never offered, help-channel queues): its jobs run every 20 s
    # in the background; here also as soon as the last run finished, until nothing is left or the limit.
    jobs.stop()
    left = jobs.recover(lambda: work_left(env["DATABASE_URL"], state["server"].log_path.parent), args.recovery_limit)
    recovered = time.monotonic()
    timeline.append(("nothing left" if not left else "recovery limit", round(recovered - started, 1)))
    quiet_until(stub, 10)
    state["server"].stop()
    return {
        "events": args.events,
        "sent_by_kind": {k: len(v) for k, v in sent.items()},
        "timeline": timeline,
        "recovery_s": {
            "after_load": round(recovered - load_ended, 1),
            "after_last_kill": round(recovered - state.get("killed_at", load_ended), 1),
            "left_at_the_limit": left,
        },
        "unacknowledged_attempts": dict(unacked_tries),
        "ack_ms": summary([a * 1000 for a in acks], p99=True),
        "acks": acks,
        "sent": sent,
        "seconds": round(time.monotonic() - started, 1),
    }


class WorkerJobs:
    """`moment worker`'s jobs that finish what a stopped process left (mentor deadlines and hand-offs,
    help-channel queues, questions recorded and never answered), every 20 s, as the worker runs them."""

    def __init__(self, stub, env, index) -> None:
        from pydantic import SecretStr

        from assistant import worker
        from assistant.settings import load_settings

        settings = load_settings(
            home=ROOT / ".moment" / "bench-corpora" / "faults-worker",
            database_url_override=env["DATABASE_URL"],
            index_dir_override=index,
            content_dir=CONTENT_DIR,
            slack_bot_token=SecretStr(BOT_TOKEN),
            slack_api_url=stub.api_url,
        )
        worker.setup(settings)
        self.worker = worker
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="bench-worker", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=120)

    def run_once(self) -> None:
        for job in ("mentor_deadlines", "help_channel_queues", "questions_left"):
            try:
                getattr(self.worker, job)()
            except Exception as exc:  # the database may be cut: the next run tries again
                print(f"worker job {job} failed: {exc!r}", flush=True)

    def _loop(self) -> None:
        while not self._stop.wait(20):
            self.run_once()

    def recover(self, left, limit: float) -> dict:
        """Run the jobs until `left()` is empty or `limit` seconds have passed; what is left."""
        deadline = time.monotonic() + limit
        while True:
            self.run_once()
            remaining = left()
            print(f"left: {remaining}", flush=True)
            if not remaining or time.monotonic() > deadline:
                return remaining
            time.sleep(5)


def work_left(database_url: str, home: Path) -> dict:
    """What a stopped process left for the worker: questions recorded and not answered, answers recorded and
    not posted, hand-offs never offered, help-channel messages queued, and rows still spooled on the host."""
    from sqlalchemy import func, select

    from assistant.db.database import Database, DatabaseUnavailableError
    from assistant.db.models import HelpQueueItem, Interaction, MentorRequest
    from assistant.records.spool import UNANSWERED

    database = Database(database_url)
    try:
        with database.session() as session:

            def n(model, *where) -> int:
                return session.scalar(select(func.count()).select_from(model).where(*where)) or 0

            left = {
                "questions": n(Interaction, Interaction.outcome.in_(UNANSWERED)),
                "unposted": n(Interaction, Interaction.unposted_since.is_not(None)),
                "hand-offs": n(MentorRequest, MentorRequest.status == "searching"),
                "help queue": n(HelpQueueItem, HelpQueueItem.status == "queued"),
            }
    except DatabaseUnavailableError as exc:
        left = {"database": str(exc)}
    finally:
        database.dispose()
    for spool in sorted((home / "spool").glob("*.jsonl")):
        left[spool.name] = sum(1 for line in spool.read_text(encoding="utf-8").splitlines() if line.strip())
    return {k: v for k, v in left.items() if v}


def kill_and_restart(state, stub, index, env, sender) -> None:
    old = state["server"]
    for pid in reversed(old.pids()):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    old.process.wait(timeout=10)
    new = start_moment(stub.api_url, index, tag="-faults", env=env, keep_home=True)
    sender.base_url = new.url
    new.wait_ready(timeout=240)
    state["server"] = new


def quiet_until(stub, seconds: float) -> None:
    """Until no Web API call for `seconds`."""
    while True:
        calls = stub.calls()
        last = calls[-1].time if calls else 0
        if time.time() - last > seconds:
            return
        time.sleep(1)


def count_outcomes(stub, database_url: str, sent: dict) -> dict:
    from sqlalchemy import select

    from assistant.db.database import Database
    from assistant.db.models import HelpQueueItem, Interaction, MentorOffer, MentorRequest, Vote
    from assistant.slack.posting import message_payload

    def shown(channel: str, thread_ts: str | None = None) -> list[dict]:
        """Moment's answers in a conversation (messages carrying the question they answer; not the notes of
        a mentor hand-off, which go to the same DM)."""
        msgs = [m for m in stub.channel_messages(channel) if m.get("bot_id") and message_payload(m).get("question")]
        return [m for m in msgs if thread_ts is None or m.get("thread_ts") == thread_ts]

    database = Database(database_url)
    out: dict = {}
    with database.session() as session:
        per_user = Counter(session.scalars(select(Interaction.user_id)).all())
        votes = {(v.user_id, v.interaction_id) for v in session.scalars(select(Vote)).all()}
        requests_ = {(r.asker_id, r.interaction_id) for r in session.scalars(select(MentorRequest)).all()}
        offers = Counter((o.request_id, o.mentor_id) for o in session.scalars(select(MentorOffer)).all())
        items = session.scalars(select(HelpQueueItem)).all()
        queue = Counter((q.channel_id, q.message_ts) for q in items)
        statuses = Counter(q.status for q in items)
    database.dispose()
    for kind in ("dm", "mention"):
        answers = [
            len([m for m in shown(e["channel"]) if kind == "dm" or m.get("thread_ts") == e["ts"]]) for e in sent[kind]
        ]
        records = [per_user[e["user"]] for e in sent[kind]]
        out[kind] = {
            "sent": len(sent[kind]),
            "unanswered": sum(1 for a in answers if a == 0),
            "answered_twice": sum(1 for a in answers if a > 1),
            "not_recorded": sum(1 for r in records if r == 0),
            "recorded_twice": sum(1 for r in records if r > 1),
        }
    help_answers = [len(shown(e["channel"], e["ts"])) for e in sent["help"]]
    out["help"] = {
        "sent": len(sent["help"]),
        "not_queued": sum(1 for e in sent["help"] if not queue[(e["channel"], e["ts"])]),
        "answered": sum(1 for a in help_answers if a == 1),
        "answered_twice": sum(1 for a in help_answers if a > 1),
        # silent: not sure enough to answer unasked (the eval set has questions the content cannot answer)
        "queue_status": dict(statuses),
    }

    def told(e) -> bool:
        return bool(stub.calls("chat.postEphemeral", lambda c: c.params.get("user") == e["user"]))

    out["vote"] = {
        "sent": len(sent["vote"]),
        "lost": sum(1 for e in sent["vote"] if (e["user"], e["interaction"]) not in votes and not told(e)),
        "refused_and_told": sum(1 for e in sent["vote"] if (e["user"], e["interaction"]) not in votes and told(e)),
    }
    mentor_clicks = {(e["user"], e["interaction"]): e for e in sent["mentor"]}
    out["mentor"] = {
        "asked": len(mentor_clicks),
        "lost": sum(1 for key, e in mentor_clicks.items() if key not in requests_ and not told(e)),
        "refused_and_told": sum(1 for key, e in mentor_clicks.items() if key not in requests_ and told(e)),
        "offered_twice_to_one_mentor": sum(1 for n in offers.values() if n > 1),
    }
    return out


if __name__ == "__main__":
    main()
