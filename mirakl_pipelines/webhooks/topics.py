"""The Shopify webhook topics the receiver stores, and which flow reads them."""

FULFILMENT_TOPICS = ("fulfillments/create", "fulfillments/update")
ORDER_TOPICS = ("orders/create", "orders/updated", "orders/edited", "orders/cancelled")
REFUND_TOPICS = ("refunds/create",)
INVENTORY_TOPICS = ("inventory_levels/update",)

# Fulfilments are pushed now; the others are stored for the flows that will read them.
DEFAULT_TOPICS = FULFILMENT_TOPICS + ORDER_TOPICS + REFUND_TOPICS + INVENTORY_TOPICS
