"""The transparency page counts every hit category and the refused searches (session 9, findings 4-5)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy.orm import Session

from rtcc.ops.ledger import OUTCOME_CATEGORIES
from rtcc.ops.transparency import REFUSAL_CAUSES, aggregates_only, refusal_cause
from rtcc.plates.hotlist_import import Category
from rtcc.plates.transparency import SEARCH_KINDS, PurposeCategory
from rtcc.roles import Role
from rtcc.store.tables_hotlists import HitRow
from tests.conftest import Running, fresh_pg_database


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database the center migrates itself."""
    with fresh_pg_database() as url:
        yield url


LABELS = [
    *(c.value for c in Category),
    *(c.value for c in PurposeCategory),
    *SEARCH_KINDS,
    *OUTCOME_CATEGORIES,
    *REFUSAL_CAUSES,
]


def test_every_category_label_survives_and_personal_keys_still_go() -> None:
    counts = {label: i + 1 for i, label in enumerate(LABELS)}
    assert aggregates_only({"by_category": counts}) == {"by_category": counts}
    leaky = {"plate": "ABC123", "stolen_plate_plate": "ABC123", "officer": "smith", "lat": 1.0, "ok": 1}
    assert aggregates_only(leaky) == {"ok": 1}


def test_refusal_causes() -> None:
    assert refusal_cause({"missing": ["case_number", "purpose"]}) == "missing_purpose_and_case_number"
    assert refusal_cause({"missing": ["purpose"]}) == "missing_purpose"
    assert refusal_cause({"problem": "case_number 'n/a' names no case"}) == "invalid_case_number"
    assert refusal_cause({"problem": "purpose 'aaaaa' states no purpose"}) == "invalid_purpose"
    assert refusal_cause({"reason": "event_history"}) == "event_history"
    assert refusal_cause({"missing": ["nonsense"]}) == refusal_cause(None) == "other"


def _hits(s: Session) -> None:
    at = datetime.now(UTC) - timedelta(hours=1)
    for n, cat in enumerate(Category):
        for _ in range(n + 1):
            s.add(
                HitRow(
                    id=uuid.uuid4(),
                    read_id=uuid.uuid4(),
                    entry_id=uuid.uuid4(),
                    read_at=at,
                    device="lpr-1",
                    lat=33.5,
                    lon=-86.8,
                    plate="ABC123",
                    match="exact",
                    entry_plate="ABC123",
                    entry_source="ncic",
                    category=cat.value,
                    status="verify",
                )
            )


@pytest.mark.parametrize("backend", ["embedded", pytest.param("production", marks=pytest.mark.postgres)])
async def test_page_counts_every_hit_category_and_refused_searches(
    center: Running, clients: dict[Role, httpx.AsyncClient]
) -> None:
    store = center.center.store
    assert store is not None
    store.run(_hits)
    analyst = clients[Role.analyst]
    why = {"purpose": "stolen car seen on Main St", "case_number": "2026-001234"}
    refused = [
        ("/api/v1/plates/search", {"plate": "ABC123"}),
        ("/api/v1/plates/search", {"plate": "ABC123", "purpose": why["purpose"]}),
        ("/api/v1/plates/search", {"plate": "ABC123", "purpose": why["purpose"], "case_number": "n/a"}),
        ("/api/v1/plates/track", {"plate": "ABC123", "purpose": "aaaaa", "case_number": "2026-1"}),
        ("/api/v1/events", {"types": "plate_read"}),
    ]
    for path, params in refused:
        r = await analyst.get(path, params=params)
        assert r.status_code in (403, 422), r.text
    ok = await analyst.get("/api/v1/plates/search", params={"plate": "ABC123", **why})
    assert ok.status_code == 200, ok.text

    page = (await center.http.get("/api/v1/transparency")).json()["plates"]
    assert page["hits"]["by_category"] == {c.value: n + 1 for n, c in enumerate(Category)}
    assert page["hits"]["by_category"]["stolen_plate"] == 2
    assert page["searches"]["total"] == 1
    assert page["searches"]["refused"] == {
        "total": 5,
        "by_cause": {
            **dict.fromkeys(REFUSAL_CAUSES, 0),
            "missing_purpose_and_case_number": 1,
            "missing_case_number": 1,
            "invalid_case_number": 1,
            "invalid_purpose": 1,
            "event_history": 1,
        },
    }
