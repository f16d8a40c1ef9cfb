"""How a delivery attempt can fail: worth retrying, or not."""


class DeliveryError(Exception):
    """A mail could not be handed over; the message says why, without secrets."""


class TransientDeliveryError(DeliveryError):
    """Try again later: server down, timeout, 4xx reply, or a configuration problem."""


class PermanentDeliveryError(DeliveryError):
    """Never retry: the server refused the message with a 5xx reply, or it cannot be built."""
