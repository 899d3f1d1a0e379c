"""End-to-end in headless Chromium (Debian `chromium` + `chromium-driver`, driven by Selenium).

`make browser-deps` installs them (apt-get, root). The test skips, saying why, only when no chromium and
chromedriver binaries can be found.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import image_corpus
import pytest

SHOTS = Path(os.environ.get("OUTFIT_SCREENSHOT_DIR", "/tmp/outfit-compat-screens"))


def _binary(*names: str) -> str | None:
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    chrome = _binary("chromium", "chromium-browser", "google-chrome")
    driver_path = _binary("chromedriver", "chromium-driver")
    if chrome is None or driver_path is None:
        pytest.skip("no chromium/chromedriver on PATH; install them with `make browser-deps`")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = chrome
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000",
                "--disable-gpu"):
        opts.add_argument(arg)
    drv = webdriver.Chrome(service=Service(executable_path=driver_path), options=opts)
    drv.set_page_load_timeout(60)
    try:
        yield drv
    finally:
        drv.quit()


def test_upload_browse_build_outfit_and_score(
    browser: Any, default_server: Any, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import Select, WebDriverWait

    srv = default_server
    wait = WebDriverWait(browser, 30)
    SHOTS.mkdir(parents=True, exist_ok=True)
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(image_corpus.jpeg_bytes((120, 160)))

    browser.get(srv.url + "/")
    wait.until(lambda d: "items" in d.find_element(By.ID, "status").text)
    assert "300 items" in browser.find_element(By.ID, "status").text

    # 1. upload a photo -> complementary items grouped by category, with pictures
    browser.find_element(By.ID, "photo-input").send_keys(str(photo))
    browser.find_element(By.ID, "photo-btn").click()
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#results .group .card")))
    groups = browser.find_elements(By.CSS_SELECTOR, "#results .group")
    assert len(groups) >= 2
    info = browser.find_element(By.ID, "query-info").text
    assert "inferred" in info
    inferred = info.split("looks like ")[1].split(" (")[0]
    assert inferred not in {g.get_attribute("data-category") for g in groups}
    wait.until(lambda d: all(
        d.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0", img)
        for img in d.find_elements(By.CSS_SELECTOR, "#results img")[:6]
    ))
    browser.save_screenshot(str(SHOTS / "1-complements.png"))

    # 2. build an outfit from two suggestions plus the photo, and see its score and weakest item
    for group in groups[:2]:
        group.find_element(By.CSS_SELECTOR, ".add-btn").click()
    browser.find_element(By.ID, "photo-add-btn").click()
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#outfit .card")) == 3)
    wait.until(lambda d: d.find_element(By.ID, "score").text.startswith("Compatibility"))
    assert "Weakest item" in browser.find_element(By.ID, "weakest").text
    assert len(browser.find_elements(By.CSS_SELECTOR, "#outfit .card.weakest")) == 1
    width = browser.execute_script("return document.getElementById('score-bar').style.width")
    assert width.endswith("%") and 0 <= int(width[:-1]) <= 100

    # 3. browse the catalog, add an item, ask for complements of the whole outfit
    Select(browser.find_element(By.ID, "browse-category")).select_by_value("shoes")
    browser.find_element(By.ID, "browse-btn").click()
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#browse-grid .card")))
    # A browsed item not in the outfit yet (the page ignores adding one twice; a suggestion may be a shoe).
    in_outfit = {c.get_attribute("data-id") for c in browser.find_elements(By.CSS_SELECTOR, "#outfit .card")}
    fresh = [c for c in browser.find_elements(By.CSS_SELECTOR, "#browse-grid .card")
             if c.get_attribute("data-id") not in in_outfit]
    fresh[0].find_element(By.CSS_SELECTOR, ".add-btn").click()
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#outfit .card")) == 4)
    browser.find_element(By.ID, "outfit-btn").click()
    wait.until(lambda d: d.find_element(By.ID, "query-info").text.startswith("Query:"))
    outfit_ids = {c.get_attribute("data-id") for c in browser.find_elements(By.CSS_SELECTOR, "#outfit .card")}
    shown = {c.get_attribute("data-id") for c in browser.find_elements(By.CSS_SELECTOR, "#results .card")}
    assert shown and not shown & outfit_ids
    assert "shoes" not in {g.get_attribute("data-category")
                           for g in browser.find_elements(By.CSS_SELECTOR, "#results .group")}
    browser.save_screenshot(str(SHOTS / "2-outfit.png"))

    # 4. a bad id shows the API's message instead of failing silently
    browser.find_element(By.ID, "item-id").send_keys("no-such-item")
    browser.find_element(By.ID, "item-add-btn").click()
    wait.until(lambda d: "no-such-item" in d.find_element(By.ID, "error").text)


def test_filter_controls_restrict_the_results(browser: Any, shop_server: Any, shop: Any) -> None:
    """Price range, in stock and the catalog's attributes, built from /v1/filters, change what is shown."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    wait = WebDriverWait(browser, 30)
    SHOTS.mkdir(parents=True, exist_ok=True)
    rows = {r["item_id"]: r for r in shop.rows}
    browser.get(shop_server.url + "/")
    wait.until(lambda d: d.find_element(By.ID, "filters").is_displayed())
    assert browser.find_element(By.ID, "filter-attr-in_stock").get_attribute("type") == "checkbox"
    assert "in stock only" in browser.find_element(By.ID, "filter-attributes").text
    brands = Select(browser.find_element(By.ID, "filter-attr-brand"))
    assert brands.is_multiple and {o.get_attribute("value") for o in brands.options} == {r["brand"] for r in shop.rows}
    assert browser.find_element(By.ID, "filter-attr-size").get_attribute("data-kind") == "number"
    assert float(browser.find_element(By.ID, "filter-price-max").get_attribute("placeholder")) >= max(
        r["price"] for r in shop.rows)

    def shown() -> list[str]:
        return [c.get_attribute("data-id") for c in browser.find_elements(By.CSS_SELECTOR, "#results .card")]

    browser.find_element(By.ID, "item-id").send_keys("P-0000")
    browser.find_element(By.ID, "item-add-btn").click()
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#outfit .card")) == 1)
    browser.find_element(By.ID, "outfit-btn").click()
    wait.until(lambda d: d.find_element(By.ID, "results").get_attribute("data-filters") == "{}" and shown())
    unfiltered = shown()

    browser.find_element(By.ID, "filter-price-max").send_keys("120")
    browser.find_element(By.ID, "filter-attr-in_stock").click()
    brands.select_by_value("acme")
    brands.select_by_value("corto")
    browser.find_element(By.ID, "filter-apply").click()
    want = {"price_max": 120, "in_stock": True, "brand": ["acme", "corto"]}
    wait.until(lambda d: d.find_element(By.ID, "results").get_attribute("data-filters") != "{}")
    import json

    assert json.loads(browser.find_element(By.ID, "results").get_attribute("data-filters")) == want
    assert browser.find_element(By.ID, "filter-summary").text == "3 filters active"
    filtered = shown()
    assert filtered and filtered != unfiltered
    for item_id in filtered:
        r = rows[item_id]
        assert r["price"] <= 120 and r["in_stock"] and r["brand"] in ("acme", "corto"), r
    browser.save_screenshot(str(SHOTS / "3-filters.png"))

    # A malformed number list is refused on the page, with a message, before any request.
    browser.find_element(By.ID, "filter-attr-size").send_keys("38, large")
    browser.find_element(By.ID, "filter-apply").click()
    wait.until(lambda d: "size" in d.find_element(By.ID, "error").text)

    browser.find_element(By.ID, "filter-clear").click()
    wait.until(lambda d: d.find_element(By.ID, "results").get_attribute("data-filters") == "{}")
    assert shown() == unfiltered and browser.find_element(By.ID, "filter-summary").text == ""


def test_complete_the_look_with_diversity_switch(browser: Any, default_server: Any, tmp_path: Path) -> None:
    """Issue 14: whole outfits side by side with their scores; the diversity switch re-asks with variety."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import Select, WebDriverWait

    wait = WebDriverWait(browser, 30)
    SHOTS.mkdir(parents=True, exist_ok=True)
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(image_corpus.jpeg_bytes((110, 150)))
    browser.get(default_server.url + "/")
    wait.until(lambda d: "items" in d.find_element(By.ID, "status").text)
    Select(browser.find_element(By.ID, "browse-category")).select_by_value("tops")
    browser.find_element(By.ID, "browse-btn").click()
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#browse-grid .card")))
    browser.find_element(By.CSS_SELECTOR, "#browse-grid .card .add-btn").click()
    seed = browser.find_element(By.CSS_SELECTOR, "#browse-grid .card").get_attribute("data-id")
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#outfit .card")) == 1)

    def looks() -> list[list[str]]:
        return [[c.get_attribute("data-ref") for c in look.find_elements(By.CSS_SELECTOR, ".card")]
                for look in browser.find_elements(By.CSS_SELECTOR, "#looks .look")]

    browser.find_element(By.ID, "complete-btn").click()
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#looks .look")) == 3)
    plain = looks()
    assert all(refs[0] == seed and len(refs) >= 2 for refs in plain)
    assert len({tuple(r) for r in plain}) == 3  # the outfits differ
    scores = [h.text for h in browser.find_elements(By.CSS_SELECTOR, "#looks .look-score")]
    assert all("compatibility" in s for s in scores)
    values = [float(s.rsplit(" ", 1)[1]) for s in scores]
    assert values == sorted(values, reverse=True)
    assert browser.find_elements(By.CSS_SELECTOR, "#looks .card .pair")  # readable pair scores
    assert "partial outfits scored" in browser.find_element(By.ID, "look-info").text

    browser.find_element(By.ID, "diversity-switch").click()  # re-asks at once with diversity 0.7
    wait.until(lambda d: d.find_element(By.ID, "looks").get_attribute("data-diversity") == "0.7")
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#looks .look")) == 3)
    varied = looks()
    assert all(refs[0] == seed for refs in varied) and len({tuple(r) for r in varied}) == 3

    # a photo in the outfit: sent as a seed, its category inferred and shown with a confidence
    browser.find_element(By.ID, "photo-input").send_keys(str(photo))
    browser.find_element(By.ID, "photo-add-btn").click()
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#outfit .card")) == 2)
    Select(browser.find_element(By.ID, "complete-n")).select_by_visible_text("2")
    browser.find_element(By.ID, "complete-btn").click()
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#looks .look")) == 2
               and "%)" in d.find_element(By.ID, "look-info").text)
    assert all("upload:0" in refs for refs in looks())
    wait.until(lambda d: all(
        d.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0", img)
        for img in d.find_elements(By.CSS_SELECTOR, "#looks img")[:8]
    ))
    browser.execute_script("document.getElementById('look-panel').scrollIntoView()")
    browser.save_screenshot(str(SHOTS / "4-complete-the-look.png"))
    assert (SHOTS / "4-complete-the-look.png").stat().st_size > 10_000
