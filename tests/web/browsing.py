"""What the Chromium tests share beyond their fixtures."""

from __future__ import annotations

from selenium.common.exceptions import StaleElementReferenceException, WebDriverException

# A page being replaced by the next one: Chromium may answer for an element of the old document with
# "Node ... does not belong to the document", a plain WebDriverException; a wait tries again.
NAVIGATING = (StaleElementReferenceException, WebDriverException)
