"""Operations: alert queue, incident packets, cases and outcomes, reports, transparency.

The room that turns detections into work for people and accounts for it.

* :mod:`~rtcc.ops.processor` — the ``operations`` processor: stores every
  ``alert`` event once in the queue, builds an incident packet for every
  gunshot incident and hotlist hit and rebuilds it when plate reads or
  body-cam status arrive nearby, and sends new alerts to webhooks.
* :mod:`~rtcc.ops.alerts` — queue states ``new → acknowledged → assigned →
  closed`` (or ``dismissed`` with a reason).
* :mod:`~rtcc.ops.packets` — what a packet holds (cameras that see the place,
  plate reads within R m and ±T min, body cams nearby, earlier incidents).
* :mod:`~rtcc.ops.ledger` — cases, links and outcomes in the seed's eleven
  categories plus ``no_evidence_found``; the "success in N cases" table.
* :mod:`~rtcc.ops.exports` — CSV, GeoJSON, OASIS CAP 1.2, the JSON feed;
  :mod:`~rtcc.ops.webhooks` — signed, retried deliveries to dispatch.
* :mod:`~rtcc.ops.report` — ``rtcc report --month YYYY-MM`` (HTML and PDF).
* :mod:`~rtcc.ops.transparency` — the public page's aggregates (no personal data).

Routes: ``rtcc.api.routes.alerts``, ``cases``, ``reports``, ``transparency``.
"""
