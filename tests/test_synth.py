"""The synthetic music world: determinism, captions vs attributes, audio vs attributes, degradations, rater, CLI."""

import dataclasses
import itertools
import re

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from click.testing import CliRunner

from rewardkit import synth
from rewardkit.errors import InputError
from rewardkit.synth.analysis import beat_strength, estimate_tempo
from rewardkit.synth.degrade import noise_snr_db
from rewardkit_cli.synth_cmd import synth as synth_cli

SR = synth.SAMPLE_RATE
# The test's own reading of the captions (deliberately not the library's synonym tables).
TEMPO_RE = {"slow": r"\b(slow|leisurely|unhurried|laid-back)", "medium": r"\b(mid-tempo|medium-tempo|moderate)",
            "fast": r"\b(fast|quick|up-tempo|brisk)"}
INSTRUMENT_RE = {"additive": r"organ|additive", "fm": r"\bFM\b", "pluck": r"pluck", "pad": r"\bpads?\b",
                 "bass": r"\bbass"}
DRUMS_RE = {"none": r"\bno drums\b", "steady": r"steady|four-on-the-floor", "backbeat": r"backbeat",
            "busy": r"\bbusy\b"}
REGISTER_RE = {"low": r"\blow(-|\b)", "mid": r"\bmid-(register|range)", "high": r"\bhigh(-|\b)"}
DYNAMICS_RE = {"soft": r"\b(soft|quiet|gentle|delicate)\b", "loud": r"\b(loud|powerful|punchy|forceful)\b"}
BRIGHTNESS_RE = {"dark": r"\b(dark|muted|mellow|murky)\b", "bright": r"\b(bright|crisp|sparkling|brilliant)\b"}
REVERB_RE = {"none": r"\bdry\b|no reverb", "room": r"\broom\b", "hall": r"\bhall\b"}


def _mentioned(table: dict[str, str], caption: str) -> set[str]:
    return {name for name, rx in table.items() if re.search(rx, caption, flags=re.IGNORECASE)}


def check_caption(caption: str, a: synth.ClipAttributes) -> None:
    """Assert that everything the caption says is true of ``a`` and that the required parts are there."""
    keys = re.findall(r"\b([A-G][#b]?) (major|minor|dorian)\b", caption)
    assert keys and set(keys) == {(a.key, a.mode)}, caption
    assert _mentioned(TEMPO_RE, caption) == {a.tempo_class}, caption
    instruments = _mentioned(INSTRUMENT_RE, caption)
    assert a.lead in instruments, caption
    assert a.chord_instrument is None or a.chord_instrument in instruments, caption
    assert instruments <= {a.lead, a.chord_instrument} | ({"bass"} if a.bass else set()), caption
    drums = _mentioned(DRUMS_RE, caption)
    assert drums == {a.drums}, caption
    assert ("no drums" in caption) == (a.drums == "none"), caption
    assert _mentioned(REGISTER_RE, caption) <= {a.register}, caption
    assert _mentioned(DYNAMICS_RE, caption) <= {a.dynamics}, caption
    assert _mentioned(BRIGHTNESS_RE, caption) <= {a.brightness}, caption
    assert _mentioned(REVERB_RE, caption) <= {a.reverb}, caption
    assert a.echo or "echo" not in caption, caption
    for bpm in re.findall(r"(\d+) bpm", caption, flags=re.IGNORECASE):
        assert int(bpm) == a.tempo_bpm, caption


# ---------------------------------------------------------------- determinism
def test_same_seed_is_bit_identical_and_other_seeds_differ():
    audio, attributes, caption = synth.render_clip(123)
    again, attributes2, caption2 = synth.render_clip(123)
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert audio.tobytes() == again.tobytes() and attributes == attributes2 and caption == caption2
    assert synth.render(attributes).tobytes() == audio.tobytes()
    assert attributes.seed == 123 and len(audio) == round(attributes.duration * SR)
    other, attributes3, _ = synth.render_clip(124)
    assert attributes3 != attributes
    assert len(other) != len(audio) or not np.array_equal(other, audio)
    # The notes come from the seed alone: the same record with another seed sounds different.
    moved = synth.render(dataclasses.replace(attributes, seed=attributes.seed + 1))
    assert not np.array_equal(moved, audio)


def test_clip_i_does_not_depend_on_corpus_size(tmp_path):
    small = synth.make_corpus(tmp_path / "small", 5, seed=3, subtype="FLOAT")
    large = synth.make_corpus(tmp_path / "large", 50, seed=3, subtype="FLOAT")
    assert len(large) == 50 and large["file"].is_unique
    pd.testing.assert_frame_equal(small, large.iloc[:5])
    for i, name in enumerate(small["file"]):
        a, _ = sf.read(tmp_path / "small" / name, dtype="float32")
        b, _ = sf.read(tmp_path / "large" / name, dtype="float32")
        assert a.tobytes() == b.tobytes()
        expected, _, caption = synth.render_clip(synth.clip_seed(3, i))
        assert a.tobytes() == expected.tobytes() and small.loc[i, "caption"] == caption
    assert [c for c, _ in synth.sample_captions(5, 3)] == list(small["caption"])
    with pytest.raises(InputError):
        synth.render(small.loc[0].to_dict())
    assert synth.make_corpus(tmp_path / "other", 5, seed=4)["seed"].tolist() != small["seed"].tolist()


def test_clips_have_the_promised_format():
    for seed in range(20):
        audio, a, _ = synth.render_clip(seed)
        assert 2.0 <= a.duration <= 4.0 and len(audio) == round(a.duration * SR)
        assert np.all(np.isfinite(audio))
        peak = float(np.max(np.abs(audio)))
        assert peak == pytest.approx(synth.PEAK_LEVEL[a.dynamics], rel=1e-3) and peak < 1.0
        assert 70 <= a.tempo_bpm <= 160 and a.tempo_class == synth.tempo_class_for(a.tempo_bpm)
        assert a.chord_instrument != a.lead


# ---------------------------------------------------------------- captions
def test_captions_match_attributes():
    pairs = synth.sample_captions(400, seed=11)
    for caption, attributes in pairs:
        check_caption(caption, attributes)
    seen = {field: {getattr(a, field) for _, a in pairs}
            for field in ("lead", "chord_instrument", "key", "mode", "tempo_class", "register", "drums")}
    assert len(seen["key"]) == 12 and seen["mode"] == {"major", "minor", "dorian"}
    assert seen["drums"] == set(synth.DRUMS) and None in seen["chord_instrument"]


def test_caption_wording_varies_and_stays_true():
    _, attributes = synth.sample_captions(1, seed=5)[0]
    captions = [synth.caption_for(attributes, seed) for seed in range(60)]
    for caption in captions:
        check_caption(caption, attributes)
    assert len(set(captions)) >= 40
    assert synth.caption_for(attributes, 7) == synth.caption_for(attributes, 7)
    assert synth.caption_for(attributes) == synth.render_clip(attributes.seed)[2]


def test_caption_sampler_is_endless_and_matches_sample_captions():
    sampler = synth.caption_sampler(2)
    first = [next(sampler) for _ in range(8)]
    assert first == synth.sample_captions(8, 2)
    with pytest.raises(InputError):
        synth.sample_captions(3, -1)


# ---------------------------------------------------------------- the audio matches the attributes
def test_tempo_of_clips_with_drums_matches_tempo_bpm():
    drummed = [(audio, a) for audio, a, _ in map(synth.render_clip, range(40)) if a.drums != "none"][:24]
    assert len(drummed) == 24
    misses = []
    for audio, a in drummed:
        estimate = estimate_tempo(audio, SR)
        if not any(abs(estimate - r * a.tempo_bpm) <= 0.06 * r * a.tempo_bpm for r in (0.5, 1.0, 2.0)):
            misses.append((a.tempo_bpm, a.drums, estimate))
    # A 2-s clip holds only a few beats (and echoes add off-beat periodicity): allow a few misses.
    assert len(misses) <= 3, misses


def test_beat_strength_separates_a_steady_beat_from_noise_and_silence():
    rng = np.random.default_rng(0)
    clicks = np.zeros(4 * SR)
    clicks[::SR * 60 // 125] = 1.0                           # 125 BPM: a period of exactly 60 envelope frames
    clicks += 1e-3 * rng.normal(size=clicks.size)
    noise = rng.normal(size=4 * SR)
    assert beat_strength(clicks, SR) > 0.9
    assert abs(beat_strength(noise, SR)) < 0.2
    assert beat_strength(np.zeros(4 * SR), SR) == 0.0
    # Rendered corpus clips with drums have a steadier beat than noise; the drumless ones much less so.
    drummed = [beat_strength(audio, SR) for audio, a, _ in map(synth.render_clip, range(12)) if a.drums != "none"]
    assert np.median(drummed) > 0.4


def _pitch_classes(x: np.ndarray) -> np.ndarray:
    """Share of spectral power (60 Hz - 4 kHz) in each pitch class, C = 0."""
    power = np.abs(np.fft.rfft(x * np.hanning(len(x)))) ** 2
    f = np.fft.rfftfreq(len(x), 1 / SR)
    band = (f > 60) & (f < 4000)
    pc = np.round(12 * np.log2(f[band] / 440.0) + 9).astype(int) % 12
    hist = np.bincount(pc, weights=power[band], minlength=12)
    return hist / hist.sum()


def test_pitch_classes_favour_the_key_scale():
    fits, in_key = [], []
    for seed in range(16):
        _, a, _ = synth.render_clip(seed)
        hist = _pitch_classes(synth.render(dataclasses.replace(a, drums="none")).astype(np.float64))
        tonic, steps = synth.TONICS.index(a.key), synth.MODES[a.mode]
        # Share of power on the mode's scale built on each of the 12 tonics, relative to the true one.
        fit = [sum(hist[(tonic + shift + s) % 12] for s in steps) for shift in range(12)]
        fits.append(fit)
        in_key.append(fit[0])
    assert np.median(in_key) > 0.85 and min(in_key) > 0.7, in_key
    mean_fit = np.mean(fits, axis=0)
    assert np.argmax(mean_fit) == 0 and mean_fit[0] > np.mean(mean_fit) + 0.25, mean_fit


def _centroid(x: np.ndarray) -> float:
    magnitude = np.abs(np.fft.rfft(x.astype(np.float64)))
    f = np.fft.rfftfreq(len(x), 1 / SR)
    return float((f * magnitude).sum() / magnitude.sum())


def test_register_brightness_and_dynamics_are_audible():
    for seed in range(8):
        _, a, _ = synth.render_clip(seed)
        solo = dataclasses.replace(a, drums="none", chord_instrument=None, bass=False)
        low, high = (synth.render(dataclasses.replace(solo, register=r)) for r in ("low", "high"))
        assert _centroid(high) > 1.2 * _centroid(low), a
        dark, bright = (synth.render(dataclasses.replace(a, brightness=b)) for b in ("dark", "bright"))
        assert _centroid(bright) > 1.1 * _centroid(dark), a
        soft, loud = (synth.render(dataclasses.replace(a, dynamics=d)) for d in ("soft", "loud"))
        assert np.sqrt(np.mean(loud**2)) > 2.5 * np.sqrt(np.mean(soft**2)), a
    # Across different clips, too.
    rms = {"soft": [], "loud": []}
    for seed in range(60):
        audio, a, _ = synth.render_clip(seed)
        if a.dynamics in rms:
            rms[a.dynamics].append(np.sqrt(np.mean(audio.astype(np.float64) ** 2)))
    assert np.median(rms["loud"]) > 2 * np.median(rms["soft"])


# ---------------------------------------------------------------- degradations
@pytest.fixture(scope="module")
def clip() -> np.ndarray:
    audio, a, _ = synth.render_clip(9)
    assert a.dynamics != "loud"  # room for noise without hitting the [-1, 1] clamp
    return audio


def test_severity_zero_is_identity_and_others_change_the_clip(clip):
    for kind in synth.DEGRADATIONS:
        same = synth.degrade(clip, kind, 0.0, 1)
        assert same.tobytes() == clip.tobytes()
        out = synth.degrade(clip, kind, 0.6, 1)
        assert out.dtype == clip.dtype and out.shape == clip.shape and np.max(np.abs(out)) <= 1.0
        assert not np.allclose(out, clip, atol=1e-3), kind
        assert out.tobytes() == synth.degrade(clip, kind, 0.6, 1).tobytes(), kind


def test_noise_snr_follows_severity(clip):
    x = clip.astype(np.float64)
    for severity in (0.1, 0.5, 0.9):
        for seed in (0, 1, 2, 3):  # both white and pink noise
            y = synth.degrade(x, "noise", severity, seed)
            snr = 10 * np.log10(np.mean(x**2) / np.mean((y - x) ** 2))
            assert snr == pytest.approx(noise_snr_db(severity), abs=0.3)
    assert noise_snr_db(0.5) == pytest.approx(20.0)


def test_clipping_flattens_peaks_and_lowpass_removes_highs(clip):
    peak = np.max(np.abs(clip))
    at_peak = lambda y: np.mean(np.abs(y) >= peak * (1 - 1e-4))  # noqa: E731
    mild, hard = synth.degrade(clip, "clipping", 0.3, 0), synth.degrade(clip, "clipping", 0.9, 0)
    assert at_peak(clip) < 0.001 < at_peak(mild) < at_peak(hard)
    assert np.max(np.abs(hard)) == pytest.approx(peak, rel=1e-4)

    def high_share(y):
        power = np.abs(np.fft.rfft(y.astype(np.float64))) ** 2
        return power[np.fft.rfftfreq(len(y), 1 / SR) > 1000].sum() / power.sum()

    assert high_share(synth.degrade(clip, "lowpass", 0.8, 0)) < 0.05 * high_share(clip)
    gaps = synth.degrade(clip, "dropout", 1.0, 0)
    silenced = np.mean((gaps == 0) & (clip != 0))
    assert 0.2 < silenced <= 0.3


def test_degrade_rejects_bad_input(clip):
    with pytest.raises(InputError, match="unknown degradation"):
        synth.degrade(clip, "reverse", 0.5)
    with pytest.raises(InputError, match="severity"):
        synth.degrade(clip, "noise", 1.5)
    with pytest.raises(InputError):
        synth.degrade(clip[:, None], "noise", 0.5)
    assert synth.parse_degradations(synth.format_degradations([("noise", 0.42), ("clipping", 0.1)])) == [
        ("noise", 0.42), ("clipping", 0.1)]
    with pytest.raises(InputError):
        synth.parse_degradations("noise=0.4")


# ---------------------------------------------------------------- rater
def test_rater_is_monotone_bounded_and_deterministic():
    for kind in synth.DEGRADATIONS:
        means = [np.mean([synth.rate([(kind, s)], seed) for seed in range(300)]) for s in (0.0, 0.25, 0.5, 0.75, 1.0)]
        assert all(a > b for a, b in itertools.pairwise(means)), (kind, means)
        assert means[0] > 4.3 and means[-1] < 3.5
    ratings = [synth.rate(synth.random_degradations(np.random.default_rng(s)), s) for s in range(200)]
    assert min(ratings) >= 1.0 and max(ratings) <= 5.0 and min(ratings) < 2 and max(ratings) == 5.0
    assert synth.rate("noise:0.4;detune:0.2", 17) == synth.rate([("noise", 0.4), ("detune", 0.2)], 17)
    assert len({synth.rate([("noise", 0.5)], s) for s in range(20)}) > 1
    assert synth.latent_quality([("noise", 0.5), ("dropout", 0.5)]) == pytest.approx(
        5 - 0.5 * (synth.WEIGHTS["noise"] + synth.WEIGHTS["dropout"]))
    scores = synth.rater_scores([("clipping", 0.5)], 3, n_raters=7)
    assert scores.shape == (7,) and np.all(scores == np.round(scores))


# ---------------------------------------------------------------- attribute records
def test_attribute_records_validate_and_round_trip():
    _, a = synth.sample_captions(1, seed=0)[0]
    assert synth.ClipAttributes.from_dict({k: str(v) for k, v in a.to_dict().items()}) == a
    for change in ({"key": "H"}, {"tempo_class": "fast", "tempo_bpm": 80}, {"chord_instrument": a.lead},
                   {"progression": "I-II-III"}, {"seed": -1}, {"duration": 100.0}):
        with pytest.raises(InputError):
            dataclasses.replace(a, **change)


# ---------------------------------------------------------------- CLI
def test_cli_make_writes_corpus_and_refuses_non_empty_dir(tmp_path):
    runner = CliRunner()
    out = tmp_path / "corpus"
    result = runner.invoke(synth_cli, ["make", str(out), "--n", "6", "--seed", "1"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.glob("*.wav")) == [f"clip_{i:05d}.wav" for i in range(6)]
    assert not (out / "ratings.csv").exists()
    meta = pd.read_csv(out / "metadata.csv", keep_default_na=False)
    assert list(meta.columns[:2]) == ["file", "caption"]
    assert {f.name for f in dataclasses.fields(synth.ClipAttributes)} <= set(meta.columns)
    for _, row in meta.iterrows():
        check_caption(row["caption"], synth.ClipAttributes.from_dict(row))
        audio, rate = sf.read(out / row["file"])
        assert rate == SR and len(audio) == round(row["duration"] * SR)
    before = {name: sf.read(out / name)[0] for name in meta["file"]}

    again = runner.invoke(synth_cli, ["make", str(out), "--n", "6"])
    assert again.exit_code == 1
    assert again.output.count("\n") == 1 and again.output.startswith("synth: error:") and "not empty" in again.output

    degraded = runner.invoke(synth_cli, ["make", str(out), "--n", "6", "--seed", "1", "--degrade-fraction", "0.5",
                                         "--overwrite"])
    assert degraded.exit_code == 0, degraded.output
    meta = pd.read_csv(out / "metadata.csv", keep_default_na=False)
    ratings = pd.read_csv(out / "ratings.csv")
    assert list(ratings.columns) == ["file", "rating"] and list(ratings["file"]) == list(meta["file"])
    assert (meta["degradations"] != "").sum() == 3
    assert ratings["rating"].between(1, 5).all()
    for text in meta["degradations"]:
        assert 0 <= len(synth.parse_degradations(text)) <= 2
    # Clean clips are the same as before; degraded ones are not.
    for name, text in zip(meta["file"], meta["degradations"], strict=True):
        assert np.array_equal(sf.read(out / name)[0], before[name]) == (text == ""), (name, text)


def test_cli_overwrite_removes_stale_clips_and_reports_bad_options(tmp_path):
    runner = CliRunner()
    out = tmp_path / "c"
    assert runner.invoke(synth_cli, ["make", str(out), "--n", "3"]).exit_code == 0
    (out / "notes.txt").write_text("mine")
    assert runner.invoke(synth_cli, ["make", str(out), "--n", "2", "--overwrite"]).exit_code == 0
    assert sorted(p.name for p in out.iterdir()) == ["clip_00000.wav", "clip_00001.wav", "metadata.csv", "notes.txt"]
    bad = runner.invoke(synth_cli, ["make", str(tmp_path / "d"), "--degrade-fraction", "2"])
    assert bad.exit_code == 2
    listed = runner.invoke(synth_cli, ["captions", "--n", "4", "--format", "csv"])
    assert listed.exit_code == 0 and len(listed.output.strip().splitlines()) == 5
