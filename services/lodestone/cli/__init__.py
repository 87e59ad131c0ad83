"""The ``lodestone`` command."""
