"""The sensor agent takes one channel of multichannel audio, the same for the whole stream."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from rtcc.acoustic.agent import FileSource


def test_opposite_channels_do_not_cancel_and_the_choice_is_kept(tmp_path: Path) -> None:
    rate = 12_000
    x = np.zeros(rate, dtype=np.float64)
    x[3000:3040] = 0.5  # an impulse in the first block with sound
    quiet_then_loud = np.zeros(rate)
    quiet_then_loud[8000:8400] = 0.9  # later, the other channel is louder for a while
    stereo = np.stack([x, -x + quiet_then_loud], axis=1)
    path = tmp_path / "stereo.wav"
    sf.write(path, stereo, rate, subtype="FLOAT")
    src = FileSource(path, fast=True)
    mono = np.concatenate(list(src))
    assert np.max(np.abs(mono[3000:3040])) > 0.4  # the mean would be 0
    assert src.channel is not None
    # one channel throughout: the stream equals that column, never a mix of the two
    assert np.allclose(mono, stereo[:, src.channel])
