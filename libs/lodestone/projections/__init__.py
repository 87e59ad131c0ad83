"""Read models. A projection turns (event, position) into rows on a view; it knows
neither where its events come from (notification log or Kafka) nor which database the
view writes to."""
