"""BNF chapters: the grouping of the interaction timeline's swim lanes and the plain words of the patient pack.

Chapter titles are those of the British National Formulary's legacy numbering (BNF 70, 2015; still used by NHS
Business Services Authority prescribing data and OpenPrescribing). The plain-English phrases are ours, written for
the take-home sheet ("what each medicine is for" in the broadest sense: the body system it acts on), and they never
claim a specific indication.
"""

from __future__ import annotations

BNF_CHAPTERS: dict[str, tuple[str, str]] = {
    # chapter: (BNF title, plain English for patients)
    "1": ("Gastro-intestinal system", "the stomach and bowel"),
    "2": ("Cardiovascular system", "the heart, blood pressure and circulation"),
    "3": ("Respiratory system", "breathing and the lungs"),
    "4": ("Central nervous system", "the brain and nerves, including pain, mood and sleep"),
    "5": ("Infections", "infections"),
    "6": ("Endocrine system", "hormones, such as diabetes, thyroid and bone medicines"),
    "7": ("Obstetrics, gynaecology and urinary-tract disorders", "the bladder and reproductive system"),
    "8": ("Malignant disease and immunosuppression", "cancer treatment or the immune system"),
    "9": ("Nutrition and blood", "vitamins, minerals and the blood"),
    "10": ("Musculoskeletal and joint diseases", "joints, muscles and inflammation"),
    "11": ("Eye", "the eyes"),
    "12": ("Ear, nose and oropharynx", "the ears, nose and throat"),
    "13": ("Skin", "the skin"),
    "14": ("Immunological products and vaccines", "vaccines and immunity"),
    "15": ("Anaesthesia", "anaesthesia"),
}
UNKNOWN_CHAPTER = ("Not classified", "your health (ask your GP or pharmacist)")


def bnf_chapter(section: str | None) -> str:
    """The chapter number of a BNF section ('2.6.2' → '2'); '' when unknown."""
    if not section:
        return ""
    chapter = section.split(".", 1)[0].strip()
    return chapter if chapter in BNF_CHAPTERS else ""


def chapter_title(section: str | None) -> str:
    """'Cardiovascular system' for any section of chapter 2."""
    return BNF_CHAPTERS.get(bnf_chapter(section), UNKNOWN_CHAPTER)[0]


def chapter_plain_words(section: str | None) -> str:
    """What a medicine of this section is broadly for, in plain English."""
    return BNF_CHAPTERS.get(bnf_chapter(section), UNKNOWN_CHAPTER)[1]
