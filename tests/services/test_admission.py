"""Admission by latency budget, the per-request pixel budget and the stop signals, without Serve (fast)."""

from __future__ import annotations

import io
import json
import os
import signal
import time
from collections.abc import Iterator

import pytest
from PIL import Image
from prometheus_client import CollectorRegistry, generate_latest

from colorize.signals import stop_signals
from model.errors import ImageTooLargeError
from services.admission import Admission, ServiceTimer, ShuttingDownError
from services.errors import OverloadedError, error_response
from services.pixel_budget import check_pixel_budget, header_pixels
from services.settings import Settings
from tests import imagegen


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def admission(clock: Clock, **settings: float) -> tuple[Admission, CollectorRegistry]:
    registry = CollectorRegistry()
    values = {"latency_budget_s": 2.0, "max_queue_depth": 32, "initial_service_time_s": 0.1, **settings}
    return Admission(Settings(**values), registry, clock=clock), registry  # type: ignore[arg-type]


def serve_sequentially(a: Admission, clock: Clock, n: int, seconds: float) -> None:
    for _ in range(n):
        admitted = a.admit()
        clock.now += seconds
        a.release(admitted)


def test_service_time_is_busy_time_per_completion() -> None:
    timer = ServiceTimer(initial_s=0.1)
    for _ in range(200):
        timer.add(0.5, 1)
    assert timer.seconds == pytest.approx(0.5, rel=1e-3)
    # A batch of 8 finishing together (one long interval, seven empty ones) averages to the same rate.
    batched = ServiceTimer(initial_s=0.5)
    for _ in range(50):
        batched.add(2.0, 1)
        for _ in range(7):
            batched.add(0.0, 1)
    assert batched.seconds == pytest.approx(0.25, rel=0.1)


def test_admits_while_the_expected_wait_fits_the_budget_then_refuses_with_retry_after() -> None:
    clock = Clock()
    a, registry = admission(clock)
    serve_sequentially(a, clock, 100, 0.5)  # measured: 0.5 s per image
    assert a.timer.seconds == pytest.approx(0.5, rel=0.01)
    for _ in range(4):  # depth 0..3: expected completions 0.5, 1.0, 1.5, 2.0 s, all within 2 s
        a.admit()
    assert a.depth == 4 and a.expected_wait_s() == pytest.approx(2.0, rel=0.01)
    with pytest.raises(OverloadedError) as refused:
        a.admit()  # would finish after 2.5 s
    assert refused.value.retry_after_s == 1
    assert "4 requests ahead" in str(refused.value.detail) and "2 s latency budget" in str(refused.value.detail)
    answer = error_response(refused.value, retry_after_s=1)
    assert answer.status_code == 503 and answer.headers["retry-after"] == "1"
    assert json.loads(bytes(answer.body))["error"] == "OverloadedError"
    text = generate_latest(registry).decode()
    assert "colorize_admission_admitted_total 104.0" in text
    assert 'colorize_admission_refused_total{reason="budget"} 1.0' in text
    assert "colorize_admission_queue_depth 4.0" in text
    a.release()  # one finished: room again
    clock.now += 0.5
    a.admit()


def test_retry_after_grows_with_the_excess_wait() -> None:
    clock = Clock()
    a, _ = admission(clock, latency_budget_s=1.0, initial_service_time_s=3.0)
    a.admit()  # an idle replica always admits, whatever the estimate
    with pytest.raises(OverloadedError) as behind_one:
        a.admit()  # would finish after 2 x 3 s, over the 1 s budget
    assert behind_one.value.retry_after_s == 5
    a2, _ = admission(clock, latency_budget_s=1.0, initial_service_time_s=3.0)
    a2.depth = 3
    with pytest.raises(OverloadedError) as refused:
        a2.admit()
    assert refused.value.retry_after_s == 11  # done after 12 s, 1 s budget


def test_admission_tightens_when_requests_take_longer_than_predicted() -> None:
    clock = Clock()
    a, _ = admission(clock)
    serve_sequentially(a, clock, 100, 0.5)  # 0.5 s each, as predicted: no correction
    assert a.tail.value == pytest.approx(1.0, abs=0.01)
    for _ in range(200):  # now each admitted request takes 1.5x its prediction (noise the mean misses)
        admitted = a.admit()
        clock.now += 1.5 * admitted[1]
        a.release(admitted)
    assert 1.4 < a.tail.value <= 1.6
    a.timer = ServiceTimer(initial_s=0.5, window_s=1e9)  # pin the drain rate to 0.5 s per image
    for _ in range(2):  # 0.75 s and 1.5 s after the 1.5x correction: within 2 s
        a.admit()
    with pytest.raises(OverloadedError):
        a.admit()  # 1.5 s predicted, 2.25 s corrected: over the budget


def test_hard_depth_bound_and_draining() -> None:
    clock = Clock()
    a, registry = admission(clock, max_queue_depth=2, initial_service_time_s=0.001)
    a.admit()
    a.admit()
    with pytest.raises(OverloadedError):
        a.admit()
    assert "colorize_admission_draining 0.0" in generate_latest(registry).decode()
    assert a.drain()["in_flight"] == 2
    a.release()
    with pytest.raises(ShuttingDownError) as stopping:
        a.admit()
    answer = error_response(stopping.value)
    assert answer.status_code == 503 and "retry-after" in answer.headers
    assert json.loads(bytes(answer.body)) == {
        "detail": "the server is shutting down: retry shortly",
        "error": "ShuttingDownError",
    }
    text = generate_latest(registry).decode()
    assert 'reason="depth"} 1.0' in text and 'reason="stopping"} 1.0' in text
    assert "colorize_admission_draining 1.0" in text


# ------------------------------------------------------------------------------------------ pixel budget
def _giant(fmt: str, side: int = 5000) -> bytes:
    options = {"PNG": {}, "WEBP": {"lossless": True}, "TIFF": {"compression": "tiff_adobe_deflate"}}
    buffer = io.BytesIO()
    Image.new("L", (side, side)).save(buffer, fmt, **options.get(fmt, {"quality": 50}))
    return buffer.getvalue()


@pytest.fixture(scope="module")
def giants() -> dict[str, bytes]:
    """25 MP of black pixels in a few KB (PNG 24 KB, WebP 1 KB, TIFF 36 KB; JPEG 290 KB)."""
    return {fmt: _giant(fmt) for fmt in ("PNG", "WEBP", "TIFF", "JPEG")}


@pytest.mark.parametrize("fmt", ["PNG", "WEBP", "TIFF", "JPEG"])
def test_compressible_giants_are_refused_from_the_header(giants: dict[str, bytes], fmt: str) -> None:
    data = giants[fmt]
    assert len(data) < 300_000
    start = time.perf_counter()
    with pytest.raises(ImageTooLargeError, match="pixel budget is 16,777,216"):
        check_pixel_budget(16_777_216, data)
    assert time.perf_counter() - start < 0.1  # header only: decoding 25 MP would take far longer
    assert error_response(ImageTooLargeError("x")).status_code == 413


def test_budget_counts_image_and_style_together() -> None:
    image, style = imagegen.grey_jpeg(300, 200), imagegen.grey_jpeg(200, 100)
    assert check_pixel_budget(80_000, image, style) == 80_000
    with pytest.raises(ImageTooLargeError, match="style image"):
        check_pixel_budget(79_999, image, style)


def test_unreadable_headers_are_left_to_the_decoder() -> None:
    assert header_pixels(b"") is None
    assert header_pixels(imagegen.NOT_AN_IMAGE) is None
    assert check_pixel_budget(1, b"not an image at all") == 0


# ------------------------------------------------------------------------------------------ stop signals
@pytest.fixture
def restore_handlers() -> Iterator[None]:
    saved = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    yield
    for s, h in saved.items():
        signal.signal(s, h)


def test_sigterm_requests_a_graceful_stop(restore_handlers: None) -> None:
    with stop_signals(interrupt=False) as stop:
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.wait(2.0)
        assert stop.exit_status == 143
        with pytest.raises(KeyboardInterrupt):  # a second signal forces the stop
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1.0)


def test_sigterm_interrupts_like_ctrl_c_when_asked(restore_handlers: None) -> None:
    with pytest.raises(KeyboardInterrupt), stop_signals(interrupt=True) as stop:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(1.0)
    assert stop.signum == signal.SIGTERM and stop.exit_status == 143
