"""The web portal in a real browser: Debian's Chromium driven by Playwright.

A researcher finds a table in the catalog and applies; the chair assigns two
reviewers, they vote and the chair approves; the researcher's Flight SQL
session then sees the data; an output release is checked and downloaded;
an operator finds all of it on the audit page. Committee pages refuse
everyone else, also by direct URL, and posts without the CSRF token change
nothing. Every page is saved as a 1280×800 screenshot under
$ENCLAVE_SCREENSHOTS (default: portal-screenshots/ in the repository;
whole pages with ENCLAVE_SCREENSHOTS_FULL=1).
"""

from __future__ import annotations

import csv
import io
import os
import re
import subprocess
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from conftest import FULL_PERIOD, Project, Release, Server, assert_within_ledger_noise, password, query
from test_ledger import answer_and_metadata, far_pair, near_pairs, repeat_of

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = Path(os.environ.get("ENCLAVE_SCREENSHOTS", ROOT / "portal-screenshots"))
# ENCLAVE_SCREENSHOTS_FULL=1 saves whole pages (1280 wide, as long as the
# page) instead of the 1280×800 window, to look below the fold.
FULL_PAGES = os.environ.get("ENCLAVE_SCREENSHOTS_FULL") == "1"
VIEWPORT = {"width": 1280, "height": 800}
# As the machine's probe starts Chromium: no background traffic, no sandbox
# (tests run as root in CI), a fresh profile per launch.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]

PORTAL_USERS = {
    "ana": "researcher",
    "carl": "researcher",  # never in a project; the non-reviewer
    "rev1": "reviewer",
    "rev2": "reviewer",
    "chair": "chair",
    "otto": "operator",
    "root": "admin",
}
PROJECT_ID = "portal-diag"
COLUMNS = ["person_id", "sex", "age_band", "service_month", "icd10"]
STUDY_SQL = ("SELECT age_band, COUNT(DISTINCT person_id) AS persons FROM ndb.diagnoses "
             "GROUP BY age_band ORDER BY age_band")


@pytest.fixture(scope="module")
def portal(start_server) -> Server:
    return start_server("portal", PORTAL_USERS, {})


@pytest.fixture(scope="module")
def browser() -> Browser:
    chromium = subprocess.run([str(ROOT / "scripts" / "browser-env.sh")], capture_output=True, text=True,
                              check=True).stdout.strip().splitlines()[-1]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def visitor(browser: Browser, server: Server) -> BrowserContext:
    return browser.new_context(base_url=server.portal_url, viewport=VIEWPORT, accept_downloads=True)


def signed_in(browser: Browser, server: Server, user: str) -> Page:
    page = visitor(browser, server).new_page()
    page.goto("/login")
    page.fill("#user", user)
    page.fill("#password", password(user))
    page.click("form.narrow button[type=submit]")
    expect(page.locator(".account .who")).to_contain_text(user)
    return page


# Form controls without a name a screen reader can announce: no <label>,
# no aria-label, not inside a labelling <label>.
UNLABELLED_CONTROLS = """
[...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
  .filter(c => !(c.labels && c.labels.length) && !c.getAttribute('aria-label'))
  .map(c => c.name || c.id)
"""


# The portal's translation table: every Japanese/English pair of its source
# (`lang.t("…", "…")` where a text is used, `"code" => ("…", "…")` in the
# code masters of i18n.rs).
PORTAL_SOURCE = ROOT / "services" / "portal" / "src"
_LITERAL = r'"((?:[^"\\]|\\.)*)"'
TRANSLATION_PAIRS = re.compile(rf"(?:\.t\(|=>\s*\()\s*{_LITERAL}\s*,\s*{_LITERAL}\s*,?\s*\)")


def english_of_the_translation_table() -> set[str]:
    """The English side of every pair that differs from its Japanese."""
    texts = set()
    for source in PORTAL_SOURCE.glob("*.rs"):
        for ja, en in TRANSLATION_PAIRS.findall(source.read_text(encoding="utf-8")):
            en = en.replace('\\"', '"').strip(" .:;,")
            if en != ja and re.search("[A-Za-z]{2}", en):
                texts.add(en)
    return texts


ENGLISH = english_of_the_translation_table()

# The page's own visible words (text, placeholders, labels, button values),
# leaving out what is not the portal's prose: SQL and code, what people
# wrote (notes, marked translate="no"), and passages marked as another
# language (an English-only detail of an error or of the automatic check).
VISIBLE_PROSE = r"""
(() => {
  const skip = 'code, pre, kbd, samp, script, style, textarea, [translate="no"], [lang]:not([lang="ja"])';
  const out = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const element = walker.currentNode.parentElement;
    if (element && !element.closest(skip) && element.checkVisibility()) out.push(walker.currentNode.textContent);
  }
  for (const element of document.querySelectorAll('[placeholder], [aria-label], [title], input[type=submit]')) {
    if (element.closest(skip)) continue;
    for (const name of ['placeholder', 'aria-label', 'title', 'value']) {
      if (name !== 'value' || element.type === 'submit') out.push(element.getAttribute(name) || '');
    }
  }
  out.push(document.title);
  return out.join('\n');
})()
"""


def english_on_a_japanese_page(page: Page) -> list[str]:
    """English texts of the translation table that a Japanese page shows."""
    prose = page.evaluate(VISIBLE_PROSE)
    return sorted(en for en in ENGLISH if re.search(rf"(?<![A-Za-z]){re.escape(en)}(?![A-Za-z])", prose))


def shot(page: Page, name: str) -> None:
    """Saves the page as seen at 1280×800; checks nothing overflows sideways,
    the page names its language, every form control has a label, and a
    Japanese page shows none of the translation table's English."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=FULL_PAGES)
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"{name}: the page is {overflow}px wider than the window"
    lang = page.evaluate("document.documentElement.lang")
    assert lang in ("ja", "en"), name
    assert page.evaluate(UNLABELLED_CONTROLS) == [], name
    if lang == "ja":
        assert english_on_a_japanese_page(page) == [], name


def status_of(page: Page) -> str:
    return page.locator("dl.facts .badge").first.inner_text()


def test_apply_review_approve_query_release_and_audit(portal: Server, browser: Browser, release: Release):
    # A visitor finds the diagnoses table by a Japanese keyword.
    anonymous = visitor(browser, portal).new_page()
    anonymous.goto("/")
    shot(anonymous, "01-home")
    anonymous.goto("/catalog")
    shot(anonymous, "02-catalog")
    anonymous.fill("#q", "傷病名")
    anonymous.click("form.search button")
    expect(anonymous.locator("table.list a", has_text="ndb.diagnoses")).to_be_visible()
    anonymous.click("table.list a >> text=ndb.diagnoses")
    expect(anonymous.locator("h1")).to_have_text("ndb.diagnoses")
    expect(anonymous.locator("table.columns")).to_contain_text("icd10")
    shot(anonymous, "03-catalog-table")

    # Applying asks the researcher to sign in first, then returns to the form.
    anonymous.click("a.button[href^='/applications/new']")
    assert "/login?next=" in anonymous.url
    shot(anonymous, "22-login")
    anonymous.fill("#user", "ana")
    anonymous.fill("#password", password("ana"))
    anonymous.click("form.narrow button[type=submit]")
    ana = anonymous
    assert ana.url.endswith("/applications/new?table=ndb.diagnoses"), ana.url
    expect(ana.locator("details.table-pick[open] summary")).to_contain_text("ndb.diagnoses")

    # The researcher applies for five of its columns and submits.
    ana.fill("#project_id", PROJECT_ID)
    ana.fill("#title", "年齢階級別の傷病")
    ana.fill("#purpose", "Describe diagnoses by age band.")
    ana.fill("#public_interest", "Chronic disease policy.")
    ana.fill("#planned_outputs", "Tables of counts by age band.")
    ana.fill("#planned_bring_ins", "ICD-10 code list of chronic diseases.")
    ana.fill("#security_measures", "Analysis only from the university's locked enclave room.")
    ana.check("#no_matching_pledge")
    ana.fill("#members", "ana: Test University")
    ana.fill("#period_first", FULL_PERIOD[0])
    ana.fill("#period_last", FULL_PERIOD[1])
    ana.fill("#valid_until", "2099-12-31")
    ana.select_option("#rounding", "none")
    ana.fill("#fresh_values", "20000")
    for box in ana.locator("input[name=column]").all():
        table, column = box.get_attribute("value").split("/")
        box.set_checked(table == "ndb.diagnoses" and column in COLUMNS)
    shot(ana, "04-application-form")
    ana.click("form.proposal > button[type=submit]")
    expect(ana.locator("h1")).to_contain_text("年齢階級別の傷病")
    assert status_of(ana) == "下書き"
    application_url = ana.url
    application_id = application_url.rstrip("/").rsplit("/", 1)[-1]
    ana.click("form[action$='/submit'] button")
    assert status_of(ana) == "提出済み"
    shot(ana, "05-application-submitted")
    ana.goto("/applications")
    expect(ana.locator("table.list")).to_contain_text("年齢階級別の傷病")
    shot(ana, "23-applications")

    # The chair assigns two reviewers; both vote; the chair approves.
    chair = signed_in(browser, portal, "chair")
    chair.goto("/review")
    expect(chair.locator("table.list").first).to_contain_text("年齢階級別の傷病")
    shot(chair, "06-review-queue")
    chair.click(f"a[href='/review/applications/{application_id}'] >> nth=0")
    expect(chair.locator("tr.requested")).to_have_count(len(COLUMNS))
    for reviewer in ("rev1", "rev2"):
        chair.check(f"input[name=reviewer][value={reviewer}]")
    chair.click("form[action$='/assign'] button")
    assert status_of(chair) == "審査中"
    # Before the votes: no quorum, said so; nothing preselected; no decision.
    expect(chair.locator("p.no-quorum")).to_contain_text("2")
    expect(chair.locator("form[action$='/decide'] button")).to_be_disabled()
    assert chair.locator("#decision").input_value() == ""
    for name in ("rev1", "rev2"):
        reviewer = signed_in(browser, portal, name)
        reviewer.goto(f"/review/applications/{application_id}")
        reviewer.check("input[name=choice][value=approve]")
        reviewer.fill("#opinion", "Proportionate to the purpose.")
        if name == "rev2":
            shot(reviewer, "07-review-vote")
        reviewer.click("form[action$='/vote'] button")
        expect(reviewer.locator("section.committee")).to_contain_text("Proportionate to the purpose.")
    chair.reload()
    expect(chair.locator("p.no-quorum")).to_have_count(0)
    expect(chair.locator("section.committee p.quorum")).to_contain_text("2 / ")
    chair.select_option("#decision", "approve")
    chair.fill("#note", "Approved at the December meeting.")
    shot(chair, "08-review-decide")
    chair.click("form[action$='/decide'] button")
    assert status_of(chair) == "承認"

    # The researcher's Flight SQL session now sees the granted data.
    ana.goto(application_url)
    assert status_of(ana) == "承認"
    expect(ana.locator(".fresh-value-budget")).to_have_text("20000")
    project = Project(PROJECT_ID, ("ana",), grants=(f"ndb.diagnoses:{','.join(COLUMNS)}",),
                      period=FULL_PERIOD, rounding=None)
    with portal.connect("ana", PROJECT_ID) as conn:
        answered = query(conn, STUDY_SQL)
    assert answered.num_rows > 0
    # An approved project is protected by the release ledger: counts of
    # persons carry its sticky noise.
    expected = release.expected(STUDY_SQL, project)
    answered_rows = [tuple(row.values()) for row in answered.to_pylist()]
    assert_within_ledger_noise(answered_rows, expected)

    # An output release: checked automatically, approved by a reviewer, downloaded.
    ana.fill("#output-title", "Persons by age band")
    ana.fill("#output-sql", STUDY_SQL)
    ana.click("section.outputs form button")
    expect(ana.locator("section.findings")).to_have_class("findings passed")
    # The check names its query (a ledger release it makes is listed by it).
    expect(ana.locator("section.findings")).to_contain_text("(query q-")
    output_url = ana.url
    output_id = output_url.rsplit("/", 1)[-1]
    rev1 = signed_in(browser, portal, "rev1")
    rev1.goto(f"/review/outputs/{output_id}")
    rev1.check("input[name=approve][value=yes]")
    rev1.fill("#review-note", "No small cells.")
    shot(rev1, "09-output-check")
    rev1.click("form.panel button")
    assert status_of(rev1) == "承認"
    ana.goto(output_url)
    with ana.expect_download() as download:
        ana.click("a[href$='/download']")
    rows = list(csv.reader(io.StringIO(Path(download.value.path()).read_text())))
    assert rows[0] == ["age_band", "persons"]
    # The same persons: the same (ledgered) values the session was given.
    assert [(band, int(n)) for band, n in rows[1:]] == answered_rows
    shot(ana, "10-output-approved")
    ana.goto(application_url + "/amend")
    expect(ana.locator("form.proposal")).to_be_visible()
    shot(ana, "25-application-amend")
    ana.goto(application_url)
    shot(ana, "11-application-approved")
    # The project's page: the study query made a ledger release (the output
    # check asked the same persons again, which makes none).
    ana.click(f"dl.facts a[href='/projects/{PROJECT_ID}']")
    expect(ana.locator("section.ledger .ledger-releases")).to_have_text("1")
    expect(ana.locator("section.ledger table.releases tbody tr")).to_have_count(1)
    # The approved budget, less the study query's fresh values.
    fresh = int(ana.locator("section.ledger .ledger-fresh").inner_text())
    expect(ana.locator("section.ledger .ledger-left")).to_have_text(str(20000 - fresh))

    # The operator finds the application's steps and the query on the audit page.
    otto = signed_in(browser, portal, "otto")
    otto.goto("/audit?actor=ana")
    events = otto.locator("table.list").first
    for action in ("application.create", "application.submit", "output.request"):
        expect(events).to_contain_text(action)
    # Times in Japan Standard Time, headings in Japanese.
    expect(events).to_contain_text("JST")
    expect(events.locator("thead")).to_contain_text("日時")
    assert "UTC" not in otto.locator("main").inner_text()
    expect(otto.locator("section.verification")).to_have_class("verification passed")
    shot(otto, "12-audit")
    otto.goto("/audit?actor=ana&action=query")
    expect(otto.locator("table.list").first).to_contain_text(PROJECT_ID)
    otto.locator("table.list").first.locator("tbody tr a").first.click()
    expect(otto.locator("dl.record")).to_contain_text("ndb.diagnoses")
    expect(otto.locator("dl.record")).to_contain_text("COUNT(DISTINCT person_id)")
    shot(otto, "13-audit-event")
    otto.goto("/audit?actor=chair")
    expect(otto.locator("table.list").first).to_contain_text("application.decide")

    # Closing the project asks for confirmation: without its box ticked the
    # browser does not send the form, and the server refuses a form sent
    # without it; ticked, the project closes.
    ana.goto(application_url)
    close = ana.locator("form[action$='/close']")
    close.locator("button").click()
    assert status_of(ana) == "承認"
    close.locator("input[name=confirm]").evaluate("box => box.removeAttribute('required')")
    close.locator("button").click()
    expect(ana.locator(".error-message")).to_be_visible()
    ana.goto(application_url)
    assert status_of(ana) == "承認"
    ana.locator("form[action$='/close'] input[name=confirm]").check()
    ana.locator("form[action$='/close'] button").click()
    assert status_of(ana) == "終了"
    shot(ana, "26-application-closed")


def test_a_conflict_removes_a_vote_and_the_chair_needs_a_quorum(portal: Server, browser: Browser):
    """A reviewer declares a conflict and can no longer vote; with one eligible
    vote the chair's decision is refused; the chair's message reaches the
    researcher, who withdraws the application."""
    carl = signed_in(browser, portal, "carl")
    carl.goto("/applications/new?table=ndb.receipts")
    for field, value in [("#project_id", "portal-return"), ("#title", "受診件数の推移"), ("#purpose", "Trends."),
                         ("#public_interest", "Access to care."), ("#planned_outputs", "Counts."),
                         ("#security_measures", "Locked room."),
                         ("#members", "carl: Test University"), ("#valid_until", "2099-12-31")]:
        carl.fill(field, value)
    carl.check("#no_matching_pledge")
    carl.click("form.proposal > button[type=submit]")
    application_url = carl.url
    carl.goto(application_url + "/edit")
    expect(carl.locator("#title")).to_have_value("受診件数の推移")
    shot(carl, "24-application-edit")
    carl.goto(application_url)
    carl.click("form[action$='/submit'] button")
    application_id = application_url.rsplit("/", 1)[-1]

    chair = signed_in(browser, portal, "chair")
    chair.goto(f"/review/applications/{application_id}")
    for reviewer in ("rev1", "rev2"):
        chair.check(f"input[name=reviewer][value={reviewer}]")
    chair.click("form[action$='/assign'] button")

    rev1 = signed_in(browser, portal, "rev1")
    rev1.goto(f"/review/applications/{application_id}")
    rev1.fill("#conflict-reason", "Co-author of the applicant.")
    rev1.click("form[action$='/conflict'] button")
    committee = rev1.locator("section.committee")
    expect(committee).to_contain_text("Co-author of the applicant.")
    expect(rev1.locator("form[action$='/vote']")).to_have_count(0)
    rev2 = signed_in(browser, portal, "rev2")
    rev2.goto(f"/review/applications/{application_id}")
    rev2.check("input[name=choice][value=return]")
    rev2.fill("#opinion", "Narrow the columns.")
    rev2.click("form[action$='/vote'] button")
    expect(rev2.locator("section.committee p.muted").first).to_contain_text("1")

    # One eligible vote is not a quorum: the page says one more is needed
    # and the decision cannot be sent (the API refuses it too).
    chair.reload()
    expect(chair.locator("p.no-quorum")).to_contain_text("1")
    expect(chair.locator("form[action$='/decide'] button")).to_be_disabled()
    chair.fill("#message-text", "Please explain why every receipt column is needed.")
    chair.click("section.messages form button")
    assert status_of(chair) == "審査中"

    carl.goto(application_url)
    expect(carl.locator("section.messages")).to_contain_text("Please explain why")
    carl.click("form[action$='/withdraw'] button")
    assert status_of(carl) == "取り下げ"
    shot(carl, "19-application-withdrawn")


def test_dashboard_shows_only_protected_counts(portal: Server, browser: Browser):
    page = visitor(browser, portal).new_page()
    page.goto("/dashboard")
    sections = page.locator("section.statistic")
    assert sections.count() >= 3
    for index in range(sections.count()):
        section = sections.nth(index)
        expect(section.locator("svg[role=img]")).to_be_visible()
        values = [int(cell) for cell in section.locator("tbody td.num").all_inner_texts()]
        assert values, "a statistic without rows"
        assert all(value >= 10 and value % 10 == 0 for value in values), values
    shot(page, "14-dashboard")
    # Care levels by their names from the code master, in their order of need.
    care = page.locator("section#certifications_by_age_band tbody")
    expect(care).to_contain_text("要支援1")
    levels = [text.split(" ")[0] for text in care.locator("tr td:nth-child(2)").all_inner_texts()]
    first_band = care.locator("tr td:first-child").first.inner_text()
    in_first_band = [level for level, band in zip(levels, care.locator("tr td:first-child").all_inner_texts())
                     if band == first_band]
    assert in_first_band == sorted(in_first_band), in_first_band
    first = sections.first
    shown = first.locator("tbody td.num").all_inner_texts()
    with page.expect_download() as download:
        first.locator("a[download]").click()
    rows = list(csv.reader(io.StringIO(Path(download.value.path()).read_text(encoding="utf-8-sig"))))
    assert [row[-1] for row in rows[1:]] == shown


def test_committee_pages_refuse_everyone_else(portal: Server, browser: Browser):
    anonymous = visitor(browser, portal).new_page()
    anonymous.goto("/review")
    assert anonymous.url.endswith("/login?next=%2Freview"), anonymous.url
    for user in ("carl", "otto"):
        page = signed_in(browser, portal, user)
        expect(page.locator("header nav")).not_to_contain_text("審査")
        for path in ("/review", "/review/applications/1", "/review/outputs/1"):
            response = page.goto(path)
            assert response.status == 403, (user, path, response.status)
            expect(page.locator("h1")).to_have_text("この操作は許可されていません")
        if user == "carl":
            shot(page, "15-review-refused")
            for path in ("/audit", "/admin"):
                assert page.goto(path).status == 403, path


def test_posts_without_the_csrf_token_change_nothing(portal: Server, browser: Browser):
    page = signed_in(browser, portal, "carl")
    before = page.goto("/applications").text()
    form = {"project_id": "csrf-probe", "title": "Forged", "purpose": "x", "public_interest": "x",
            "planned_outputs": "x", "members": "carl", "period_first": "2023-04", "period_last": "2023-05",
            "valid_until": "2099-12-31", "k": "10", "rounding": "10", "column": "ndb.receipts/sex"}
    requests = page.context.request
    for token in (None, "forged-token"):
        sent = dict(form) if token is None else {**form, "csrf": token}
        refused = requests.post(f"{portal.portal_url}/applications/new", form=sent, max_redirects=0)
        assert refused.status == 403, refused.status
    assert requests.post(f"{portal.portal_url}/logout", form={}, max_redirects=0).status == 403
    page.goto("/applications")
    expect(page.locator("main")).not_to_contain_text("Forged")
    assert "csrf-probe" not in page.content() and "csrf-probe" not in before
    # The session and pre-session cookies cannot be read by scripts and are not sent cross-site.
    cookies = {cookie["name"]: cookie for cookie in page.context.cookies()}
    for name in ("enclave_session", "enclave_presession"):
        assert cookies[name]["httpOnly"] and cookies[name]["sameSite"] == "Strict", cookies[name]


def test_error_pages_keep_the_site_frame(portal: Server, browser: Browser):
    """A refusal and a missing page are shown inside the site: the
    visitor's navigation and account, the page's language, the status."""
    page = signed_in(browser, portal, "carl")
    response = page.goto("/review")
    assert response.status == 403
    expect(page.locator("h1")).to_have_text("この操作は許可されていません")
    expect(page.locator("header nav")).to_contain_text("データカタログ")
    expect(page.locator(".account .who")).to_contain_text("carl")
    expect(page.locator(".error-message")).to_be_visible()
    response = page.goto("/no/such/page")
    assert response.status == 404
    expect(page.locator("h1")).to_have_text("見つかりません")
    expect(page.locator(".error-message")).to_have_text("このアドレスのページはありません。")
    expect(page.locator("header nav")).to_contain_text("利用申請")
    shot(page, "20-not-found")
    page.close()


def test_each_role_lands_on_its_own_page(portal: Server, browser: Browser):
    for user, path in (("ana", "/applications"), ("chair", "/review"), ("otto", "/audit"), ("root", "/admin")):
        page = signed_in(browser, portal, user)
        assert page.url.removeprefix(portal.portal_url).split("?")[0] == path, (user, page.url)
        page.close()


def test_english_and_administration(portal: Server, browser: Browser):
    root = signed_in(browser, portal, "root")
    root.goto("/admin")
    expect(root.locator("main")).to_contain_text("carl")
    shot(root, "16-admin")
    root.click("header .account a[hreflang=en]")
    expect(root.locator("h1")).to_have_text("Users and projects")
    shot(root, "17-admin-en")
    suspend = root.locator("tr", has_text="carl").locator("form[action$='/suspend']")
    # Suspending asks for confirmation: without its box ticked the browser
    # does not send the form…
    suspend.locator("button").click()
    expect(root.locator("tr", has_text="carl")).to_contain_text("Active")
    # …and the server refuses a form sent without it.
    suspend.locator("input[name=confirm]").evaluate("box => box.removeAttribute('required')")
    suspend.locator("button").click()
    expect(root.locator(".error-message")).to_contain_text("tick the box")
    root.goto("/admin")
    suspend = root.locator("tr", has_text="carl").locator("form[action$='/suspend']")
    suspend.locator("input[name=confirm]").check()
    suspend.locator("button").click()
    expect(root.locator("tr", has_text="carl")).to_contain_text("Suspended")
    page = visitor(browser, portal).new_page()
    page.goto("/login")
    page.fill("#user", "carl")
    page.fill("#password", password("carl"))
    page.click("form.narrow button[type=submit]")
    expect(page.locator(".error-message")).to_be_visible()
    root.locator("tr", has_text="carl").locator("form[action$='/restore'] button").click()
    expect(root.locator("tr", has_text="carl")).to_contain_text("Active")
    root.goto("/catalog")
    expect(root.locator("h1")).to_have_text("Data catalog")
    shot(root, "18-catalog-en")


def test_a_project_page_shows_its_ledger_releases_by_query_id(start_server, browser: Browser, release: Release):
    """A researcher asks a count, then one a few persons apart that repeats
    it: the Flight metadata names the first query, and the project's page
    shows both releases with their query ids. Another project's member sees
    neither, and their own page names only their own query."""
    users = {"lena": "researcher", "marc": "researcher", "otto": "operator"}
    projects = {"led-p": Project("led-p", ("lena",), protection=None, rounding=None, fresh_values=50),
                "led-q": Project("led-q", ("marc",), protection=None, rounding=None)}
    server = start_server("portal-ledger", users, projects)
    wide, narrow = near_pairs(release, projects["led-p"])[0]
    first, first_metadata = answer_and_metadata(server, "lena", "led-p", wide)
    second, second_metadata = answer_and_metadata(server, "lena", "led-p", narrow)
    assert second == first
    assert second_metadata["ledger"]["repeats"] == [repeat_of(first_metadata)]
    lena_queries = [first_metadata["query_id"], second_metadata["query_id"]]

    lena = signed_in(browser, server, "lena")
    lena.goto("/applications")
    lena.click("section.projects a[href='/projects/led-p']")
    expect(lena.locator("h1")).to_contain_text("led-p")
    ledger = lena.locator("section.ledger")
    expect(ledger.locator(".ledger-releases")).to_have_text("2")
    expect(ledger.locator(".ledger-fresh")).to_have_text("1")
    expect(ledger.locator(".ledger-repeated")).to_have_text("1")
    expect(ledger.locator(".ledger-left")).to_have_text("49")
    expect(ledger.locator(".ledger-left").locator("..")).to_contain_text("49 / 50")
    rows = ledger.locator("table.releases tbody tr")
    expect(rows).to_have_count(2)
    # Newest first: the repeating query, then the one it repeats.
    for row, (query_id, metadata) in enumerate(zip(reversed(lena_queries), (second_metadata, first_metadata))):
        expect(rows.nth(row)).to_contain_text(query_id)
        expect(rows.nth(row).locator("td").first).to_have_text(str(metadata["ledger"]["release"]))
    shot(lena, "21-project-ledger")

    # Another project: a count of its own makes its release; its answer
    # repeating lena's is not traced to her query (the same persons again
    # make no release), and her project's page is not marc's to see.
    _, marc_metadata = answer_and_metadata(server, "marc", "led-q", far_pair(release, projects["led-q"])[0])
    _, repeating = answer_and_metadata(server, "marc", "led-q", narrow)
    assert repeating["ledger"]["repeats"] == [{"origin": "another-project"}]
    marc = signed_in(browser, server, "marc")
    assert marc.goto("/projects/led-p").status == 404
    marc.goto("/projects/led-q")
    page = marc.locator("main")
    expect(page.locator(".ledger-releases")).to_have_text("1")
    expect(page.locator("table.releases")).to_contain_text(marc_metadata["query_id"])
    for query_id in lena_queries:
        expect(page).not_to_contain_text(query_id)

    # An operator reaches every project's page from the administration page.
    otto = signed_in(browser, server, "otto")
    otto.goto("/admin")
    otto.click("a[href='/projects/led-p']")
    for query_id in lena_queries:
        expect(otto.locator("section.ledger")).to_contain_text(query_id)


def test_a_member_brings_a_table_in_and_two_reviewers_approve_it(start_server, browser: Browser,
                                                                  release: Release, tmp_path):
    """On the project page a member uploads a CSV with a personal name: the
    refusal names the column and rule, not the name. A clean code list waits
    in quarantine on the committee's queue; two reviewers approve it there
    and the project page shows it approved, queryable as ref.<name>."""
    users = {"rina": "researcher", "rev1": "reviewer", "rev2": "reviewer"}
    server = start_server("portal-bring-in", users,
                          {"bi-p": Project("bi-p", ("rina",), grants=("ndb.diagnoses",), rounding=None)})
    rina = signed_in(browser, server, "rina")

    def upload(name: str, content: str) -> None:
        file = tmp_path / f"{name}.csv"
        file.write_text(content)
        rina.goto("/projects/bi-p")
        rina.fill("#bring-in-name", name)
        rina.fill("#bring-in-purpose", "Cohort definition from the protocol.")
        rina.set_input_files("#bring-in-file", str(file))
        rina.click("section.bring-ins form button[type=submit]")

    upload("people", "code,who\nA01,ヤマダ タロウ\nA02,スズキ ハナコ\n")
    expect(rina.locator("main")).to_contain_text("column `who`: person-name")
    expect(rina.locator("main")).not_to_contain_text("ヤマダ")
    assert not release.stored_files("bring-ins/bi-p/")

    upload("codes", "icd10,label\nE11,diabetes\nE119,diabetes\nI10,hypertension\n")
    expect(rina.locator("table.bring-in-list")).to_contain_text("ref.codes")
    shot(rina, "27-project-bring-in")
    assert len(release.stored_files("bring-ins/bi-p/")) == 1

    for reviewer in ("rev1", "rev2"):
        page = signed_in(browser, server, reviewer)
        page.goto("/review")
        form = page.locator("form.bring-in-review")
        expect(form).to_contain_text("ref.codes")
        if reviewer == "rev1":
            shot(page, "28-review-bring-in")
        form.locator("input[name=approve][value=yes]").check()
        form.locator("textarea[name=note]").fill("ICD-10 codes only.")
        form.locator("button[type=submit]").click()
    rina.goto("/projects/bi-p")
    expect(rina.locator("table.bring-in-list")).to_contain_text("承認")
    with server.connect("rina") as conn:
        table = query(conn, "SELECT c.label, count(DISTINCT d.person_id) AS persons FROM ndb.diagnoses d "
                            "JOIN ref.codes c ON d.icd10 = c.icd10 GROUP BY c.label")
    assert set(table.column("label").to_pylist()) <= {"diabetes", "hypertension"} and table.num_rows > 0
