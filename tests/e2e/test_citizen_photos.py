"""Photos: judged by content, bounded in size and number, stored under names we choose."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from services.intake.photos import MAX_PHOTO_BYTES
from tests.conftest import MONDAY_MORNING, Harness, start_harness, stop_harness
from yijian.clock import FakeClock


def jpeg(size: int = 2048) -> bytes:
    return b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + os.urandom(size)


def png(size: int = 2048) -> bytes:
    return b"\x89PNG\r\n\x1a\n" + os.urandom(size)


def webp(size: int = 2048) -> bytes:
    return b"RIFF" + (size + 4).to_bytes(4, "little") + b"WEBPVP8 " + os.urandom(size)


def stored_files(harness: Harness) -> list[Path]:
    folder = harness.data_dir / "photos"
    return sorted(folder.iterdir()) if folder.exists() else []


def named_like(root: Path, word: str) -> list[Path]:
    return [path for path in root.rglob("*") if word in path.name]


async def upload(
    harness: Harness,
    complaint_id: str,
    data: bytes,
    *,
    filename: str = "photo.jpg",
    declared: str = "image/jpeg",
    token_of: str | None = None,
) -> tuple[int, dict[str, object]]:
    response = await harness.client.post(
        f"/api/v1/complaints/{complaint_id}/photos",
        files={"photo": (filename, data, declared)},
        headers=harness.citizen(token_of or complaint_id),
    )
    return response.status_code, response.json()


async def test_a_photo_is_stored_listed_and_served_with_its_checked_type(
    harness: Harness,
) -> None:
    complaint = (await harness.submit())["id"]
    picture = png()
    # Named and declared as a JPEG; the bytes say PNG, and the bytes win.
    status, photo = await upload(harness, complaint, picture, filename="x.jpg")
    assert status == 201, photo
    assert photo["content_type"] == "image/png"
    assert photo["size"] == len(picture)

    view = await harness.view(complaint)
    assert [p["id"] for p in view["photos"]] == [photo["id"]]

    served = await harness.client.get(str(photo["url"]), headers=harness.citizen(complaint))
    assert served.status_code == 200
    assert served.content == picture
    assert served.headers["content-type"] == "image/png"
    assert served.headers["x-content-type-options"] == "nosniff"

    service = {"Authorization": f"Bearer {harness.system.settings.secret_value('internal_token')}"}
    record = await harness.client.get(f"/internal/v1/complaints/{complaint}", headers=service)
    internal_url = record.json()["photos"][0]["url"]
    assert internal_url == f"/internal/v1/complaints/{complaint}/photos/{photo['id']}"
    staff_copy = await harness.client.get(internal_url, headers=service)
    assert staff_copy.content == picture
    assert staff_copy.headers["x-content-type-options"] == "nosniff"
    assert (await harness.client.get(internal_url)).status_code == 401


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>", "SVG"),
        (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00" + b"\x00" * 64, "HEIC"),
        (b"GIF89a" + b"\x00" * 64, "GIF"),
        (b"%PDF-1.7\n" + b"\x00" * 64, "PDF"),
        (b"MZ\x90\x00" + b"\x00" * 64, "none of them"),
    ],
    ids=["svg", "heic", "gif", "pdf", "exe"],
)
async def test_anything_but_jpeg_png_or_webp_is_415_with_the_reason(
    harness: Harness, data: bytes, reason: str
) -> None:
    complaint = (await harness.submit())["id"]
    status, body = await upload(harness, complaint, data, filename="holiday.jpg")
    assert status == 415
    assert "JPEG, PNG or WebP" in str(body["detail"])
    assert reason in str(body["detail"])
    assert (await harness.view(complaint))["photos"] == []
    assert stored_files(harness) == []  # the refused bytes were never kept


async def test_webp_is_accepted_and_an_empty_file_is_refused(harness: Harness) -> None:
    complaint = (await harness.submit())["id"]
    status, photo = await upload(harness, complaint, webp(), filename="a.webp")
    assert (status, photo["content_type"]) == (201, "image/webp")
    status, body = await upload(harness, complaint, b"")
    assert status == 422
    assert "empty" in str(body["detail"])


async def test_too_big_is_413_whether_the_envelope_or_the_photo_says_so(
    harness: Harness,
) -> None:
    complaint = (await harness.submit())["id"]
    status, body = await upload(harness, complaint, jpeg(MAX_PHOTO_BYTES + 1))
    assert status == 413  # the photo itself is over 5 MB, the request within its route limit
    assert "5 MB" in str(body["detail"])
    status, body = await upload(harness, complaint, jpeg(6 * 1024 * 1024))
    assert status == 413  # the request is over the photo route's limit: refused unread
    assert "larger than" in str(body["detail"])
    status, _ = await upload(harness, complaint, jpeg(MAX_PHOTO_BYTES - 64))
    assert status == 201  # just under 5 MB passes

    # Every other route keeps the small app-wide limit.
    big_json = b'{"description": "' + b"a" * 100_000 + b'"}'
    response = await harness.client.post(
        "/api/v1/complaints", content=big_json, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413


async def test_at_most_four_photos_and_the_same_photo_twice_is_one(harness: Harness) -> None:
    complaint = (await harness.submit())["id"]
    first = jpeg()
    status, original = await upload(harness, complaint, first)
    assert status == 201
    status, again = await upload(harness, complaint, first)  # a retry after a lost answer
    assert status == 200
    assert again["id"] == original["id"]
    for _ in range(3):
        assert (await upload(harness, complaint, jpeg()))[0] == 201
    status, body = await upload(harness, complaint, jpeg())
    assert status == 422
    assert "4 photos" in str(body["detail"])
    assert len((await harness.view(complaint))["photos"]) == 4
    assert len(stored_files(harness)) == 4  # the duplicate and the refused fifth left nothing


async def test_client_names_never_reach_the_disk(harness: Harness) -> None:
    complaint = (await harness.submit())["id"]
    status, photo = await upload(
        harness, complaint, jpeg(), filename="../../../../tmp/evil.jpg", declared="text/html"
    )
    assert status == 201
    assert photo["content_type"] == "image/jpeg"
    stored = stored_files(harness)
    assert len(stored) == 1
    assert len(stored[0].name) == 32
    assert set(stored[0].name) <= set("0123456789abcdef")
    assert named_like(harness.data_dir, "evil") == []

    for photo_id in ("..%2F..%2Fcitizen-secret", "../citizen-secret", "0" * 32, "%00"):
        response = await harness.client.get(
            f"/api/v1/complaints/{complaint}/photos/{photo_id}", headers=harness.citizen(complaint)
        )
        assert response.status_code == 404, photo_id


async def test_only_the_complaints_citizen_adds_or_sees_its_photos(harness: Harness) -> None:
    mine = (await harness.submit())["id"]
    theirs = (await harness.submit())["id"]
    status, photo = await upload(harness, mine, jpeg())
    assert status == 201

    status, _ = await upload(harness, theirs, jpeg(), token_of=mine)
    assert status == 404
    anonymous = await harness.client.post(
        f"/api/v1/complaints/{mine}/photos", files={"photo": ("a.jpg", jpeg(), "image/jpeg")}
    )
    assert anonymous.status_code == 404
    assert (await harness.client.get(str(photo["url"]))).status_code == 404
    # Another complaint's photo id under my own complaint is not mine either.
    crossed = await harness.client.get(
        f"/api/v1/complaints/{theirs}/photos/{photo['id']}", headers=harness.citizen(theirs)
    )
    assert crossed.status_code == 404


async def test_a_photo_needs_the_photo_field(harness: Harness) -> None:
    complaint = (await harness.submit())["id"]
    response = await harness.client.post(
        f"/api/v1/complaints/{complaint}/photos",
        files={"picture": ("a.jpg", jpeg(), "image/jpeg")},
        headers=harness.citizen(complaint),
    )
    assert response.status_code == 422


async def test_a_complaints_photos_are_bounded_in_total_size(tmp_path: Path) -> None:
    harness = await start_harness(
        tmp_path, FakeClock(MONDAY_MORNING), photo_bytes_per_complaint=1024 * 1024
    )
    try:
        complaint = (await harness.submit())["id"]
        assert (await upload(harness, complaint, jpeg(600 * 1024)))[0] == 201
        status, body = await upload(harness, complaint, jpeg(600 * 1024))
        assert status == 413
        assert "add up to at most 1 MB" in str(body["detail"])
        assert len((await harness.view(complaint))["photos"]) == 1
        assert len(stored_files(harness)) == 1  # the refused one left no file behind
        assert (await upload(harness, complaint, jpeg(300 * 1024)))[0] == 201
    finally:
        await stop_harness(harness)
