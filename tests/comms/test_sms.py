"""SMS text rules (pure): GSM-7/UCS-2 detection, segments, cost, STOP keywords.

3GPP TS 23.038 (GSM 7-bit alphabet and extension table) and TS 23.040 (concatenation header:
153 septets or 67 UCS-2 characters per part of a long message).
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from relance.comms.sms import (
    GSM7_BASIC,
    GSM7_EXTENSION,
    is_gsm7,
    is_stop_request,
    sms_cost_minor,
    sms_normalize,
    sms_segments,
    sms_size,
)

BASIC = "".join(sorted(GSM7_BASIC))
basic_text = st.text(alphabet=BASIC, min_size=1, max_size=800)
any_text = st.text(min_size=1, max_size=600)


@pytest.mark.parametrize(
    ("n", "segments"),
    [(1, 1), (159, 1), (160, 1), (161, 2), (306, 2), (307, 3), (459, 3), (460, 4)],
)
def test_basic_gsm_text_segments_at_the_limits(n, segments):
    text = "a" * n
    assert sms_size(text).encoding == "GSM-7"
    assert sms_segments(text) == segments


@pytest.mark.parametrize(("n", "segments"), [(70, 1), (71, 2), (134, 2), (135, 3)])
def test_ucs2_segments_at_the_limits(n, segments):
    text = "ê" * n  # not in the GSM alphabet
    assert sms_size(text).encoding == "UCS-2"
    assert sms_segments(text) == segments


def test_extension_characters_take_two_septets():
    assert is_gsm7("€[]{}|^~\\")
    assert sms_size("€").units == 2
    assert sms_segments("€" * 80) == 1  # 160 septets
    assert sms_segments("€" * 80 + "a") == 2
    # In a long message a two-septet character never straddles two parts: 152 + "€" needs a new part.
    assert sms_segments("a" * 152 + "€" + "a" * 152) == 3
    assert sms_segments("a" * 151 + "€" + "a" * 153) == 2


def test_french_accents_inside_and_outside_the_gsm_alphabet():
    assert is_gsm7("Réf. échéancier à régler, problème")
    assert not is_gsm7("reçu")  # only the capital Ç is in the default alphabet
    assert not is_gsm7("êtes")
    assert not is_gsm7("dû")


def test_one_emoji_switches_the_whole_message_to_ucs2_and_counts_two_units():
    size = sms_size("Merci 🙂")
    assert size.encoding == "UCS-2"
    assert size.units == 8  # 6 characters + a surrogate pair
    assert sms_segments("a" * 69 + "🙂") == 2  # 71 UTF-16 units
    assert sms_segments("a" * 66 + "🙂" + "a" * 66) == 3  # the pair is not split at 67


def test_cost_is_segments_times_the_price_in_minor_units():
    assert sms_cost_minor("a" * 161, segment_price_minor=7) == 14
    assert sms_cost_minor("", segment_price_minor=7) == 0
    with pytest.raises(ValueError):
        sms_cost_minor("a", segment_price_minor=-1)


def test_normalize_keeps_messages_in_gsm7():
    amount = "120,50\u00a0€ et 1\u202f200,00\u00a0€ \u2014 l\u2019échéancier\n  ok"
    text = sms_normalize(amount)
    assert text == "120,50 € et 1 200,00 € - l'échéancier ok"
    assert is_gsm7(text)


@pytest.mark.parametrize(
    "body",
    [
        "STOP",
        "stop",
        " Stop. ",
        "STOP SMS",
        "stop sms",
        "STOPSMS",
        "Arret",
        "ARRÊT",
        "arrêt svp",
        "Stop merci",
        "STOP!",
    ],
)
def test_stop_keywords(body):
    assert is_stop_request(body)


@pytest.mark.parametrize("body", ["", "   ", "Bonjour, je paierai vendredi", "Je ne peux pas stopper", "OK", "stopper"])
def test_not_stop(body):
    assert not is_stop_request(body)


@given(any_text)
def test_segments_never_zero_for_non_empty_text(text):
    assert sms_segments(text) >= 1


@given(any_text, st.characters())
def test_appending_a_character_never_decreases_the_segment_count(text, ch):
    assert sms_segments(text + ch) >= sms_segments(text)


@given(basic_text)
def test_basic_gsm_text_of_length_n_follows_the_160_153_rule(text):
    n = len(text)
    expected = 1 if n <= 160 else -(-n // 153)
    assert sms_size(text) == sms_size(text)  # frozen value object
    assert sms_size(text).units == n
    assert sms_segments(text) == expected


@given(basic_text, st.sampled_from(["🙂", "😀", "👍"]))
def test_one_emoji_anywhere_means_ucs2(text, emoji):
    at = len(text) // 2
    assert sms_size(text[:at] + emoji + text[at:]).encoding == "UCS-2"


@given(st.text(alphabet=BASIC + "".join(GSM7_EXTENSION), min_size=1, max_size=600))
def test_gsm_segments_bounded_by_septets(text):
    septets = sms_size(text).units
    segments = sms_segments(text)
    if septets <= 160:
        assert segments == 1
    else:
        # Packing loses at most one septet per part (an escape pair that would straddle).
        assert -(-septets // 153) <= segments <= -(-septets // 152)
