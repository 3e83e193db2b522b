"""Pure business rules of the flows: eligibility, Mirakl -> Shopify order mapping, acceptance, poll windows.

No I/O here: models and config in, plain values out, so every rule is unit-tested in isolation.
"""
