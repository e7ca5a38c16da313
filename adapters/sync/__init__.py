"""The hospital's side of shipping records: a durable outbox on disk between the adapters and
the hub, a sender that drains it with retries, and the `ehrhub sync` command.

Parsing enqueues every adapter output once (keyed on its source record and content), sending
marks a record sent only after the hub's 2xx, so a run cut short anywhere is finished by
running it again: nothing lost, and, since every Bundle writes conditionally on its records'
own identifiers, nothing stored twice.
"""
