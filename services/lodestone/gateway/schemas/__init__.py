"""Request and response shapes: pydantic lives here and in Settings only."""
