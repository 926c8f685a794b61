"""A fake Google Ads API, served over TLS on loopback to the real client.

It keeps its own accounts, campaigns, portfolio strategies, daily metrics and
location criteria, and serves the three RPCs valuebid uses:

- ``GoogleAdsService.SearchStream``: a small GAQL subset (SELECT, FROM one of
  campaign, bidding_strategy, campaign_criterion, geo_target_constant, WHERE
  with AND-ed ``=``, ``!=``, ``IN``, ``NOT IN``, comparisons and ``BETWEEN``).
  Unknown fields are refused, and ``segments.date`` needs a date filter.
- ``CampaignService.MutateCampaigns`` and
  ``BiddingStrategyService.MutateBiddingStrategies``: update operations only.

Rules it applies, as the real API does (Google Ads API reference, "Mutate
best practices", "Partial failure", "Bidding" pages):

- at most 10,000 operations per request (``TOO_MANY_MUTATE_OPERATIONS``);
- target ROAS within [0.01, 1000] (``RangeError``);
- a standard target CPA set through ``target_cpa.target_cpa_micros`` must be
  more than zero (``RangeError``); setting one scheme of a campaign or
  portfolio replaces the one it had, and its strategy type follows;
- an update mask is required and may name only fields that exist;
- one resource at most once per request (``ID_EXISTS_IN_MULTIPLE_MUTATES``);
- ``partial_failure``: failed operations come back as empty results and a
  ``GoogleAdsFailure`` in ``partial_failure_error``; without it the request is
  atomic;
- ``validate_only``: every check runs, nothing changes;
- errors as ``GoogleAdsFailure`` in the trailing metadata, a request id in
  the initial metadata of every call (and the trailing one of a failure);
- a customer behind a manager account is reachable only with that manager as
  ``login-customer-id``.

One rule is stricter than Google's: a field set in an update but missing from
its mask is refused (Google silently ignores it), so that a mask that would
change nothing fails the tests instead of passing them.

``fail_next`` makes the next calls fail with a status code before they are
processed, to exercise retries.
"""

from __future__ import annotations

import collections
import datetime as dt
import itertools
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from importlib import import_module
from typing import Any

import grpc
from google.protobuf import any_pb2, field_mask_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from google.rpc import status_pb2

DEFAULT_VERSION = "v26"
MAX_OPERATIONS_PER_REQUEST = 10_000
TARGET_ROAS_MIN = 0.01
TARGET_ROAS_MAX = 1000.0
STREAM_BATCH_ROWS = 10_000

# Country criteria from Google's geotargets table.
COUNTRY_GEO_TARGETS = {
    2250: "FR",
    2276: "DE",
    2724: "ES",
    2826: "GB",
    2840: "US",
}

_CAMPAIGN_MUTABLE = frozenset(
    {
        "name",
        "status",
        "bidding_strategy",
        "maximize_conversion_value.target_roas",
        "target_roas.target_roas",
        "maximize_conversions.target_cpa_micros",
        "target_cpa.target_cpa_micros",
    }
)
_STRATEGY_MUTABLE = frozenset(
    {
        "name",
        "maximize_conversion_value.target_roas",
        "target_roas.target_roas",
        "maximize_conversions.target_cpa_micros",
        "target_cpa.target_cpa_micros",
    }
)
_SCHEME_TO_TYPE = {
    "maximize_conversion_value": "MAXIMIZE_CONVERSION_VALUE",
    "target_roas": "TARGET_ROAS",
    "maximize_conversions": "MAXIMIZE_CONVERSIONS",
    "target_cpa": "TARGET_CPA",
}
_TRANSIENT_DETAIL = {
    grpc.StatusCode.UNAVAILABLE: "The service is currently unavailable.",
    grpc.StatusCode.DEADLINE_EXCEEDED: "Deadline exceeded.",
}


class _Types:
    """The protobuf classes of one API version."""

    def __init__(self, version: str) -> None:
        base = f"google.ads.googleads.{version}"

        def pb(module: str, name: str) -> Any:
            return getattr(import_module(f"{base}.{module}"), name).pb()

        self.row = pb("services.types.google_ads_service", "GoogleAdsRow")
        self.stream_request = pb(
            "services.types.google_ads_service", "SearchGoogleAdsStreamRequest"
        )
        self.stream_response = pb(
            "services.types.google_ads_service", "SearchGoogleAdsStreamResponse"
        )
        self.campaigns_request = pb(
            "services.types.campaign_service", "MutateCampaignsRequest"
        )
        self.campaigns_response = pb(
            "services.types.campaign_service", "MutateCampaignsResponse"
        )
        self.strategies_request = pb(
            "services.types.bidding_strategy_service",
            "MutateBiddingStrategiesRequest",
        )
        self.strategies_response = pb(
            "services.types.bidding_strategy_service",
            "MutateBiddingStrategiesResponse",
        )
        self.campaign = pb("resources.types.campaign", "Campaign")
        self.strategy = pb("resources.types.bidding_strategy", "BiddingStrategy")
        self.criterion = pb("resources.types.campaign_criterion", "CampaignCriterion")
        self.geo = pb("resources.types.geo_target_constant", "GeoTargetConstant")
        self.failure = pb("errors.types.errors", "GoogleAdsFailure")


class ApiFailure(Exception):
    """A failure the fake reports to the client, with its gRPC status."""

    def __init__(self, code: grpc.StatusCode, errors: Sequence[dict[str, Any]]) -> None:
        super().__init__(errors[0]["message"] if errors else code.name)
        self.code = code
        self.errors = list(errors)


def api_error(
    category: str,
    name: str,
    message: str,
    path: Sequence[tuple[str, int | None]] = (),
) -> dict[str, Any]:
    """One GoogleAdsError, e.g. ``api_error("range_error", "TOO_HIGH", ...)``."""
    return {"category": category, "name": name, "message": message, "path": path}


@dataclass
class RecordedRequest:
    """What one call asked for, as the fake received it."""

    method: str
    customer_id: str
    request_id: str
    metadata: dict[str, str]
    query: str = ""
    operations: int = 0
    validate_only: bool = False
    partial_failure: bool = False
    failed_with: grpc.StatusCode | None = None


@dataclass
class FakeCustomer:
    customer_id: str
    currency_code: str
    time_zone: str
    manager_id: str | None
    campaigns: dict[int, Any] = field(default_factory=dict)
    strategies: dict[int, Any] = field(default_factory=dict)
    criteria: list[Any] = field(default_factory=list)
    stats: dict[tuple[int, str], tuple[int, float, float]] = field(default_factory=dict)


@dataclass
class _Injected:
    code: grpc.StatusCode
    remaining: int
    methods: frozenset[str] | None


class FakeGoogleAdsApi:
    """State and handlers of the fake; serve ``handlers()`` on a TLS server."""

    def __init__(self, version: str = DEFAULT_VERSION) -> None:
        self.version = version
        self.types = _Types(version)
        self.customers: dict[str, FakeCustomer] = {}
        self.requests: list[RecordedRequest] = []
        self.geo_targets: dict[int, str] = dict(COUNTRY_GEO_TARGETS)
        self._injected: collections.deque[_Injected] = collections.deque()
        #: When set, every call is refused as made with an unapproved developer
        #: token, the message quoting the token received (as a server echoing
        #: the request would), to show that messages mask what a server sends.
        self.refuse_developer_token = False
        #: Campaigns and portfolio strategies (by id) whose updates are
        #: refused, row by row, as not permitted for the developer token, the
        #: message quoting the token received as a server echoing it would.
        self.refuse_updates_of: set[int] = set()
        self._lock = threading.RLock()
        self._request_ids = itertools.count(1)

    # -- state set-up ---------------------------------------------------------

    def add_customer(
        self,
        customer_id: str,
        *,
        currency_code: str = "EUR",
        time_zone: str = "Europe/Paris",
        manager_id: str | None = None,
    ) -> FakeCustomer:
        customer = FakeCustomer(customer_id, currency_code, time_zone, manager_id)
        self.customers[customer_id] = customer
        return customer

    def add_campaign(
        self,
        customer_id: str,
        campaign_id: int,
        name: str,
        *,
        strategy: str = "TARGET_CPA",
        target_cpa_micros: int | None = None,
        target_roas: float | None = None,
        portfolio_id: int | None = None,
        status: str = "ENABLED",
        channel: str = "SEARCH",
        system_status: str = "ENABLED",
        geo_target_ids: Sequence[int] = (),
    ) -> None:
        customer = self.customers[customer_id]
        campaign = self.types.campaign()
        campaign.resource_name = f"customers/{customer_id}/campaigns/{campaign_id}"
        campaign.id = campaign_id
        campaign.name = name
        _set_enum(campaign, "status", status)
        _set_enum(campaign, "advertising_channel_type", channel)
        _set_enum(campaign, "bidding_strategy_system_status", system_status)
        if portfolio_id is not None:
            portfolio = customer.strategies[portfolio_id]
            campaign.bidding_strategy = portfolio.resource_name
            strategy = _enum_name(portfolio, "type")
        else:
            _set_scheme(campaign, strategy, target_cpa_micros, target_roas)
        _set_enum(campaign, "bidding_strategy_type", strategy)
        customer.campaigns[campaign_id] = campaign

        for geo_id in geo_target_ids:
            criterion = self.types.criterion()
            criterion.campaign = campaign.resource_name
            criterion.criterion_id = geo_id
            criterion.resource_name = f"{campaign.resource_name}~{geo_id}"
            _set_enum(criterion, "type", "LOCATION")
            criterion.negative = False
            criterion.location.geo_target_constant = f"geoTargetConstants/{geo_id}"
            customer.criteria.append(criterion)

    def add_portfolio(
        self,
        customer_id: str,
        strategy_id: int,
        name: str,
        *,
        strategy: str,
        target_cpa_micros: int | None = None,
        target_roas: float | None = None,
    ) -> str:
        customer = self.customers[customer_id]
        portfolio = self.types.strategy()
        portfolio.resource_name = (
            f"customers/{customer_id}/biddingStrategies/{strategy_id}"
        )
        portfolio.id = strategy_id
        portfolio.name = name
        _set_enum(portfolio, "status", "ENABLED")
        _set_enum(portfolio, "type", strategy)
        _set_scheme(portfolio, strategy, target_cpa_micros, target_roas)
        customer.strategies[strategy_id] = portfolio
        return str(portfolio.resource_name)

    def add_stats(
        self,
        customer_id: str,
        campaign_id: int,
        day: dt.date,
        *,
        cost_micros: int,
        conversions: float,
        conversions_value: float,
    ) -> None:
        customer = self.customers[customer_id]
        customer.stats[(campaign_id, day.isoformat())] = (
            cost_micros,
            conversions,
            conversions_value,
        )

    def fail_next(
        self,
        times: int,
        code: grpc.StatusCode,
        *,
        methods: Sequence[str] | None = None,
    ) -> None:
        """Fail the next ``times`` calls (of ``methods``, if given) with ``code``."""
        allowed = frozenset(methods) if methods is not None else None
        with self._lock:
            self._injected.append(_Injected(code, times, allowed))

    # -- inspection -----------------------------------------------------------

    def campaign(self, customer_id: str, campaign_id: int) -> Any:
        with self._lock:
            copy = self.types.campaign()
            copy.CopyFrom(self.customers[customer_id].campaigns[campaign_id])
            return copy

    def portfolio(self, customer_id: str, strategy_id: int) -> Any:
        with self._lock:
            copy = self.types.strategy()
            copy.CopyFrom(self.customers[customer_id].strategies[strategy_id])
            return copy

    def calls(self, method: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.method == method]

    # -- serving --------------------------------------------------------------

    def handlers(self) -> list[grpc.GenericRpcHandler]:
        prefix = f"google.ads.googleads.{self.version}.services"
        t = self.types
        search = grpc.method_handlers_generic_handler(
            f"{prefix}.GoogleAdsService",
            {
                "SearchStream": grpc.unary_stream_rpc_method_handler(
                    self._search_stream,
                    request_deserializer=t.stream_request.FromString,
                    response_serializer=t.stream_response.SerializeToString,
                )
            },
        )
        campaigns = grpc.method_handlers_generic_handler(
            f"{prefix}.CampaignService",
            {
                "MutateCampaigns": grpc.unary_unary_rpc_method_handler(
                    self._mutate_campaigns,
                    request_deserializer=t.campaigns_request.FromString,
                    response_serializer=t.campaigns_response.SerializeToString,
                )
            },
        )
        strategies = grpc.method_handlers_generic_handler(
            f"{prefix}.BiddingStrategyService",
            {
                "MutateBiddingStrategies": grpc.unary_unary_rpc_method_handler(
                    self._mutate_strategies,
                    request_deserializer=t.strategies_request.FromString,
                    response_serializer=t.strategies_response.SerializeToString,
                )
            },
        )
        return [search, campaigns, strategies]

    def _new_request_id(self, context: grpc.ServicerContext) -> str:
        request_id = f"fake-{next(self._request_ids):06d}"
        context.send_initial_metadata((("request-id", request_id),))
        return request_id

    def _begin(
        self,
        method: str,
        request: Any,
        context: grpc.ServicerContext,
        request_id: str,
    ) -> RecordedRequest:
        metadata = {k: str(v) for k, v in context.invocation_metadata()}
        recorded = RecordedRequest(
            method=method,
            customer_id=request.customer_id,
            request_id=request_id,
            metadata=metadata,
            query=getattr(request, "query", ""),
            operations=len(getattr(request, "operations", ())),
            validate_only=getattr(request, "validate_only", False),
            partial_failure=getattr(request, "partial_failure", False),
        )
        with self._lock:
            self.requests.append(recorded)
            injected = self._take_injected(method)
        if injected is not None:
            recorded.failed_with = injected
            self._abort_injected(injected, request_id, context)
        self._check_access(request.customer_id, metadata)
        return recorded

    def _take_injected(self, method: str) -> grpc.StatusCode | None:
        for injected in self._injected:
            if injected.methods is None or method in injected.methods:
                injected.remaining -= 1
                if injected.remaining <= 0:
                    self._injected.remove(injected)
                return injected.code
        return None

    def _abort_injected(
        self, code: grpc.StatusCode, request_id: str, context: grpc.ServicerContext
    ) -> None:
        if code in _TRANSIENT_DETAIL:
            context.set_trailing_metadata((("request-id", request_id),))
            context.abort(code, _TRANSIENT_DETAIL[code])
        if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
            error = api_error(
                "quota_error",
                "RESOURCE_TEMPORARILY_EXHAUSTED",
                "Too many requests. Retry in 1 seconds.",
            )
        elif code == grpc.StatusCode.INTERNAL:
            error = api_error("internal_error", "INTERNAL_ERROR", "Internal error.")
        else:
            error = api_error(
                "authorization_error",
                "USER_PERMISSION_DENIED",
                "User doesn't have permission to access customer.",
            )
        self._abort(ApiFailure(code, [error]), request_id, context)

    def _check_access(self, customer_id: str, metadata: dict[str, str]) -> None:
        if not metadata.get("developer-token"):
            raise ApiFailure(
                grpc.StatusCode.UNAUTHENTICATED,
                [
                    api_error(
                        "request_error",
                        "DEVELOPER_TOKEN_PARAMETER_MISSING",
                        "Developer token is missing.",
                    )
                ],
            )
        if self.refuse_developer_token:
            raise ApiFailure(
                grpc.StatusCode.PERMISSION_DENIED,
                [
                    api_error(
                        "authorization_error",
                        "DEVELOPER_TOKEN_NOT_APPROVED",
                        f"The developer token {metadata['developer-token']} is "
                        "only approved for use with test accounts.",
                    )
                ],
            )
        customer = self.customers.get(customer_id)
        login = metadata.get("login-customer-id")
        if customer is None or (
            customer.manager_id is not None and login != customer.manager_id
        ):
            raise ApiFailure(
                grpc.StatusCode.PERMISSION_DENIED,
                [
                    api_error(
                        "authorization_error",
                        "USER_PERMISSION_DENIED",
                        "User doesn't have permission to access customer. If "
                        "accessing a client customer, the manager's customer "
                        "id must be set in the 'login-customer-id' header.",
                    )
                ],
            )

    def _abort(
        self, failure: ApiFailure, request_id: str, context: grpc.ServicerContext
    ) -> None:
        key = f"google.ads.googleads.{self.version}.errors.googleadsfailure-bin"
        context.set_trailing_metadata(
            (
                (key, self._failure(failure.errors, request_id).SerializeToString()),
                ("request-id", request_id),
            )
        )
        context.abort(failure.code, str(failure))

    def _failure(self, errors: Sequence[dict[str, Any]], request_id: str) -> Any:
        failure = self.types.failure()
        failure.request_id = request_id
        for spec in errors:
            error = failure.errors.add()
            getattr_enum = error.error_code.DESCRIPTOR.fields_by_name[spec["category"]]
            value = getattr_enum.enum_type.values_by_name[spec["name"]].number
            setattr(error.error_code, spec["category"], value)
            error.message = spec["message"]
            for name, index in spec["path"]:
                element = error.location.field_path_elements.add()
                element.field_name = name
                if index is not None:
                    element.index = index
        return failure

    # -- GoogleAdsService.SearchStream ----------------------------------------

    def _search_stream(
        self, request: Any, context: grpc.ServicerContext
    ) -> Iterator[Any]:
        request_id = self._new_request_id(context)
        try:
            self._begin("SearchStream", request, context, request_id)
            query = parse_gaql(request.query, self.types.row.DESCRIPTOR)
            with self._lock:
                rows = [
                    row
                    for row in self._rows(request.customer_id, query)
                    if query.matches(row)
                ]
                projected = [query.project(row, self.types.row) for row in rows]
        except ApiFailure as failure:
            self._abort(failure, request_id, context)
            return
        mask = field_mask_pb2.FieldMask(paths=query.fields)
        for start in range(0, max(len(projected), 1), STREAM_BATCH_ROWS):
            response = self.types.stream_response()
            response.results.extend(projected[start : start + STREAM_BATCH_ROWS])
            response.field_mask.CopyFrom(mask)
            response.request_id = request_id
            yield response

    def _rows(self, customer_id: str, query: GaqlQuery) -> Iterator[Any]:
        customer = self.customers[customer_id]
        if query.resource == "campaign":
            yield from self._campaign_rows(customer, query)
        elif query.resource == "bidding_strategy":
            for portfolio in customer.strategies.values():
                row = self._customer_row(customer)
                row.bidding_strategy.CopyFrom(portfolio)
                yield row
        elif query.resource == "campaign_criterion":
            for criterion in customer.criteria:
                row = self._customer_row(customer)
                campaign_id = int(criterion.campaign.rsplit("/", 1)[1])
                row.campaign.CopyFrom(customer.campaigns[campaign_id])
                row.campaign_criterion.CopyFrom(criterion)
                yield row
        elif query.resource == "geo_target_constant":
            for geo_id, country in self.geo_targets.items():
                row = self.types.row()
                geo = row.geo_target_constant
                geo.resource_name = f"geoTargetConstants/{geo_id}"
                geo.id = geo_id
                geo.country_code = country
                _set_enum(geo, "status", "ENABLED")
                yield row

    def _campaign_rows(self, customer: FakeCustomer, query: GaqlQuery) -> Iterator[Any]:
        by_date = "segments.date" in query.fields
        for campaign_id, campaign in customer.campaigns.items():
            base = self._customer_row(customer)
            base.campaign.CopyFrom(campaign)
            if campaign.bidding_strategy:
                strategy_id = int(campaign.bidding_strategy.rsplit("/", 1)[1])
                base.bidding_strategy.CopyFrom(customer.strategies[strategy_id])
            if not by_date:
                yield base
                continue
            for (stats_campaign, day), values in sorted(customer.stats.items()):
                if stats_campaign != campaign_id:
                    continue
                row = self.types.row()
                row.CopyFrom(base)
                row.segments.date = day
                row.metrics.cost_micros = values[0]
                row.metrics.conversions = values[1]
                row.metrics.conversions_value = values[2]
                yield row

    def _customer_row(self, customer: FakeCustomer) -> Any:
        row = self.types.row()
        row.customer.resource_name = f"customers/{customer.customer_id}"
        row.customer.id = int(customer.customer_id)
        row.customer.currency_code = customer.currency_code
        row.customer.time_zone = customer.time_zone
        return row

    # -- mutates --------------------------------------------------------------

    def _mutate_campaigns(self, request: Any, context: grpc.ServicerContext) -> Any:
        return self._mutate(
            "MutateCampaigns",
            request,
            context,
            self.types.campaigns_response(),
            lambda customer: customer.campaigns,
            "campaigns",
            _CAMPAIGN_MUTABLE,
        )

    def _mutate_strategies(self, request: Any, context: grpc.ServicerContext) -> Any:
        return self._mutate(
            "MutateBiddingStrategies",
            request,
            context,
            self.types.strategies_response(),
            lambda customer: customer.strategies,
            "biddingStrategies",
            _STRATEGY_MUTABLE,
        )

    def _mutate(
        self,
        method: str,
        request: Any,
        context: grpc.ServicerContext,
        response: Any,
        resources_of: Callable[[FakeCustomer], dict[int, Any]],
        collection: str,
        mutable: frozenset[str],
    ) -> Any:
        request_id = self._new_request_id(context)
        try:
            recorded = self._begin(method, request, context, request_id)
            self._check_operation_count(len(request.operations))
            with self._lock:
                customer = self.customers[request.customer_id]
                resources = resources_of(customer)
                planned, errors = self._plan_updates(
                    request,
                    resources,
                    collection,
                    mutable,
                    recorded.metadata.get("developer-token", ""),
                )
                if errors and not request.partial_failure:
                    raise ApiFailure(grpc.StatusCode.INVALID_ARGUMENT, errors)
                if not request.validate_only:
                    for resource_id, update, mask in planned.values():
                        self._apply(customer, resources[resource_id], update, mask)
        except ApiFailure as failure:
            self._abort(failure, request_id, context)
            return None

        if not request.validate_only:
            for index, operation in enumerate(request.operations):
                result = response.results.add()
                if index in planned:
                    result.resource_name = operation.update.resource_name
        if errors:
            response.partial_failure_error.CopyFrom(
                self._partial_failure_status(errors, request_id)
            )
        return response

    def _check_operation_count(self, count: int) -> None:
        if count == 0:
            raise ApiFailure(
                grpc.StatusCode.INVALID_ARGUMENT,
                [
                    api_error(
                        "request_error",
                        "OPERATION_REQUIRED",
                        "At least one operation is required.",
                        [("operations", None)],
                    )
                ],
            )
        if count > MAX_OPERATIONS_PER_REQUEST:
            raise ApiFailure(
                grpc.StatusCode.INVALID_ARGUMENT,
                [
                    api_error(
                        "request_error",
                        "TOO_MANY_MUTATE_OPERATIONS",
                        f"Too many operations: {count} > {MAX_OPERATIONS_PER_REQUEST}.",
                        [("operations", None)],
                    )
                ],
            )

    def _plan_updates(
        self,
        request: Any,
        resources: dict[int, Any],
        collection: str,
        mutable: frozenset[str],
        developer_token: str,
    ) -> tuple[dict[int, tuple[int, Any, list[str]]], list[dict[str, Any]]]:
        planned: dict[int, tuple[int, Any, list[str]]] = {}
        errors: list[dict[str, Any]] = []
        seen: set[str] = set()
        pattern = re.compile(
            rf"customers/{re.escape(request.customer_id)}/{collection}/(\d+)"
        )
        for index, operation in enumerate(request.operations):
            error = self._check_update(
                index, operation, resources, pattern, mutable, seen
            )
            if error is not None:
                errors.append(error)
                continue
            resource_id = int(pattern.fullmatch(operation.update.resource_name)[1])
            if resource_id in self.refuse_updates_of:
                errors.append(
                    api_error(
                        "authorization_error",
                        "ACTION_NOT_PERMITTED",
                        f"The developer token {developer_token} may not change "
                        "this resource.",
                        [("operations", index)],
                    )
                )
                continue
            planned[index] = (
                resource_id,
                operation.update,
                list(operation.update_mask.paths),
            )
        return planned, errors

    def _check_update(
        self,
        index: int,
        operation: Any,
        resources: dict[int, Any],
        pattern: re.Pattern[str],
        mutable: frozenset[str],
        seen: set[str],
    ) -> dict[str, Any] | None:
        at: list[tuple[str, int | None]] = [("operations", index)]
        if operation.WhichOneof("operation") != "update":
            return api_error(
                "mutate_error",
                "MUTATE_NOT_ALLOWED",
                "The fake serves update operations only.",
                at,
            )
        update = operation.update
        match = pattern.fullmatch(update.resource_name)
        if match is None:
            return api_error(
                "request_error",
                "RESOURCE_NAME_MALFORMED",
                f"Malformed resource name {update.resource_name!r}.",
                [*at, ("update", None), ("resource_name", None)],
            )
        resource = resources.get(int(match[1]))
        if resource is None:
            return api_error(
                "mutate_error",
                "RESOURCE_NOT_FOUND",
                "Resource was not found.",
                [*at, ("update", None), ("resource_name", None)],
            )
        if update.resource_name in seen:
            return api_error(
                "mutate_error",
                "ID_EXISTS_IN_MULTIPLE_MUTATES",
                "Multiple operations on the same resource in one request.",
                at,
            )
        seen.add(update.resource_name)
        if _enum_name(resource, "status") == "REMOVED":
            return api_error(
                "mutate_error",
                "MUTATE_NOT_ALLOWED",
                "A removed resource cannot be modified.",
                at,
            )
        return (
            self._check_mask(at, operation, mutable)
            or _check_roas_bounds(at, update)
            or _check_cpa_bounds(at, update, operation.update_mask.paths)
        )

    def _check_mask(
        self,
        at: list[tuple[str, int | None]],
        operation: Any,
        mutable: frozenset[str],
    ) -> dict[str, Any] | None:
        paths = list(operation.update_mask.paths)
        if not paths:
            return api_error(
                "field_mask_error",
                "FIELD_MASK_MISSING",
                "The field mask must be provided for update operations.",
                [*at, ("update_mask", None)],
            )
        for path in paths:
            if path not in mutable:
                return api_error(
                    "field_mask_error",
                    "FIELD_NOT_FOUND",
                    f"The field mask names a field that cannot be set: {path}.",
                    [*at, ("update_mask", None)],
                )
        for leaf in _set_leaf_paths(operation.update):
            if leaf != "resource_name" and not any(
                leaf == p or leaf.startswith(p + ".") for p in paths
            ):
                return api_error(
                    "field_mask_error",
                    "FIELD_MASK_MISSING",
                    f"The field {leaf} is set but not named in the update mask.",
                    [*at, ("update_mask", None)],
                )
        return None

    def _apply(
        self, customer: FakeCustomer, resource: Any, update: Any, mask: list[str]
    ) -> None:
        before = resource.WhichOneof(_scheme_oneof(resource))
        field_mask_pb2.FieldMask(paths=mask).MergeMessage(update, resource)
        after = resource.WhichOneof(_scheme_oneof(resource))
        is_campaign = resource.DESCRIPTOR.name == "Campaign"
        if after is not None and after != before:
            type_field = "bidding_strategy_type" if is_campaign else "type"
            _set_enum(resource, type_field, _SCHEME_TO_TYPE[after])
        if not any(p.split(".")[0] in _SCHEME_TO_TYPE for p in mask):
            return
        status = "LEARNING_NEW" if after != before else "LEARNING_SETTING_CHANGE"
        if is_campaign:
            _set_enum(resource, "bidding_strategy_system_status", status)
            return
        for campaign in customer.campaigns.values():
            if campaign.bidding_strategy == resource.resource_name:
                _set_enum(
                    campaign, "bidding_strategy_type", _enum_name(resource, "type")
                )
                _set_enum(campaign, "bidding_strategy_system_status", status)

    def _partial_failure_status(
        self, errors: Sequence[dict[str, Any]], request_id: str
    ) -> Any:
        detail = any_pb2.Any()
        detail.Pack(self._failure(errors, request_id))
        return status_pb2.Status(
            code=grpc.StatusCode.INVALID_ARGUMENT.value[0],
            message=f"Multiple errors in 'details'. First: {errors[0]['message']}",
            details=[detail],
        )


# -- GAQL subset ---------------------------------------------------------------

_QUERY = re.compile(
    r"^\s*SELECT\s+(?P<select>.+?)\s+FROM\s+(?P<resource>\w+)"
    r"(?:\s+WHERE\s+(?P<where>.+?))?"
    r"(?:\s+ORDER\s+BY\s+[\w.,\s]+?)?(?:\s+LIMIT\s+\d+)?\s*$",
    re.IGNORECASE | re.DOTALL,
)
_LITERAL = r"'[^']*'|\"[^\"]*\"|[\w.-]+"
_CONDITION = re.compile(
    rf"""\s*(?P<field>[a-z_.]+)\s+(?:
        BETWEEN\s+(?P<low>{_LITERAL})\s+AND\s+(?P<high>{_LITERAL})
      | (?P<list_op>NOT\s+IN|IN)\s*\((?P<items>[^)]*)\)
      | (?P<op>!=|=|>=|<=|>|<)\s*(?P<value>{_LITERAL})
    )\s*(?:AND\b|$)""",
    re.IGNORECASE | re.VERBOSE,
)
_RESOURCES = frozenset(
    {"campaign", "bidding_strategy", "campaign_criterion", "geo_target_constant"}
)


@dataclass
class _Condition:
    field: str
    op: str
    values: list[Any]


@dataclass
class GaqlQuery:
    fields: list[str]
    proto_fields: list[str]
    resource: str
    conditions: list[_Condition]

    def matches(self, row: Message) -> bool:
        return all(_holds(c, _value_at(row, c.field)) for c in self.conditions)

    def project(self, row: Message, row_class: Any) -> Any:
        out = row_class()
        field_mask_pb2.FieldMask(paths=self.proto_fields).MergeMessage(row, out)
        return out


def _query_error(name: str, message: str) -> ApiFailure:
    return ApiFailure(
        grpc.StatusCode.INVALID_ARGUMENT, [api_error("query_error", name, message)]
    )


def parse_gaql(text: str, row_descriptor: Descriptor) -> GaqlQuery:
    """Parse the GAQL subset the fake serves, refusing what it cannot answer."""
    match = _QUERY.match(text)
    if match is None:
        raise _query_error("UNEXPECTED_INPUT", f"Cannot parse query: {text!r}")
    fields = [f.strip() for f in match["select"].split(",")]
    resource = match["resource"]
    if resource not in _RESOURCES:
        raise _query_error(
            "PROHIBITED_RESOURCE_TYPE_IN_FROM_CLAUSE",
            f"The fake does not serve FROM {resource}.",
        )
    proto_fields = [_proto_path(name, row_descriptor) for name in fields]

    conditions: list[_Condition] = []
    where = match["where"] or ""
    position = 0
    while position < len(where.strip()):
        condition = _CONDITION.match(where, position)
        if condition is None:
            raise _query_error(
                "UNEXPECTED_INPUT", f"Cannot parse: {where[position:]!r}"
            )
        parsed = _condition(condition)
        parsed.field = _proto_path(parsed.field, row_descriptor)
        conditions.append(parsed)
        position = condition.end()

    if "segments.date" in fields and not any(
        c.field == "segments.date" for c in conditions
    ):
        raise _query_error(
            "EXPECTED_FILTERS_ON_DATE_RANGE",
            "segments.date in SELECT needs a finite date range in WHERE.",
        )
    return GaqlQuery(
        fields=fields,
        proto_fields=proto_fields,
        resource=resource,
        conditions=conditions,
    )


def _condition(match: re.Match[str]) -> _Condition:
    if match["low"] is not None:
        return _Condition(
            match["field"], "BETWEEN", [_literal(match["low"]), _literal(match["high"])]
        )
    if match["list_op"] is not None:
        items = [_literal(i.strip()) for i in match["items"].split(",") if i.strip()]
        return _Condition(
            match["field"], match["list_op"].upper().replace(" ", "_"), items
        )
    return _Condition(match["field"], match["op"], [_literal(match["value"])])


def _literal(token: str) -> Any:
    if token[:1] in "'\"":
        return token[1:-1]
    if token.upper() in ("TRUE", "FALSE"):
        return token.upper() == "TRUE"
    try:
        return int(token)
    except ValueError:
        pass
    try:
        return float(token)
    except ValueError:
        return token


def _field(descriptor: Descriptor, name: str) -> FieldDescriptor | None:
    """The field called ``name`` in GAQL (``type`` is ``type_`` in the protos)."""
    found = descriptor.fields_by_name.get(name)
    return found if found is not None else descriptor.fields_by_name.get(name + "_")


def _proto_path(path: str, descriptor: Descriptor) -> str:
    """Translate a GAQL field path to the protobuf one, refusing unknown fields."""
    current: Descriptor | None = descriptor
    parts = []
    for part in path.split("."):
        found = _field(current, part) if current is not None else None
        if found is None:
            raise _query_error("UNRECOGNIZED_FIELD", f"Unrecognized field: {path}")
        parts.append(found.name)
        current = found.message_type
    return ".".join(parts)


def _value_at(message: Message, path: str) -> Any:
    value: Any = message
    for part in path.split("."):
        descriptor = value.DESCRIPTOR.fields_by_name[part]
        raw = getattr(value, part)
        if descriptor.enum_type is not None and not _is_repeated(descriptor):
            return descriptor.enum_type.values_by_number[raw].name
        value = raw
    return value


def _is_repeated(descriptor: FieldDescriptor) -> bool:
    return bool(descriptor.is_repeated)


def _holds(condition: _Condition, value: Any) -> bool:
    values = condition.values
    if condition.op == "BETWEEN":
        return bool(values[0] <= value <= values[1])
    if condition.op == "IN":
        return value in values
    if condition.op == "NOT_IN":
        return value not in values
    comparisons: dict[str, Callable[[Any, Any], bool]] = {
        "=": lambda a, b: a == b,
        "!=": lambda a, b: a != b,
        ">": lambda a, b: a > b,
        ">=": lambda a, b: a >= b,
        "<": lambda a, b: a < b,
        "<=": lambda a, b: a <= b,
    }
    return comparisons[condition.op](value, values[0])


# -- resource helpers -------------------------------------------------------------


def _set_enum(message: Message, name: str, value: str) -> None:
    descriptor = _field(message.DESCRIPTOR, name)
    assert descriptor is not None
    number = descriptor.enum_type.values_by_name[value].number
    setattr(message, descriptor.name, number)


def _enum_name(message: Message, name: str) -> str:
    descriptor = _field(message.DESCRIPTOR, name)
    assert descriptor is not None
    number = getattr(message, descriptor.name)
    return str(descriptor.enum_type.values_by_number[number].name)


def _scheme_oneof(message: Message) -> str:
    if message.DESCRIPTOR.name == "Campaign":
        return "campaign_bidding_strategy"
    return "scheme"


def _set_scheme(
    message: Message,
    strategy: str,
    target_cpa_micros: int | None,
    target_roas: float | None,
) -> None:
    if strategy == "TARGET_CPA":
        message.target_cpa.target_cpa_micros = target_cpa_micros or 0
    elif strategy == "MAXIMIZE_CONVERSIONS":
        message.maximize_conversions.SetInParent()
        if target_cpa_micros is not None:
            message.maximize_conversions.target_cpa_micros = target_cpa_micros
    elif strategy == "TARGET_ROAS":
        message.target_roas.target_roas = target_roas or 0.0
    elif strategy == "MAXIMIZE_CONVERSION_VALUE":
        message.maximize_conversion_value.SetInParent()
        if target_roas is not None:
            message.maximize_conversion_value.target_roas = target_roas


def _set_leaf_paths(message: Message, prefix: str = "") -> Iterator[str]:
    for descriptor, value in message.ListFields():
        path = f"{prefix}{descriptor.name}"
        if descriptor.message_type is not None and not _is_repeated(descriptor):
            children = list(_set_leaf_paths(value, path + "."))
            yield from children or [path]
        else:
            yield path


def _check_roas_bounds(
    at: list[tuple[str, int | None]], update: Message
) -> dict[str, Any] | None:
    for scheme in ("maximize_conversion_value", "target_roas"):
        if not update.HasField(scheme):
            continue
        value = getattr(update, scheme).target_roas
        # An unset target (zero) is allowed: it removes the target.
        if value == 0 or TARGET_ROAS_MIN <= value <= TARGET_ROAS_MAX:
            continue
        name = "TOO_LOW" if value < TARGET_ROAS_MIN else "TOO_HIGH"
        return api_error(
            "range_error",
            name,
            f"Target ROAS {value} is outside [{TARGET_ROAS_MIN}, {TARGET_ROAS_MAX}].",
            [*at, ("update", None), (scheme, None), ("target_roas", None)],
        )
    return None


def _check_cpa_bounds(
    at: list[tuple[str, int | None]], update: Message, paths: Sequence[str]
) -> dict[str, Any] | None:
    # Unlike maximize conversions, whose zero target CPA removes the target,
    # the standard target CPA strategy cannot bid without a target.
    if "target_cpa.target_cpa_micros" not in paths:
        return None
    micros = update.target_cpa.target_cpa_micros
    if micros > 0:
        return None
    return api_error(
        "range_error",
        "TOO_LOW",
        f"Target CPA micros {micros} must be more than zero.",
        [*at, ("update", None), ("target_cpa", None), ("target_cpa_micros", None)],
    )
