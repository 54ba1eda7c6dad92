"""A customer's books for reducer tests: the profile plus each order's own state, as the store keeps them.

Orders and refunds are applied with `apply_order` to the order's state and the profile together; every
other event with `apply`. `Books` reads like a profile (facts, fields) and also exposes the orders.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from evergreen.domain.events import DomainEvent, OrderObserved, RefundObserved
from evergreen.domain.orders import OrderRecord, OrderState, RefundRecord
from evergreen.domain.profile import Profile
from evergreen.domain.reducers import apply as apply_to_profile
from evergreen.domain.reducers import apply_order


@dataclass(frozen=True)
class Books:
    profile: Profile
    states: dict[str, OrderState] = field(default_factory=dict)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.profile, name)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Profile):
            return self.profile == other and not self.states
        if isinstance(other, Books):
            return (self.profile, self.states) == (other.profile, other.states)
        return NotImplemented

    def __hash__(self) -> int:
        return id(self)

    @property
    def orders(self) -> dict[str, OrderRecord]:
        return {order_id: state.order for order_id, state in self.states.items() if state.order is not None}

    @property
    def refunds(self) -> dict[str, RefundRecord]:
        return {refund_id: r for state in self.states.values() for refund_id, r in state.refunds.items()}

    def facts(self) -> dict[str, Any]:
        return self.profile.facts()

    def model_dump(self) -> dict[str, Any]:
        return {"profile": self.profile.model_dump(), "orders": {k: v.model_dump() for k, v in self.states.items()}}


def apply(books: Books | Profile, event: DomainEvent) -> Books:
    """The books after one event (the input is never changed)."""
    current = books if isinstance(books, Books) else Books(books)
    if isinstance(event, OrderObserved | RefundObserved):
        profile, state = apply_order(current.profile, current.states.get(event.order_id), event)
        return Books(profile, {**current.states, event.order_id: state})
    return Books(apply_to_profile(current.profile, event), current.states)
