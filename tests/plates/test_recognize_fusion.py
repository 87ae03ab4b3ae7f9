"""Second-recognizer fusion: CTC likelihood, the general recognizer's plate view, the re-read rule.

No shared data needed: plates are drawn in the tests (see ``test_recognize.car_with_plate``).
"""

from __future__ import annotations

import itertools

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from rtcc.plates import PlateReader
from rtcc.plates.ocr import ALPHABET, PlateOCR, ctc_log_likelihood, decode, text_confidence
from rtcc.plates.recognize import Fusion
from rtcc.plates.region import TextRecognizer
from tests.plates.test_recognize import car_with_plate

C = {c: i + 1 for i, c in enumerate(ALPHABET)}


def _collapse(path: tuple[int, ...]) -> str:
    out, prev = [], 0
    for k in path:
        if k and k != prev:
            out.append(ALPHABET[k - 1])
        prev = k
    return "".join(out)


def test_ctc_likelihood_is_the_sum_over_every_alignment() -> None:
    rng = np.random.default_rng(0)
    classes = [0, C["A"], C["B"]]  # blank, A, B; every other class has probability 0
    probs = np.zeros((5, 1 + len(ALPHABET)), np.float32)
    probs[:, classes] = rng.dirichlet(np.ones(3), size=5)
    for text in ("A", "AB", "AA", "ABA", "BAB"):
        brute = sum(
            float(np.prod([probs[t, k] for t, k in enumerate(path)]))
            for path in itertools.product(classes, repeat=5)
            if _collapse(path) == text
        )
        assert np.exp(ctc_log_likelihood(probs, text)) == pytest.approx(brute, rel=1e-4), text
    # a doubled letter needs a blank between: "AAA" + 2 blanks does not fit 4 steps
    assert ctc_log_likelihood(probs[:4], "AAA") == -np.inf
    with pytest.raises(ValueError):
        ctc_log_likelihood(probs, "")


def _sharp(text: str, steps: int = 16, p: float = 0.98) -> npt.NDArray[np.float32]:
    """A confident CTC output that spells ``text`` (each character, then a blank)."""
    probs = np.full((steps, 1 + len(ALPHABET)), (1 - p) / len(ALPHABET), np.float32)
    probs[:, 0] = p
    for i, c in enumerate(text):
        probs[2 * i] = (1 - p) / len(ALPHABET)
        probs[2 * i, C[c]] = p
    return probs


def test_text_confidence_rewards_agreement_and_averages_over_crops() -> None:
    a, b = _sharp("7KDR582"), _sharp("7KDR532")
    assert decode(a).text == "7KDR582"
    assert text_confidence([a], "7KDR582") > 0.9
    assert text_confidence([a], "7KDR532") < 0.6  # one character off costs a lot
    both = text_confidence([a, b], "7KDR582")
    assert both == pytest.approx((text_confidence([a], "7KDR582") + text_confidence([b], "7KDR582")) / 2)


@pytest.fixture(scope="module")
def general() -> TextRecognizer:
    return TextRecognizer()


def test_the_general_recognizer_reads_plates_through_the_plate_alphabet(general: TextRecognizer) -> None:
    img = np.full((48, 200, 3), 250, np.uint8)
    cv2.putText(img, "ab-12 cd", (6, 34), cv2.FONT_HERSHEY_SIMPLEX, 1.0, (10, 10, 10), 2, cv2.LINE_AA)
    probs = general.plate_probs(img)
    assert probs.shape[1] == 1 + len(ALPHABET)
    assert np.allclose(probs.sum(axis=1), 1.0, atol=1e-4)
    assert decode(probs).text == "AB12CD"  # lower case folded to capitals, separators dropped


class FakeSecond:
    """A second recognizer that reads every crop as ``text`` and counts its crops."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.crops = 0

    def plate_probs(self, crop: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
        self.crops += 1
        return _sharp(self.text)


def _reader(second: FakeSecond | None, fusion: Fusion) -> PlateReader:
    base = PlateReader.load(regions=False, second=False)
    return PlateReader(base.detector, base.ocr, second=second, fusion=fusion)  # type: ignore[arg-type]


def test_confident_reads_are_not_re_read() -> None:
    fake = FakeSecond("9ZZZ999")
    plates = _reader(fake, Fusion(below=0.3)).read(car_with_plate("4XYZ019", seed=3))
    assert plates and plates[0].text == "4XYZ019"
    assert fake.crops == 0


def test_uncertain_reads_are_decided_by_both_recognizers() -> None:
    image = car_with_plate("4XYZ019", seed=3)
    # forced re-read, the second recognizer alone decides: its text wins
    fake = FakeSecond("4XYZ018")
    plates = _reader(fake, Fusion(below=1.01, above=0.0, weight=1.0, crops=2)).read(image)
    assert plates and plates[0].text == "4XYZ018"
    assert 0 < fake.crops <= 2 * Fusion().regions
    # the plate recognizer alone decides: its own text, though the second recognizer read another
    fake = FakeSecond("4XYZ018")
    plates = _reader(fake, Fusion(below=1.01, above=0.0, weight=0.0)).read(image)
    assert plates and plates[0].text == "4XYZ019"
    assert fake.crops > 0
    # the shipped weight: a confident plate recognizer outvotes a second recognizer one character off
    plates = _reader(FakeSecond("4XYZ018"), Fusion(below=1.01)).read(image)
    assert plates and plates[0].text == "4XYZ019"


def test_shipped_reader_re_reads_with_the_fine_tuned_plate_recognizer(general: TextRecognizer) -> None:
    reader = PlateReader.load()  # session 7: plate_ppocr.onnx re-reads, the general one tells the state
    assert isinstance(reader.second, PlateOCR) and reader.second.colour
    assert reader.region_reader is not None and isinstance(reader.region_reader.recognizer, TextRecognizer)
    assert PlateReader.load(second=False).second is None


def test_which_regions_are_re_read() -> None:
    reader = _reader(FakeSecond("1"), Fusion(below=0.7, above=0.15, regions=2))
    vote = lambda text, conf: (text, conf, (conf,) * len(text))  # noqa: E731
    # the best is confident: nothing is re-read
    assert reader._to_reread([vote("ABC123", 0.9), vote("XYZ1", 0.2)]) == []
    # uncertain: the best two at or above 0.15, best first; a state name and a non-read are skipped
    votes = [
        vote("AB12", 0.16),
        None,
        vote("TEXAS", 0.6),
        vote("7KDR582", 0.24),
        vote("ZZ9", 0.1),
        vote("Q1", 0.5),
    ]
    assert reader._to_reread(votes) == [5, 3]
    assert _reader(FakeSecond("1"), Fusion(regions=3))._to_reread(votes) == [5, 3, 0]
    assert _reader(None, Fusion())._to_reread(votes) == []
