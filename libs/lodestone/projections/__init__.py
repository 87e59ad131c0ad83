"""Read models. A projection turns (event, position) into rows on a view; it knows
neither where its events come from (notification log or Kafka) nor which database the
view writes to.

``base`` (projections, routing by event class, views), ``tables`` (a read model's
tables described once for every database), ``tracking`` (positions and versions per
projection), ``registry`` (every projection by name) need no SQL driver; ``sqlite`` and
``postgres`` are what every view on that database shares. Each read model is a package
shaped like ``genealogy``: rows, view interface, projection, queries, ``schema``, and a
thin ``sqlite`` and ``postgres`` module.
"""
