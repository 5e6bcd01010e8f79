"""Logging in, the keyboard, and the administration pages, in a real Chromium."""

from __future__ import annotations

import json

from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver

from jackalope.http.ui.formats import fill, fmt
from tests.conftest import http_json
from tests.ui.conftest import Ui


def test_a_wrong_password_shows_an_error_and_no_page(ui: Ui) -> None:
    ui.go("/queues")
    ui.wait(lambda d: "/login" in d.current_url, "redirected to the login page")
    ui.find("#username").send_keys("guest")
    ui.find("#password").send_keys("not-the-password")
    ui.find("form.login button[type=submit]").click()
    assert "wrong username or password" in ui.visible("#login-error").text
    assert ui.h1() == "Log in"
    assert not ui.find_all("nav[aria-label=Main]")


def test_logging_in_goes_to_the_page_asked_for(ui: Ui) -> None:
    ui.login(path="/vhosts")
    ui.wait(lambda d: d.current_url.endswith("/vhosts"), "back on /vhosts")
    assert ui.h1() == "Virtual hosts"
    assert ui.row("#vhosts", "/").find_element(By.CSS_SELECTOR, "th").text == "/"


def test_the_keyboard_reaches_the_main_navigation(ui: Ui, driver: WebDriver) -> None:
    ui.login()
    ui.go("/")
    body = ui.find("body")
    body.send_keys(Keys.TAB)
    skip = driver.switch_to.active_element
    assert skip.text == "Skip to main content"
    target = None
    for _ in range(15):
        driver.switch_to.active_element.send_keys(Keys.TAB)
        active = driver.switch_to.active_element
        if active.text == "Queues":
            target = active
            break
    assert target is not None, "tabbing never reached the Queues link"
    assert (
        driver.execute_script("return arguments[0].closest('nav').getAttribute('aria-label')", target)
        == "Main"
    )
    # focus is visible: an outline is drawn around the focused link
    assert driver.execute_script("return getComputedStyle(arguments[0]).outlineStyle", target) != "none"
    target.send_keys(Keys.ENTER)
    ui.wait(lambda d: d.current_url.endswith("/queues"), "on the queues page")
    assert ui.h1() == "Queues"
    assert ui.find('nav a[aria-current="page"]').text == "Queues"


def test_the_skip_link_moves_focus_to_the_main_content(ui: Ui, driver: WebDriver) -> None:
    ui.login()
    ui.go("/users")
    ui.find("body").send_keys(Keys.TAB)
    driver.switch_to.active_element.send_keys(Keys.ENTER)
    ui.wait(lambda d: d.switch_to.active_element.get_attribute("id") == "main", "focus on main")


def test_add_a_user_then_delete_it_from_the_users_page(ui: Ui, driver: WebDriver) -> None:
    ui.login()
    ui.go("/users")
    ui.fill("form.api", {"name": "ui-made", "password": "pw1", "tags": "monitoring"})
    assert ui.submit("form.api") == "User ui-made saved."
    ui.wait(lambda d: ui.has_row("#users", "ui-made"), "the new user's row")
    assert ui.row_texts("#users", "ui-made") == ["ui-made", "monitoring", "Delete"]
    users = http_json(ui.url + "/api/users")
    assert isinstance(users, list)
    assert {"name": "ui-made", "tags": ["monitoring"]}.items() <= next(
        u for u in users if u["name"] == "ui-made"
    ).items()
    ui.row("#users", "ui-made").find_element(By.CSS_SELECTOR, "button.action").click()
    driver.switch_to.alert.accept()
    ui.wait(lambda d: not ui.has_row("#users", "ui-made"), "the row gone")
    assert all(u["name"] != "ui-made" for u in http_json(ui.url + "/api/users"))  # type: ignore[union-attr]


def test_a_bad_form_value_is_refused_before_sending(ui: Ui) -> None:
    ui.login()
    ui.go("/policies")
    ui.fill("form.api", {"name": "p1", "pattern": "^q", "definition": "{not json"})
    assert ui.submit("form.api") == "Definition (JSON): not valid JSON"
    ui.fill("form.api", {"definition": '{"max-length": 5}'})
    assert ui.submit("form.api") == "Policy p1 saved."
    ui.wait(lambda d: ui.has_row("#policies", "//p1"), "the policy's row")
    ui.fill("form.api", {"name": "p2", "definition": '{"no-such-key": 1}'})
    assert ui.submit("form.api").startswith("Failed: ")  # the API's reason, shown


def test_log_out(ui: Ui) -> None:
    ui.login()
    ui.go("/")
    ui.find("form.logout button").click()
    ui.wait(lambda d: "/login" in d.current_url, "on the login page")
    ui.go("/")
    ui.wait(lambda d: "/login" in d.current_url, "pages need a login again")


def test_the_script_formats_values_as_the_server_does(ui: Ui, driver: WebDriver) -> None:
    """Tables are rendered by the server first and by ui.js after: the same value must look
    the same from both."""
    ui.login()
    ui.go("/")
    cases = [
        (1234567, "int"),
        (0, "int"),
        (2.345, "rate"),
        (0, "rate"),
        (True, "bool"),
        (False, "bool"),
        (512, "bytes"),
        (5 * 1024 * 1024, "bytes"),
        (1764660000123, "time"),
        ({"x-max-length": 5, "h": ["a", 1]}, "json"),
        ({}, "json"),
        (["administrator", "monitoring"], "list"),
        ("plain <b>text</b>", "text"),
        (None, "text"),
        (None, "int"),
    ]
    for value, kind in cases:
        shown = driver.execute_script(  # as JSON text, as the API sends it (keys in order)
            "return window.jackalope.fmt(JSON.parse(arguments[0]), arguments[1])", json.dumps(value), kind
        )
        assert shown == fmt(value, kind), (value, kind)
    row = {"vhost": "/", "name": "a b", "empty": ""}
    for template in ("/queues/{vhost}/{name}", "/exchanges/{vhost}/{empty:amq.default}"):
        shown = driver.execute_script(
            "return window.jackalope.fill(arguments[0], arguments[1])", template, row
        )
        assert shown == fill(template, row)
