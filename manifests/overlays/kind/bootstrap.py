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
import urllib.error
import urllib.parse
import urllib.request

from minio import Minio
from minio.error import S3Error

from adapter_base.registry import layout


def setting(name: str) -> str:
    value = os.environ.get(name, "")
    if not value:
        sys.exit(f"bootstrap: {name} is not set")
    return value


def say(message: str) -> None:
    print(f"bootstrap: {message}", flush=True)


def wait_ready(endpoint: str, timeout: float = 300.0) -> None:
    url = endpoint.rstrip("/") + "/minio/health/ready"
    deadline = time.monotonic() + timeout
    last: object = "no answer"
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
                last = f"HTTP {response.status}"
        except (urllib.error.URLError, OSError) as exc:
            last = exc
        if time.monotonic() > deadline:
            sys.exit(f"bootstrap: store endpoint {url} not ready after {timeout:.0f}s: {last}")
        time.sleep(3)


def main() -> None:
    store = setting("MODEL_ADAPTER_STORE")
    endpoint = setting("AWS_ENDPOINT_URL")
    dataset, model, adapter = setting("SUBMIT_DATASET"), setting("SUBMIT_MODEL"), setting("SUBMIT_ADAPTER")

    parsed = urllib.parse.urlparse(store)
    if parsed.scheme != "s3" or not parsed.netloc:
        sys.exit(f"bootstrap: MODEL_ADAPTER_STORE must be s3://bucket[/prefix], got {store!r}")
    bucket, prefix = parsed.netloc, parsed.path.strip("/")

    say(f"waiting for {endpoint}")
    wait_ready(endpoint)
    ep = urllib.parse.urlparse(endpoint)
    client = Minio(
        ep.netloc,
        access_key=setting("AWS_ACCESS_KEY_ID"),
        secret_key=setting("AWS_SECRET_ACCESS_KEY"),
        secure=ep.scheme == "https",
        region=os.environ.get("AWS_REGION") or None,
    )
    if client.bucket_exists(bucket):
        say(f"bucket {bucket} exists")
    else:
        client.make_bucket(bucket)
        say(f"created bucket {bucket}")

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
