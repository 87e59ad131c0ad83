"""The composition root: a process's one ``Settings`` (``settings``) and what it builds
from them (``stores``): the ledger, the read-model view, and the stores beside the event
store on one connection. Nothing is built at import time."""
