"""The one registry shape of targets, sources and publishers: named objects in registration order.

No imports: sources/__init__.py (on the statusline's path) uses it.
"""


class Registry(dict):
    """{name: object}; each object has a `name`. `get` raises KeyError for an unknown name."""

    def register(self, item):
        """Add (or replace) `item` under `item.name`; returns it."""
        self[item.name] = item
        return item

    def unregister(self, name):
        self.pop(name, None)

    def get(self, name):
        return self[name]

    def names(self):
        return tuple(self)
