"""How good the built-in diffusion model is, before any fine-tuning.

For ``--n`` held-out captions (the synthetic world's caption sampler, seed ``--seed``, never used
in pretraining) the base model generates one clip each; then, in one run:

* text-audio score (synthclap cosine) of each sample with its own caption vs shuffled captions;
* dataset FAD (synthclap and mel) of the samples to ``--n`` held-out corpus clips, next to the FAD of
  white noise and of near-silence scored the same way;
* agreement of attributes that plain DSP can measure with what the caption says: tempo class (onset
  autocorrelation), melody register (median top voice of a harmonic-sum pitch salience; register is
  only scored where the caption mentions it) and key signature (which of the 12 diatonic pitch sets
  holds most spectral power). Each is reported next to chance, to the same samples against shuffled
  captions (the floor), to real held-out corpus clips with their own captions (the ceiling: how well
  the DSP measure itself works) and to those real clips passed through the model's own mel
  representation and decoder (what any sample of this model could reach at best); and how steady
  each set's beat is, whatever its tempo (:func:`rewardkit.synth.analysis.beat_strength`);
* generation speed on CPU (clips per second including decoding) at 20 and 40 DDIM steps.

Usage::

    .venv/bin/python benchmarks/bench_base_model.py [--n 200] [--checkpoint DIR] [--threads 2] [--speed-n 48]
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf
from scipy import signal

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import describe

import rewardkit as rk
from rewardkit import encoders, synth
from rewardkit.audio import LoadOptions
from rewardkit.embedding import embed_directory
from rewardkit.synth.analysis import beat_strength, estimate_tempo
from rewardkit.synth.captions import REGISTER_WORDS

SR = synth.SAMPLE_RATE
ATTRIBUTES = ("tempo class", "register", "key signature")
CHANCE = {"tempo class": 1 / 3, "register": 1 / 3, "key signature": 1 / 12}


# ---------------------------------------------------------------- DSP measures of the audio
def estimate_bpm(x: np.ndarray) -> float:
    """Tempo limited to the corpus's range, 70-160 BPM (:func:`rewardkit.synth.analysis.estimate_tempo`)."""
    return estimate_tempo(x, SR, 70.0, 160.0)


_MIDI = np.arange(36, 97)  # C2 .. C7, covers bass, chords and every register of the lead


def top_voice_midi(x: np.ndarray, harmonics: int = 6, weight: float = 0.8, share: float = 0.5) -> float:
    """Median over the louder half of the frames of the highest pitch whose harmonic-sum salience is at least
    ``share`` of the frame's strongest; MIDI number. The lead melody is the loudest voice and usually the top one,
    so the highest strong pitch follows it rather than the bass or the kick (which a plain argmax picks).
    """
    f, _, z = signal.stft(x, SR, nperseg=4096, noverlap=4096 - 512)
    mag = np.abs(z) / (np.abs(z).max() + 1e-12)
    salience = np.zeros((len(_MIDI), mag.shape[1]))
    for i, m in enumerate(_MIDI):
        f0 = 440.0 * 2.0 ** ((m - 69) / 12)
        for h in range(1, harmonics + 1):
            k = round(h * f0 / f[1])
            if k + 1 >= len(f):
                break
            salience[i] += weight ** (h - 1) * mag[k - 1:k + 2].max(axis=0)
    energy = mag.sum(axis=0)
    frames = salience[:, energy >= np.percentile(energy, 50)]
    top = [_MIDI[np.nonzero(col >= share * col.max())[0].max()] for col in frames.T if col.max() > 0]
    return float(np.median(top)) if top else float("nan")


_MAJOR = np.array(synth.MODES["major"])


def diatonic_set(x: np.ndarray) -> int:
    """Pitch class (C = 0) of the major tonic of the diatonic pitch set that holds most spectral power (60 Hz-4 kHz).

    Major, minor and dorian are all rotations of the major scale, so this is the key signature:
    C major, A minor and D dorian share it. Chance is 1/12.
    """
    power = np.abs(np.fft.rfft(x * np.hanning(len(x)))) ** 2
    f = np.fft.rfftfreq(len(x), 1 / SR)
    band = (f > 60) & (f < 4000)
    pc = np.round(12 * np.log2(f[band] / 440.0) + 9).astype(int) % 12
    hist = np.bincount(pc, weights=power[band], minlength=12)
    return int(np.argmax([hist[(t + _MAJOR) % 12].sum() for t in range(12)]))


def key_signature(key: str, mode: str) -> int:
    """The :func:`diatonic_set` value of a key and mode named in a caption."""
    pitches = set(((synth.TONICS.index(key) + np.array(synth.MODES[mode])) % 12).tolist())
    return next(t for t in range(12) if set(((t + _MAJOR) % 12).tolist()) == pitches)


_REGISTER_RE = {r: re.compile("|".join(rf"(?<![\w-]){re.escape(w)}(?![\w-])"
                                       for w in sorted(words, key=len, reverse=True)), re.IGNORECASE)
                for r, words in REGISTER_WORDS.items()}


def caption_register(caption: str) -> str | None:
    """The register a caption names (``low``/``mid``/``high``), or None where it names none."""
    named = [r for r, rx in _REGISTER_RE.items() if rx.search(caption)]
    return named[0] if len(named) == 1 else None


def calibrate_register(n: int, seed: int) -> tuple[float, float]:
    """Top-voice thresholds between low/mid and mid/high: midpoints of the class medians on ``n`` fresh clips.

    The clips come from a corpus seed used nowhere else in this benchmark, so the thresholds are not
    fitted on the clips they score.
    """
    values: dict[str, list[float]] = {r: [] for r in synth.REGISTERS}
    for i in range(n):
        audio, a, _ = synth.render_clip(synth.clip_seed(seed, i))
        values[a.register].append(top_voice_midi(audio.astype(np.float64)))
    low, mid, high = (float(np.nanmedian(values[r])) for r in synth.REGISTERS)
    return (low + mid) / 2, (mid + high) / 2


def measure(x: np.ndarray, thresholds: tuple[float, float]) -> dict[str, object]:
    """The DSP reading of one clip: tempo class, register, key signature, and how steady its beat is."""
    x = np.asarray(x, dtype=np.float64)
    top = top_voice_midi(x)
    register = "low" if top < thresholds[0] else "mid" if top < thresholds[1] else "high"
    return {"tempo class": synth.tempo_class_for(estimate_bpm(x)), "register": register,
            "key signature": diatonic_set(x), "beat strength": beat_strength(x, SR, 70.0, 160.0)}


def stated(caption: str, a: synth.ClipAttributes) -> dict[str, object]:
    """What a caption says about the three attributes (register: None where the caption is silent)."""
    return {"tempo class": a.tempo_class, "register": caption_register(caption),
            "key signature": key_signature(a.key, a.mode)}


def agreement(measured: list[dict], said: list[dict], attribute: str) -> tuple[float, int]:
    """Share of clips whose measured attribute equals the caption's, over the captions that state it."""
    pairs = [(m[attribute], s[attribute]) for m, s in zip(measured, said, strict=True) if s[attribute] is not None]
    return float(np.mean([m == s for m, s in pairs])), len(pairs)


def shuffled_agreement(measured: list[dict], said: list[dict], attribute: str, rounds: int = 200) -> float:
    """Mean agreement with the captions permuted (seeded, ``rounds`` permutations): the floor."""
    rng = np.random.default_rng(2)
    return float(np.mean([agreement(measured, [said[j] for j in rng.permutation(len(said))], attribute)[0]
                          for _ in range(rounds)]))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=200)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--checkpoint", default=None)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--speed-n", type=int, default=None,
                   help="captions to time at 20 steps (default: all --n); 40 steps always makes all --n")
    args = p.parse_args()
    import torch

    from finetune.models.tiny_diffusion import TinyDiffusion

    if args.threads:
        torch.set_num_threads(args.threads)
    model = TinyDiffusion.load(args.checkpoint)
    pairs = synth.sample_captions(args.n, args.seed)
    captions = [c for c, _ in pairs]
    speed = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        # Load MiniLM and warm the kernels before any clock starts.
        model.decode(model.generate(captions[:2], [0, 1], steps=2, guidance=3.0))
        load_before = os.getloadavg()[0]
        # 40 steps first: its samples (all --n of them) are the ones every figure below scores.
        for steps, count in ((40, args.n), (20, min(args.speed_n or args.n, args.n))):
            out = root / f"gen{steps}"
            out.mkdir()
            start = time.perf_counter()
            for s in range(0, count, 16):
                batch = captions[s:min(s + 16, count)]
                latents = model.generate(batch, list(range(s, s + len(batch))), steps=steps, guidance=3.0)
                for i, audio in enumerate(model.decode(latents)):
                    sf.write(out / f"s{s + i:04d}.wav", audio, model.sample_rate)
            speed[steps] = (count, count / (time.perf_counter() - start))
            print(f"generated {count} clips at {steps} steps: {speed[steps][1]:.2f} clips/s", file=sys.stderr)
        load_after = os.getloadavg()[0]
        ref = root / "heldout"
        synth.make_corpus(ref, args.n, seed=args.seed + 1000)
        rng = np.random.default_rng(0)
        for name, make in (("noise", lambda: 0.3 * rng.normal(size=64000)),
                           ("silence", lambda: 1e-4 * rng.normal(size=64000))):
            (root / name).mkdir()
            for i in range(args.n):
                sf.write(root / name / f"{i:04d}.wav", make().astype(np.float32), 16000)
        prompts = {f"s{i:04d}.wav": c for i, c in enumerate(captions)}
        rows = {}
        for enc_name in ("synthclap", "mel"):
            enc = encoders.get(enc_name)
            for label in ("gen40", "noise", "silence"):
                report = rk.score(root / label, ref, encoder=enc, use_cache=False,
                                  options=LoadOptions(allow_silence=True))
                rows[(enc_name, label)] = report.metrics["fad"]
        enc = encoders.get("synthclap")
        gen = embed_directory(root / "gen40", enc)
        audio = gen.pooled()
        text = enc.embed_text([prompts[f.file] for f in gen.files])
        own = rk.cosine_scores(audio, text)
        shuffled = rk.cosine_scores(audio, text[np.random.default_rng(1).permutation(len(text))])

        # DSP attribute agreement.
        thresholds = calibrate_register(200, seed=args.seed + 2000)
        said_gen = [stated(c, a) for c, a in pairs]
        readings = {"samples (40 steps)": ([measure(sf.read(root / "gen40" / f"s{i:04d}.wav")[0], thresholds)
                                            for i in range(args.n)], said_gen)}
        meta = pd.read_csv(ref / "metadata.csv")
        real = [sf.read(ref / f)[0].astype(np.float32) for f in meta["file"]]
        said_real = [stated(c, synth.ClipAttributes.from_dict(row))
                     for c, (_, row) in zip(meta["caption"], meta.iterrows(), strict=True)]
        readings["real held-out clips (ceiling)"] = ([measure(x, thresholds) for x in real], said_real)
        through = []
        for s in range(0, len(real), 16):
            through += model.decode(model.audio_to_latents(real[s:s + 16]))
        readings["real clips through the model's mel + decoder"] = (
            [measure(x, thresholds) for x in through], said_real)
    print(f"machine: {describe()}; torch threads {torch.get_num_threads()}")
    sem = np.sqrt(len(own))
    print(f"checkpoint: {args.checkpoint or 'shipped'}; {args.n} held-out captions (sampler seed {args.seed})\n")
    print(f"text-audio score (synthclap cosine), own caption {own.mean():.3f} +- {own.std(ddof=1) / sem:.3f}, "
          f"shuffled {shuffled.mean():.3f} +- {shuffled.std(ddof=1) / sem:.3f}")
    print("\n| encoder | FAD samples | FAD white noise | FAD near-silence |\n|---|---:|---:|---:|")
    for enc_name in ("synthclap", "mel"):
        print(f"| {enc_name} | {rows[(enc_name, 'gen40')]:.4g} | {rows[(enc_name, 'noise')]:.4g} | "
              f"{rows[(enc_name, 'silence')]:.4g} |")
    print(f"\nDSP attribute agreement with the caption (register thresholds {thresholds[0]:.1f} / "
          f"{thresholds[1]:.1f} MIDI, from 200 calibration clips of corpus seed {args.seed + 2000})\n")
    gen_measured = readings["samples (40 steps)"][0]
    print("| attribute | chance | samples, shuffled captions (floor) | samples, own captions | "
          + " | ".join(list(readings)[1:]) + " |")
    print("|---|---:|---:|---:|" + "---:|" * (len(readings) - 1))
    for attribute in ATTRIBUTES:
        cells = []
        for measured, said in readings.values():
            rate, count = agreement(measured, said, attribute)
            cells.append(f"{rate:.3f} +- {np.sqrt(rate * (1 - rate) / count):.3f} (n={count})")
        floor = shuffled_agreement(gen_measured, said_gen, attribute)
        print(f"| {attribute} | {CHANCE[attribute]:.3f} | {floor:.3f} | " + " | ".join(cells) + " |")
    print("\nbeat strength (onset-envelope autocorrelation peak at 70-160 BPM; 1 = perfectly periodic), median: "
          + ", ".join(f"{name} {np.median([m['beat strength'] for m in measured]):.2f}"
                      for name, (measured, _) in readings.items()))
    print("\nmeasured class shares of the samples vs the captions:")
    for attribute in ("tempo class", "register"):
        classes = synth.TEMPO_CLASSES if attribute == "tempo class" else synth.REGISTERS
        for name, (measured, _) in readings.items():
            if name.startswith("real held"):
                continue
            shares = {c: np.mean([m[attribute] == c for m in measured]) for c in classes}
            print(f"  {attribute}, {name}: " + ", ".join(f"{c} {v:.2f}" for c, v in shares.items()))
        stated_pairs = [(s[attribute], m[attribute]) for m, s in zip(gen_measured, said_gen, strict=True)
                        if s[attribute] is not None]
        table = pd.crosstab(pd.Series([c for c, _ in stated_pairs], name="caption"),
                            pd.Series([m for _, m in stated_pairs], name="measured"))
        print(table.reindex(index=list(classes), columns=list(classes), fill_value=0).to_string())
    print(f"\ngeneration incl. decoding, batch 16, guidance 3: {speed[20][1]:.2f} clips/s at 20 steps "
          f"({speed[20][0]} clips), {speed[40][1]:.2f} clips/s at 40 steps ({speed[40][0]} clips); "
          f"1-min load average {load_before:.1f} before, {load_after:.1f} after timing")


if __name__ == "__main__":
    main()
