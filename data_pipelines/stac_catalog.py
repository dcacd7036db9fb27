"""STAC items from where they are published: a static catalog, an ItemCollection, a
STAC-GeoParquet file or a STAC API search.

Every reader returns plain item dicts (STAC JSON), each with its own `self` link resolved to
an absolute href so that relative asset hrefs can be resolved later (`stac_assets`):

* a static catalog or collection (`catalog.json`, `collection.json`): its `child` and `item`
  links are followed recursively;
* an ItemCollection (GeoJSON FeatureCollection of items) or a single item JSON;
* a STAC-GeoParquet file (`.parquet` / `.geoparquet`): one row per item; `id`, `bbox`,
  `assets`, `links`, `collection`, `stac_version`, `stac_extensions` and `geometry` (WKB) are
  columns, every other column is an item property (the stac-geoparquet layout);
* a STAC API search (`https://.../search`): `POST` with the JSON body given as `search`
  (collections, bbox, datetime, query, ...), following `next` links.

Local paths and any fsspec URL (http(s)://, gs://, s3://) are read through data_pipelines.storage.
"""

from __future__ import annotations

import datetime as dt
import json
import posixpath
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

from data_pipelines import storage
from data_pipelines.errors import BadInputError

PARQUET_SUFFIXES = (".parquet", ".geoparquet")
_ITEM_COLUMNS = ("id", "bbox", "assets", "links", "collection", "stac_version",
                 "stac_extensions", "geometry", "type")
_SEARCH_TIMEOUT_S = 60


def is_url(href: str) -> bool:
  return "://" in href and not href.startswith("file://")


def resolve_href(href: str, base: str) -> str:
  """`href` made absolute against the document it appears in (`base`: path or URL)."""
  if is_url(href) or href.startswith("/"):
    return href
  if href.startswith("file://"):
    return href[len("file://"):]
  if is_url(base):   # urljoin knows http(s) only: join the path of any scheme by hand
    parts = urllib.parse.urlsplit(base)
    path = posixpath.normpath(posixpath.join(posixpath.dirname(parts.path), href))
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, path, "", ""))
  return posixpath.normpath(posixpath.join(posixpath.dirname(base), href))


def read_json(href: str) -> dict[str, Any]:
  """A JSON document from a path or fsspec URL (BadInputError naming it otherwise)."""
  try:
    with storage.open(href, "rb") as f:
      return json.loads(f.read())
  except FileNotFoundError as e:
    raise BadInputError(href, "file", "not found") from e
  except ValueError as e:
    raise BadInputError(href, "file", f"not JSON: {e}") from e
  except Exception as e:  # aiohttp/botocore/gcsfs errors: unreachable server, denied access
    raise BadInputError(href, "file", f"cannot read: {type(e).__name__}: {e}") from e


def _with_self(item: dict[str, Any], href: str) -> dict[str, Any]:
  links = [l for l in item.get("links", []) or [] if l.get("rel") != "self"]
  return {**item, "links": links + [{"rel": "self", "href": href}]}


def self_href(item: dict[str, Any]) -> str:
  """The item's own href ('' when it has none, e.g. rows of an API search)."""
  for link in item.get("links", []) or []:
    if link.get("rel") == "self":
      return str(link.get("href", ""))
  return ""


def _walk(doc: dict[str, Any], href: str, seen: set[str]) -> Iterator[dict[str, Any]]:
  """Items of a catalog/collection/ItemCollection/item document at `href`."""
  kind = doc.get("type")
  if kind == "Feature":
    yield _with_self(doc, href)
    return
  if kind == "FeatureCollection":
    for i, feature in enumerate(doc.get("features", [])):
      own = self_href(feature)
      yield _with_self(feature, resolve_href(own, href) if own else f"{href}#{i}")
    return
  if kind not in ("Catalog", "Collection"):
    raise BadInputError(href, "type", f"not a STAC catalog, collection, ItemCollection or "
                        f"item (type {kind!r})")
  for link in doc.get("links", []):
    if link.get("rel") not in ("child", "item"):
      continue
    target = resolve_href(str(link["href"]), href)
    if target in seen:
      continue
    seen.add(target)
    yield from _walk(read_json(target), target, seen)


def _prune(value: Any) -> Any:
  """Parquet struct columns hold the union of all rows' keys: drop the absent (None) ones;
  timestamp columns (stac-geoparquet's datetime) become ISO 8601 text as in STAC JSON."""
  if isinstance(value, dict):
    return {k: _prune(v) for k, v in value.items() if v is not None}
  if isinstance(value, list):
    return [_prune(v) for v in value]
  if isinstance(value, dt.datetime):
    text = value.isoformat()
    return text[:-len("+00:00")] + "Z" if text.endswith("+00:00") else text
  if isinstance(value, dt.date):
    return value.isoformat()
  return value


def read_geoparquet(href: str) -> list[dict[str, Any]]:
  """Items of a STAC-GeoParquet file (one row per item)."""
  import pyarrow.parquet as pq  # pylint: disable=g-import-not-at-top
  try:
    with storage.open(href, "rb") as f:
      rows = pq.read_table(f).to_pylist()
  except FileNotFoundError as e:
    raise BadInputError(href, "file", "not found") from e
  except Exception as e:  # pyarrow.ArrowInvalid and transport errors
    raise BadInputError(href, "file", f"cannot read STAC-GeoParquet: {e}") from e
  items = []
  for i, row in enumerate(rows):
    if not row.get("id") or not isinstance(row.get("assets"), dict):
      raise BadInputError(href, f"row {i}", "a STAC-GeoParquet row needs 'id' and 'assets'")
    bbox = row.get("bbox")
    if isinstance(bbox, dict):   # stac-geoparquet writes bbox as {xmin, ymin, xmax, ymax}
      bbox = [bbox["xmin"], bbox["ymin"], bbox["xmax"], bbox["ymax"]]
    item = {"type": "Feature", "stac_version": row.get("stac_version") or "1.0.0",
            "stac_extensions": list(row.get("stac_extensions") or []), "id": row["id"],
            "bbox": bbox, "assets": _prune(row["assets"]),
            "links": _prune(row.get("links") or []),
            "properties": {k: _prune(v) for k, v in row.items()
                           if k not in _ITEM_COLUMNS and v is not None}}
    if row.get("collection"):
      item["collection"] = row["collection"]
    own = self_href(item)
    items.append(_with_self(item, resolve_href(own, href) if own else f"{href}#{i}"))
  return items


def _request_json(url: str, body: dict[str, Any] | None) -> dict[str, Any]:
  """POST `body` as JSON to `url` (GET when body is None); the answer's JSON."""
  data = None if body is None else json.dumps(body).encode()
  req = urllib.request.Request(url, data=data, method="GET" if body is None else "POST",
                               headers={"Content-Type": "application/json",
                                        "Accept": "application/geo+json"})
  try:
    with urllib.request.urlopen(req, timeout=_SEARCH_TIMEOUT_S) as resp:
      return json.loads(resp.read())
  except (OSError, ValueError) as e:   # URLError/HTTPError are OSErrors
    raise BadInputError(url, "search", f"STAC API search failed: {e}") from e


def _next_page(doc: dict[str, Any], body: dict[str, Any] | None):
  """(url, body) of the page after `doc` (body None: GET), or None on the last page."""
  link = next((l for l in doc.get("links", []) if l.get("rel") == "next"), None)
  if link is None:
    return None
  if link.get("method", "GET").upper() != "POST":
    return str(link["href"]), None
  extra = link.get("body", {})
  return str(link["href"]), ({**(body or {}), **extra} if link.get("merge") else extra)


def search(url: str, body: dict[str, Any], max_items: int | None = None
           ) -> list[dict[str, Any]]:
  """Items of a STAC API `POST /search` (following `next` links up to `max_items`)."""
  items: list[dict[str, Any]] = []
  page: tuple[str, dict[str, Any] | None] | None = (url, dict(body))
  while page is not None and (max_items is None or len(items) < max_items):
    doc = _request_json(*page)
    for feature in doc.get("features", []):
      own = self_href(feature)
      items.append(_with_self(feature, own or f"{url}#{feature.get('id', len(items))}"))
    page = _next_page(doc, page[1])
  return items[:max_items] if max_items is not None else items


def load_items(href: str, *, search_body: dict[str, Any] | None = None,
               max_items: int | None = None) -> list[dict[str, Any]]:
  """The items behind one `--input`: a search URL (ending in /search, or any URL when
  `search_body` is given), a STAC-GeoParquet file, or a catalog/collection/ItemCollection/item
  JSON."""
  if is_url(href) and (href.rstrip("/").endswith("/search") or search_body is not None):
    return search(href, search_body or {}, max_items)
  if href.lower().endswith(PARQUET_SUFFIXES):
    items = read_geoparquet(href)
  else:
    items = list(_walk(read_json(href), href, {href}))
  return items[:max_items] if max_items is not None else items
