"""rtcc — an open-source Real-Time Crime Center.

The center hears gunfire and locates it, reads licence plates and flags
hotlisted vehicles, lists the cameras that can see an incident, switches
body-worn cameras on from the center, and counts what all of it led to, with
oversight (roles, purpose-required searches, a hash-chained audit log,
enforced retention, a public transparency page) built in.

Shape
-----
Data flows one way, as typed events (:mod:`rtcc.events`) on a bus
(:mod:`rtcc.bus`)::

    devices ──▶ ingest (HTTPS or MQTT) ──▶ bus ──▶ processors ──▶ store ──▶ API / WebSocket ──▶ dashboard

Rooms (sub-packages) depend on :mod:`rtcc.events`, :mod:`rtcc.geo`,
:mod:`rtcc.bus` and :mod:`rtcc.store`, never on each other's insides; only
:mod:`rtcc.app` (the composition root) imports every room.

Quick start
-----------
``rtcc demo`` runs the center on embedded defaults (SQLite, in-process bus)
with the simulated city; ``rtcc serve`` runs it from settings (PostgreSQL +
PostGIS, NATS JetStream); ``rtcc worker <kind>`` runs a processor on its own.
"""

__version__ = "0.1.0"
