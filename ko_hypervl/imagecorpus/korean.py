"""Korean text helpers the question writers need: particles that agree with the word before them, numbers."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

# the final consonant of how a trailing digit or Latin unit is read aloud (0 영, 1 일, 3 삼, 6 육 ...)
_DIGIT_FINAL = {"0": "ㅇ", "1": "ㄹ", "2": "", "3": "ㅁ", "4": "", "5": "", "6": "ㄱ", "7": "ㄹ", "8": "ㄹ", "9": ""}
_READ_AS = {"kg": "킬로그램", "mm": "밀리미터", "km": "킬로미터", "kcal": "킬로칼로리", "%": "퍼센트", "㎡": "제곱미터",
            "cm": "센티미터", "g": "그램", "m": "미터", "L": "리터"}
_FINALS = ("", "ㄱ", "ㄲ", "ㄳ", "ㄴ", "ㄵ", "ㄶ", "ㄷ", "ㄹ", "ㄺ", "ㄻ", "ㄼ", "ㄽ", "ㄾ", "ㄿ", "ㅀ", "ㅁ", "ㅂ", "ㅄ",
           "ㅅ", "ㅆ", "ㅇ", "ㅈ", "ㅊ", "ㅋ", "ㅌ", "ㅍ", "ㅎ")


def final_consonant(word: str) -> str:
    """The final consonant (받침) of how ``word`` ends when read aloud, '' for none."""
    stripped = word.rstrip(" )]'\"")
    for unit, reading in _READ_AS.items():
        if stripped.endswith(unit):
            stripped = reading
            break
    if not stripped:
        return ""
    last = stripped[-1]
    if "가" <= last <= "힣":
        return _FINALS[(ord(last) - 0xAC00) % 28]
    if last in _DIGIT_FINAL:
        return _DIGIT_FINAL[last]
    return ""


def josa(word: str, with_final: str, without_final: str) -> str:
    """``word`` with the particle that agrees with it: josa('사과', '은', '는') -> '사과는'.

    (으)로 takes 로 after ㄹ as well as after a vowel."""
    final = final_consonant(word)
    if with_final == "으로":
        return word + ("로" if final in ("", "ㄹ") else "으로")
    return word + (with_final if final else without_final)


def format_number(value: int | float | Fraction | Decimal) -> str:
    """12000 -> '12,000'; 2.50 -> '2.5'. Exact values only: no binary float noise reaches an answer."""
    d = Decimal(str(value)) if not isinstance(value, Fraction) else Decimal(value.numerator) / Decimal(value.denominator)
    if d == d.to_integral_value():
        return f"{int(d):,}"
    text = f"{d.normalize():,f}"
    return text


def round_half_up(value: Fraction, places: int = 1) -> Decimal:
    """School rounding (반올림) of an exact fraction to ``places`` decimals."""
    d = Decimal(value.numerator) / Decimal(value.denominator)
    return d.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def with_unit(value: int | float | Fraction | Decimal, unit: str) -> str:
    """'12명', '35만 명', '12 kg' style: Latin units and % after a space-free number as Koreans write them."""
    return f"{format_number(value)}{unit}" if unit else format_number(value)
