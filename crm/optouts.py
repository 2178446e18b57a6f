"""A customer's opt-out recorded by a person (a seller who asked, as the seller guide says, or an office user),
with who did it on the customer's shared notes.

The shopper's own "SAIR" is applied by channel.inbound as the message arrives; this is the same flag
(``Customer.opted_out_at``), so the same rules follow: the recoverer skips the customer (recovery.eligibility),
the sender blocks automated messages (channel.sender) and no new opportunity is created for them
(crm.opportunities.create) unless they themselves ask for a person. The shopper opts back in with VOLTAR.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from models import Customer, CustomerNote, User

# The kind of the note that records it (shown on the customer's history and in the Contato tab).
OPT_OUT_NOTE = "optout"
MAX_DETAIL = 500


def record_opt_out(session: Session, customer: Customer, actor: User, now: datetime, detail: str = "") -> bool:
    """Opt ``customer`` out on behalf of ``actor``. False (and nothing written) when they already are.
    Flushes, does not commit."""
    if customer.opted_out_at is not None:
        return False
    customer.opted_out_at = now
    customer.opt_out_asked_at = None  # a question the bot asked is answered
    who = actor.name or actor.email
    text = f"Opt-out registrado por {who}: o cliente não quer mais receber mensagens."
    detail = " ".join((detail or "").replace("\x00", "").split())[:MAX_DETAIL]
    if detail:
        text += f" {detail}"
    session.add(CustomerNote(customer_id=customer.id, author_id=actor.id, kind=OPT_OUT_NOTE, text=text,
                             created_at=now))
    session.flush()
    return True
