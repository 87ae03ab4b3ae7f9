"""Analytics: hotspots, deployment recommendations and their honest evaluation.

Which areas need officers, and when — from the gunshot incident history, on H3 cells:

* :mod:`.records` — incidents as arrays (local times, positions); the real San Francisco and
  Oakland ShotSpotter record files (``--data`` / ``$RTCC_INCIDENTS_DIR``).
* :mod:`.grid` — the study area as H3 cells: areas, neighbours, GeoJSON polygons.
* :mod:`.methods` — scores per cell: naive (last month), counts, recency-weighted counts, kernel
  density (scipy ``gaussian_kde``), Getis-Ord Gi* (esda ``G_Local``, ``star=True``).
* :mod:`.evaluate` — fit 12 months → test the next, rolled over the record; PAI and hit rate at
  fixed flagged-area shares against the naive baseline; parameters tuned on the earliest months.
* :mod:`.hotspots` — the hotspot map and top cells per shift as GeoJSON (API and CLI).
* :mod:`.center` — the center's ``gunshot_incidents`` as records.
* :mod:`.unreported` — share of incidents with no 911/CAD call nearby in time and space.

Example::

    from rtcc.analytics.records import load_city, incidents_dir
    from rtcc.analytics.evaluate import evaluate

    ev = evaluate(load_city(incidents_dir(None), "oakland"), city="oakland")
    print(ev.methods["kde"].per_share["5%"]["pai_mean"])

See ``docs/analytics.md`` for the split, the figures and the data's attribution.
"""
