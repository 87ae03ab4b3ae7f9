"""Body-worn cameras: registry, protocol, remote and automatic activation.

* :mod:`~rtcc.bodycam.protocol` — what a command looks like on the wire, its
  signature, and the checks a device makes before obeying (expiry, replay).
* :mod:`~rtcc.bodycam.commands` — commands in the store: issue, deliver over
  HTTPS, retry, time out, apply acknowledgements.
* :mod:`~rtcc.bodycam.registry` — the units (body cams) and where they are;
  :func:`~rtcc.bodycam.registry.units_near` for other rooms.
* :mod:`~rtcc.bodycam.policy` — the automatic activation policy.
* :mod:`~rtcc.bodycam.service` — the async side: publish commands on the bus
  (MQTT topic ``rtcc/devices/<id>/commands``), wake HTTPS long-polls.
* :mod:`~rtcc.bodycam.processor` — the ``bodycam`` processor: acks, retries,
  automatic activation on gunshot incidents and hotlist hits.
* :mod:`~rtcc.bodycam.device` — a body cam's side of the protocol (simulator).
* :mod:`~rtcc.bodycam.transparency` — counts for the public transparency page.

The protocol is documented in ``docs/bodycam-protocol.md``.
"""
