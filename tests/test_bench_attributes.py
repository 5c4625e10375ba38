"""The DSP attribute readings of benchmarks/bench_base_model.py, checked on rendered clips whose truth is known."""

import dataclasses

import numpy as np
import pytest
from benchmark_scripts import load

from rewardkit import synth


@pytest.fixture(scope="module")
def bench():
    return load("bench_base_model")


def test_caption_register_reads_only_what_the_caption_says(bench):
    named = 0
    for caption, a in synth.sample_captions(300, 11):
        register = bench.caption_register(caption)
        assert register in (None, a.register), caption
        named += register is not None
    assert 0.35 < named / 300 < 0.65  # the caption sampler names the register half the time
    assert bench.caption_register("A slow, mellow pluck tune in C major") is None
    assert bench.caption_register("A slow-paced low-pitched FM lead") == "low"


def test_key_signature_joins_relative_modes(bench):
    assert bench.key_signature("C", "major") == bench.key_signature("A", "minor") == bench.key_signature("D", "dorian")
    assert bench.key_signature("G", "major") == 7
    assert len({bench.key_signature(k, "major") for k in synth.TONICS}) == 12


def test_readings_match_rendered_clips(bench):
    tempo = key = 0
    for i in range(24):
        _, a, _ = synth.render_clip(synth.clip_seed(5, i))
        x = synth.render(dataclasses.replace(a, drums="steady")).astype(np.float64)
        tempo += synth.tempo_class_for(bench.estimate_bpm(x)) == a.tempo_class
        key += bench.diatonic_set(synth.render(dataclasses.replace(a, drums="none")).astype(np.float64)) \
            == bench.key_signature(a.key, a.mode)
    # Chance is 8 of 24 for tempo, 2 of 24 for the key signature; the benchmark's ceiling is about 0.8 and 0.55.
    assert tempo >= 18 and key >= 10, (tempo, key)


def test_top_voice_orders_the_registers(bench):
    for i in range(6):
        _, a, _ = synth.render_clip(synth.clip_seed(6, i))
        low, mid, high = (bench.top_voice_midi(synth.render(dataclasses.replace(a, register=r)).astype(np.float64))
                          for r in synth.REGISTERS)
        # One octave apart each; a dark pluck's upper partials can lift its low register to the mid reading.
        assert low <= mid <= high and low < high, (a, low, mid, high)
