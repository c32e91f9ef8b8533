"""The web console in a real browser: Debian's Chromium, headless, driven by Selenium."""

from __future__ import annotations

import re
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from conductor.embedded import ApiProcess, ServiceProcess, WorkerProcess
from tests.ci import in_ci
from tests.e2e.test_api import TOKEN

pytestmark = pytest.mark.e2e

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
REPO = Path(__file__).resolve().parents[2]
SCREENSHOT = REPO / "docs" / "console.png"
WAIT_S = 20


def _need_browser() -> None:
    """Skip without Chromium locally; in CI its absence is a failure (tests/ci.py)."""
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    try:
        import selenium  # noqa: F401, PLC0415
    except ImportError:
        missing.append("the selenium package")
    if not missing:
        return
    message = (
        f"the browser test needs {', '.join(missing)} (apt-get install chromium chromium-driver)"
    )
    if in_ci():
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="module")
def console_api(api_env: dict[str, str], worker: WorkerProcess) -> Iterator[ApiProcess]:
    """An API with a token, and a recorder so the executions list has history."""
    env = {**api_env, "CONDUCTOR_API_TOKEN": TOKEN}
    recorder = ServiceProcess(["recorder", "--name", "e2e-console-recorder"], env).start()
    process = ApiProcess(env).start()
    yield process
    process.stop()
    recorder.stop()


@pytest.fixture
def browser() -> Iterator[Any]:
    """Headless Chromium through Debian's chromedriver (nothing is downloaded)."""
    _need_browser()
    from selenium import webdriver  # noqa: PLC0415
    from selenium.webdriver.chrome.service import Service  # noqa: PLC0415

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage"):
        options.add_argument(flag)
    options.add_argument("--window-size=1400,900")
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.implicitly_wait(0)
    yield driver
    driver.quit()


def stored_blueprint(http: httpx.Client) -> str:
    """A Blueprint with two variables: make -> (slow, quick, pack: wait -> fmt) -> join."""
    blueprint_id = f"console-{uuid.uuid4().hex[:8]}"
    body = {
        "id": blueprint_id,
        "name": "Console demo",
        "variables": {
            "who": {"type": "string", "defaultValue": "world"},
            "pause_ms": {"type": "number", "defaultValue": 900, "description": "slow's delay"},
        },
        "nodes": [
            {
                "id": "make",
                "type": "edit-fields",
                "name": "Make greeting",
                "parameters": {"values": {"greeting": "hello {{$vars.who}}"}},
            },
            {"id": "slow", "type": "delay", "parameters": {"ms": 1500}},
            {"id": "quick", "type": "delay", "parameters": {"ms": 100}},
            {"id": "join", "type": "delay", "parameters": {"ms": 0}},
            {
                "id": "pack",
                "type": "group",
                "nodes": [
                    {"id": "wait", "type": "delay", "parameters": {"ms": 50}},
                    {"id": "fmt", "type": "edit-fields", "parameters": {"values": {"done": True}}},
                ],
                "edges": [{"id": "p1", "source": "wait", "target": "fmt"}],
            },
        ],
        "edges": [
            {"id": "e1", "source": "make", "target": "slow"},
            {"id": "e2", "source": "make", "target": "quick"},
            {"id": "e3", "source": "slow", "target": "join"},
            {"id": "e4", "source": "quick", "target": "join"},
            {"id": "e5", "source": "make", "target": "pack"},
            {"id": "e6", "source": "pack", "target": "join"},
        ],
    }
    response = http.post("/v1/blueprints", json=body)
    assert response.status_code == 201, response.text
    return blueprint_id


def test_the_console_loads_without_the_token_and_nothing_from_the_internet(
    console_api: ApiProcess,
) -> None:
    with httpx.Client(base_url=console_api.url, timeout=15) as http:
        moved = http.get("/ui")
        assert moved.status_code == 307 and moved.headers["location"] == "/ui/"
        page = http.get("/ui/")
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
        assert set(assets) >= {"app.js", "style.css"}
        for asset in assets:
            assert not re.match(r"[a-z]+:|//", asset), asset  # relative: served by the API
            served = http.get(f"/ui/{asset}")
            assert served.status_code == 200
            text = served.text
            # No address but the SVG namespace (a name, never fetched).
            addresses = set(re.findall(r"(?:https?:)?//[\w.-]+\.[a-z]{2,}[^\s\"')]*", text))
            assert addresses <= {"http://www.w3.org/2000/svg"}, (asset, addresses)
        assert http.get("/v1/executions").status_code == 401  # the data stays behind the token


class Page:
    """The browser, with waits that re-find elements (the console re-renders as events come)."""

    def __init__(self, driver: Any) -> None:
        from selenium.common.exceptions import StaleElementReferenceException  # noqa: PLC0415
        from selenium.webdriver.support.ui import WebDriverWait  # noqa: PLC0415

        self.driver = driver
        self.wait = WebDriverWait(
            driver, WAIT_S, poll_frequency=0.05, ignored_exceptions=[StaleElementReferenceException]
        )

    def find(self, selector: str) -> Any:
        """The first element matching `selector`, once there."""
        from selenium.webdriver.common.by import By  # noqa: PLC0415

        return self.wait.until(lambda d: d.find_element(By.CSS_SELECTOR, selector))

    def click(self, selector: str) -> None:
        """Click the element, again if a re-render replaced it under the click."""
        from selenium.webdriver.common.by import By  # noqa: PLC0415

        def clicked(driver: Any) -> bool:
            driver.find_element(By.CSS_SELECTOR, selector).click()
            return True

        self.wait.until(clicked)

    def text(self, selector: str) -> str:
        """The element's text, once it is there."""
        return str(self.find(selector).text)

    def until_text(self, selector: str, fragment: str) -> None:
        """Wait until the element's text contains `fragment`."""
        from selenium.webdriver.common.by import By  # noqa: PLC0415

        self.wait.until(lambda d: fragment in d.find_element(By.CSS_SELECTOR, selector).text)

    def node_status(self, key: str) -> str:
        """A DAG node's state as drawn ('' when not drawn), read in one step in the page."""
        script = "return document.querySelector(arguments[0])?.dataset.status || ''"
        return str(self.driver.execute_script(script, f'#dag [data-node="{key}"]'))

    def until_node(self, key: str, status: str) -> None:
        """Wait until the node is drawn in `status`."""
        self.wait.until(lambda d: self.node_status(key) == status)

    def count(self, selector: str) -> int:
        """How many elements match."""
        from selenium.webdriver.common.by import By  # noqa: PLC0415

        return len(self.driver.find_elements(By.CSS_SELECTOR, selector))

    def type_into(self, selector: str, text: str) -> None:
        """Replace a field's text."""
        field = self.find(selector)
        field.clear()
        field.send_keys(text)


def sign_in(page: Page, url: str) -> None:
    """A wrong token is refused; the right one is kept for the tab."""
    page.driver.get(f"{url}/ui/#/blueprints")
    page.type_into("#token", "wrong")
    page.click("#sign-in button")
    page.until_text("#sign-in-error", "refused")
    page.type_into("#token", TOKEN)
    page.click("#sign-in button")


def run_from_form(page: Page, blueprint_id: str) -> str:
    """Fill the Run form (a bad number first: named next to its field); the execution id."""
    page.click(f'tr[data-blueprint="{blueprint_id}"] button.run')
    assert page.find('#run [name="pause_ms"]').get_attribute("value") == "900"  # the default
    page.type_into('#run [name="pause_ms"]', "soon")
    page.type_into('#run [name="who"]', "browser")
    page.click('#run button[type="submit"]')
    page.until_text('[data-error-for="pause_ms"]', "pause_ms: must be a number")
    page.type_into('#run [name="pause_ms"]', "5")
    page.click('#run button[type="submit"]')
    page.wait.until(lambda d: "#/executions/" in d.current_url)
    return str(page.driver.current_url).rsplit("/", 1)[1]


def long_execution(http: httpx.Client) -> str:
    """An inline Blueprint with one 30 s delay; its execution id."""
    blueprint = {
        "id": f"console-long-{uuid.uuid4().hex[:6]}",
        "name": "Long",
        "nodes": [{"id": "wait", "type": "delay", "parameters": {"ms": 30_000}}],
        "edges": [],
    }
    response = http.post("/v1/executions", json={"blueprint": blueprint})
    assert response.status_code == 202, response.text
    execution_id: str = response.json()["id"]
    return execution_id


def test_sign_in_run_watch_inspect_and_cancel_in_a_browser(
    console_api: ApiProcess, browser: Any, tmp_path: Path
) -> None:
    page = Page(browser)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=console_api.url, headers=headers, timeout=15) as http:
        blueprint_id = stored_blueprint(http)
        sign_in(page, console_api.url)
        execution_id = run_from_form(page, blueprint_id)

        # Nodes go running, then succeeded, live over the WebSocket.
        page.until_node("slow", "running")
        assert page.node_status("join") in ("pending", "queued")  # not started yet
        for key in ("make", "slow", "quick", "pack", "join"):
            page.until_node(key, "succeeded")
        page.until_text("#execution-status", "succeeded")
        assert page.count("#dag path.edge") == 6
        page.wait.until(lambda d: page.count("#gantt [data-run]") >= 7)  # with pack's nodes

        # Into the group and back.
        page.click('#dag [data-node="pack"]')
        page.click("#open-node")
        page.until_node("pack/fmt", "succeeded")
        assert page.node_status("pack/wait") == "succeeded" and page.node_status("make") == ""
        assert page.count('#dag path.edge[data-edge="pack/wait->pack/fmt"]') == 1
        page.click("#scope-up")
        page.until_node("make", "succeeded")

        # A node's parameters and output.
        page.click('#dag [data-node="make"]')
        page.until_text("#output-preview", "hello browser")
        assert "{{$vars.who}}" in page.text("#node-panel")
        view = http.get(f"/v1/executions/{execution_id}").json()
        assert view["status"] == "succeeded"
        assert {n["key"]: n["depends_on"] for n in view["graph"]}["join"] == [
            "slow",
            "quick",
            "pack",
        ]
        output = http.get(f"/v1/executions/{execution_id}/nodes/make/output")
        assert output.json()["result"]["greeting"] == "hello browser"
        missing = http.get(f"/v1/executions/{execution_id}/nodes/nope/output")
        assert missing.status_code == 404 and "'nope'" in missing.json()["detail"]
        browser.save_screenshot(str(tmp_path / "execution.png"))
        SCREENSHOT.parent.mkdir(exist_ok=True)
        shutil.copyfile(tmp_path / "execution.png", SCREENSHOT)

        # A wired node's resolved inputs: make's whole output on slow's default port.
        page.click('#dag [data-node="slow"]')
        page.until_text("#inputs-preview", '"greeting": "hello browser"')
        assert '"default"' in page.text("#inputs-preview")

        # The executions list has it; a second, long execution appears there live.
        browser.get(f"{console_api.url}/ui/#/executions")
        page.find(f'tr[data-execution="{execution_id}"]')
        long_id = long_execution(http)
        page.click(f'tr[data-execution="{long_id}"] a')

        # Cancel it from its page and see it cancelled.
        page.until_node("wait", "running")
        page.click("#cancel-button")
        page.until_text("#execution-status", "cancelled")
        assert page.node_status("wait") != "succeeded"
        assert http.get(f"/v1/executions/{long_id}").json()["status"] == "cancelled"

        # The status filter: the cancelled one is listed, the succeeded one is not.
        browser.get(f"{console_api.url}/ui/#/executions?status=cancelled")
        page.find(f'tr[data-execution="{long_id}"]')
        assert page.count(f'tr[data-execution="{execution_id}"]') == 0
    assert SCREENSHOT.stat().st_size > 10_000
