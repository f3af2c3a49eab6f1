"""Page text in Thai (the default) and English."""

from __future__ import annotations

TEXT: dict[str, dict[str, str]] = {
    "title": {"th": "ระบบตรวจสอบย้อนกลับผลผลิตชุมชน", "en": "Community produce traceability"},
    "tagline": {
        "th": "ผลผลิตจากชุมชนไทย ตรวจสอบที่มาได้ทุกขั้นตอน ตั้งแต่แปลงปลูกจนถึงท่าเรือส่งออก บันทึกบนบล็อกเชนซึ่งไม่มีใครแก้ไขได้",
        "en": "Thai community produce, traceable at every step from the plot to the export port, "
        "recorded on a blockchain no one can rewrite",
    },
    "lots": {"th": "ล็อตสินค้า", "en": "Lots"},
    "lot": {"th": "รหัสล็อต", "en": "Lot code"},
    "product": {"th": "สินค้า", "en": "Product"},
    "events": {"th": "เหตุการณ์", "en": "Events"},
    "status": {"th": "สถานะ", "en": "Status"},
    "anchored": {"th": "บันทึกบนบล็อกเชนแล้ว", "en": "Anchored on the blockchain"},
    "pending": {"th": "รอบันทึกบนบล็อกเชน", "en": "Waiting to be anchored"},
    "empty": {"th": "ยังไม่มีเหตุการณ์", "en": "No events yet"},
    "no_lots": {"th": "ยังไม่มีล็อตสินค้า", "en": "No lots yet"},
    "switch": {"th": "English", "en": "ภาษาไทย"},
}


def pick_lang(lang: str | None) -> str:
    return "en" if lang == "en" else "th"


def t(key: str, lang: str) -> str:
    return TEXT[key][lang]
