"""The audit chain's verifier names the first row changed, inserted or deleted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.routing.audit_chain import GENESIS, canonical, entry_hash, verify

START = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)


def chain(count: int) -> list[dict[str, object]]:
    entries: list[dict[str, object]] = []
    previous = GENESIS
    for number in range(1, count + 1):
        entry: dict[str, object] = {
            "id": number,
            "at": START + timedelta(minutes=number),
            "username": f"staff{number}",
            "org_code": "620922100001",
            "role": "staff",
            "action": "accept",
            "complaint_id": f"c{number}",
            "outcome": "ok",
            "request_id": f"r{number}",
            "prev_hash": previous,
        }
        entry["hash"] = entry_hash(entry)
        previous = str(entry["hash"])
        entries.append(entry)
    return entries


def rehash_from(entries: list[dict[str, object]], index: int) -> None:
    """What someone who can write the table does to hide an edit: recompute what follows."""
    previous = GENESIS if index == 0 else str(entries[index - 1]["hash"])
    for entry in entries[index:]:
        entry["prev_hash"] = previous
        entry["hash"] = entry_hash(entry)
        previous = str(entry["hash"])


def test_an_untouched_chain_is_intact_and_reports_its_head() -> None:
    entries = chain(5)
    verdict = verify(entries)
    assert verdict.intact
    assert verdict.rows == 5
    assert verdict.head == entries[-1]["hash"]
    assert verify([]).head == GENESIS


def test_a_changed_row_is_named() -> None:
    entries = chain(5)
    entries[2]["outcome"] = "refused:403"
    verdict = verify(entries)
    assert verdict.problem == "row 3 was changed: its content no longer matches its hash"


def test_a_changed_row_with_a_recomputed_hash_breaks_the_next_link() -> None:
    entries = chain(5)
    entries[2]["username"] = "someone.else"
    entries[2]["hash"] = entry_hash(entries[2])
    assert verify(entries).problem == (
        "rows between row 3 and row 4 were deleted, or row 3 was rewritten"
    )


def test_a_deleted_row_is_named_by_its_neighbours() -> None:
    entries = chain(5)
    del entries[2]
    assert verify(entries).problem == (
        "rows between row 2 and row 4 were deleted, or row 2 was rewritten"
    )


def test_rows_deleted_at_the_start_are_noticed() -> None:
    entries = chain(5)[2:]
    assert verify(entries).problem == "rows before row 3 were deleted: the chain starts after them"


def test_an_inserted_row_is_named_even_when_its_own_hash_is_right() -> None:
    entries = chain(5)
    forged: dict[str, object] = {
        **entries[1],
        "id": 99,
        "action": "reveal_contact",
        "prev_hash": entries[1]["hash"],
    }
    forged["hash"] = entry_hash(forged)
    entries.insert(2, forged)
    assert verify(entries).problem == "row 99 was inserted: row 3 follows the row before it"


def test_rows_cut_from_the_end_show_against_a_head_noted_earlier() -> None:
    entries = chain(5)
    noted = str(verify(entries).head)
    assert verify(entries[:3]).intact  # nothing in the chain itself says rows are missing
    late = verify(entries[:3], expected_head=noted)
    assert late.problem is not None
    assert "noted earlier is not in the chain" in late.problem
    # A rewritten tail, recomputed so it links up, also loses the noted head.
    rewritten = chain(5)
    rewritten[3]["outcome"] = "ok:hidden"
    rehash_from(rewritten, 3)
    assert verify(rewritten).intact
    assert not verify(rewritten, expected_head=noted).intact
    assert verify(chain(5), expected_head=str(chain(5)[2]["hash"])).intact


def test_the_canonical_form_is_stable_and_covers_the_previous_hash() -> None:
    entry = chain(1)[0]
    assert canonical(entry) == canonical(dict(reversed(list(entry.items()))))
    assert b'"at":"2026-03-02T01:01:00.000000+00:00"' in canonical(entry)
    assert entry_hash({**entry, "prev_hash": "f" * 64}) != entry["hash"]
