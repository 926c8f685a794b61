"""Push target changes to Google Ads: validate first, then apply, in batches.

Rules followed (Google Ads API guides "Mutate best practices", "Partial
failure", "Validate only", "Bidding: maximize conversion value"):

- a tCPA (or maximize conversions) campaign moves to value-based bidding by
  setting ``maximize_conversion_value.target_roas``; a campaign on the legacy
  standard target ROAS strategy keeps it, its ``target_roas.target_roas``
  updated; a portfolio strategy is updated through BiddingStrategyService;
- the update mask names exactly the field set;
- the whole plan is first sent with ``validate_only``; what the API refuses
  then is not sent again;
- at most 10,000 operations per request; partial failure, so one refused
  campaign does not hold back the others;
- a campaign is put back on a standard target CPA strategy (to undo a move
  to value-based bidding) by setting ``target_cpa.target_cpa_micros``, which
  replaces the strategy the campaign had, under the same rules.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from connectors.exceptions import ApiErrorDetail, GoogleAdsError
from connectors.google_ads.session import GoogleAdsSession, failure_details
from connectors.google_ads.settings import normalize_customer_id

logger = logging.getLogger(__name__)

MAX_OPERATIONS_PER_REQUEST = 10_000

ChangeStatus = Literal["applied", "rejected", "validated"]

# Strategies whose campaigns move to maximize conversion value with a target.
_SWITCHABLE = frozenset(
    {"TARGET_CPA", "MAXIMIZE_CONVERSIONS", "MAXIMIZE_CONVERSION_VALUE"}
)
_PORTFOLIO_ROAS = frozenset({"TARGET_ROAS", "MAXIMIZE_CONVERSION_VALUE"})
_MASK_OF = {
    "TARGET_ROAS": "target_roas.target_roas",
    "MAXIMIZE_CONVERSION_VALUE": "maximize_conversion_value.target_roas",
    "TARGET_CPA": "target_cpa.target_cpa_micros",
}


@dataclass(frozen=True)
class TargetChange:
    """One campaign's new target ROAS, as the plan decided it.

    ``current_strategy`` is the campaign's bidding strategy type as read
    (``TARGET_CPA``, ``MAXIMIZE_CONVERSIONS``, ``MAXIMIZE_CONVERSION_VALUE``
    or ``TARGET_ROAS``); ``portfolio_strategy`` the resource name of its
    portfolio strategy, or None for a campaign's own (standard) strategy.
    """

    customer_id: str
    campaign_id: str
    new_target_roas: float
    current_strategy: str
    portfolio_strategy: str | None
    reason: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "customer_id", normalize_customer_id(self.customer_id))
        object.__setattr__(self, "campaign_id", str(self.campaign_id).strip())
        if not self.campaign_id.isdigit():
            raise ValueError(f"campaign id {self.campaign_id!r} is not a number")
        if not (math.isfinite(self.new_target_roas) and self.new_target_roas > 0):
            raise ValueError(
                f"target ROAS {self.new_target_roas!r} for campaign "
                f"{self.campaign_id} is not a positive number"
            )


@dataclass(frozen=True)
class TargetCpaChange:
    """One campaign to put (back) on a standard target CPA strategy.

    ``target_cpa_micros`` is the target in micros of the account's currency;
    whatever strategy the campaign has is replaced. Campaigns on a portfolio
    strategy are not handled here.
    """

    customer_id: str
    campaign_id: str
    target_cpa_micros: int
    reason: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "customer_id", normalize_customer_id(self.customer_id))
        object.__setattr__(self, "campaign_id", str(self.campaign_id).strip())
        if not self.campaign_id.isdigit():
            raise ValueError(f"campaign id {self.campaign_id!r} is not a number")
        micros = self.target_cpa_micros
        if isinstance(micros, bool) or not isinstance(micros, int) or micros <= 0:
            raise ValueError(
                f"target CPA micros {micros!r} for campaign {self.campaign_id} "
                "is not a positive whole number"
            )


_Change = TargetChange | TargetCpaChange


@dataclass(frozen=True)
class ChangeOutcome:
    """What became of one ``TargetChange``."""

    customer_id: str
    campaign_id: str
    status: ChangeStatus
    error_message: str | None = None
    error_field_path: str | None = None
    error_code: str | None = None
    request_id: str | None = None


@dataclass
class _Operation:
    """One mutate operation and the changes it carries (several for a portfolio)."""

    customer_id: str
    service: Literal["campaign", "portfolio"]
    resource_name: str
    mask_path: str
    value: float | int
    changes: list[_Change] = field(default_factory=list)
    validated_in: str | None = None


@dataclass(frozen=True)
class _Service:
    name: str
    method: str
    request: tuple[str, str]
    operation_field: str


_SERVICES = {
    "campaign": _Service(
        "CampaignService",
        "mutate_campaigns",
        ("services.types.campaign_service", "MutateCampaignsRequest"),
        "operations",
    ),
    "portfolio": _Service(
        "BiddingStrategyService",
        "mutate_bidding_strategies",
        ("services.types.bidding_strategy_service", "MutateBiddingStrategiesRequest"),
        "operations",
    ),
}


def apply_target_changes(
    session: GoogleAdsSession,
    changes: Sequence[TargetChange],
    validate_only_first: bool = True,
    *,
    dry_run: bool = False,
    max_operations: int = MAX_OPERATIONS_PER_REQUEST,
) -> list[ChangeOutcome]:
    """Send target ROAS changes and report what became of each.

    Parameters
    ----------
    session
        An open ``GoogleAdsSession``.
    changes
        The plan's changes; campaigns sharing a portfolio strategy must ask
        for the same target.
    validate_only_first
        Send the whole plan with ``validate_only`` before changing anything;
        changes the API refuses then are reported and not sent again.
    dry_run
        Only validate: nothing changes, accepted changes come back
        ``"validated"``.
    max_operations
        Operations per request, at most the API's 10,000.

    Returns
    -------
    list of ChangeOutcome
        One per change, in the order given.

    Raises
    ------
    ValueError
        If two changes ask different targets of one portfolio strategy.
    NotImplementedError
        For a change valuebid cannot make (see the message).
    """
    _check_max_operations(max_operations)
    return _send_planned(
        session,
        _plan_operations(changes),
        changes,
        validate_only_first or dry_run,
        dry_run,
        max_operations,
    )


def restore_target_cpa(
    session: GoogleAdsSession,
    changes: Sequence[TargetCpaChange],
    validate_only_first: bool = True,
    *,
    dry_run: bool = False,
    max_operations: int = MAX_OPERATIONS_PER_REQUEST,
) -> list[ChangeOutcome]:
    """Put campaigns on a standard target CPA strategy and report each outcome.

    It is how a move to value-based bidding is undone: the campaign's
    strategy is replaced by target CPA with the given target.

    Parameters
    ----------
    session
        An open ``GoogleAdsSession``.
    changes
        One per campaign, each with its own (standard) strategy.
    validate_only_first
        Send them all with ``validate_only`` before changing anything;
        changes the API refuses then are reported and not sent again.
    dry_run
        Only validate: nothing changes, accepted changes come back
        ``"validated"``.
    max_operations
        Operations per request, at most the API's 10,000.

    Returns
    -------
    list of ChangeOutcome
        One per change, in the order given.

    Raises
    ------
    ValueError
        If a campaign appears twice.
    """
    _check_max_operations(max_operations)
    operations = []
    seen: set[tuple[str, str]] = set()
    for change in changes:
        _check_once(change, seen)
        operations.append(
            _Operation(
                customer_id=change.customer_id,
                service="campaign",
                resource_name=_campaign_resource(change),
                mask_path=_MASK_OF["TARGET_CPA"],
                value=change.target_cpa_micros,
                changes=[change],
            )
        )
    return _send_planned(
        session,
        operations,
        changes,
        validate_only_first or dry_run,
        dry_run,
        max_operations,
    )


def _check_max_operations(max_operations: int) -> None:
    if not 1 <= max_operations <= MAX_OPERATIONS_PER_REQUEST:
        raise ValueError(
            f"max_operations {max_operations} is outside [1, "
            f"{MAX_OPERATIONS_PER_REQUEST}]"
        )


def _send_planned(
    session: GoogleAdsSession,
    operations: list[_Operation],
    changes: Sequence[_Change],
    validate_first: bool,
    dry_run: bool,
    max_operations: int,
) -> list[ChangeOutcome]:
    outcomes: dict[tuple[str, str], ChangeOutcome] = {}
    pending = operations
    if validate_first:
        pending = _send_all(session, pending, True, max_operations, outcomes)
    if dry_run:
        for operation in pending:
            _record(outcomes, operation, "validated", None, operation.validated_in)
    else:
        _send_all(session, pending, False, max_operations, outcomes)

    return [outcomes[_key(change)] for change in changes]


def _key(change: _Change) -> tuple[str, str]:
    return (change.customer_id, change.campaign_id)


def _check_once(change: _Change, seen: set[tuple[str, str]]) -> None:
    if _key(change) in seen:
        raise ValueError(
            f"campaign {change.campaign_id} of customer {change.customer_id} "
            "has more than one change in the plan"
        )
    seen.add(_key(change))


def _campaign_resource(change: _Change) -> str:
    return f"customers/{change.customer_id}/campaigns/{change.campaign_id}"


def _plan_operations(changes: Sequence[TargetChange]) -> list[_Operation]:
    operations: list[_Operation] = []
    portfolios: dict[str, _Operation] = {}
    seen: set[tuple[str, str]] = set()
    for change in changes:
        _check_once(change, seen)
        if change.portfolio_strategy:
            operation = portfolios.get(change.portfolio_strategy)
            if operation is None:
                operation = _portfolio_operation(change)
                portfolios[change.portfolio_strategy] = operation
                operations.append(operation)
            elif operation.value != change.new_target_roas:
                raise ValueError(
                    f"portfolio strategy {change.portfolio_strategy} is asked for "
                    f"target ROAS {operation.value} and "
                    f"{change.new_target_roas}: plan one target per portfolio"
                )
            operation.changes.append(change)
            continue
        operations.append(_campaign_operation(change))
    return operations


def _campaign_operation(change: TargetChange) -> _Operation:
    if change.current_strategy == "TARGET_ROAS":
        mask = _MASK_OF["TARGET_ROAS"]
    elif change.current_strategy in _SWITCHABLE:
        mask = _MASK_OF["MAXIMIZE_CONVERSION_VALUE"]
    else:
        raise NotImplementedError(
            f"campaign {change.campaign_id} bids with {change.current_strategy}: "
            "valuebid moves only target CPA, maximize conversions and value-based "
            "campaigns to a target ROAS; change its strategy in Google Ads first"
        )
    return _Operation(
        customer_id=change.customer_id,
        service="campaign",
        resource_name=_campaign_resource(change),
        mask_path=mask,
        value=change.new_target_roas,
        changes=[change],
    )


def _portfolio_operation(change: TargetChange) -> _Operation:
    assert change.portfolio_strategy is not None
    if change.current_strategy not in _PORTFOLIO_ROAS:
        # TODO: switching a portfolio from target CPA to target ROAS changes
        # every campaign sharing it at once; it needs its own plan step.
        raise NotImplementedError(
            f"campaign {change.campaign_id} uses the {change.current_strategy} "
            f"portfolio strategy {change.portfolio_strategy}: valuebid updates "
            "value-based portfolios only; switch the portfolio in Google Ads first"
        )
    parts = change.portfolio_strategy.split("/")
    if len(parts) != 4 or parts[0] != "customers" or parts[2] != "biddingStrategies":
        raise ValueError(
            f"portfolio strategy {change.portfolio_strategy!r} is not a resource "
            "name like customers/1234567890/biddingStrategies/42"
        )
    return _Operation(
        customer_id=normalize_customer_id(parts[1]),
        service="portfolio",
        resource_name=change.portfolio_strategy,
        mask_path=_MASK_OF[change.current_strategy],
        value=change.new_target_roas,
    )


def _send_all(
    session: GoogleAdsSession,
    operations: list[_Operation],
    validate_only: bool,
    max_operations: int,
    outcomes: dict[tuple[str, str], ChangeOutcome],
) -> list[_Operation]:
    """Send operations grouped by account and service; return those accepted."""
    groups: dict[tuple[str, str], list[_Operation]] = defaultdict(list)
    for operation in operations:
        groups[(operation.customer_id, operation.service)].append(operation)

    accepted: list[_Operation] = []
    for (customer_id, service), group in groups.items():
        for batch in _batches(group, max_operations):
            accepted.extend(
                _send_batch(
                    session, customer_id, service, batch, validate_only, outcomes
                )
            )
    return accepted


def _batches(operations: list[_Operation], size: int) -> Iterator[list[_Operation]]:
    for start in range(0, len(operations), size):
        yield operations[start : start + size]


def _send_batch(
    session: GoogleAdsSession,
    customer_id: str,
    service_key: str,
    batch: list[_Operation],
    validate_only: bool,
    outcomes: dict[tuple[str, str], ChangeOutcome],
) -> list[_Operation]:
    service = _SERVICES[service_key]
    request = _build_request(session, service, customer_id, batch, validate_only)
    action = (
        f"{'validating' if validate_only else 'applying'} {len(batch)} target "
        f"change(s) for customer {customer_id}"
    )
    logger.debug("%s: %s", action, request)

    try:
        # Setting an absolute target is idempotent, so a retried mutate that
        # had in fact gone through changes nothing more.
        response, request_id = session.call(
            action,
            lambda: session.unary_with_request_id(
                service.name, service.method, request, customer_id
            ),
        )
    except GoogleAdsError as exc:
        detail = (
            exc.errors[0] if exc.errors else ApiErrorDetail(exc.status or "", str(exc))
        )
        for operation in batch:
            _record(outcomes, operation, "rejected", detail, exc.request_id, str(exc))
        return []

    logger.debug("response to %s (request %s): %s", action, request_id, response)
    failed = _failed_operations(session, response)
    accepted = []
    for index, operation in enumerate(batch):
        if index in failed:
            _record(outcomes, operation, "rejected", failed[index], request_id)
        elif validate_only:
            operation.validated_in = request_id
            accepted.append(operation)
        else:
            _record(outcomes, operation, "applied", None, request_id)
    return accepted


def _build_request(
    session: GoogleAdsSession,
    service: _Service,
    customer_id: str,
    batch: list[_Operation],
    validate_only: bool,
) -> Any:
    request = session.message_class(*service.request).pb()()
    request.customer_id = customer_id
    request.partial_failure = True
    request.validate_only = validate_only
    for operation in batch:
        entry = request.operations.add()
        entry.update.resource_name = operation.resource_name
        scheme, target_field = operation.mask_path.split(".")
        setattr(getattr(entry.update, scheme), target_field, operation.value)
        entry.update_mask.paths.append(operation.mask_path)
    return request


def _failed_operations(
    session: GoogleAdsSession, response: Any
) -> dict[int, ApiErrorDetail]:
    """Operation index to its first error, from a partial failure response."""
    failed: dict[int, ApiErrorDetail] = {}
    status = response.partial_failure_error
    if not status.code:
        return failed
    failure_class = session.message_class("errors.types.errors", "GoogleAdsFailure")
    for any_detail in status.details:
        failure = failure_class.pb()()
        any_detail.Unpack(failure)
        for error, detail in zip(failure.errors, failure_details(failure), strict=True):
            elements = error.location.field_path_elements
            if elements and elements[0].field_name == "operations":
                failed.setdefault(elements[0].index, _without_index(detail))
    return failed


def _without_index(detail: ApiErrorDetail) -> ApiErrorDetail:
    """Drop the ``operations[i].`` prefix: i counts within one request only."""
    head, _, rest = detail.field_path.partition(".")
    path = rest if head.startswith("operations[") else detail.field_path
    return ApiErrorDetail(code=detail.code, message=detail.message, field_path=path)


def _record(
    outcomes: dict[tuple[str, str], ChangeOutcome],
    operation: _Operation,
    status: ChangeStatus,
    detail: ApiErrorDetail | None,
    request_id: str | None,
    message: str | None = None,
) -> None:
    for change in operation.changes:
        outcome = ChangeOutcome(
            customer_id=change.customer_id,
            campaign_id=change.campaign_id,
            status=status,
            error_message=(message or detail.message) if detail else None,
            error_field_path=(detail.field_path or None) if detail else None,
            error_code=detail.code if detail else None,
            request_id=request_id,
        )
        outcomes[_key(change)] = outcome
        _log_outcome(change, operation, outcome)


def _log_outcome(
    change: _Change, operation: _Operation, outcome: ChangeOutcome
) -> None:
    if isinstance(change, TargetChange):
        what, was = f"target ROAS {change.new_target_roas:.4g}", change.current_strategy
    else:
        what, was = f"target CPA {change.target_cpa_micros} micros", "-"
    if outcome.status == "rejected":
        logger.info(
            "target change rejected: customer %s campaign %s to %s (%s): %s %s at %s "
            "(request %s)",
            change.customer_id,
            change.campaign_id,
            what,
            change.reason,
            outcome.error_code,
            outcome.error_message,
            outcome.error_field_path or "-",
            outcome.request_id or "-",
        )
        return
    logger.info(
        "target change %s: customer %s campaign %s %s to %s via %s (%s), request %s",
        outcome.status,
        change.customer_id,
        change.campaign_id,
        was,
        what,
        operation.resource_name
        if operation.service == "portfolio"
        else operation.mask_path,
        change.reason,
        outcome.request_id or "-",
    )
