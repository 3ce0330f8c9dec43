"""Command source (design §4.4). STUB."""


def fetch(cfg, now):
    return []
