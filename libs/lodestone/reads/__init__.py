"""Query layer: what routes, the CLI, reports and benchmarks read (batch state, traces,
provenance, history, as-of), taking the principal and returning typed results."""
