"""Stand-ins for the places content sources read, on 127.0.0.1, for tests and benchmarks (like slackstub/
for Slack): `sourcestub.web.WebSite` (an intranet serving the CivicActions Guidebook) and
`sourcestub.confluence.ConfluenceStub` (Confluence Cloud's REST v1 as documented), `sourcestub.lms360.Lms360Stub`
(360Learning's API v2 paths, for the course catalogue)."""
