"""Mentor registry, matching on real embeddings, and the hand-off state machine on SQLite and PostgreSQL.

The Slack side is covered end to end in test_slack_mentors.py; here the `Notifier` is a recorder, the
boundary where the core hands messages to Slack.
"""

from __future__ import annotations

import datetime as dt
import textwrap
import threading

import pytest
from sqlalchemy import select

from assistant.access.tenancy import DEFAULT_TEAM as TEAM
from assistant.db.database import Database
from assistant.db.models import Mentor, MentorOffer, MentorRequest
from assistant.mentoring.drafts import Drafts
from assistant.mentoring.handoff import Handoff, HandoffError, HandoffSettings
from assistant.mentoring.mentors import MentorError, MentorRegistry, is_working, parse_mentors_file

# A Wednesday, 10:00 in London (and 05:00 in New York, 15:30 in Kolkata).
WEDNESDAY_10_LONDON = dt.datetime(2026, 11, 25, 10, 0, tzinfo=dt.UTC)

MENTORS_YML = """
mentors:
  - slack_id: U0VPNPRIYA
    name: Priya Natarajan
    topics: [vpn, remote access, mfa]
    capacity: 2
    timezone: Europe/London
    working_hours: "08:00-17:00"
    vetted_by: U0ADMIN001
    vetted_on: 2026-05-14
  - slack_id: U0VPNRAJ01
    name: Raj Mehta
    topics: [vpn, laptops]
    capacity: 2
    timezone: Asia/Kolkata
    working_hours: "09:00-18:00"
    vetted_by: U0ADMIN001
    vetted_on: 2026-05-14
  - slack_id: U0ITDESK01
    name: Lee Chen
    topics: [it support, passwords, vpn]
    capacity: 2
    timezone: America/New_York
    working_hours: "09:00-17:00"
    vetted_by: U0ADMIN001
    vetted_on: 2026-05-14
  - slack_id: U0PAYSAM01
    name: Sam Okafor
    topics: [payroll, payhub, overtime pay, payslips]
    capacity: 3
    timezone: Europe/London
    working_hours: "09:00-17:30"
    vetted_by: U0ADMIN001
    vetted_on: 2026-05-14
  - slack_id: U0SAFEANA1
    name: Ana Lopez
    topics: [ladder safety, working at height, ppe]
    capacity: 1
    timezone: America/New_York
    working_hours: "07:00-15:00"
    vetted_by: U0ADMIN001
    vetted_on: 2026-05-14
  - slack_id: U0NEWBIE01
    name: Not Vetted Yet
    topics: [vpn]
    timezone: Europe/London
"""


class RecordingNotifier:
    """Records what the core asks Slack to say (the Slack layer's own tests check the real messages)."""

    def __init__(self):
        self.calls: list[tuple] = []
        self.lock = threading.Lock()

    def _add(self, *call):
        with self.lock:
            self.calls.append(call)

    def offer(self, request, offer):
        self._add("offer", request.id, offer.mentor_id, offer.reason, request.shown)
        return ("D" + offer.mentor_id, f"{len(self.calls)}.0001")

    def offer_closed(self, offer, request, why):
        self._add("offer_closed", request.id, offer.mentor_id, why)

    def tell_asker(self, request, notice, *, cancellable=False):
        self._add("tell_asker", request.id, notice.render(lambda user: f"@{user}"))

    def tell_mentor(self, mentor_id, notice, request):
        self._add("tell_mentor", request.id, mentor_id, notice.render(lambda user: f"@{user}"))

    def connect(self, request):
        self._add("connect", request.id, request.asker_id, request.owner_id, request.owner_name, request.shown)
        return "G0GROUPDM1"

    def escalate(self, request, why):
        self._add("escalate", request.id, why, request.tried)

    def resolved(self, request):
        self._add("resolved", request.id, request.owner_id)

    def of(self, kind):
        return [c for c in self.calls if c[0] == kind]


@pytest.fixture
def mentors_file(tmp_path):
    path = tmp_path / "mentors.yml"
    path.write_text(textwrap.dedent(MENTORS_YML), encoding="utf-8")
    return path


@pytest.fixture
def registry(database, embedder, mentors_file):
    registry = MentorRegistry(database, embedder)
    assert registry.seed(TEAM, mentors_file) == 6
    return registry


@pytest.fixture
def notifier():
    return RecordingNotifier()


@pytest.fixture
def handoff(database, registry, notifier):
    return Handoff(database, registry, notifier, HandoffSettings(offer_minutes=30, max_attempts=3))


# -- registry ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "entry, message",
    [
        ("slack_id: priya", "Slack user ID"),
        ("slack_id: U0GOODID01\n    timezone: Mars/Olympus", "time zone"),
        ("slack_id: U0GOODID01\n    working_hours: 9 to 5", "working_hours"),
        ("slack_id: U0GOODID01\n    capacity: none", "capacity"),
        ("slack_id: U0GOODID01\n    working_days: [someday]", "working_days"),
    ],
)
def test_a_broken_mentors_file_names_the_entry_and_the_problem(tmp_path, entry, message):
    path = tmp_path / "mentors.yml"
    path.write_text(f"mentors:\n  - {entry}\n", encoding="utf-8")
    with pytest.raises(MentorError, match=message) as err:
        parse_mentors_file(path)
    assert "mentor 1" in str(err.value)


def test_seeding_never_overwrites_the_database(registry, mentors_file):
    registry.set_paused(TEAM, "U0VPNPRIYA", True)
    registry.add(TEAM, "U0PAYSAM01", ["payroll"], by="U0ADMIN001")
    registry.remove(TEAM, "U0SAFEANA1")
    assert registry.seed(TEAM, mentors_file) == 0
    assert registry.get(TEAM, "U0VPNPRIYA").paused
    assert registry.get(TEAM, "U0PAYSAM01").topics == ("payroll",)
    assert registry.get(TEAM, "U0SAFEANA1").removed  # not revived by the file


def test_add_vet_and_remove(registry):
    with pytest.raises(MentorError, match="not a Slack user"):
        registry.add(TEAM, "bob", ["vpn"], by="U0ADMIN001")
    with pytest.raises(MentorError, match="at least one topic"):
        registry.add(TEAM, "U0BOB00001", [" , "], by="U0ADMIN001")
    mentor = registry.add(TEAM, "U0BOB00001", "Fleet, fuel cards , fleet", by="U0ADMIN001")
    assert mentor.topics == ("fleet", "fuel cards") and not mentor.vetted
    assert registry.vet(TEAM, "U0BOB00001", by="U0ADMIN001").vetted
    registry.remove(TEAM, "U0BOB00001")
    with pytest.raises(MentorError, match="not a mentor"):
        registry.vet(TEAM, "U0BOB00001", by="U0ADMIN001")
    again = registry.add(TEAM, "U0BOB00001", ["fleet"], by="U0ADMIN001")
    assert not again.removed and not again.vetted  # back, but vetted again first


def test_working_hours_in_the_mentors_time_zone():
    london = Mentor(slack_id="U0X", name="x", timezone="Europe/London", working_hours="08:00-17:00",
                    working_days=["mon", "tue", "wed", "thu", "fri"])  # fmt: skip
    assert is_working(london, WEDNESDAY_10_LONDON)
    assert not is_working(london, WEDNESDAY_10_LONDON.replace(hour=18))
    assert not is_working(london, dt.datetime(2026, 11, 28, 10, 0, tzinfo=dt.UTC))  # Saturday
    night = Mentor(slack_id="U0Y", name="y", timezone="UTC", working_hours="22:00-06:00", working_days=["wed"])
    assert is_working(night, WEDNESDAY_10_LONDON.replace(hour=23))
    assert is_working(night, dt.datetime(2026, 11, 26, 3, 0, tzinfo=dt.UTC))  # Wednesday's shift, Thursday 03:00
    assert not is_working(night, dt.datetime(2026, 11, 27, 3, 0, tzinfo=dt.UTC))


# -- matching ----------------------------------------------------------------------------------------


def test_the_vpn_question_goes_to_a_vpn_mentor_not_the_payroll_one(registry):
    found = registry.candidates(TEAM, "my vpn token keeps failing when i work from home", asker_id="U0ASKER01",
                                now=WEDNESDAY_10_LONDON)  # fmt: skip
    # Three know VPN; Priya and Raj are at work (London, Kolkata), Lee is not (05:00 in New York).
    assert {c.slack_id for c in found[:2]} == {"U0VPNPRIYA", "U0VPNRAJ01"} and found[2].slack_id == "U0ITDESK01"
    assert "U0PAYSAM01" not in [c.slack_id for c in found[:2]]
    assert "vpn" in found[0].reason.lower() and found[0].reason.startswith("You know")
    assert "U0NEWBIE01" not in [c.slack_id for c in found]  # not vetted

    payroll = registry.candidates(TEAM, "payslip shows wrong overtime", asker_id="U0ASKER01", now=WEDNESDAY_10_LONDON)
    assert payroll[0].slack_id == "U0PAYSAM01"


def test_nobody_fits_an_off_topic_question(registry):
    assert registry.candidates(TEAM, "best pizza place near the office", asker_id="U0ASKER01") == []


def test_availability_then_load_then_fairness(registry, database):
    question = "vpn will not connect"
    # At 05:00 UTC on a Wednesday only Raj is at work (10:30 in Kolkata): he comes first.
    early = dt.datetime(2026, 11, 25, 5, 0, tzinfo=dt.UTC)
    assert registry.candidates(TEAM, question, asker_id="U0A", now=early)[0].slack_id == "U0VPNRAJ01"
    # At 20:00 UTC only Lee is (15:00 in New York).
    evening = dt.datetime(2026, 11, 25, 20, 0, tzinfo=dt.UTC)
    assert registry.candidates(TEAM, question, asker_id="U0A", now=evening)[0].slack_id == "U0ITDESK01"
    # On a Sunday nobody is: whoever was offered a question least recently comes first.
    sunday = dt.datetime(2026, 11, 29, 12, 0, tzinfo=dt.UTC)
    with database.session() as session:
        session.get(Mentor, (TEAM, "U0VPNPRIYA")).last_offered_at = sunday - dt.timedelta(minutes=5)
        session.get(Mentor, (TEAM, "U0ITDESK01")).last_offered_at = sunday - dt.timedelta(minutes=50)
    assert [c.slack_id for c in registry.candidates(TEAM, question, asker_id="U0A", now=sunday)][:3] == [
        "U0VPNRAJ01", "U0ITDESK01", "U0VPNPRIYA"
    ]  # fmt: skip
    # Never the asker; never someone paused.
    assert "U0VPNPRIYA" not in [c.slack_id for c in registry.candidates(TEAM, question, asker_id="U0VPNPRIYA")]
    assert "U0ITDESK01" in [c.slack_id for c in registry.candidates(TEAM, question, asker_id="U0A")]
    registry.set_paused(TEAM, "U0VPNRAJ01", True)
    assert "U0VPNRAJ01" not in [c.slack_id for c in registry.candidates(TEAM, question, asker_id="U0A")]


def test_a_mentor_at_capacity_gets_no_more(handoff, registry):
    handoff.request(asker_id="U0A1", question="vpn token broken", now=WEDNESDAY_10_LONDON)
    handoff.request(asker_id="U0A2", question="vpn keeps dropping", now=WEDNESDAY_10_LONDON)
    third = registry.candidates(TEAM, "vpn error 809", asker_id="U0A3", now=WEDNESDAY_10_LONDON)
    loads = {c.slack_id: c.load for c in third}
    assert "U0VPNPRIYA" not in loads or loads["U0VPNPRIYA"] < 2
    assert sum(1 for c in third if c.slack_id in ("U0VPNPRIYA", "U0VPNRAJ01")) >= 1


# -- hand-off -----------------------------------------------------------------------------------------


def test_offer_decline_timeout_accept_resolve(handoff, notifier, database):
    request = handoff.request(asker_id="U0ASKER01", question="vpn token says invalid", now=WEDNESDAY_10_LONDON)
    assert request.status == "offered"
    assert notifier.of("offer")[0][2] == "U0VPNPRIYA"
    assert "U0VPNPRIYA" in notifier.of("tell_asker")[0][2]

    handoff.decline(request.id, "U0VPNPRIYA", now=WEDNESDAY_10_LONDON)
    assert notifier.of("offer")[1][2] == "U0VPNRAJ01"
    with pytest.raises(HandoffError, match=r"lapsed|moved on"):
        handoff.decline(request.id, "U0VPNPRIYA")  # twice

    # Raj does not answer: after 30 minutes the sweep moves the question on.
    assert handoff.sweep(WEDNESDAY_10_LONDON + dt.timedelta(minutes=10)) == {
        "timed_out": 0,
        "followed_up": 0,
        "resumed": 0,
    }
    assert handoff.sweep(WEDNESDAY_10_LONDON + dt.timedelta(minutes=31))["timed_out"] == 1
    assert notifier.of("offer_closed")[-1][2] == "U0VPNRAJ01"
    third = notifier.of("offer")[2][2]
    assert third == "U0ITDESK01"  # the third VPN mentor, off hours but the best left

    accepted = handoff.accept(request.id, third)
    assert (accepted.status, accepted.owner_id, accepted.conversation_id) == ("accepted", third, "G0GROUPDM1")
    assert notifier.of("connect") == [("connect", request.id, "U0ASKER01", third, "Lee Chen", ())]  # nothing shown
    with pytest.raises(HandoffError, match="already accepted"):
        handoff.accept(request.id, third)
    with pytest.raises(HandoffError, match="Only the mentor"):
        handoff.resolve(request.id, "U0VPNPRIYA")
    resolved = handoff.resolve(request.id, third)
    assert resolved.status == "resolved" and notifier.of("resolved")
    with database.session() as session:
        outcomes = [o.outcome for o in session.scalars(select(MentorOffer).order_by(MentorOffer.id))]
    assert outcomes == ["declined", "timeout", "accepted"]


def test_after_the_last_attempt_the_request_is_escalated(database, registry, notifier):
    handoff = Handoff(database, registry, notifier, HandoffSettings(offer_minutes=5, max_attempts=2))  # 3 would fit
    request = handoff.request(asker_id="U0ASKER01", question="vpn broken again", now=WEDNESDAY_10_LONDON)
    handoff.decline(request.id, notifier.of("offer")[0][2], now=WEDNESDAY_10_LONDON)
    handoff.decline(request.id, notifier.of("offer")[1][2], now=WEDNESDAY_10_LONDON)
    assert handoff.get(request.id).status == "escalated"
    assert notifier.of("escalate")[0][2:] == (
        "no mentor accepted",
        (notifier.of("offer")[0][2], notifier.of("offer")[1][2]),  # who was tried, for the admins
    )
    assert "L&D team" in notifier.of("tell_asker")[-1][2]
    # Anyone allowed may take an escalated request; the asker may not.
    with pytest.raises(HandoffError):
        handoff.accept(request.id, "U0PAYSAM01")  # not offered, not allowed
    with pytest.raises(HandoffError, match="own question"):
        handoff.accept(request.id, "U0ASKER01", may_take_escalated=True)
    assert handoff.accept(request.id, "U0PAYSAM01", may_take_escalated=True).owner_id == "U0PAYSAM01"


def test_an_off_topic_request_is_escalated_at_once(handoff, notifier):
    request = handoff.request(asker_id="U0ASKER01", question="recommend a pizza place")
    assert handoff.get(request.id).status == "escalated"
    assert notifier.of("escalate")[0][2:] == ("nobody fits", ()) and not notifier.of("offer")


def test_a_late_accept_still_wins_while_nobody_owns_it(handoff, notifier):
    request = handoff.request(asker_id="U0ASKER01", question="vpn token invalid", now=WEDNESDAY_10_LONDON)
    handoff.sweep(WEDNESDAY_10_LONDON + dt.timedelta(minutes=31))  # Priya timed out; Raj is asked
    assert handoff.accept(request.id, "U0VPNPRIYA").owner_id == "U0VPNPRIYA"
    assert (
        "offer_closed",
        request.id,
        "U0VPNRAJ01",
        "Another mentor took this one. Thank you anyway!",
    ) in notifier.calls
    with pytest.raises(HandoffError, match="Someone else"):
        handoff.accept(request.id, "U0VPNRAJ01")


def test_only_the_asker_cancels_and_the_mentor_is_told(handoff, notifier):
    request = handoff.request(asker_id="U0ASKER01", question="vpn token invalid", now=WEDNESDAY_10_LONDON)
    with pytest.raises(HandoffError, match="Only the person who asked"):
        handoff.cancel(request.id, "U0SOMEONE1")
    handoff.accept(request.id, "U0VPNPRIYA")
    assert handoff.cancel(request.id, "U0ASKER01").status == "cancelled"
    assert notifier.of("tell_mentor")[-1][2] == "U0VPNPRIYA"
    with pytest.raises(HandoffError, match="already cancelled"):
        handoff.cancel(request.id, "U0ASKER01")


def test_asking_twice_for_the_same_answer_is_one_request(handoff, database):
    from assistant.db.models import Interaction

    with database.session() as session:
        interaction = Interaction(user_id="U0ASKER01", team_id=TEAM, surface="dm", question="vpn token",
                                  question_chars=9, answered=False, outcome="not_answered", confidence=0.1,
                                  latency_ms=5.0)  # fmt: skip
        session.add(interaction)
        session.flush()
        interaction_id = interaction.id
    handoff.request(asker_id="U0ASKER01", question="vpn token", interaction_id=interaction_id)
    with pytest.raises(HandoffError, match="already asked"):
        handoff.request(asker_id="U0ASKER01", question="vpn token", interaction_id=interaction_id)


def test_timers_survive_a_restart(database_url, embedder, mentors_file, database):
    """The deadline is in the database: a new process (new engine, new objects) acts on it."""
    first = Handoff(database, MentorRegistry(database, embedder), RecordingNotifier())
    first.registry.seed(TEAM, mentors_file)
    request = first.request(asker_id="U0ASKER01", question="vpn token invalid", now=WEDNESDAY_10_LONDON)
    database.dispose()

    restarted_db = Database(database_url)
    notifier = RecordingNotifier()
    restarted = Handoff(restarted_db, MentorRegistry(restarted_db, embedder), notifier)
    assert restarted.sweep(WEDNESDAY_10_LONDON + dt.timedelta(minutes=31))["timed_out"] == 1
    assert notifier.of("offer")[0][2] == "U0VPNRAJ01"
    assert restarted.get(request.id).tried == ("U0VPNPRIYA", "U0VPNRAJ01")
    restarted_db.dispose()


def test_follow_up_once_when_an_accepted_request_stays_open(handoff, notifier):
    request = handoff.request(asker_id="U0ASKER01", question="vpn token invalid", now=WEDNESDAY_10_LONDON)
    handoff.accept(request.id, "U0VPNPRIYA")
    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=25)
    assert handoff.sweep(later)["followed_up"] == 1
    assert handoff.sweep(later)["followed_up"] == 0
    assert notifier.of("tell_mentor")[0][2] == "U0VPNPRIYA"


@pytest.mark.parametrize("clickers", [8])
def test_exactly_one_of_many_simultaneous_accepts_wins(database_url, database, embedder, mentors_file, clickers):
    """Real concurrent transactions: every clicker has its own engine (its own connections)."""
    registry = MentorRegistry(database, embedder)
    registry.seed(TEAM, mentors_file)
    setup = Handoff(database, registry, RecordingNotifier(), HandoffSettings(max_attempts=3))
    request = setup.request(asker_id="U0ASKER01", question="vpn token invalid", now=WEDNESDAY_10_LONDON)
    setup.decline(request.id, "U0VPNPRIYA", now=WEDNESDAY_10_LONDON)  # Priya and Raj have both been offered it now
    mentors = ["U0VPNPRIYA", "U0VPNRAJ01"] * (clickers // 2)  # both click, several times each, at once
    barrier = threading.Barrier(len(mentors))
    results: list = [None] * len(mentors)

    def click(n: int, mentor: str) -> None:
        db = Database(database_url)
        handoff = Handoff(db, MentorRegistry(db, embedder), RecordingNotifier())
        barrier.wait()
        try:
            results[n] = ("won", handoff.accept(request.id, mentor).owner_id)
        except HandoffError as exc:
            results[n] = ("lost", str(exc))
        finally:
            db.dispose()

    threads = [threading.Thread(target=click, args=(n, m)) for n, m in enumerate(mentors)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    winners = [r for r in results if r and r[0] == "won"]
    assert len(winners) == 1, results
    assert all(r and r[0] == "lost" for r in results if r is not winners[0])
    with database.session() as session:
        row = session.get(MentorRequest, request.id)
        assert row.status == "accepted" and row.owner_id == winners[0][1]
        accepted = session.scalars(select(MentorOffer).where(MentorOffer.outcome == "accepted")).all()
        assert len(accepted) == 1


# -- drafts ---------------------------------------------------------------------------------------------


def test_a_resolved_answer_becomes_a_draft_then_content(handoff, database, tmp_path):
    from indexer.sources import discover

    content_dir = tmp_path / "content"
    content_dir.mkdir()
    drafts = Drafts(database)
    request = handoff.request(asker_id="U0ASKER01", question="how do i unlock a vpn token", now=WEDNESDAY_10_LONDON)
    handoff.accept(request.id, "U0VPNPRIYA")
    with pytest.raises(HandoffError, match="Only the mentor"):
        drafts.save(TEAM, author_id="U0VPNRAJ01", title="x title", body="the answer", request_id=request.id)
    draft = drafts.save(TEAM, author_id="U0VPNPRIYA", title="Unlock a VPN token",
                        body="1. Open the portal.\n2. Unlock.", request_id=request.id)  # fmt: skip
    rejected = drafts.save(TEAM, author_id="U0VPNPRIYA", title="Not this one", body="Something else.")
    assert [d.id for d in drafts.pending(TEAM)] == [draft.id, rejected.id]
    assert drafts.write_approved(content_dir) == []  # a draft waits in the database

    approved = drafts.decide(TEAM, draft.id, "U0ADMIN001", approve=True)
    drafts.decide(TEAM, rejected.id, "U0ADMIN001", approve=False)
    assert approved.status == "approved" and approved.path.startswith("mentor-answers/")
    assert drafts.write_approved(content_dir) == [approved.path]  # by the host that indexes, once
    assert drafts.write_approved(content_dir) == []
    final = (content_dir / approved.path).read_text()
    assert "status:" not in final and "type: job-aid" in final and "owner: U0VPNPRIYA" in final
    assert "how do i unlock a vpn token" in final  # where it came from
    assert [s.path for s in discover(content_dir)[0]] == [approved.path]
    with pytest.raises(HandoffError, match="already approved"):
        drafts.decide(TEAM, draft.id, "U0ADMIN001", approve=False)
