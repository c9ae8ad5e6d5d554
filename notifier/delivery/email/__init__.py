"""The email channel, one room beside the other channels, sharing their outbox (`notifier.delivery.outbox`).

- `mailer`: the `Mailer`: passes over claimed deliveries, sending and recording how each went; the confirmation email
- `batches`: a claimed batch made ready: its rows in one query, what must be skipped, its email rendered from them
- `merge`: one rendered email made into each recipient's message by filling in placeholders
- `views`, `words`, `render`: what an email shows, times and events in words, the four kinds rendered with Jinja2
- `message`: the MIME message with its list headers (`build_message`)
- `sender`: `SmtpSender`, the pool of SMTP connections with its rate limit; `smtp`: one transaction's commands;
  `replies`: what the server's replies mean and when to try again; `smtp_config`: `SmtpConfig` from an smtp:// URL
- `confirmations`: asking the worker for a confirmation email (the double opt-in)
- `bounces`: reading bounce and complaint reports, and VERP addresses; `bounce_processing`: acting on a mailbox of them
"""
