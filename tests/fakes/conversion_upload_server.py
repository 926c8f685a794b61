"""A fake Google Ads ConversionUploadService and ConversionAdjustmentUploadService.

Served over TLS on 127.0.0.1 with generic handlers; the real ``google-ads``
client talks to it. It keeps the rules the feed depends on: a click must be
known and at least 6 hours old and at most 90 days before the conversion; an
order id is accepted once (then CLICK_CONVERSION_ALREADY_EXISTS); a
restatement needs a known order id, a conversion under 54 days old, and is
accepted once per (order id, adjustment time) (then RESTATEMENT_ALREADY_EXISTS).
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.ads.googleads.v26.errors.types import errors as error_types
from google.ads.googleads.v26.services.types import (
    conversion_adjustment_upload_service as adjustment_types,
)
from google.ads.googleads.v26.services.types import (
    conversion_upload_service as upload_types,
)
from google.protobuf import any_pb2
from google.rpc import status_pb2

VERSION = "v26"
_SERVICES = f"google.ads.googleads.{VERSION}.services"


@dataclass
class StoredConversion:
    """A conversion the fake accepted."""

    order_id: str
    gclid: str
    conversion_time: dt.datetime
    value: float
    currency: str
    hashed_emails: list[str]
    hashed_phones: list[str]
    ad_user_data: str
    ad_personalization: str
    restatements: list[tuple[str, float]] = field(default_factory=list)


@dataclass
class FakeConversionUpload:
    """State and rules of the fake; ``now`` is its clock."""

    now: dt.datetime
    clicks: dict[str, dt.datetime] = field(default_factory=dict)
    conversions: dict[str, StoredConversion] = field(default_factory=dict)
    requests: list[int] = field(default_factory=list)
    #: Order id of every row received, accepted or not, in arrival order.
    received: list[str] = field(default_factory=list)
    #: The gRPC metadata of every request, in arrival order.
    metadata: list[dict[str, str]] = field(default_factory=list)
    #: Request numbers (1-based) that are applied and then answered UNAVAILABLE,
    #: as when the response is lost on the way back.
    lose_response_of: set[int] = field(default_factory=set)
    #: When set, each row's error and each lost response quote the developer
    #: token the request carried, as a server echoing the request would.
    quote_developer_token: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def handlers(self) -> list[grpc.GenericRpcHandler]:
        upload = grpc.method_handlers_generic_handler(
            f"{_SERVICES}.ConversionUploadService",
            {
                "UploadClickConversions": _unary(
                    self._upload_clicks,
                    upload_types.UploadClickConversionsRequest,
                    upload_types.UploadClickConversionsResponse,
                )
            },
        )
        adjust = grpc.method_handlers_generic_handler(
            f"{_SERVICES}.ConversionAdjustmentUploadService",
            {
                "UploadConversionAdjustments": _unary(
                    self._upload_adjustments,
                    adjustment_types.UploadConversionAdjustmentsRequest,
                    adjustment_types.UploadConversionAdjustmentsResponse,
                )
            },
        )
        return [upload, adjust]

    def _upload_clicks(self, request: Any, context: grpc.ServicerContext) -> Any:
        with self._lock:
            number = self._count(request, "conversions", context)
            errors: list[tuple[int, str, str]] = []
            results = []
            for index, conversion in enumerate(request.conversions):
                self.received.append(conversion.order_id)
                problem = self._click_problem(conversion)
                if problem:
                    errors.append((index, "conversion_upload_error", problem))
                    results.append(upload_types.ClickConversionResult())
                    continue
                self.conversions[conversion.order_id] = _stored(conversion)
                results.append(
                    upload_types.ClickConversionResult(gclid=conversion.gclid)
                )
            self._maybe_lose(number, context)
        return upload_types.UploadClickConversionsResponse(
            results=results,
            partial_failure_error=_failure(errors, "conversions", self._quoted()),
        )

    def _click_problem(self, conversion: Any) -> str:
        if conversion.order_id in self.conversions:
            return "CLICK_CONVERSION_ALREADY_EXISTS"
        clicked = self.clicks.get(conversion.gclid)
        if clicked is None:
            return "CLICK_NOT_FOUND"
        if self.now - clicked < dt.timedelta(hours=6):
            return "TOO_RECENT_EVENT"
        converted = _parse(conversion.conversion_date_time)
        if converted - clicked > dt.timedelta(days=90):
            return "EXPIRED_EVENT"
        return ""

    def _upload_adjustments(self, request: Any, context: grpc.ServicerContext) -> Any:
        with self._lock:
            number = self._count(request, "conversion_adjustments", context)
            errors: list[tuple[int, str, str]] = []
            results = []
            for index, adjustment in enumerate(request.conversion_adjustments):
                stored = self.conversions.get(adjustment.order_id)
                problem = ""
                if stored is None:
                    problem = "CONVERSION_NOT_FOUND"
                elif self.now - stored.conversion_time >= dt.timedelta(days=54):
                    problem = "CONVERSION_EXPIRED"
                elif any(
                    when == adjustment.adjustment_date_time
                    for when, _ in stored.restatements
                ):
                    problem = "RESTATEMENT_ALREADY_EXISTS"
                if problem:
                    errors.append(
                        (index, "conversion_adjustment_upload_error", problem)
                    )
                    results.append(adjustment_types.ConversionAdjustmentResult())
                    continue
                assert stored is not None
                value = adjustment.restatement_value.adjusted_value
                stored.restatements.append((adjustment.adjustment_date_time, value))
                stored.value = value
                results.append(
                    adjustment_types.ConversionAdjustmentResult(
                        order_id=adjustment.order_id
                    )
                )
            self._maybe_lose(number, context)
        return adjustment_types.UploadConversionAdjustmentsResponse(
            results=results,
            partial_failure_error=_failure(
                errors, "conversion_adjustments", self._quoted()
            ),
        )

    def _count(
        self, request: Any, field_name: str, context: grpc.ServicerContext
    ) -> int:
        self.metadata.append({k: str(v) for k, v in context.invocation_metadata()})
        if not request.partial_failure:
            raise AssertionError("conversion uploads must set partial_failure")
        rows = len(getattr(request, field_name))
        if rows > 2000:
            raise AssertionError(f"{rows} rows in one request; the limit is 2,000")
        self.requests.append(rows)
        return len(self.requests)

    def _maybe_lose(self, number: int, context: grpc.ServicerContext) -> None:
        if number in self.lose_response_of:
            context.abort(
                grpc.StatusCode.UNAVAILABLE, f"connection reset (fake){self._quoted()}"
            )

    def _quoted(self) -> str:
        """What an answer to the latest request adds to its messages."""
        if not self.quote_developer_token:
            return ""
        return f" for developer token {self.metadata[-1].get('developer-token')}"


def _stored(conversion: Any) -> StoredConversion:
    identifiers = conversion.user_identifiers
    return StoredConversion(
        order_id=conversion.order_id,
        gclid=conversion.gclid,
        conversion_time=_parse(conversion.conversion_date_time),
        value=conversion.conversion_value,
        currency=conversion.currency_code,
        hashed_emails=[i.hashed_email for i in identifiers if i.hashed_email],
        hashed_phones=[
            i.hashed_phone_number for i in identifiers if i.hashed_phone_number
        ],
        ad_user_data=conversion.consent.ad_user_data.name,
        ad_personalization=conversion.consent.ad_personalization.name,
    )


def _failure(
    errors: list[tuple[int, str, str]], field_name: str, quoted: str = ""
) -> Any:
    if not errors:
        return None
    failure = error_types.GoogleAdsFailure()
    for index, code_field, code in errors:
        error = error_types.GoogleAdsError(message=f"{code} (fake){quoted}")
        setattr(error.error_code, code_field, code)
        error.location.field_path_elements.append(
            error_types.ErrorLocation.FieldPathElement(
                field_name=field_name, index=index
            )
        )
        failure.errors.append(error)
    detail = any_pb2.Any(
        type_url=f"type.googleapis.com/google.ads.googleads.{VERSION}.errors."
        "GoogleAdsFailure",
        value=error_types.GoogleAdsFailure.serialize(failure),
    )
    return status_pb2.Status(code=3, message="partial failure", details=[detail])


def _parse(text: str) -> dt.datetime:
    return dt.datetime.strptime(text, "%Y-%m-%d %H:%M:%S%z")


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
