"""Reference first replies for the built-in `support-tickets-replies` generation task (data only).

One reply template per category, filled with what the ticket names (customer, order, amount, product),
so a good reply must both route the ticket (which template) and copy its details (which values). Out-of-scope
tickets get `FALLBACK_REPLY`, the polite refusal the built-in task scores their outputs against.
"""

from __future__ import annotations

REPLIES: dict[str, str] = {
    "billing": "{greeting} thanks for flagging the charge{amount_part}. Our billing team will review your "
    "invoice and reply within one business day.",
    "refund": "{greeting} sorry about that. I have opened a refund request{order_part}{amount_part}; it reaches "
    "your card in 5-7 business days.",
    "account_access": "{greeting} I have sent a secure sign-in link to your email. If it does not arrive in 10 "
    "minutes, reply here and we will unlock the account.",
    "shipping": "{greeting} I am checking with the courier{order_part} and will send you the latest tracking "
    "update today.",
    "damaged_item": "{greeting} sorry the {product} arrived like that. A replacement{order_part} is on its way "
    "at no cost.",
    "bug_report": "{greeting} thanks for the report. Our engineers are looking into it; could you tell us your "
    "app version?",
    "feature_request": "{greeting} thanks for the idea! I have passed it to our product team for the roadmap.",
    "cancellation": "{greeting} sorry to see you go. I have scheduled the cancellation and you will get a "
    "confirmation email shortly.",
    "technical_setup": "{greeting} happy to help with the setup. Here is our step-by-step guide, and I can "
    "join a call if you get stuck.",
    "profile_update": "{greeting} I can update that for you. Please confirm the new details and I will change "
    "them today.",
}

FALLBACK_REPLY = (
    "Thanks for your message. This is outside what our support team can help with, but we are happy to "
    "help with orders, billing, accounts and the app."
)


def reply_for(category: str, record: dict) -> str:
    """The reference reply to a ticket of `category` whose planted values are `record` (None where absent)."""
    customer = record.get("customer")
    parts = {
        "greeting": f"Hi {customer}," if customer else "Hi,",
        "order_part": f" for order {record['order_id']}" if record.get("order_id") else "",
        "amount_part": f" of {record['amount']}" if record.get("amount") else "",
        "product": record.get("product") or "item",
    }
    return REPLIES[category].format(**parts)
