"""Browser tests of the web UI: Selenium driving Debian's headless ``chromium`` through its
``chromium-driver``, against a real broker on ephemeral ports.

One broker and one browser per module keep the suite quick.  Without chromium and
chromedriver the tests are skipped locally, saying so; under CI (``CI`` set) they fail
instead, since ``.ci/run`` installs both.
"""

from __future__ import annotations

import os
import shutil
import urllib.error
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from jackalope import Broker
from tests.conftest import http_json

selenium = pytest.importorskip("selenium", reason="selenium is not installed (pip install -e '.[test]')")

from selenium import webdriver  # noqa: E402
from selenium.common.exceptions import StaleElementReferenceException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.remote.webdriver import WebDriver  # noqa: E402
from selenium.webdriver.remote.webelement import WebElement  # noqa: E402
from selenium.webdriver.support import expected_conditions as ec  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
WAIT_SECONDS = 20  # a bound for a busy machine, not a pace: every wait ends on a DOM condition
T = TypeVar("T")

if not (CHROMIUM and CHROMEDRIVER):
    missing = "chromium" if not CHROMIUM else "chromedriver"
    reason = f"{missing} is not installed (apt-get install chromium chromium-driver; .ci/run does)"
    if os.environ.get("CI"):
        raise RuntimeError(f"the browser tests need a browser under CI: {reason}")
    pytest.skip(reason, allow_module_level=True)


class Ui:
    """The browser on the broker's UI, with waits that end on what the page shows."""

    def __init__(self, driver: WebDriver, broker: Broker) -> None:
        self.driver = driver
        self.broker = broker
        self.url = broker.http_url

    def go(self, path: str) -> None:
        self.driver.get(self.url + path)

    def wait(self, condition: Callable[[WebDriver], T], message: str = "") -> T:
        return WebDriverWait(self.driver, WAIT_SECONDS).until(condition, message)

    def find(self, css: str) -> WebElement:
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def find_all(self, css: str) -> list[WebElement]:
        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def visible(self, css: str) -> WebElement:
        element: WebElement = self.wait(ec.visibility_of_element_located((By.CSS_SELECTOR, css)), css)
        return element

    def text_in(self, css: str, text: str) -> None:
        self.wait(ec.text_to_be_present_in_element((By.CSS_SELECTOR, css), text), f"{text!r} in {css}")

    def login(self, user: str = "guest", password: str = "guest", path: str = "/") -> None:
        self.go(path)
        if "/login" not in self.driver.current_url:
            return
        self.find("#username").clear()
        self.find("#username").send_keys(user)
        self.find("#password").send_keys(password)
        self.find("form.login button[type=submit]").click()
        self.wait(
            lambda d: self.find_all("nav[aria-label=Main]") or self.find_all("#login-error"),
            "logged in or refused",
        )

    def h1(self) -> str:
        return self.visible("main h1").text

    def fill(self, form: str, values: dict[str, Any]) -> None:
        """Type into (or choose in) the fields of ``form`` named as ``values`` keys."""
        for name, value in values.items():
            field = self.find(f'{form} [name="{name}"]')
            if field.tag_name == "select":
                field.find_element(By.CSS_SELECTOR, f'option[value="{value}"]').click()
            elif field.get_attribute("type") == "checkbox":
                if field.is_selected() != bool(value):
                    field.click()
            else:
                field.clear()
                field.send_keys(str(value))

    def submit(self, form: str) -> str:
        """Submit ``form`` and wait for its status line; its text."""
        status = self.find(f"{form} .form-status")
        self.driver.execute_script("arguments[0].textContent = ''", status)
        self.find(f"{form} button[type=submit]").click()
        self.wait(lambda d: status.text and status.text != "Working…", f"{form}'s answer")
        return str(status.text)

    def cell_texts(self, table: str) -> list[list[str]]:
        """The table's cells, read whole between two of ui.js's refreshes (a refresh replaces
        the rows, and a row read across it is stale: the table is read again)."""

        def read(_: WebDriver) -> tuple[list[list[str]]] | None:  # a tuple: an empty table is an answer
            try:
                rows = self.find_all(f"{table} tbody tr")
                return ([[c.text for c in row.find_elements(By.CSS_SELECTOR, "th, td")] for row in rows],)
            except StaleElementReferenceException:
                return None

        answer = self.wait(read, f"the cells of {table}")
        assert answer is not None  # until() returns only a true value
        return answer[0]

    def row(self, table: str, key: str) -> WebElement:
        return self.find(f'{table} tbody tr[data-key="{key}"]')

    def row_texts(self, table: str, key: str) -> list[str]:
        return [c.text for c in self.row(table, key).find_elements(By.CSS_SELECTOR, "th, td")]

    def expect_cell(self, table: str, key: str, column: str, expected: str) -> None:
        """Wait until the cell reads ``expected`` (a table refresh may replace it meanwhile)."""
        self.wait(
            lambda d: self.cell(table, key, column) == expected,
            f"{column} of {key} in {table} to read {expected!r}",
        )

    def cell(self, table: str, key: str, column: str) -> str:
        """The text of the cell under the header ``column`` in the row ``key``; "" while there
        is no such row (or the refresh replaced it under our feet: a wait tries again)."""
        headers = [h.text for h in self.find_all(f"{table} thead th")]
        rows = self.find_all(f'{table} tbody tr[data-key="{key}"]')
        if not rows:
            return ""
        try:
            return str(rows[0].find_elements(By.CSS_SELECTOR, "th, td")[headers.index(column)].text)
        except StaleElementReferenceException:
            return ""

    def has_row(self, table: str, key: str) -> bool:
        return bool(self.find_all(f'{table} tbody tr[data-key="{key}"]'))


def make_driver() -> WebDriver:
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1366,900",
        "--disable-extensions",
        "--no-first-run",
    ):
        options.add_argument(arg)
    service = webdriver.ChromeService(executable_path=str(CHROMEDRIVER))
    return webdriver.Chrome(options=options, service=service)


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    data: Path = tmp_path_factory.mktemp("ui-broker")
    with Broker(data) as b:
        yield b


@pytest.fixture(scope="module")
def driver() -> Iterator[WebDriver]:
    d = make_driver()
    try:
        yield d
    finally:
        d.quit()


@pytest.fixture(scope="module")
def ui(driver: WebDriver, broker: Broker) -> Ui:
    return Ui(driver, broker)


def require_endpoint(broker: Broker, path: str) -> None:
    """Skip while the API has no route for ``path`` (the pages built ahead of the endpoint
    they show: the issue's API lands in parts); once the route exists the test runs."""
    try:
        http_json(broker.http_url + path)
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            pytest.skip(f"the API has no {path} yet")
        raise
