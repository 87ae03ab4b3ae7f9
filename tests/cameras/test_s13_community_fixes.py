"""Session 13 (community registration audit): what an unauthenticated outsider could do.

* Concurrent registrations could all pass the per-IP limit (it was only
  peeked at before the write and counted after it).
* Text typed by the registrant (the camera's name) went verbatim into the
  center's official verification mail, to any address: now control and
  invisible characters are refused (422 naming the field) and that mail
  quotes nothing typed, only the position.
* A mail failure showed the internal mail server's address to the public.
* Three registrations naming someone else's email locked that person out for
  an hour, and the refusal told the count of the email's open registrations.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from typing import Any

import httpx
import pytest

from rtcc.cameras.notify import LogNotifier
from rtcc.cameras.service import service_of
from tests.cameras.conftest import free_port
from tests.cameras.test_community_flow import registration
from tests.conftest import Running, StartCenter

EMBEDDED = pytest.mark.parametrize("backend", ["embedded"])
REG = "/api/v1/community/registrations"
VERIFY = "/api/v1/community/verify"
LOG = {"notifier": "log"}
AREA = (33.4, -86.9, 33.6, -86.7)


def sent(center: Running) -> LogNotifier:
    notifier = service_of(center.center.services, center.settings.cameras).notifier
    assert isinstance(notifier, LogNotifier)
    return notifier


def error(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    err: dict[str, Any] = r.json()["error"]
    return err


def client_from(center: Running, address: str) -> httpx.AsyncClient:
    """A client whose requests come from another loopback address (another person's IP)."""
    return httpx.AsyncClient(
        base_url=center.url, timeout=20, transport=httpx.AsyncHTTPTransport(local_address=address)
    )


# --- 3. the per-IP limit holds under concurrent requests ------------------------------------------


@EMBEDDED
async def test_concurrent_registrations_cannot_overrun_the_per_ip_limit(start_center: StartCenter) -> None:
    center = await start_center(
        processors=("recorder",), cameras={**LOG, "register_per_ip_per_hour": 3, "service_area": AREA}
    )
    rs = await asyncio.gather(
        *(center.http.post(REG, json=registration(email=f"u{i}@example.org")) for i in range(20))
    )
    codes = Counter(r.status_code for r in rs)
    assert codes == {201: 3, 429: 17}
    assert {r.json()["error"]["details"]["reason"] for r in rs if r.status_code == 429} == {"per_ip"}
    assert len(sent(center).sent) == 3  # three verification mails, not twenty


@EMBEDDED
async def test_concurrent_refused_registrations_give_their_slot_back(start_center: StartCenter) -> None:
    center = await start_center(
        processors=("recorder",), cameras={**LOG, "register_per_ip_per_hour": 3, "service_area": AREA}
    )
    outside = [center.http.post(REG, json=registration(lat=40.7, lon=-74.0)) for _ in range(10)]
    inside = [center.http.post(REG, json=registration(email=f"in{i}@example.org")) for i in range(3)]
    rs = await asyncio.gather(*outside, *inside)
    assert [r.status_code for r in rs] == [422] * 10 + [201] * 3
    err = error(await center.http.post(REG, json=registration(email="late@example.org")), 429)
    assert err["details"]["reason"] == "per_ip"


# --- 4. outsider text in the center's mail ----------------------------------------------------------


INJECTED = "x'.\n\nSECURITY NOTICE: your account is suspended. Restore it at https://evil.example/rtcc\n\n'"


@EMBEDDED
@pytest.mark.parametrize(
    "bad",
    [
        INJECTED,
        "tab\there",
        "carriage\rreturn",
        "nel\x85line",
        "rtl\u202eoverride",
        "zero\u200bwidth",
        "bom\ufeff",
    ],
)
async def test_control_and_invisible_characters_are_refused(start_center: StartCenter, bad: str) -> None:
    center = await start_center(processors=("recorder",), cameras=LOG)
    for field in ("name", "owner_name", "address"):
        err = error(await center.http.post(REG, json=registration(**{field: bad})), 422)
        assert err["code"] == "validation_failed" and f"{field}:" in err["message"], err
    err = error(await center.http.post(REG, json=registration(email="a\u202e@example.org")), 422)
    assert "email" in err["message"]
    assert sent(center).sent == []  # nothing mailed


@EMBEDDED
async def test_verification_mail_quotes_nothing_the_registrant_typed(start_center: StartCenter) -> None:
    center = await start_center(processors=("recorder",), cameras=LOG)
    body = registration(
        name="Visit https://evil.example now",
        owner_name="Mallory",
        address="1 Fake St",
        lat=33.52,
        lon=-86.81,
    )
    r = await center.http.post(REG, json=body)
    assert r.status_code == 201, r.text
    mail = sent(center).sent[-1].body
    for typed in ("evil.example", "Visit", "Mallory", "Fake St"):
        assert typed not in mail
    assert "33.52000, -86.81000" in mail and "enter the code" in mail
    # a name in another script with a zero-width non-joiner (Persian spelling) is fine
    r = await center.http.post(REG, json=registration(name="دوربین\u200cخانه", email="fa@example.org"))
    assert r.status_code == 201, r.text


# --- 5. a mail failure does not show the mail server -----------------------------------------------


@EMBEDDED
async def test_mail_failure_hides_the_mail_server_and_logs_it_once(
    start_center: StartCenter, caplog: pytest.LogCaptureFixture
) -> None:
    port = free_port()  # nothing listens there
    center = await start_center(
        processors=("recorder",), cameras={"notifier": "smtp", "smtp_host": "127.0.0.1", "smtp_port": port}
    )
    with caplog.at_level(logging.WARNING, logger="rtcc.cameras.notify"):
        r = await center.http.post(REG, json=registration())
    err = error(r, 503)
    assert err["message"] == "the center could not send the e-mail; try again later"
    assert str(port) not in r.text and "127.0.0.1" not in r.text and "smtp" not in r.text.lower()
    warnings = [x for x in caplog.records if x.name == "rtcc.cameras.notify" and x.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert f"127.0.0.1:{port}" in warnings[0].getMessage() and "cameras.smtp_host" in warnings[0].getMessage()


# --- 6. nobody else can lock an email out, nor learn about it ------------------------------------


@EMBEDDED
async def test_a_stranger_cannot_lock_out_an_email_or_learn_its_count(start_center: StartCenter) -> None:
    center = await start_center(
        processors=("recorder",), cameras={**LOG, "register_per_contact": 2, "register_per_ip_per_hour": 100}
    )
    victim = "resident@example.org"
    async with client_from(center, "127.0.0.2") as stranger:
        for _ in range(2):
            assert (await stranger.post(REG, json=registration(email=victim))).status_code == 201
        # the stranger's own quota for the address is used up (no more mail bombing from there) ...
        err = error(await stranger.post(REG, json=registration(email=victim)), 429)
        assert err["details"] == {"reason": "per_contact"}
        assert not any(ch.isdigit() for ch in err["message"])  # no count of anyone's registrations
    # ... but the resident, elsewhere, registers their own camera
    r = await center.http.post(REG, json=registration(email=victim))
    assert r.status_code == 201, r.text


@EMBEDDED
async def test_verified_registrations_are_limited_at_verification(start_center: StartCenter) -> None:
    center = await start_center(
        processors=("recorder",), cameras={**LOG, "register_per_contact": 2, "register_per_ip_per_hour": 100}
    )
    owner = "owner@example.org"

    async def register_and_verify() -> httpx.Response:
        r = await center.http.post(REG, json=registration(email=owner))
        assert r.status_code == 201, r.text
        code = sent(center).sent[-1].body.split("enter the code ")[1][:6]
        return await center.http.post(
            VERIFY, json={"registration_id": r.json()["registration_id"], "code": code}
        )

    for _ in range(2):
        assert (await register_and_verify()).status_code == 200
    # two cameras wait for approval: a third registration is accepted like any other (a stranger
    # learns nothing from it), and its verification, which only the mailbox's owner reaches, is refused
    err = error(await register_and_verify(), 429)
    assert err["details"] == {"reason": "per_contact"}
    async with client_from(center, "127.0.0.2") as stranger:
        assert (await stranger.post(REG, json=registration(email=owner))).status_code == 201
