"""SQLAlchemy models and the session. Importing this package registers every table on Base.metadata."""

from models.base import ZERO, Base, utcnow
from models.bot import BotText, FaqEntry, HandoffRequest, HandoffStatus
from models.catalog import Product, Variant
from models.commerce import Cart, CartItem, CartStatus, Order, OrderItem, OrderStatus
from models.crm import (
    NOTE_KINDS, OPEN_STATUSES, CrmSettings, CustomerMetrics, CustomerNote, Opportunity, OpportunityEvent, OpportunityResult,
    OpportunityStatus, OpportunityType,
)
from models.db import Database, make_engine
from models.messaging import Direction, Message, MessageStatus, TemplateStatus, WhatsAppTemplate
from models.people import ApiToken, Customer, Role, Store, User, UserSession
from models.recovery import (
    AttemptStatus, Coupon, CouponKind, CouponRule, FrequencyUnit, RecoveryAttempt, RecoverySettings, StoreEvent,
)
from models.segments import Segment, SegmentCount, SegmentEvent, SegmentExclusion, SegmentMember
from models.system import SystemFlag, WebhookSecret

__all__ = [
    "CustomerNote", "CustomerMetrics", "NOTE_KINDS",
    "Base", "ZERO", "utcnow", "Database", "make_engine",
    "Store", "User", "UserSession", "Role", "ApiToken", "Customer", "Product", "Variant",
    "Message", "MessageStatus", "Direction",
    "Cart", "CartItem", "CartStatus", "Order", "OrderItem", "OrderStatus",
    "SystemFlag", "WebhookSecret",
    "RecoverySettings", "CouponRule", "CouponKind", "Coupon", "RecoveryAttempt", "AttemptStatus",
    "FrequencyUnit", "StoreEvent",
    "FaqEntry", "BotText", "WhatsAppTemplate", "TemplateStatus", "HandoffRequest", "HandoffStatus",
    "CrmSettings", "Opportunity", "OpportunityEvent", "OpportunityResult", "OpportunityStatus", "OpportunityType",
    "OPEN_STATUSES",
    "Segment", "SegmentMember", "SegmentExclusion", "SegmentEvent", "SegmentCount",
]
