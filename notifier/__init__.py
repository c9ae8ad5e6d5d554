"""notifier: notifications and subscriptions for local government meetings and decisions."""

__version__ = "0.1.0"
