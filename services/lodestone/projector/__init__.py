"""The projector process: Kafka to the read models, through a consumer group."""
