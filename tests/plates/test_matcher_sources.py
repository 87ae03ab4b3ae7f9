"""One matcher per hotlist source: a BOLO change rebuilds only the BOLO list, never the big imports."""

from __future__ import annotations

from rtcc.plates import hotlists as repo
from rtcc.plates.hotlist_import import Category, ParsedEntry
from tests.conftest import StartCenter


def _ncic(n: int) -> list[ParsedEntry]:
    return [ParsedEntry(i + 1, f"NC{i:05d}", Category.stolen_vehicle) for i in range(n)]


async def test_bolo_changes_rebuild_only_their_source(start_center: StartCenter) -> None:
    c = await start_center(processors=("plates",), plates={"lookalike_distance": 0, "hotlist_refresh_s": 60})
    store = c.center.store
    assert store is not None
    await store.write(lambda s: repo.replace_source(s, "ncic", "ncic", _ncic(3000)))
    processor = c.center.services["plates"]
    assert await processor.refresh() is True
    ncic_matcher = processor.sources["ncic"][1]
    assert processor.size == 3000 and [m.kind for m in processor.matches("NC00042")] == ["exact"]

    admin = await c.login("admin")
    try:
        r = await admin.post(
            "/api/v1/hotlists/entries",
            json={"plate": "NC0004?", "category": "custom", "reason": "partial BOLO"},
        )
        assert r.status_code == 201, r.text
        bolo_id = r.json()["id"]
        # the API refreshed the matchers: the BOLO matches, the NCIC matcher is the same object
        assert processor.sources["ncic"][1] is ncic_matcher
        assert [(m.kind, m.entry.plate) for m in processor.matches("NC00042")] == [
            ("exact", "NC00042"),
            ("partial", "NC0004?"),
        ]
        # add then delete then add again: the signature still moves, nothing stale is kept
        r = await admin.delete(f"/api/v1/hotlists/entries/{bolo_id}")
        assert r.status_code == 200
        assert [m.entry.plate for m in processor.matches("NC00042")] == ["NC00042"]
        r = await admin.post(
            "/api/v1/hotlists/entries", json={"plate": "XYZ999", "category": "custom", "reason": "other BOLO"}
        )
        assert r.status_code == 201
        assert [m.entry.plate for m in processor.matches("NC00042")] == ["NC00042"]
        assert [m.entry.plate for m in processor.matches("XYZ999")] == ["XYZ999"]
        assert processor.sources["ncic"][1] is ncic_matcher and processor.size == 3001
    finally:
        await admin.aclose()

    # re-importing the big list rebuilds it; removing a whole source drops its matcher
    await store.write(lambda s: repo.replace_source(s, "ncic", "ncic", _ncic(10)))
    assert await processor.refresh() is True
    assert processor.sources["ncic"][1] is not ncic_matcher and processor.matches("NC00042") == []
    await store.write(lambda s: repo.replace_source(s, "ncic", "ncic", []))
    await processor.refresh()
    assert processor.sources["ncic"][1].size == 0 and processor.size == 1
    assert await processor.refresh() is False  # no version change: nothing to do
