"""The ministry's dashboard (issue 7, point 6): the page and its static files over HTTP, and the
page itself in Debian's headless Chromium against the hub served over a real socket. It loads
without console errors, logs a ministry person in, shows the numbers of the JSON reports,
switches language and sorts its province table, and shows the hub's own quality report (real
data, never a stand-in); a screenshot per language is saved in test-artifacts/."""

import asyncio
import json
import os
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from hub.auth.identities import new_identity
from hub.auth.roles import Role
from hub.reporting.dashboard import LANGUAGES, STATIC
from hub.store.embedded import free_port
from tests.reporting.test_reports import register, submit
from tests.support import hub_client, token_auth, unique

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
TEXTS = {lang: json.loads((STATIC / "i18n" / f"{lang}.json").read_text()) for lang in LANGUAGES}
STATUSES = ("met", "on track", "behind", "missed")
AXES = ("correct", "sufficient", "clean", "live", "unified", "shared")
PASSWORD = "mật khẩu của bộ y tế"
FIGURES = (
    "registered",
    "connected",
    "live",
    "records",
    "patients",
    "people",
    "submissions_accepted",
    "submissions_refused",
)
# The scores the facility page's quality chart draws, axis by axis.
RADAR = "() => Chart.getChart(document.querySelector('#quality-chart')).data.datasets[0].data"
# Skipped only on a developer's machine without Chromium; in CI (CI set) a missing browser fails.
needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists() and not os.environ.get("CI"),
    reason=f"no Chromium at {CHROMIUM} (apt-get install chromium); CI runs these",
)


# --- The page and its files over plain HTTP ------------------------------------------------


async def test_the_page_and_its_files_are_served_without_a_token(
    anonymous: httpx.AsyncClient,
) -> None:
    page = await anonymous.get("/dashboard")
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert "/dashboard/static/dashboard.js" in page.text
    for path, media_type in (
        ("dashboard.js", "text/javascript; charset=utf-8"),
        ("dashboard.css", "text/css; charset=utf-8"),
        ("i18n/vi.json", "application/json"),
        ("vendor/chart.umd.min.js", "text/javascript; charset=utf-8"),
        ("vendor/LICENSE-chartjs.md", "text/markdown; charset=utf-8"),
    ):
        answer = await anonymous.get(f"/dashboard/static/{path}")
        assert answer.status_code == 200, path
        assert answer.headers["content-type"] == media_type, path
    config = (await anonymous.get("/dashboard/config")).json()
    assert (config["country"], config["default_language"]) == ("vn", "vi")


async def test_nothing_outside_the_static_folder_is_served(anonymous: httpx.AsyncClient) -> None:
    for path in ("../dashboard.py", "..%2Fdashboard.py", "index.html", "i18n/xx.json"):
        assert (await anonymous.get(f"/dashboard/static/{path}")).status_code == 404, path


def test_every_text_of_the_page_is_in_every_language() -> None:
    keys = set(TEXTS["en"])
    for lang in LANGUAGES:
        assert set(TEXTS[lang]) == keys, f"i18n/{lang}.json differs from en.json"
        assert all(TEXTS[lang].values()), f"i18n/{lang}.json has an empty text"
    used = set(re.findall(r'data-i18n="(\w+)"', (STATIC / "index.html").read_text()))
    used |= set(re.findall(r'\bt\("(\w+)"', (STATIC / "dashboard.js").read_text()))
    used |= {f"status_{s}" for s in STATUSES} | {f"axis_{a}" for a in AXES}
    assert used - keys == set()


def test_the_page_loads_nothing_from_elsewhere() -> None:
    for name in ("index.html", "dashboard.js", "dashboard.css"):
        text = (STATIC / name).read_text()
        assert not re.search(r"(https?:)?//[\w.-]+\.\w+/", text), f"{name} names another site"
    assert "Chart.js v4" in (STATIC / "vendor" / "chart.umd.min.js").read_text()[:200]
    assert "MIT License" in (STATIC / "vendor" / "LICENSE-chartjs.md").read_text()


# --- The page in Chromium --------------------------------------------------------------------


@pytest.fixture(scope="module")
async def served(app: Any) -> AsyncIterator[str]:
    """Serve the session's app with uvicorn on a free localhost port, on the tests' own event
    loop (its database client belongs to that loop); return its base URL."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_level="warning")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    for _ in range(200):
        if server.started or task.done():
            break
        await asyncio.sleep(0.05)
    assert server.started, "uvicorn did not start"
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    await task


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Any]:
    """Launch Debian's Chromium headless through playwright (its own browsers are never used)."""
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield launched
        await launched.close()


@pytest.fixture(scope="module")
async def figures(app: Any, admin: httpx.AsyncClient) -> dict[str, Any]:
    """Register two provinces of three facilities, connect two of the first and one of the
    second; create a ministry person who logs in with a password; return what the reports say."""
    first, second = unique("P"), unique("P")
    codes = await register(admin, first) + await register(admin, second)
    for code in (codes[0], codes[2], codes[3]):
        await submit(app, code)
    username = unique("ministry.").lower()
    person, _ = new_identity(Role.MINISTRY, username=username, password=PASSWORD)
    await app.state.auth.identities.create(person)
    # Other hubs of the session counted what this process has not read yet: read it all now,
    # so that the page, reading within the cache time or after, sees the same figures.
    app.state.counters.forget()
    async with hub_client(app, await token_auth(app, "ministry")) as ministry:
        answers = [await ministry.get(f"/reports/{r}") for r in ("coverage", "roadmap", "quality")]
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
    coverage, roadmap, quality = (a.json() for a in answers)
    return {
        "username": username,
        "provinces": (first, second),
        "facilities": codes,
        "coverage": coverage,
        "roadmap": roadmap,
        "quality": quality,
    }


class Console:
    """The errors a page writes to its console or throws."""

    def __init__(self, page: Any) -> None:
        self.errors: list[str] = []
        page.on("console", self.message)
        page.on("pageerror", lambda error: self.errors.append(f"uncaught: {error}"))

    def message(self, message: Any) -> None:
        if message.type == "error":
            self.errors.append(f"{message.text} ({message.location.get('url', '')})")


async def logged_in(browser: Any, base: str, username: str) -> tuple[Any, Any, Console]:
    """Open the dashboard in a fresh context and log in; return the context, page and console."""
    ARTIFACTS.mkdir(exist_ok=True)
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    console = Console(page)
    await page.goto(f"{base}/dashboard")
    await page.wait_for_selector("body[data-ready]")
    await page.fill("#username", username)
    await page.fill("#password", PASSWORD)
    await page.click("#login-form button[type=submit]")
    await page.wait_for_selector('#national-figures dd[data-figure="registered"]')
    return context, page, console


async def heading_texts(page: Any) -> list[str]:
    ids = ("roadmap-heading", "national-heading", "provinces-heading", "ranking-heading")
    return [await page.text_content(f"#{i}") for i in ids]


@needs_chromium
async def test_the_dashboard_shows_the_reports_and_speaks_three_languages(
    browser: Any, served: str, figures: dict[str, Any]
) -> None:
    context, page, console = await logged_in(browser, served, figures["username"])
    try:
        # The country pack (vn) picks Vietnamese.
        assert await page.get_attribute("html", "lang") == "vi"
        assert await page.text_content("#report-date") == figures["coverage"]["date"]
        assert "60" in (await page.text_content("#refreshed") or "")

        national = figures["coverage"]["national"]
        for key in FIGURES:
            cell = page.locator(f'#national-figures dd[data-figure="{key}"]')
            assert await cell.get_attribute("data-value") == str(national[key]), key
            assert re.sub(r"\D", "", await cell.inner_text()) == str(national[key]), key

        milestones = figures["roadmap"]["milestones"]
        assert milestones, "the vn pack ships its roadmap"
        for milestone in milestones:
            drawn = await page.evaluate(
                """id => {
                    const chart = Chart.getChart(document.querySelector(
                        `canvas[data-milestone="${id}"]`));
                    const day = x => new Date(x).toISOString().slice(0, 10);
                    return {datasets: chart.data.datasets.map(d => d.data.map(p => p.y)),
                            days: chart.data.datasets.map(d => d.data.map(p => day(p.x))),
                            x: chart.options.scales.x.title.text,
                            y: chart.options.scales.y.title.text};
                }""",
                milestone["id"],
            )
            assert drawn["days"][0] == [p["day"] for p in milestone["trend"]]
            assert drawn["datasets"][0] == [p["connected_share"] for p in milestone["trend"]]
            # The target runs across the chart, through the due date.
            target = milestone["targets"]["connected_share"]
            assert set(drawn["datasets"][1]) == {target}
            assert milestone["due"] in drawn["days"][1]
            assert (drawn["x"], drawn["y"]) == (TEXTS["vi"]["axis_day"], TEXTS["vi"]["axis_share"])
            card = page.locator(f'article[data-milestone="{milestone["id"]}"]')
            assert await card.locator("h3").inner_text() == milestone["title"]["vi"]
        assert any(m["trend"] for m in milestones), "the submissions drew a trend"

        for lang in ("en", "vi", "id"):
            await page.select_option("#language", lang)
            await page.wait_for_function("lang => document.documentElement.lang === lang", arg=lang)
            texts = TEXTS[lang]
            assert await heading_texts(page) == [
                texts["roadmap_heading"],
                texts["national_heading"],
                texts["provinces_heading"],
                texts["ranking_heading"],
            ]
            title = await page.evaluate(
                "() => Chart.getChart(document.querySelector('canvas[data-milestone]'))"
                ".options.scales.y.title.text"
            )
            assert title == texts["axis_share"]
            await page.screenshot(path=str(ARTIFACTS / f"dashboard-{lang}.png"), full_page=True)
        assert console.errors == []
    finally:
        await context.close()


async def province_order(page: Any) -> list[str]:
    rows = page.locator("#province-table tbody tr")
    return [await rows.nth(i).get_attribute("data-province") for i in range(await rows.count())]


@needs_chromium
async def test_the_province_table_sorts_and_a_facility_opens(
    app: Any, browser: Any, served: str, figures: dict[str, Any]
) -> None:
    context, page, console = await logged_in(browser, served, figures["username"])
    try:
        share = {p["province"]: p["connected_share"] for p in figures["coverage"]["provinces"]}
        first, second = figures["provinces"]
        # Sorted by connected share, largest first, until a heading is clicked.
        order = await province_order(page)
        assert [share[p] for p in order] == sorted(share.values(), reverse=True)
        assert order.index(first) < order.index(second)
        header = '#province-table th[data-sort="connected_share"]'
        await page.click(f"{header} button")
        order = await province_order(page)
        assert [share[p] for p in order] == sorted(share.values())
        assert await page.get_attribute(header, "aria-sort") == "ascending"
        await page.click('#province-table th[data-sort="name"] button')
        names = {p["province"]: p["name"] for p in figures["coverage"]["provinces"]}
        shown = [names[p] for p in await province_order(page)]
        assert shown == sorted(shown, key=str.casefold)

        code = figures["facilities"][0]
        row = next(f for f in figures["coverage"]["facilities"] if f["facility"] == code)
        await page.click(f'#facility-table tr[data-facility="{code}"] button')
        records = page.locator('#facility-figures dd[data-figure="records"]')
        await records.wait_for()
        assert await records.get_attribute("data-value") == str(row["records"])
        assert code in (await page.text_content("#facility-name") or "")
        await page.screenshot(path=str(ARTIFACTS / "dashboard-facility.png"), full_page=True)
        await page.wait_for_selector("#facility-quality:not([hidden])")
        async with hub_client(app, await token_auth(app, "ministry")) as ministry:
            report = (await ministry.get(f"/reports/quality/{code}")).json()
        drawn = await page.evaluate(RADAR)
        assert drawn == [report["scores"][axis] for axis in AXES]
        assert console.errors == []
    finally:
        await context.close()


def shown_score(value: float) -> str:
    """Return the digits of a score as the page writes it (at most one decimal)."""
    return re.sub(r"\D", "", f"{value:.1f}".rstrip("0").rstrip("."))


@needs_chromium
async def test_the_real_quality_report_shows_in_the_tables_and_the_facility_page(
    app: Any, browser: Any, served: str, figures: dict[str, Any]
) -> None:
    """The hub's own quality report, from the records the facilities sent: the province table
    and the ranking gain its composite, and a facility's page its axes chart and worst rules,
    with counts of records and no record named."""
    quality = figures["quality"]
    province = next(p for p in quality["provinces"] if p["province"] == figures["provinces"][0])
    best = next(f for f in quality["facilities"] if f["rank"] == 1)
    code = figures["facilities"][2]
    async with hub_client(app, await token_auth(app, "ministry")) as ministry:
        detail = (await ministry.get(f"/reports/quality/{code}")).json()
    assert detail["worst_rules"], "a Patient without a valid citizen ID breaks national rules"

    context, page, console = await logged_in(browser, served, figures["username"])
    try:
        await page.wait_for_selector('#province-table td[data-key="composite"]')
        row = f'#province-table tr[data-province="{province["province"]}"]'
        cell = await page.inner_text(f'{row} td[data-key="composite"]')
        assert re.sub(r"\D", "", cell) == shown_score(province["composite"])
        first = page.locator("#facility-table tbody tr").first
        assert await first.get_attribute("data-facility") == best["facility"]
        await page.click(f'#facility-table tr[data-facility="{code}"] button')
        await page.wait_for_selector("#facility-quality:not([hidden])")
        assert await page.evaluate(RADAR) == [detail["scores"][axis] for axis in AXES]
        rows = page.locator("#rules-table tbody tr")
        assert await rows.count() == len(detail["worst_rules"])
        for i, rule in enumerate(detail["worst_rules"]):
            cells = [await c.inner_text() for c in await rows.nth(i).locator("th, td").all()]
            assert cells[0] == rule["rule"]
            assert re.sub(r"\D", "", cells[3]) == str(rule["records"])
        assert "Patient/" not in await page.inner_text("#facility")
        assert console.errors == []
    finally:
        await context.close()
