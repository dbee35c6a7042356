"""Churn behaviour of the retail simulator's customers: who orders, and who stops for good.

Each customer has a hidden loyalty in (0, 1) (a Beta(2, 2) draw). It sets how often they order
(an order picks a live customer with probability proportional to ``0.2 + 1.6 * loyalty``) and,
with their history, how likely they are to stop: every simulated day a customer who still orders
churns with probability

    base_daily_hazard * (0.25 + 2.5 * (1 - loyalty)^2) * (1 + 4 * cancel share) * recency factor

where the cancel share is the share of their orders cancelled so far, and the recency factor is
1.5 once their last order is more than ``quiet_days`` old (1 before it). A churned customer
never orders again. Everything here draws from a random stream of its own, so the rest of the
simulation's activity draws the same numbers with or without churn.

The truth, ``churned``, maps each churned customer to the instant (microseconds since the epoch)
from which they stop ordering.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

_DAY_US = 86_400 * 1_000_000
#: How many candidates an order looks at before it gives up (then no order is placed).
_MAX_DRAWS = 200


@dataclass(frozen=True)
class ChurnBehaviour:
    base_daily_hazard: float = 0.002
    quiet_days: int = 21


@dataclass
class CustomerChurn:
    seed: int
    behaviour: ChurnBehaviour = field(default_factory=ChurnBehaviour)
    loyalty: dict[int, float] = field(default_factory=dict)
    orders: dict[int, int] = field(default_factory=dict)
    cancelled: dict[int, int] = field(default_factory=dict)
    last_order_us: dict[int, int] = field(default_factory=dict)
    churned: dict[int, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.rng = random.Random(f"retail:{self.seed}:churn")

    def _loyalty(self, customer_id: int) -> float:
        if customer_id not in self.loyalty:
            self.loyalty[customer_id] = self.rng.betavariate(2.0, 2.0)
        return self.loyalty[customer_id]

    def _weight(self, customer_id: int) -> float:
        return (0.2 + 1.6 * self._loyalty(customer_id)) / 1.8

    def pick(self, live: list[int], draw: float) -> int | None:
        """The customer who places an order: ``draw`` (the activity stream's number) proposes a live
        customer, accepted in proportion to their loyalty's weight unless they churned; further
        proposals come from this stream. None if no live customer still orders."""
        if not live:
            return None
        candidate = live[int(len(live) * draw)]
        for _ in range(_MAX_DRAWS):
            if candidate not in self.churned and self.rng.random() < self._weight(candidate):
                return candidate
            candidate = live[int(len(live) * self.rng.random())]
        return None

    def ordered(self, customer_id: int, moment_us: int) -> None:
        self.orders[customer_id] = self.orders.get(customer_id, 0) + 1
        self.last_order_us[customer_id] = max(moment_us, self.last_order_us.get(customer_id, moment_us))

    def order_cancelled(self, customer_id: int) -> None:
        self.cancelled[customer_id] = self.cancelled.get(customer_id, 0) + 1

    def hazard(self, customer_id: int, now_us: int) -> float:
        orders = self.orders.get(customer_id, 0)
        cancel_share = self.cancelled.get(customer_id, 0) / orders if orders else 0.0
        last = self.last_order_us.get(customer_id)
        quiet = last is None or now_us - last > self.behaviour.quiet_days * _DAY_US
        return (
            self.behaviour.base_daily_hazard
            * (0.25 + 2.5 * (1.0 - self._loyalty(customer_id)) ** 2)
            * (1.0 + 4.0 * cancel_share)
            * (1.5 if quiet else 1.0)
        )

    def new_day(self, live: list[int], day_start_us: int) -> None:
        """Each live customer who still orders may stop from this day on."""
        for customer_id in list(live):
            if customer_id not in self.churned and self.rng.random() < self.hazard(customer_id, day_start_us):
                self.churned[customer_id] = day_start_us
