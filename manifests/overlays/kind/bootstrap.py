"""kind bootstrap: store bucket, digits demo dataset, demo model. Idempotent.

Runs in the project image (Job model-adapter-bootstrap). Settings come from
the environment: the store ConfigMap/Secret (MODEL_ADAPTER_STORE,
AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY) and the
pipelines ConfigMap (SUBMIT_DATASET, SUBMIT_MODEL, SUBMIT_ADAPTER).
"""

import os
import subprocess
import sys
import time
import urllib.parse

import urllib3
from minio import Minio
from minio.error import S3Error, ServerError

from adapter_base.registry import layout


def setting(name: str) -> str:
    value = os.environ.get(name, "")
    if not value:
        sys.exit(f"bootstrap: {name} is not set")
    return value


def say(message: str) -> None:
    print(f"bootstrap: {message}", flush=True)


# S3 error codes that waiting does not cure: the credentials are wrong.
AUTH_ERRORS = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "InvalidToken"}


def wait_for_bucket(client: Minio, bucket: str, endpoint: str, timeout: float = 300.0) -> bool:
    """Whether ``bucket`` exists, once the S3 API at ``endpoint`` answers (any S3 server)."""
    deadline = time.monotonic() + timeout
    last: object = "no answer"
    while True:
        try:
            return client.bucket_exists(bucket)
        except S3Error as exc:
            if exc.code in AUTH_ERRORS:
                sys.exit(
                    f"bootstrap: the store at {endpoint} refused the credentials of Secret "
                    f"model-adapter-store-credentials ({exc.code}: {exc.message})"
                )
            last = f"{exc.code}: {exc.message}"
        except (ServerError, urllib3.exceptions.HTTPError, OSError) as exc:
            last = exc
        if time.monotonic() > deadline:
            sys.exit(f"bootstrap: the store at {endpoint} did not answer S3 requests within {timeout:.0f}s: {last}")
        time.sleep(3)


def main() -> None:
    store = setting("MODEL_ADAPTER_STORE")
    endpoint = setting("AWS_ENDPOINT_URL")
    dataset, model, adapter = setting("SUBMIT_DATASET"), setting("SUBMIT_MODEL"), setting("SUBMIT_ADAPTER")

    parsed = urllib.parse.urlparse(store)
    if parsed.scheme != "s3" or not parsed.netloc:
        sys.exit(f"bootstrap: MODEL_ADAPTER_STORE must be s3://bucket[/prefix], got {store!r}")
    bucket, prefix = parsed.netloc, parsed.path.strip("/")

    ep = urllib.parse.urlparse(endpoint)
    client = Minio(
        ep.netloc,
        access_key=setting("AWS_ACCESS_KEY_ID"),
        secret_key=setting("AWS_SECRET_ACCESS_KEY"),
        secure=ep.scheme == "https",
        region=os.environ.get("AWS_REGION") or None,
        # Short connect timeout and few retries: wait_for_bucket does the waiting.
        http_client=urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=5, read=60), retries=urllib3.Retry(total=2, backoff_factor=0.5)
        ),
    )
    say(f"waiting for the store at {endpoint}")
    if wait_for_bucket(client, bucket, endpoint):
        say(f"bucket {bucket} exists")
    else:
        try:
            client.make_bucket(bucket)
            say(f"created bucket {bucket}")
        except S3Error as exc:
            if exc.code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise
            say(f"bucket {bucket} exists")

    def exists(key: str) -> bool:
        try:
            client.stat_object(bucket, f"{prefix}/{key}" if prefix else key)
            return True
        except S3Error as exc:
            if exc.code in ("NoSuchKey", "NoSuchObject"):
                return False
            raise

    def run(*args: str) -> None:
        command = ["model-adapter", *args, "--store", store]
        say("$ " + " ".join(command))
        subprocess.run(command, check=True)

    if exists(layout.dataset_name(dataset)):
        say(f"dataset {dataset} exists")
    else:
        run("dataset", "import", "digits", "--name", dataset)
    if exists(layout.model_name(model)):
        say(f"model {model} exists")
    else:
        run("model", "create", "--name", model, "--dataset", dataset, "--adapter", adapter)
    say("done")


if __name__ == "__main__":
    main()
