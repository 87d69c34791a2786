"""Pure domain logic: money, identifiers, payment status, events and validation.

Nothing in this package does IO or imports an IO library (enforced by
``tests/unit/test_architecture.py``); it is the part that must be right about money.
"""
