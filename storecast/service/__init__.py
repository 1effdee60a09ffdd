"""The HTTP service, ``storecast serve``: a thin ASGI layer over the loader, the daily run and the marts."""


class ServiceError(RuntimeError):
    """The service cannot start as configured (for example: exposed without a token)."""
