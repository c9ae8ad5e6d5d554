"""The webhook channel: signed HTTP deliveries to partners' endpoints (Standard Webhooks).

`signing` makes secrets and signatures, `targets` decides which addresses may be sent to, `payload` builds the JSON
a delivery carries, `endpoints` is what partners manage through the API, and `sender` claims due deliveries from the
shared outbox and sends them.
"""
