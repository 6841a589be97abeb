"""The video colorizer's parts on their own: cut detection, shot styles, chroma filtering, metrics, options."""

from __future__ import annotations

import numpy as np
import pytest

from pipelines.video import VideoOptions
from pipelines.video.cuts import CutDetector
from pipelines.video.metrics import WarpingError, visible_mask, warping_error
from pipelines.video.temporal import ChromaStabiliser, ShotStyles, StyleTrack, half_resolution


def texture(h: int, w: int, shift: float = 0.0, seed: int = 0) -> np.ndarray:
    """A smooth L* texture in [20, 80] panned ``shift`` pixels right, ``(h, w)`` float32."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    u = x - shift
    phase = seed * 1.7
    return (50 + 18 * np.sin(u / 6.0 + phase) * np.cos(y / 8.0) + 10 * np.sin(u / 19.0 + y / 11.0)).astype(np.float32)


def test_cut_detector_tells_cuts_from_motion() -> None:
    detector = CutDetector(threshold=0.12, ratio=3.0)
    cuts = [detector.is_cut(texture(90, 160, shift=4.0 * t)) for t in range(20)]  # a fast pan
    cuts.append(detector.is_cut(np.full((90, 160), 20.0, np.float32)))  # splice to a dark shot
    cuts += [detector.is_cut(np.full((90, 160), 20.0 + t, np.float32)) for t in range(5)]  # slow fade up
    assert [i for i, c in enumerate(cuts) if c] == [0, 20]


def test_half_resolution_matches_chroma_grid() -> None:
    lum = np.arange(7 * 13, dtype=np.float32).reshape(7, 13)
    half = half_resolution(lum, (4, 8))  # padded to 8 x 16, halved
    assert half.shape == (4, 8)
    assert half[0, 0] == pytest.approx(lum[:2, :2].mean())


def test_stabiliser_removes_flicker_on_a_still_shot_and_resets_at_cuts() -> None:
    rng = np.random.default_rng(0)
    lum = texture(64, 96)
    truth = np.stack([np.full((32, 48), 20.0), np.full((32, 48), -10.0)]).astype(np.float32)
    stabiliser = ChromaStabiliser(strength=0.85, luma_sigma=4.0)
    outs = [
        stabiliser(lum, truth + rng.normal(0, 6, truth.shape).astype(np.float32), new_shot=(t == 0)) for t in range(40)
    ]
    raw_noise = 6.0
    settled = np.stack(outs[20:])
    assert np.std(settled - truth, axis=0).mean() < 0.5 * raw_noise  # recursive averaging: ~0.29x
    assert np.abs(settled.mean(axis=0) - truth).mean() < 1.5  # and no bias
    fresh = truth + 30
    assert np.allclose(stabiliser(lum, fresh, new_shot=True), fresh)  # a cut: the past is forgotten


def test_stabiliser_follows_motion_and_distrusts_occlusions() -> None:
    # A textured shot panning right by 2 px a frame (1 px at chroma resolution), chroma moving with it.
    stabiliser = ChromaStabiliser(strength=0.9, luma_sigma=4.0, flow_preset="medium")
    h, w = 64, 128
    xs = np.arange(w // 2, dtype=np.float32)
    for t in range(12):
        lum = texture(h, w, shift=2.0 * t)
        ab = np.stack([np.tile(np.sin((xs - t) / 5.0) * 30, (h // 2, 1))] * 2).astype(np.float32)
        out = stabiliser(lum, ab, new_shot=(t == 0))
    # Warped history agrees with the moving prediction away from the border where content enters.
    assert np.abs(out - ab)[:, 4:-4, 8:-8].mean() < 2.0
    # A completely different picture (same shot, no cut): the luminance check rejects the warped past.
    other = np.full((h, w), 90.0, np.float32)
    new_ab = np.full((2, h // 2, w // 2), 50.0, np.float32)
    assert np.abs(stabiliser(other, new_ab, new_shot=False) - new_ab).max() < 1.0


def test_shot_styles_average_within_window_and_shot() -> None:
    track = StyleTrack(dim=2)
    track.cuts = [0, 10]
    frames = list(range(20))
    shots = [0 if f < 10 else 1 for f in frames]
    vectors = np.array([[f, 100 + f] for f in frames], np.float32)
    track.add(frames[:7], shots[:7], vectors[:7])  # written in several pieces, as the analysis pass does
    track.add(frames[7:], shots[7:], vectors[7:])
    windowed = ShotStyles(track, half_window=2)
    assert windowed.vector(0, 0) == pytest.approx([1.0, 101.0])  # frames 0..2
    assert windowed.vector(5, 0) == pytest.approx([5.0, 105.0])  # frames 3..7
    assert windowed.vector(9, 0) == pytest.approx([8.0, 108.0])  # frames 7..9: not across the cut
    assert windowed.vector(10, 1) == pytest.approx([11.0, 111.0])  # frames 10..12
    whole = ShotStyles(track, half_window=None)
    assert whole.vector(3, 0) == pytest.approx([4.5, 104.5])
    assert whole.vector(19, 1) == pytest.approx([14.5, 114.5])
    track.close()


def test_shot_styles_read_a_long_track_in_order() -> None:
    track = StyleTrack(dim=3)
    n = 1000  # several read chunks
    track.cuts = [0]
    track.add(list(range(n)), [0] * n, np.repeat(np.arange(n, dtype=np.float32)[:, None], 3, axis=1))
    styles = ShotStyles(track, half_window=5)
    for frame in range(0, n, 37):
        lo, hi = max(0, frame - 5), min(n - 1, frame + 5)
        assert styles.vector(frame, 0)[0] == pytest.approx((lo + hi) / 2)
    track.close()


def test_warping_error_is_zero_for_consistent_motion_and_sees_flicker() -> None:
    h, w = 72, 120
    steady, flicker, guides = [], [], []
    for t in range(8):
        lum = texture(h, w, shift=1.5 * t)
        grey = (lum * 2.55).astype(np.uint8)
        guides.append(grey)
        rgb = np.stack([grey, (grey * 0.8).astype(np.uint8), (grey * 0.5).astype(np.uint8)], axis=-1)
        steady.append(rgb)
        tinted = rgb.copy()
        tinted[..., 0] = np.clip(rgb[..., 0].astype(int) + (25 if t % 2 else 0), 0, 255)
        flicker.append(tinted)
    meter = WarpingError()
    for g, a, b in zip(guides, steady, flicker, strict=True):
        meter.add(g, {"steady": a, "flicker": b})
    errors = meter.result()
    assert meter.pairs == 7 and 0.5 < meter.visible_fraction / meter.pairs <= 1.0
    assert errors["steady"] < 2e-3
    assert errors["flicker"] > 5 * errors["steady"] + (25 / 255) ** 2 * 0.5
    assert warping_error(steady, guides) == pytest.approx(errors["steady"])


def test_visible_mask_excludes_pixels_that_leave_the_frame() -> None:
    forward = np.zeros((20, 30, 2), np.float32)
    forward[..., 0] = 5.0  # everything moves 5 px right
    backward = -forward
    mask = visible_mask(forward, backward)
    assert mask[:, :24].all() and not mask[:, 26:].any()


@pytest.mark.parametrize(
    "bad",
    [
        {"filter_strength": 1.0},
        {"batch_size": 0},
        {"style_window": 0.0},
        {"cut_threshold": 0.0},
        {"flow_preset": "slow"},
        {"crf": 99},
        {"style_stride": 0},
    ],
)
def test_options_validated(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        VideoOptions(**bad)  # type: ignore[arg-type]


def test_options_switches() -> None:
    assert VideoOptions().stabilise and VideoOptions().uses_shot_style
    off = VideoOptions(temporal=False)
    assert not off.stabilise and not off.uses_shot_style
    assert not VideoOptions(filter_strength=0.0).stabilise
    assert VideoOptions().replace(crf=23).to_dict()["crf"] == 23
