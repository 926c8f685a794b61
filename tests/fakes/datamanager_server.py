"""A fake Data Manager API IngestionService (IngestEvents, RetrieveRequestStatus).

Served over TLS on 127.0.0.1; the real ``google-ads-datamanager`` client
talks to it. Like the real API it accepts a request synchronously and reports
processing errors per request in aggregate: an event whose transaction id it
already holds is dropped and counted as DUPLICATE_TRANSACTION_ID.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.ads import datamanager_v1 as dm

_SERVICE = "google.ads.datamanager.v1.IngestionService"
_DUPLICATE = int(
    dm.ProcessingErrorReason.PROCESSING_ERROR_REASON_DUPLICATE_TRANSACTION_ID
)


@dataclass
class FakeDataManager:
    """State of the fake: events kept by transaction id, requests by id."""

    events: dict[str, Any] = field(default_factory=dict)
    destinations: list[Any] = field(default_factory=list)
    request_sizes: list[int] = field(default_factory=list)
    errors: dict[str, dict[int, int]] = field(default_factory=dict)
    authorization: list[str] = field(default_factory=list)
    #: Request numbers (1-based) that are applied and then answered UNAVAILABLE.
    lose_response_of: set[int] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def handlers(self) -> list[grpc.GenericRpcHandler]:
        return [
            grpc.method_handlers_generic_handler(
                _SERVICE,
                {
                    "IngestEvents": _unary(
                        self._ingest,
                        dm.IngestEventsRequest,
                        dm.IngestEventsResponse,
                    ),
                    "RetrieveRequestStatus": _unary(
                        self._status,
                        dm.RetrieveRequestStatusRequest,
                        dm.RetrieveRequestStatusResponse,
                    ),
                },
            )
        ]

    def _ingest(self, request: Any, context: grpc.ServicerContext) -> Any:
        metadata = dict(context.invocation_metadata())
        with self._lock:
            self.authorization.append(str(metadata.get("authorization", "")))
            if len(request.events) > 2000:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, "TOO_MANY_EVENTS")
            self.request_sizes.append(len(request.events))
            self.destinations.extend(request.destinations)
            request_id = uuid.uuid4().hex
            duplicates = 0
            for event in request.events:
                if event.transaction_id in self.events:
                    duplicates += 1
                    continue
                self.events[event.transaction_id] = event
            self.errors[request_id] = {_DUPLICATE: duplicates} if duplicates else {}
            if len(self.request_sizes) in self.lose_response_of:
                context.abort(grpc.StatusCode.UNAVAILABLE, "connection reset (fake)")
        return dm.IngestEventsResponse(request_id=request_id)

    def _status(self, request: Any, context: grpc.ServicerContext) -> Any:
        counts = self.errors.get(request.request_id)
        if counts is None:
            context.abort(grpc.StatusCode.NOT_FOUND, "unknown request id")
        assert counts is not None
        status = dm.RequestStatusPerDestination(
            request_status=(
                dm.RequestStatusPerDestination.RequestStatus.PARTIAL_SUCCESS
                if counts
                else dm.RequestStatusPerDestination.RequestStatus.SUCCESS
            ),
            error_info=dm.ErrorInfo(
                error_counts=[
                    dm.ErrorCount(record_count=n, reason=reason)
                    for reason, n in counts.items()
                ]
            ),
        )
        return dm.RetrieveRequestStatusResponse(request_status_per_destination=[status])


def _unary(
    handler: Callable[[Any, grpc.ServicerContext], Any],
    request_type: Any,
    response_type: Any,
) -> grpc.RpcMethodHandler:
    def serve(raw: Any, context: grpc.ServicerContext) -> Any:
        return response_type.pb(handler(request_type.wrap(raw), context))

    return grpc.unary_unary_rpc_method_handler(
        serve,
        request_deserializer=request_type.pb().FromString,
        response_serializer=lambda message: message.SerializeToString(),
    )
