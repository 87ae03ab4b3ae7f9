"""One router per room; each route declares its roles with :class:`rtcc.api.deps.Allow`."""
