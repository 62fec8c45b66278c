"""Japan's 47 prefectures (都道府県) by JIS X 0401 code, kanji name and romaji name.

A customer's address names its prefecture by any of the three (``"13"``, ``"東京都"``,
``"tokyo"``); :func:`code_of` turns each into the two-digit code the shop keeps
comparing by (shipping zones, say).
"""

from __future__ import annotations

#: (JIS code, kanji, romaji) in code order
PREFECTURES: tuple[tuple[str, str, str], ...] = (
    ("01", "北海道", "hokkaido"), ("02", "青森県", "aomori"), ("03", "岩手県", "iwate"),
    ("04", "宮城県", "miyagi"), ("05", "秋田県", "akita"), ("06", "山形県", "yamagata"),
    ("07", "福島県", "fukushima"), ("08", "茨城県", "ibaraki"), ("09", "栃木県", "tochigi"),
    ("10", "群馬県", "gunma"), ("11", "埼玉県", "saitama"), ("12", "千葉県", "chiba"),
    ("13", "東京都", "tokyo"), ("14", "神奈川県", "kanagawa"), ("15", "新潟県", "niigata"),
    ("16", "富山県", "toyama"), ("17", "石川県", "ishikawa"), ("18", "福井県", "fukui"),
    ("19", "山梨県", "yamanashi"), ("20", "長野県", "nagano"), ("21", "岐阜県", "gifu"),
    ("22", "静岡県", "shizuoka"), ("23", "愛知県", "aichi"), ("24", "三重県", "mie"),
    ("25", "滋賀県", "shiga"), ("26", "京都府", "kyoto"), ("27", "大阪府", "osaka"),
    ("28", "兵庫県", "hyogo"), ("29", "奈良県", "nara"), ("30", "和歌山県", "wakayama"),
    ("31", "鳥取県", "tottori"), ("32", "島根県", "shimane"), ("33", "岡山県", "okayama"),
    ("34", "広島県", "hiroshima"), ("35", "山口県", "yamaguchi"), ("36", "徳島県", "tokushima"),
    ("37", "香川県", "kagawa"), ("38", "愛媛県", "ehime"), ("39", "高知県", "kochi"),
    ("40", "福岡県", "fukuoka"), ("41", "佐賀県", "saga"), ("42", "長崎県", "nagasaki"),
    ("43", "熊本県", "kumamoto"), ("44", "大分県", "oita"), ("45", "宮崎県", "miyazaki"),
    ("46", "鹿児島県", "kagoshima"), ("47", "沖縄県", "okinawa"),
)  # fmt: skip
_BY_NAME: dict[str, str] = {}
for _code, _kanji, _romaji in PREFECTURES:
    _BY_NAME.update({_code: _code, _kanji: _code, _romaji: _code, str(int(_code)): _code})


def code_of(name: str) -> str | None:
    """The JIS code of a prefecture named by code, kanji or romaji; None if none.

    Example::

        >>> code_of("東京都"), code_of("Tokyo"), code_of("13"), code_of("Atlantis")
        ('13', '13', '13', None)
    """
    return _BY_NAME.get(name.strip().lower()) if isinstance(name, str) else None
