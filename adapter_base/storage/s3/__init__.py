"""The S3 backend, one module per concern.

- ``config``: the ``s3://`` URI, the endpoint, settings from the environment, credential checks
- ``errors``: what a failed request means (status and S3 code, on any server) and how it is worded
- ``store``: ``S3Store``, the object operations
- ``listing``: key-order listing, flat (S3, MinIO, rclone) or by directory walk (SeaweedFS)
- ``reader``: a streaming read that resumes after a dropped connection, one version only
"""

from .config import (
    DEFAULT_ENDPOINT,
    ENV_LIST_MODE,
    ENV_PATH_STYLE,
    ENV_RETRY_DEADLINE,
    LIST_MODES,
    parse_endpoint,
    parse_s3_uri,
)
from .errors import S3Failure, is_transient, s3_failure
from .store import DOWNLOAD_CHUNK, GET_FILE_RESTARTS, S3Store

__all__ = [
    "DEFAULT_ENDPOINT",
    "DOWNLOAD_CHUNK",
    "ENV_LIST_MODE",
    "ENV_PATH_STYLE",
    "ENV_RETRY_DEADLINE",
    "GET_FILE_RESTARTS",
    "LIST_MODES",
    "S3Failure",
    "S3Store",
    "is_transient",
    "parse_endpoint",
    "parse_s3_uri",
    "s3_failure",
]
