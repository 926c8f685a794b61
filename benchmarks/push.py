"""Pushing at scale: target changes and conversion values through the real clients.

Three runs, each against a fake API served over TLS on 127.0.0.1 by a child
process (so the server's Python work does not share the client's interpreter
lock, as with the real API):

- ``targets``: ``--campaigns`` target CPA campaigns (10,000 by default) moved
  to target ROAS by ``apply_target_changes`` through ``GoogleAdsClient``:
  a validate-only pass, then the apply pass.
- ``conversion_upload`` and ``data_manager``: ``--users`` activated users
  (100,000 by default) whose values ``run_feed`` sends once through each
  value-feed sink, with its ledger on SQLite.

For each run it prints the requests the server received, the operations per
request against the API's limit (10,000 operations per mutate, 2,000 events
per upload) and the wall time, split for the feed between the sink's uploads
and the rest (planning and the ledger).

Usage::

    python benchmarks/push.py [--campaigns 10000] [--users 100000]
        [--only targets|conversion_upload|data_manager]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

CUSTOMER = "1234567890"
ACTION = "987654"
DEVELOPER_TOKEN = "dev-token-not-a-real-one"
ACCESS_TOKEN = "offline-access-token"
NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)
MUTATE_LIMIT = 10_000
UPLOAD_LIMIT = 2_000


def signup_time(index: int) -> dt.datetime:
    """Sign-up (and click) time of user ``index``: spread over the last 20 days."""
    return NOW - dt.timedelta(hours=12 + (index * 7) % (20 * 24))


# -- the server side ---------------------------------------------------------


def serve(kind: str, cert_dir: Path, size: int) -> None:
    """Serve one fake on 127.0.0.1, print its port, report its requests on stdin."""
    from tests.fakes.grpc_tls import TlsIdentity, start_tls_server

    identity = TlsIdentity(
        cert_pem=(cert_dir / "loopback-cert.pem").read_bytes(),
        key_pem=(cert_dir / "loopback-key.pem").read_bytes(),
        cert_path=cert_dir / "loopback-cert.pem",
    )
    api: Any
    if kind == "targets":
        from tests.fakes.google_ads import FakeGoogleAdsApi

        api = FakeGoogleAdsApi()
        api.add_customer(CUSTOMER, currency_code="EUR")
        for campaign_id in range(1, size + 1):
            api.add_campaign(
                CUSTOMER, campaign_id, f"c{campaign_id}", target_cpa_micros=40_000_000
            )
    elif kind == "conversion_upload":
        from tests.fakes.conversion_upload_server import FakeConversionUpload

        api = FakeConversionUpload(now=NOW)
        for index in range(size):
            api.clicks[f"gclid-u{index}"] = signup_time(index)
    else:
        from tests.fakes.datamanager_server import FakeDataManager

        api = FakeDataManager()

    server = start_tls_server(api.handlers(), identity, max_workers=2)
    print(server.port, flush=True)
    sys.stdin.readline()
    server.stop()
    print(json.dumps(_server_report(kind, api)), flush=True)


def _server_report(kind: str, api: Any) -> dict[str, Any]:
    if kind == "targets":
        return {
            "requests": [
                {
                    "method": r.method,
                    "operations": r.operations,
                    "validate_only": r.validate_only,
                }
                for r in api.requests
            ],
            "changed": sum(
                campaign.maximize_conversion_value.target_roas > 0
                for campaign in api.customers[CUSTOMER].campaigns.values()
            ),
        }
    if kind == "conversion_upload":
        return {
            "requests": [{"operations": n} for n in api.requests],
            "changed": len(api.conversions),
        }
    return {
        "requests": [{"operations": n} for n in api.request_sizes],
        "changed": len(api.events),
    }


class FakeServer:
    """A fake API in a child process; ``stop`` returns what it received."""

    def __init__(self, kind: str, cert_dir: Path, size: int) -> None:
        self.process = subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--serve",
                kind,
                "--cert-dir",
                str(cert_dir),
                "--size",
                str(size),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        self.target = f"127.0.0.1:{int(self.process.stdout.readline())}"

    def stop(self) -> dict[str, Any]:
        out, _ = self.process.communicate("stop\n", timeout=600)
        report: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
        return report


# -- the client side ---------------------------------------------------------


def push_targets(cert_dir: Path, campaigns: int) -> dict[str, Any]:
    """Apply ``campaigns`` target changes; return timings and server counts."""
    from google.oauth2.credentials import Credentials

    from connectors.google_ads import (
        GoogleAdsSettings,
        TargetChange,
        apply_target_changes,
        open_session,
    )

    server = FakeServer("targets", cert_dir, campaigns)
    try:
        started = time.perf_counter()
        changes = [
            TargetChange(
                customer_id=CUSTOMER,
                campaign_id=str(campaign_id),
                new_target_roas=round(2.0 + (campaign_id % 300) / 100, 2),
                current_strategy="TARGET_CPA",
                portfolio_strategy=None,
                reason="ltv_cac_floor",
            )
            for campaign_id in range(1, campaigns + 1)
        ]
        session = open_session(
            GoogleAdsSettings(customer_ids=[CUSTOMER], endpoint=server.target),
            credentials=Credentials(token=ACCESS_TOKEN),
            environ={"GOOGLE_ADS_DEVELOPER_TOKEN": DEVELOPER_TOKEN},
        )
        sent = time.perf_counter()
        outcomes = apply_target_changes(session, changes)
        finished = time.perf_counter()
    finally:
        report = server.stop()
    applied = sum(o.status == "applied" for o in outcomes)
    return {
        "items": campaigns,
        "delivered": applied,
        "server_changed": report["changed"],
        "requests": report["requests"],
        "seconds": finished - started,
        "send_seconds": finished - sent,
    }


class TimedSink:
    """A value sink that times its inner sink's uploads."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name = inner.name
        self.supports_restatement = inner.supports_restatement
        self.seconds = 0.0

    def login(self) -> None:
        self.inner.login()

    def upload(self, events: Sequence[Any]) -> list[Any]:
        started = time.perf_counter()
        try:
            results: list[Any] = self.inner.upload(events)
            return results
        finally:
            self.seconds += time.perf_counter() - started


def users_table(count: int) -> Any:
    """``count`` activated users with a click id each, and their values."""
    import numpy as np
    import pandas as pd

    index = np.arange(count)
    signup = pd.to_datetime([signup_time(int(i)) for i in index], utc=True).as_unit(
        "us"
    )
    users = pd.DataFrame(
        {
            "user_id": [f"u{i}" for i in index],
            "signup_at": signup,
            "activated_at": signup + pd.Timedelta(hours=1),
            "country": np.where(index % 3 == 0, "DE", "FR"),
            "gclid": [f"gclid-u{i}" for i in index],
        }
    )
    values = pd.Series(
        np.random.default_rng(7).gamma(2.0, 40.0, count).round(2),
        index=users["user_id"],
    )
    return users, values


def push_values(kind: str, cert_dir: Path, count: int) -> dict[str, Any]:
    """Send ``count`` first values through the named sink with ``run_feed``."""
    from google.ads import datamanager_v1 as dm
    from google.ads.googleads.client import GoogleAdsClient
    from google.oauth2.credentials import Credentials

    from connectors.value_feed import FeedSettings, Ledger, run_feed
    from connectors.value_feed.conversion_upload import ConversionUploadSink
    from connectors.value_feed.data_manager import DataManagerSink

    users, values = users_table(count)
    settings = FeedSettings(
        sink=kind,  # type: ignore[arg-type]
        customer_id=CUSTOMER,
        conversion_action_id=ACTION,
        cap_percentile=None,
    )
    server = FakeServer(kind, cert_dir, count)
    ledger = Ledger(f"sqlite:///{cert_dir / f'ledger-{kind}.db'}")
    client: Any = None
    try:
        credentials = Credentials(token=ACCESS_TOKEN)
        inner: Any
        if kind == "conversion_upload":
            client = GoogleAdsClient(
                credentials=credentials,
                developer_token=DEVELOPER_TOKEN,
                endpoint=server.target,
                use_proto_plus=True,
                version="v26",
            )
            inner = ConversionUploadSink(client, CUSTOMER, ACTION)
        else:
            client = dm.IngestionServiceClient(
                credentials=credentials,
                client_options={"api_endpoint": server.target},
            )
            inner = DataManagerSink(client, CUSTOMER, ACTION)
        sink = TimedSink(inner)
        started = time.perf_counter()
        report = run_feed(
            users,
            values,
            settings=settings,
            account="bench",
            currency="EUR",
            ledger=ledger,
            sink=sink,
            now=NOW,
            send=True,
        )
        finished = time.perf_counter()
    finally:
        ledger.dispose()
        if client is not None and kind == "data_manager":
            client.transport.close()
        received = server.stop()
    return {
        "items": count,
        "delivered": int(report.counts["initial_sent"]),
        "server_changed": received["changed"],
        "requests": received["requests"],
        "seconds": finished - started,
        "send_seconds": sink.seconds,
    }


def show(label: str, limit: int, result: dict[str, Any]) -> None:
    """Print one run's figures."""
    sizes = [r["operations"] for r in result["requests"]]
    print(f"\n{label}: {result['items']:,} items")
    passes: list[tuple[str, list[int]]] = [("upload", sizes)]
    if result["requests"] and "validate_only" in result["requests"][0]:
        passes = [
            (
                name,
                [
                    r["operations"]
                    for r in result["requests"]
                    if r["validate_only"] == flag
                ],
            )
            for name, flag in (("validate-only", True), ("apply", False))
        ]
    for name, part in passes:
        print(
            f"  {name:<14} {len(part):>4} request(s), operations per request "
            f"{_spread(part)} (limit {limit:,})"
        )
    full = sum(size == limit for size in sizes)
    least = -(-result["items"] // limit)
    print(f"  {full} of {len(sizes)} requests full; fewest possible per pass: {least}")
    print(
        f"  delivered {result['delivered']:,}; the server holds "
        f"{result['server_changed']:,}"
    )
    rest = result["seconds"] - result["send_seconds"]
    print(
        f"  wall {result['seconds']:7.2f} s: requests {result['send_seconds']:6.2f} s, "
        f"the rest {rest:6.2f} s; {result['items'] / result['seconds']:,.0f} items/s"
    )


def _spread(sizes: list[int]) -> str:
    if not sizes:
        return "-"
    if min(sizes) == max(sizes):
        return f"{sizes[0]:,}"
    return f"{min(sizes):,}-{max(sizes):,} (mean {sum(sizes) / len(sizes):,.0f})"


def main() -> None:
    """Run the pushes, or serve one fake when started as a child."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--campaigns", type=int, default=10_000)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument(
        "--only", choices=["targets", "conversion_upload", "data_manager"]
    )
    parser.add_argument(
        "--serve", choices=["targets", "conversion_upload", "data_manager"]
    )
    parser.add_argument("--cert-dir", type=Path)
    parser.add_argument("--size", type=int, default=0)
    args = parser.parse_args()

    if args.serve:
        serve(args.serve, args.cert_dir, args.size)
        return

    with tempfile.TemporaryDirectory(prefix="valuebid-push-") as folder:
        cert_dir = Path(folder)
        from tests.fakes.grpc_tls import make_loopback_identity

        identity = make_loopback_identity(cert_dir)
        key_path = cert_dir / "loopback-key.pem"
        key_path.write_bytes(identity.key_pem)
        key_path.chmod(0o600)
        # Before the first TLS channel of this process: gRPC caches its roots.
        os.environ["GRPC_DEFAULT_SSL_ROOTS_FILE_PATH"] = str(identity.cert_path)

        print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPU(s)")
        if args.only in (None, "targets"):
            show(
                "target ROAS changes, GoogleAdsClient -> CampaignService",
                MUTATE_LIMIT,
                push_targets(cert_dir, args.campaigns),
            )
        for kind, label in (
            ("conversion_upload", "values, run_feed -> ConversionUploadService"),
            ("data_manager", "values, run_feed -> Data Manager IngestEvents"),
        ):
            if args.only in (None, kind):
                show(label, UPLOAD_LIMIT, push_values(kind, cert_dir, args.users))


if __name__ == "__main__":
    main()
