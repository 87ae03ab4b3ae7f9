"""Cameras: city, in-car and community registry, visibility, footage requests, live view.

The room in brief
-----------------
*Registry* (:mod:`~rtcc.cameras.registry`, table ``cameras``). Three kinds:
``city`` (fixed, added by an admin), ``in_car`` (follows the heartbeats of
its ``device_id``: position and heading; its ``bearing_deg`` is relative to
the vehicle) and ``community`` (registered by a resident or business on the
public page, no account). Levels: ``registered`` (location known, footage
on request) or ``integrated`` (live feed shared through ``stream_url``).
A community camera goes ``pending_verification`` → ``pending_approval`` →
``active`` (or ``rejected``); its owner can withdraw at any time, which
deletes the row, the contact and every clip. Owner contact is personal
data: only admins and supervisors read it, audited.

*Notifications* (:mod:`~rtcc.cameras.notify`): a :class:`~rtcc.cameras.notify.Notifier`
— SMTP email or the demo's log — sends verification links and codes, the
owner's manage link, footage requests and decisions. Links point at the
web page ``community.html`` with ``?verify=``, ``?manage=`` or
``?footage=`` and a secret token (stored hashed).

*Visibility* (:func:`rtcc.cameras.visibility.cameras_seeing`): cameras within
range whose field of view holds a point at a time; integrated first, then
nearest. ``GET /api/v1/cameras/visible?lat=&lon=&at=``.

*Footage requests* (:mod:`~rtcc.cameras.footage`): analysts, supervisors and
admins ask a community camera's owner for a time window; the owner uploads
the clip (or declines) through the mailed link; the clip is attached to
the request's ``incident_ref``. Status: requested → notified → uploaded /
declined / expired.

*Live view* (:mod:`~rtcc.cameras.live`, :mod:`~rtcc.cameras.sources`): RTSP,
HTTP MJPEG/JPEG or ``synthetic://`` sources decoded with PyAV and served as
MJPEG (``GET /api/v1/cameras/{id}/live.mjpeg``, put it in an ``<img src>``
with a session cookie) and JPEG snapshots; one upstream reader per camera
however many watch. The ``cameras`` processor (:mod:`~rtcc.cameras.processor`)
probes sources and publishes ``camera_status`` events once per edge.

*Transparency* (:func:`rtcc.cameras.transparency.stats`): counts, no
personal data (``GET /api/v1/cameras/stats``).

API for the pages: ``rtcc/api/routes/community.py`` (public registration,
verification, the owner's manage and footage links) and
``rtcc/api/routes/cameras.py`` (staff).
"""
