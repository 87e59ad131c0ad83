"""The HTTP gateway: FastAPI over the ledger and the read models."""

from lodestone.gateway.app import create_app

__all__ = ["create_app"]
