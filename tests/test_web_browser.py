"""The admin pages in a real browser: headless Chromium (Debian's package, scripts/install-browser) driven by
Selenium, against `moment serve`'s WSGI app on 127.0.0.1, signing in through the Slack stand-in's OpenID
Connect pages. Every page is opened and saved as a screenshot (under the test's tmp dir), a gap is given to a
content owner (who is told by DM through the Slack stand-in), a CSV is downloaded by clicking its link, and the
accessibility basics are checked: one h1 and no skipped heading level, a label on every form field, the
navigation reachable from the keyboard, and a contrast of at least 4.5:1 for every piece of text."""

from __future__ import annotations

import csv
import itertools
import shutil
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from assistant.db.models import utcnow
from tests.insights_data import (
    COURSE_TITLE,
    GAP_SCRIPT,
    OTHER_GAP,
    OTHER_TEAM_QUESTION,
    SCRIPT_QUESTION,
    seed_courses,
    seed_gaps,
    seed_workspace,
)
from tests.web_signin import ADMIN, web_env

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER), reason="no chromium/chromedriver (scripts/install-browser)"),
]
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1280,1400"]  # fmt: skip
PAGES = {
    "Overview": "/admin/",
    "Gaps": "/admin/gaps",
    "Content": "/admin/content",
    "Questions": "/admin/questions",
    "Mentors": "/admin/mentors",
    "Courses": "/admin/courses",
}

# Every element with text of its own: its colour and the first opaque background behind it (rgba strings).
TEXT_COLOURS = """
const out = [];
const opaque = (el) => { for (; el; el = el.parentElement) { const c = getComputedStyle(el).backgroundColor;
  if (!c.endsWith(', 0)') && c !== 'transparent') return c; } return 'rgb(255, 255, 255)'; };
for (const el of document.querySelectorAll('body *')) {
  if (el.closest('svg') || el.offsetParent === null) continue;
  const own = [...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim());
  if (own) out.push([el.tagName, el.textContent.trim().slice(0, 40), getComputedStyle(el).color, opaque(el)]);
}
return out;
"""


def _luminance(rgb: str) -> float:
    values = [float(v) / 255 for v in rgb[rgb.index("(") + 1 : rgb.index(")")].split(",")[:3]]
    linear = [v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4 for v in values]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(a: str, b: str) -> float:
    """WCAG 2 contrast ratio of two CSS colours."""
    high, low = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


@pytest.fixture
def browser(tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    downloads = tmp_path / "downloads"
    downloads.mkdir()
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in [*FLAGS, f"--user-data-dir={tmp_path / 'profile'}"]:
        options.add_argument(flag)
    options.add_experimental_option(
        "prefs", {"download.default_directory": str(downloads), "download.prompt_for_download": False}
    )
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.execute_cdp_cmd("Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    driver.downloads = downloads
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def server(moment_app, database_url, slack_api, embedder):
    app = moment_app(database_url, env=web_env(slack_api))
    engine = create_engine(database_url)
    with Session(engine) as session, session.begin():
        seed_workspace(session, "default", utcnow())
        seed_courses(session, "default", utcnow())
    engine.dispose()
    app.gap_ids = seed_gaps(database_url, embedder)
    return app


def check_accessibility(driver, name: str) -> None:
    from selenium.webdriver.common.by import By

    levels = [int(h.tag_name[1]) for h in driver.find_elements(By.CSS_SELECTOR, "h1, h2, h3, h4, h5, h6")]
    assert levels.count(1) == 1 and levels[0] == 1, (name, levels)
    assert all(b - a <= 1 for a, b in itertools.pairwise(levels)), (name, levels)
    for field in driver.find_elements(By.CSS_SELECTOR, "input:not([type=hidden]), select, textarea"):
        labelled = field.get_attribute("aria-label") or driver.find_elements(
            By.CSS_SELECTOR, f"label[for='{field.get_attribute('id')}']"
        )
        assert labelled, (name, field.get_attribute("outerHTML"))
    for tag, text, colour, background in driver.execute_script(TEXT_COLOURS):
        assert contrast(colour, background) >= 4.5, (name, tag, text, colour, background)


def test_an_admin_signs_in_with_slack_and_uses_every_page(server, slack_api, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    shots = tmp_path / "screenshots"
    shots.mkdir()
    slack_api.openid.sign_in_as(ADMIN, team_id="T0MOMENT1", name="Ada Admin")
    browser.get(server.url + "/admin/questions")  # not signed in: sent to the sign-in page
    assert browser.current_url.endswith("/admin/signin")
    browser.save_screenshot(str(shots / "0-signin.png"))
    check_accessibility(browser, "signin")
    browser.find_element(By.LINK_TEXT, "Sign in with Slack").click()  # to Slack's authorize page and back
    assert browser.current_url == server.url + "/admin/"
    assert "Ada Admin" in browser.find_element(By.CSS_SELECTOR, "header").text

    for n, (name, path) in enumerate(PAGES.items(), start=1):
        browser.find_element(By.LINK_TEXT, name).click()
        assert browser.current_url.startswith(server.url + path)
        assert browser.find_element(By.TAG_NAME, "h1").text == name
        assert OTHER_TEAM_QUESTION not in browser.page_source and OTHER_GAP not in browser.page_source
        browser.save_screenshot(str(shots / f"{n}-{name.lower()}.png"))
        check_accessibility(browser, name)

    browser.find_element(By.LINK_TEXT, "Questions").click()
    cell = browser.find_element(By.XPATH, "//td[contains(., 'pwned')]")
    assert cell.text == SCRIPT_QUESTION  # shown as text, never run
    assert browser.execute_script("return window.pwned === undefined")

    # The keyboard: Tab from the top reaches the skip link, then the navigation, in order.
    body = browser.find_element(By.TAG_NAME, "body")
    body.send_keys(Keys.TAB)
    assert browser.switch_to.active_element.text == "Skip to the content"
    reached = []
    for _ in PAGES:
        browser.switch_to.active_element.send_keys(Keys.TAB)
        reached.append(browser.switch_to.active_element.text)
    assert reached == list(PAGES)
    browser.switch_to.active_element.send_keys(Keys.ENTER)  # the last one reached: Courses
    assert browser.current_url.startswith(server.url + "/admin/courses")
    assert browser.find_element(By.LINK_TEXT, COURSE_TITLE).get_attribute("href") == "https://lms.example/c/1"

    # A gap given to a content owner, from its page, by the keyboard's Enter in the owner field.
    browser.find_element(By.LINK_TEXT, "Gaps").click()
    assert browser.find_element(By.XPATH, "//li[contains(., 'alert(')]").text == GAP_SCRIPT  # text, never run
    browser.find_element(By.CSS_SELECTOR, f"a[href^='/admin/gaps/{server.gap_ids['pizza']}']").click()
    check_accessibility(browser, "gap")
    slack_api.clear()
    owner = browser.find_element(By.ID, "owner")
    owner.send_keys("U0OWNER001")
    owner.send_keys(Keys.ENTER)
    notice = browser.find_element(By.CSS_SELECTOR, "[role=status]").text
    assert "assigned to U0OWNER001" in notice and "told them by DM" in notice
    assert slack_api.wait_for("chat.postMessage").params["channel"]
    assert slack_api.calls("conversations.open")[0].params["users"] == "U0OWNER001"
    assert browser.execute_script("return window.pwned === undefined")
    browser.save_screenshot(str(shots / "7-gap-assigned.png"))
    check_accessibility(browser, "gap assigned")

    # A CSV downloaded by its link.
    browser.find_element(By.LINK_TEXT, "Questions").click()
    browser.find_element(By.LINK_TEXT, "Download CSV").click()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not list(browser.downloads.glob("moment-questions-*.csv")):
        time.sleep(0.2)
    (download,) = browser.downloads.glob("moment-questions-*.csv")
    rows = list(csv.DictReader(download.open(encoding="utf-8")))
    assert SCRIPT_QUESTION in {r["question"] for r in rows} and len(rows) == 9  # 6 and the 3 of the pizza gap

    browser.find_element(By.XPATH, "//button[.='Sign out']").click()
    assert browser.current_url.endswith("/admin/signin")
    print(f"screenshots: {shots}")
    assert sorted(p.name for p in Path(shots).iterdir()) == [
        "0-signin.png", "1-overview.png", "2-gaps.png", "3-content.png", "4-questions.png", "5-mentors.png",
        "6-courses.png", "7-gap-assigned.png",
    ]  # fmt: skip
