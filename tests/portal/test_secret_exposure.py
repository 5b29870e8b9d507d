"""A client secret's value appears on exactly one page: the response that created it.

After creating a secret through the portal, this crawls every portal page reachable by links from
Home (as a Global Administrator, who sees the most) and searches each for the value.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import urljoin, urlsplit

from tests.portal.conftest import PortalClient

LINK = re.compile(r'<(?:a|img)\b[^>]*?(?:href|src)="([^"#]+)"')
NEW_SECRET = re.compile(r'id="new-secret-value"[^>]*>\s*([^<\s]+)\s*<')
MAX_PAGES = 400


def crawl(client: PortalClient, start: str = "/portal/") -> dict[str, str]:
    """Every same-portal page reachable from ``start`` by GET, keyed by path."""
    seen: dict[str, str] = {}
    queue = [start]
    while queue and len(seen) < MAX_PAGES:
        path = queue.pop()
        if path in seen:
            continue
        response = client.get(path)
        seen[path] = response.text if response.headers["content-type"].startswith("text") else ""
        for link in LINK.findall(seen[path]):
            target = urlsplit(urljoin(f"https://testserver{path}", link.replace("&amp;", "&")))
            url = target.path + (f"?{target.query}" if target.query else "")
            if target.netloc == "testserver" and target.path.startswith("/portal/"):
                queue.append(url)
    return seen


def create_secret(client: PortalClient, description: str) -> tuple[str, str]:
    created = client.submit("/portal/apps/new", {"name": "Crawled client"})
    app_path = created.url.path
    response = client.submit(
        f"{app_path}/credentials/secrets/new", {"description": description, "expires": "180"}
    )
    match = NEW_SECRET.search(response.text)
    assert response.status_code == 200 and match, response.text
    return match.group(1), response.text


def test_secret_value_is_only_on_its_creation_page(
    signed_in: Callable[[str], PortalClient],
) -> None:
    client = signed_in("global-admin")
    value, creation_page = create_secret(client, "crawl me")
    assert value in creation_page
    pages = crawl(client)
    assert len(pages) >= 15, sorted(pages)  # the crawl really covered the portal
    assert any("crawl me" in html for html in pages.values())  # the secret's row is listed
    leaking = [path for path, html in pages.items() if value in html]
    assert leaking == []
    # Only the first three characters (the hint) are ever shown again.
    assert any(value[:3] in html for html in pages.values())
