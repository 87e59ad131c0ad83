"""Auditors' tools: checkpoints, verification, history, bundles and reports."""
