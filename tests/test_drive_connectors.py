"""The `sharepoint` and `gdrive` kinds against stand-ins on loopback that answer Microsoft Graph and the Google
Drive API as documented (sourcestub/graph.py, sourcestub/gdrive.py): paging, delta links and change tokens,
deletions, moves, sharing changes, expired tokens and cursors, rate limits, and the files real drives hold
that Moment cannot read. No model, no database: the connectors alone."""

from __future__ import annotations

import json

import pytest

from indexer.connectors import SourceError, SourceUnavailable, open_connector
from sourcestub.gdrive import RATE_LIMITED, DriveFile, DriveStub
from sourcestub.graph import CLIENT_SECRET, GraphStub

GRAPH_SECRETS = {"client_secret": CLIENT_SECRET}
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4


def by_kind(changes):
    items = {c.id: c.item for c in changes if c.item is not None}
    errors = {c.id: c.error for c in changes if c.error}
    deleted = sorted(c.id for c in changes if c.deleted)
    return items, errors, deleted


# -- SharePoint / OneDrive (Microsoft Graph) ------------------------------------------------------------


@pytest.fixture
def graph():
    with GraphStub(page_size=4) as stub:
        stub.add_guidebook(6)
        stub.groups["g-hr"] = ("HR team", ["chen@contoso.com", "dora@contoso.com"])
        stub.add_file("pay", "Salary bands.html", "<h1>Salary bands</h1><p>Band B3 runs from 61,000 to 74,000.</p>")
        stub.share("pay", users=["ana@contoso.com", "ben@contoso.com"], groups=["g-hr"])
        yield stub


def sharepoint(stub, cursor=None, secrets=GRAPH_SECRETS, **options):
    connector = open_connector("sharepoint", stub.site_url, stub.options(max_wait=5, **options), secrets)
    return connector, list(connector.changes(cursor))


def test_sharepoint_first_sync_pages_through_the_delta_and_reads_each_file_with_its_link_editor_and_readers(graph):
    connector, changes = sharepoint(graph)
    items, errors, deleted = by_kind(changes)
    assert len(items) == 7 and not errors and not deleted
    assert len(graph.calls("/root/delta")) >= 3  # @odata.nextLink followed, 4 items a page
    assert connector.cursor["delta"].startswith(graph.graph_url) and "token=" in connector.cursor["delta"]
    culture = items["gb0003"]
    assert culture.link == f"{graph.site_url}/Shared%20Documents/Guidebook/about-civicactions/culture.html"
    assert culture.owner == "ana.lopez@contoso.com" and culture.modified.year == 2026
    assert culture.access.public  # shared with "Everyone except external users"
    text = culture.content.decode("utf-8")
    assert 'id="culture"' in text and "CivicActions culture" in text
    assert culture.title == "Culture"
    # People named (by e-mail, or by id through /users/{id}) and the group's members; the owners' site
    # group has no member list in Graph, so nobody from it.
    assert items["pay"].access.readers() == (
        "ana@contoso.com",
        "ben@contoso.com",
        "chen@contoso.com",
        "dora@contoso.com",
    )
    assert graph.downloads_with_token == 0  # the pre-authenticated download URL never gets the token
    graph.add_file("vpn", "VPN token.docx", "Reset a VPN token: hold the button for 5 seconds.", mime=DOCX)
    word = by_kind(list(open_connector("sharepoint", graph.site_url, graph.options(), GRAPH_SECRETS).changes(None)))
    assert word[0]["vpn"].media_type == "application/pdf" and word[0]["vpn"].content.startswith(b"%PDF")
    assert graph.calls("/items/vpn/content")[-1].query.get("format") == "pdf"  # converted by Graph
    assert connector.api.tokens_fetched == 1


def test_sharepoint_edits_deletions_moves_and_sharing_changes_come_back_through_the_delta_link(graph):
    first, _ = sharepoint(graph, folder="Guidebook")
    assert "pay" not in first.cursor["items"]  # outside the folder
    graph.edit("gb0001", "<h1>Background</h1><p>Founded in 2004 in Berkeley.</p>")
    graph.delete("gb0002")
    graph.share("gb0004", users=["ana@contoso.com"])
    graph.move("gb0000", "root")  # moved out of the folder
    downloads = len(graph.calls("/download/"))
    second, changes = sharepoint(graph, first.cursor, folder="Guidebook")
    items, errors, deleted = by_kind(changes)
    assert sorted(items) == ["gb0001", "gb0004"] and not errors
    assert b"Founded in 2004" in items["gb0001"].content
    assert items["gb0004"].access.readers() == ("ana@contoso.com",)
    assert deleted == ["gb0000", "gb0002"]
    assert len(graph.calls("/download/")) - downloads == 2  # only what changed is downloaded
    # A folder deleted: delta names the folder only; what was under it goes too.
    graph.delete("guidebook-about-civicactions")
    _third, changes = sharepoint(graph, second.cursor, folder="Guidebook")
    assert by_kind(changes)[2] == ["gb0001", "gb0003", "gb0004", "gb0005"]


def test_sharepoint_an_expired_delta_link_410_lists_everything_again_and_fetches_only_what_changed(graph):
    first, _ = sharepoint(graph)
    graph.edit("gb0003", "<h1>Culture</h1><p>Transparency first.</p>")
    graph.delete("gb0005")
    graph.expire_deltas()
    downloads = len(graph.calls("/download/"))
    second, changes = sharepoint(graph, first.cursor)
    items, _errors, deleted = by_kind(changes)
    assert any("410" in note for note in second.notes)
    assert sorted(items) == ["gb0003"] and deleted == ["gb0005"]
    assert len(graph.calls("/download/")) - downloads == 1
    assert second.cursor["delta"] != first.cursor["delta"]


def test_sharepoint_an_expired_token_is_renewed_and_a_bad_secret_fails_the_source_without_showing_it(graph):
    connector = open_connector("sharepoint", graph.site_url, graph.options(), GRAPH_SECRETS)
    changes = connector.changes(None)
    next(changes)
    graph.expire_tokens()  # mid-sync
    assert len(by_kind(list(changes))[0]) == 6
    assert connector.api.tokens_fetched == 2
    with pytest.raises(SourceUnavailable, match="client secret may have expired") as raised:
        sharepoint(graph, secrets={"client_secret": "an-old-secret"})
    assert "an-old-secret" not in str(raised.value)
    with pytest.raises(SourceUnavailable, match="tenant=TENANT-ID"):
        sharepoint(graph, secrets={})


def test_sharepoint_429_and_503_with_retry_after_are_waited_out_and_a_long_wait_fails_the_source(graph):
    graph.fail_next(429, {"Retry-After": "1"})
    graph.fail_next(503, {"Retry-After": "1"})
    connector, changes = sharepoint(graph)
    assert len(by_kind(changes)[0]) == 7 and connector.api.waited == 2.0
    graph.fail_next(429, {"Retry-After": "120"})
    with pytest.raises(SourceUnavailable, match="429") as raised:
        sharepoint(graph)
    assert raised.value.retry_after == 120


def test_sharepoint_huge_binary_and_unreadable_files_each_fail_alone_with_a_reason(graph):
    graph.add_file("big", "Handbook.html", "<p>" + "word " * 60_000 + "</p>")
    graph.add_file("fake", "notes.txt", PNG)
    graph.add_file("pic", "photo.png", PNG, mime="image/png")
    graph.add_file(
        "broken", "Broken.html", "<h1>Kit<h2>Laptop kit</h2><p>Every starter gets a privacy screen<p>x</div>"
    )
    connector, changes = sharepoint(graph, max_bytes=100_000)
    items, errors, _ = by_kind(changes)
    assert "It is 0.286 MB; the limit is 0.0954 MB" in errors["big"] and "last good copy stays" in errors["big"]
    assert "binary data" in errors["fake"]
    assert "pic" not in items and "pic" not in errors and any("1 files of kinds" in n for n in connector.notes)
    assert b"privacy screen" in items["broken"].content and len(items) == 8
    assert "big" not in connector.cursor["items"]  # tried again at the next change


def test_sharepoint_targets_a_drive_a_library_by_name_or_refuses_with_what_to_write(graph):
    _, changes = sharepoint(graph, library="Documents")
    assert len(by_kind(changes)[0]) == 7
    connector = open_connector("sharepoint", "drive:b!hr-documents", graph.options(), GRAPH_SECRETS)
    assert len(by_kind(list(connector.changes(None)))[0]) == 7
    graph.children_first = True
    _, changes = sharepoint(graph, folder="Guidebook")
    assert len(by_kind(changes)[0]) == 6  # files named before their folders still count as inside
    with pytest.raises(SourceError, match="no document library called 'Policies'"):
        sharepoint(graph, library="Policies")
    with pytest.raises(SourceError, match="not a SharePoint library"):
        open_connector("sharepoint", "contoso", {})
    assert sorted(connector.ids()) == sorted(connector.cursor["items"])


# -- Google Drive ---------------------------------------------------------------------------------------


@pytest.fixture
def drive(tmp_path):
    with DriveStub(page_size=4) as stub:
        stub.add_guidebook(6)
        stub.add_doc("pay", "Salary bands", "# Salary bands\n\nBand B3 runs from 61,000 to 74,000.")
        stub.share("pay", users=["ana@contoso.com"], groups=["hr@contoso.com"])
        key = tmp_path / "key.json"
        key.write_text(json.dumps(stub.service_account()))
        stub.key_file = key
        yield stub


def gdrive(stub, cursor=None, **options):
    options = {"drive_url": stub.base, "service_account_file": str(stub.key_file), "max_wait": 5, **options}
    connector = open_connector("gdrive", stub.folder_url, options, {})
    return connector, list(connector.changes(cursor))


def test_gdrive_first_sync_lists_the_folder_tree_exports_docs_and_keeps_the_start_token(drive):
    connector, changes = gdrive(drive)
    items, errors, deleted = by_kind(changes)
    assert len(items) == 7 and not errors and not deleted
    assert [r.path for r in drive.calls("/drive/v3/changes")] == ["/drive/v3/changes/startPageToken"]
    assert connector.cursor["page_token"] == str(len(drive.log) + 1)  # asked before listing: nothing missed
    culture = items["doc0003"]
    assert culture.link == "https://docs.google.com/document/d/doc0003/edit" and culture.title == "Culture"
    assert culture.owner == "ana.lopez@contoso.com" and culture.modified.year == 2026
    assert culture.access.public  # shared with everyone at contoso.com
    drive.share("doc0004", users=["ben@contoso.com"])
    drive.files["doc0004"].permissions.append({"type": "domain", "role": "reader", "domain": "partner.example"})
    partner = open_connector(
        "gdrive", drive.folder_url, {"drive_url": drive.base, "service_account_file": str(drive.key_file)}, {}
    )
    assert partner.access_of("doc0004").readers() == ("ana.lopez@contoso.com", "ben@contoso.com")  # not public
    assert (
        open_connector(
            "gdrive",
            drive.folder_url,
            {"drive_url": drive.base, "service_account_file": str(drive.key_file), "domains": "partner.example"},
            {},
        )
        .access_of("doc0004")
        .public
    )
    assert 'id="culture"' in culture.content.decode("utf-8")
    assert items["pay"].access.readers() == ("ana.lopez@contoso.com", "ana@contoso.com")  # the group: unknown
    assert any("hr@contoso.com" in note for note in connector.notes)
    assert connector.api.tokens_fetched == 1  # the JWT bearer grant, signed RS256 and checked by the stand-in
    whole = open_connector("gdrive", "root", {"drive_url": drive.base, "service_account_file": str(drive.key_file)}, {})
    assert len(by_kind(list(whole.changes(None)))[0]) == 7  # My Drive: `root` resolved to its real id
    _, markdown = gdrive(drive, export="text/markdown")
    assert by_kind(markdown)[0]["doc0003"].content.startswith(b"# Culture")


def test_gdrive_changes_edits_trash_removals_moves_and_sharing_through_the_changes_token(drive):
    first, _ = gdrive(drive)
    drive.edit("doc0001", "# Background\n\nFounded in 2004 in Berkeley.")
    drive.trash("doc0002")
    drive.remove("doc0005")
    drive.share("doc0004", users=["ben@contoso.com"])
    drive.files["doc0000"].parents = ["elsewhere"]
    drive.edit("doc0000", drive.files["doc0000"].content)  # moved out of the folder
    drive.add(DriveFile("outside", "Outside", ["elsewhere"], b"# Not ours"))
    second, changes = gdrive(drive, first.cursor)
    items, errors, deleted = by_kind(changes)
    assert sorted(items) == ["doc0001", "doc0004"] and not errors
    assert b"Founded in 2004" in items["doc0001"].content
    assert items["doc0004"].access.readers() == ("ana.lopez@contoso.com", "ben@contoso.com")
    assert deleted == ["doc0000", "doc0002", "doc0005"]
    assert len(drive.calls("/drive/v3/changes")) >= 2  # nextPageToken followed to newStartPageToken
    assert int(second.cursor["page_token"]) > int(first.cursor["page_token"])
    # A folder trashed: what was under it goes too.
    drive.trash("folder-about-civicactions")
    _third, changes = gdrive(drive, second.cursor)
    assert by_kind(changes)[2] == ["doc0001", "doc0003", "doc0004"]


def test_gdrive_a_refused_changes_token_lists_again_and_fetches_only_what_changed(drive):
    first, _ = gdrive(drive)
    drive.edit("doc0003", "# Culture\n\nTransparency first.")
    drive.expire_page_tokens()
    exports = len(drive.calls("/export"))
    second, changes = gdrive(drive, first.cursor)
    assert sorted(by_kind(changes)[0]) == ["doc0003"]
    assert len(drive.calls("/export")) - exports == 1
    assert any("listed again" in note for note in second.notes)


def test_gdrive_rate_limits_are_backed_off_token_expiry_renewed_and_a_wrong_key_fails_the_source(drive, tmp_path):
    drive.fail_next(403, body=RATE_LIMITED)
    drive.fail_next(429)
    connector, changes = gdrive(drive)
    assert len(by_kind(changes)[0]) == 7 and connector.api.waited == 3.0  # 1 s, then 2 s
    connector = open_connector(
        "gdrive", drive.folder_url, {"drive_url": drive.base, "service_account_file": str(drive.key_file)}, {}
    )
    changes = connector.changes(None)
    next(changes)
    drive.expire_tokens()
    assert len(list(changes)) == 6 and connector.api.tokens_fetched == 2
    wrong = dict(drive.service_account(), private_key=new_private_key())  # a key Google does not know
    (tmp_path / "wrong.json").write_text(json.dumps(wrong))
    with pytest.raises(SourceUnavailable, match="refused the service account"):
        gdrive(drive, service_account_file=str(tmp_path / "wrong.json"))
    with pytest.raises(SourceError, match="not a Drive folder"):
        open_connector("gdrive", "https://drive.google.com/drive/folders/", {})


def new_private_key() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def test_gdrive_huge_binary_and_unreadable_files_each_fail_alone_with_a_reason(drive):
    drive.add(DriveFile("big", "Handbook.pdf", ["folder-ld"], b"%PDF-1.4 " + b"x" * 200_000, "application/pdf"))
    drive.add(DriveFile("fake", "notes.txt", ["folder-ld"], PNG, "text/plain"))
    drive.add(DriveFile("sheet", "Budget", ["folder-ld"], b"", "application/vnd.google-apps.spreadsheet"))
    connector, changes = gdrive(drive, max_bytes=100_000)
    items, errors, _ = by_kind(changes)
    assert "the limit is" in errors["big"] and "binary data" in errors["fake"]
    assert "sheet" not in items and any("1 files of kinds" in note for note in connector.notes)
    assert len(items) == 7
