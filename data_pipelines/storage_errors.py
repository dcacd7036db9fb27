"""The one-line errors of object stores (data_pipelines.storage): a missing bucket or object,
denied access, a server gone (also mid-read), each naming the URL and what to do."""

from __future__ import annotations

import os
from typing import Callable


class StorageError(OSError):
  """An object-store operation failed; the message names the URL and what to do."""

  def __init__(self, url: str, what: str, todo: str):
    self.url, self.what, self.todo = url, what, todo
    super().__init__(f"{url}: {what}; {todo}")


class StorageNotFoundError(StorageError, FileNotFoundError):
  """A missing bucket or object."""


class StorageDeniedError(StorageError, PermissionError):
  """Access denied by the store."""


def _endpoint_hint(url: str) -> str:
  if url.startswith(("gs://", "gcs://")):
    host = os.environ.get("STORAGE_EMULATOR_HOST")
    return f"the GCS endpoint {host} (STORAGE_EMULATOR_HOST)" if host else "GCS"
  if url.startswith(("s3://", "s3a://")):
    host = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    return f"the S3 endpoint {host} (AWS_ENDPOINT_URL)" if host else "S3"
  return "the server"


def bucket_of(url: str) -> str:
  scheme, rest = url.split("://", 1)
  return f"{scheme}://{rest.split('/', 1)[0]}"


def _is_connection_error(e: BaseException) -> bool:
  names = {c.__name__ for c in type(e).__mro__}
  return bool(names & {"ConnectionError", "ClientConnectorError", "ServerDisconnectedError",
                       "ClientOSError", "ClientPayloadError", "EndpointConnectionError",
                       "ConnectionClosedError", "ReadTimeoutError", "TimeoutError",
                       "ConnectTimeoutError", "ClientConnectionError", "IncompleteRead"})


def translate(e: BaseException, url: str,
              bucket_exists: Callable[[str], bool | None]) -> BaseException:
  """The StorageError for an object-store exception raised on `url` (others unchanged);
  `bucket_exists(url)` tells a missing bucket from a missing object (None: unknown)."""
  if isinstance(e, StorageError) or "://" not in url:
    return e
  text = " ".join(str(e).split())[:200]
  if isinstance(e, PermissionError) or "403" in text or "AccessDenied" in text:
    return StorageDeniedError(url, f"access denied ({text})",
                              "check the credentials (GOOGLE_APPLICATION_CREDENTIALS, AWS_*) "
                              "and that they may read/write this bucket")
  if isinstance(e, FileNotFoundError) or "NoSuchBucket" in text or "NoSuchKey" in text:
    if bucket_exists(url) is False:
      return StorageNotFoundError(url, f"the bucket {bucket_of(url)} does not exist",
                                  "create it (gcloud storage buckets create / aws s3 mb) "
                                  "or fix the bucket name")
    return StorageNotFoundError(url, "no such object", "check the path")
  if _is_connection_error(e):
    return StorageError(url, f"lost the connection to {_endpoint_hint(url)} ({text})",
                        "check the network or the endpoint variable, then rerun "
                        "(training resumes from its last checkpoint)")
  return e
