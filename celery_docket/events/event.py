"""``celery.events.event``'s names, for code that imports them from there."""

from __future__ import annotations

from . import get_exchange
from .dispatcher import EXCHANGE as EVENT_EXCHANGE_NAME
from .dispatcher import Event, group_from

__all__ = ["EVENT_EXCHANGE_NAME", "Event", "event_exchange", "get_exchange", "group_from"]

#: kombu's description of the exchange (imports kombu, which this module's users have)
event_exchange = get_exchange()
