"""A real moto S3 server on a loopback address, started and stopped by the test that needs it."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from support.env import free_port

KEY = "testing"
SECRET = "testing"


@dataclass
class MotoS3:
    proc: subprocess.Popen
    url: str

    def client(self):
        import boto3

        return boto3.client("s3", endpoint_url=self.url, aws_access_key_id=KEY, aws_secret_access_key=SECRET,
                            region_name="us-east-1")

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return [o["Key"] for p in pages for o in p.get("Contents", [])]

    def env(self, uri: str, secret: str = SECRET) -> dict[str, str]:
        """STUDIO_* variables for a store at `uri` on this server."""
        return {"STUDIO_STORE__URI": uri, "STUDIO_STORE__S3_ENDPOINT_URL": self.url,
                "STUDIO_STORE__S3_KEY": KEY, "STUDIO_STORE__S3_SECRET": secret,
                "STUDIO_STORE__S3_REGION": "us-east-1"}

    def options(self) -> dict:
        return {"key": KEY, "secret": SECRET, "client_kwargs": {"endpoint_url": self.url}}

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def start_moto(*buckets: str, host: str = "127.0.0.1") -> MotoS3:
    port = free_port()
    exe = Path(sys.executable).parent / "moto_server"
    proc = subprocess.Popen([str(exe), "-H", host, "-p", str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    url = f"http://{host}:{port}"
    for _ in range(150):
        try:
            urllib.request.urlopen(url, timeout=1)
            break
        except Exception:  # noqa: BLE001 - not up yet
            time.sleep(0.2)
    moto = MotoS3(proc, url)
    for b in buckets:
        moto.client().create_bucket(Bucket=b)
    return moto
