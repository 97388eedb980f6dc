"""Drug and condition vocabularies of DynAIRx: canonical keys, classes, groups and matchers.

Everything clinical in DynAIRx speaks in canonical keys: a drug is its lowercase UK generic name ("amlodipine",
"glyceryl trinitrate"), a condition a snake_case key ("heart_failure"). This module turns what real records
contain - US and UK product descriptions, brand names, salts, RxNorm / dm+d / BNF codes, SNOMED CT ids and
free-text terms - into those keys, and answers the questions the rules ask of them (class members, ACB score,
condition groups).

The knowledge lives in data files beside this module (see ``clinical/data/README.md`` for their sources):

- ``drugs.csv``           one row per ingredient: names, brands, BNF section, ATC, RxNorm ingredient, ACB score
- ``drug_classes.yaml``   the only definition of drug classes (class key -> members)
- ``combinations.csv``    combination products known by one name (co-codamol, Seretide, Microgynon ...)
- ``rxnorm_products.csv`` RxNorm clinical-drug codes seen in Synthea extracts -> ingredients
- ``dmd_products.csv``    a small sample of dm+d VMP codes -> ingredients
- ``bnf_chemicals.csv``   BNF chemical-substance codes (first 9 characters of a BNF code) -> ingredients
- ``conditions.yaml``     condition keys, SNOMED CT ids, synonyms, groups, CMS weights and eFI deficits

Design choices:

- Combination products are never drugs: a match returns every ingredient, so co-codamol is in every class of
  codeine and of paracetamol.
- Text matching is by whole words after normalisation (case, punctuation, tall-man lettering), taking the longest
  known name at each position, so "Oxycodone Hydrochloride" is oxycodone and "hyoscine butylbromide" is not
  hyoscine hydrobromide. Salt words need no list: they are simply not names.
- A product description is split into its components ("Amoxicillin 250 MG / Clavulanate 125 MG"); a component
  that names no known drug is reported in ``DrugMatch.unmatched`` and makes the match incomplete, so an unknown
  ingredient is never silently dropped.
- Loading is cached per process (``load()`` returns the same object) and takes well under 0.3 s.
"""

from __future__ import annotations

import csv
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

DATA_DIR = Path(__file__).resolve().parent / "data"

# libyaml's loader parses the vocabulary files about eight times faster than the pure-Python one (the CLI and tests
# load them often); fall back when PyYAML was built without libyaml.
_YAML_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

# Words that describe strength, form, route or packaging. A product-description component made only of these
# (and numbers) names no ingredient, so it is not reported as unmatched.
NOISE_WORDS = frozenset(
    """
    mg mcg microgram micrograms microgramme microgrammes nanogram nanograms g gram grams kg ml l unit units unt iu
    mmol mol actuat actuation actuations dose doses hr hour hours day days week weeks month per mg/ml pct percent
    oral tablet tablets tab tabs capsule capsules cap caps chewable dispersible effervescent soluble orodispersible
    gastro resistant enteric coated film modified release extended delayed prolonged sustained controlled mr sr xl
    er cr la retard solution suspension syrup liquid elixir drops drop granules powder sachet sachets lozenge
    lozenges pastille cream ointment gel lotion foam paste emollient shampoo spray nasal inhaler inhalation inhaled
    metered dry breath actuated nebuliser nebulizer nebules respules turbohaler accuhaler easyhaler evohaler
    ellipta handihaler pressurised pressurized injection injectable infusion intravenous subcutaneous intramuscular
    prefilled pre filled syringe syringes pen pens cartridge cartridges vial vials ampoule ampoules auto injector
    autoinjector patch patches transdermal system implant drug intrauterine vaginal ring pessary pessaries rectal
    suppository suppositories enema topical cutaneous eye ear ophthalmic otic mucosal buccal sublingual film
    chewing gum pack packs kit starter titration generic sugar free sf usp bp ph eur nda anda and with of in for the
    a to plus
    """.split()
)

# Ordered (route, pattern) pairs: the first that matches the normalised description wins. Oromucosal sprays are
# metered ("MG/ACTUAT") so they are tested before inhalers; oral gel stays oral because oral forms are tested
# before topical "gel". Contraceptive "28 Day Pack" products are oral pills.
ROUTE_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (route, re.compile(pattern))
    for route, pattern in (
        ("oromucosal", r"\b(mucosal|sublingual|buccal)\b"),
        (
            "inhaled",
            r"\b(inhal\w*|actuat\w*|nebul\w*|respules|turbohaler|accuhaler|evohaler|ellipta|handihaler)\b",
        ),
        ("eye", r"\b(eye|ophthalmic|minims)\b"),
        ("nasal", r"\bnasal\b"),
        ("transdermal", r"\b(transdermal|patch|patches)\b"),
        ("intrauterine", r"\bintrauterine\b"),
        ("vaginal", r"\b(vaginal|pessar\w*)\b"),
        ("rectal", r"\b(rectal|suppositor\w*|enema)\b"),
        (
            "injection",
            r"\b(inject\w*|infusion|intravenous|subcutaneous|intramuscular|syringe\w*|vial\w*|ampoule\w*)\b",
        ),
        ("implant", r"\bimplant\b"),
        (
            "oral",
            r"\b(oral|tablet\w*|capsule\w*|chewable|syrup|sachet\w*|lozenge\w*|dispersible|elixir|day pack)\b",
        ),
        ("topical", r"\b(topical|cream|ointment|lotion|cutaneous|gel|foam|shampoo)\b"),
    )
)

_SEPARATORS = frozenset({"/", "+", ";", ",", "with", "and"})
_TOKEN_RE = re.compile(r"[a-z0-9]+(?:\.[0-9]+)?|[/+;,]")
_SNOMED_TAG_RE = re.compile(
    r"\s*\((disorder|finding|situation|morphologic abnormality|procedure|person|event|observable entity)\)?\s*$"
)


def normalise(text: str) -> str:
    """Lowercase ASCII words separated by single spaces; punctuation (hyphens, brackets, apostrophes) removed."""
    return " ".join(_words(text))


def _ascii_lower(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return folded.lower().replace("'", "")


def _words(text: str) -> list[str]:
    return [
        token
        for token in _TOKEN_RE.findall(_ascii_lower(text))
        if token not in _SEPARATORS or token.isalpha()
    ]


def _tokens(text: str) -> list[str]:
    """Words plus separator tokens ("/", "+", ";", ","), in order."""
    return _TOKEN_RE.findall(_ascii_lower(text))


def _split_values(cell: str | None) -> tuple[str, ...]:
    return tuple(value.strip() for value in (cell or "").split("|") if value.strip())


def _split_ingredients(cell: str) -> tuple[str, ...]:
    return tuple(value.strip() for value in cell.split(";") if value.strip())


# ================================================================================================================
# Drugs


@dataclass(frozen=True)
class Drug:
    """One ingredient of the drug vocabulary (a row of ``drugs.csv`` plus its classes)."""

    key: str
    name: str
    synonyms: tuple[str, ...]
    brands: tuple[str, ...]
    bnf_section: str
    atc: str
    rxnorm: str | None
    acb: int
    classes: frozenset[str]

    @property
    def bnf_chapter(self) -> int:
        """BNF chapter number, the first part of the legacy section (``"2.5.5.1"`` -> 2)."""
        return int(self.bnf_section.split(".", 1)[0])


@dataclass(frozen=True)
class DrugClass:
    """A drug class from ``drug_classes.yaml``."""

    key: str
    description: str
    source: str
    members: frozenset[str]


@dataclass(frozen=True)
class DrugMatch:
    """What a record's drug text or code means.

    ``ingredients`` are drug keys in alphabetical order (a combination product gives all of them). ``matched`` is
    true when at least one ingredient was found and no component of the input was left unexplained;
    ``unmatched`` lists the components that named no known drug (the whole input when nothing matched).
    ``route`` is inferred from the description's form words (``"oral"``, ``"inhaled"``, ``"topical"``,
    ``"injection"``, ``"eye"``, ...) and is ``None`` when the text does not say.
    """

    input: str
    ingredients: tuple[str, ...]
    matched: bool
    unmatched: tuple[str, ...] = ()
    route: str | None = None
    primary: str | None = None

    @property
    def drug_key(self) -> str | None:
        """The primary ingredient: the first one named in the input (``None`` when nothing matched)."""
        return self.primary or (self.ingredients[0] if self.ingredients else None)


@dataclass(frozen=True)
class _AliasHit:
    start: int
    end: int
    keys: tuple[str, ...]


class DrugVocabulary:
    """The drug vocabulary: ingredient keys, classes, ACB scores and the text/code matcher.

    Build it with ``DrugVocabulary.load()`` (cached per data directory).
    """

    def __init__(
        self,
        drugs: Mapping[str, Drug],
        classes: Mapping[str, DrugClass],
        aliases: Mapping[tuple[str, ...], tuple[str, ...]],
        codes: Mapping[str, Mapping[str, tuple[str, ...]]],
    ) -> None:
        self._drugs = dict(drugs)
        self._classes = dict(classes)
        self._aliases = dict(aliases)
        self._max_alias_words = max((len(words) for words in self._aliases), default=1)
        self._codes = {system: dict(table) for system, table in codes.items()}

    # ------------------------------------------------------------------ construction
    @classmethod
    def load(cls, data_dir: Path | str | None = None) -> DrugVocabulary:
        """The vocabulary built from ``clinical/data`` (or ``data_dir``); cached, so repeated calls are free."""
        return _load_drug_vocabulary(Path(data_dir) if data_dir else DATA_DIR)

    @classmethod
    def from_files(cls, data_dir: Path) -> DrugVocabulary:
        """Parse and validate the data files (uncached; ``load`` is the normal entry point)."""
        drug_rows = _read_csv(data_dir / "drugs.csv")
        class_doc = _read_yaml(data_dir / "drug_classes.yaml")
        classes = _parse_classes(class_doc)
        drugs = _parse_drugs(drug_rows, classes)
        _check_class_members(classes, drugs)
        combinations = [
            (row["name"], _split_ingredients(row["ingredients"]))
            for row in _read_csv(data_dir / "combinations.csv")
        ]
        aliases = _build_aliases(drugs.values(), combinations)
        codes = _build_code_tables(data_dir, drugs)
        return cls(drugs, classes, aliases, codes)

    # ------------------------------------------------------------------ lookups
    @property
    def keys(self) -> frozenset[str]:
        """Every drug (ingredient) key."""
        return frozenset(self._drugs)

    @property
    def class_keys(self) -> frozenset[str]:
        """Every drug class key."""
        return frozenset(self._classes)

    def drug(self, key: str) -> Drug:
        """The drug with this key; ``KeyError`` if unknown."""
        try:
            return self._drugs[key]
        except KeyError:
            raise KeyError(f"unknown drug key: {key!r}") from None

    def get(self, key: str) -> Drug | None:
        """The drug with this key, or ``None``."""
        return self._drugs.get(key)

    def drug_class(self, class_key: str) -> DrugClass:
        """The class definition (description, source, members); ``KeyError`` if unknown."""
        try:
            return self._classes[class_key]
        except KeyError:
            raise KeyError(f"unknown drug class: {class_key!r}") from None

    def members(self, class_key: str) -> frozenset[str]:
        """Drug keys in a class; ``KeyError`` for an unknown class so that a typo in a rule fails loudly."""
        return self.drug_class(class_key).members

    def classes_of(self, drug_key: str) -> frozenset[str]:
        """Class keys a drug belongs to; ``KeyError`` if the drug is unknown."""
        return self.drug(drug_key).classes

    def acb(self, drug_key: str) -> int:
        """Anticholinergic Cognitive Burden score 0-3 (ACB scale, 2012 update); ``KeyError`` if unknown."""
        return self.drug(drug_key).acb

    def in_class(self, drug_key: str, class_key: str) -> bool:
        """Whether a drug is a member of a class (both keys must exist)."""
        return drug_key in self.members(class_key)

    # ------------------------------------------------------------------ matching
    def match_code(self, system: str, code: str | int) -> DrugMatch | None:
        """Ingredients of a coded product, or ``None`` when the code is not in the vocabulary.

        ``system`` is ``"rxnorm"`` (ingredient RXCUI or a clinical-drug code from ``rxnorm_products.csv``),
        ``"dmd"`` (dm+d VMP/AMP id from ``dmd_products.csv``), ``"bnf"`` (a BNF presentation or chemical-substance
        code; the first 9 characters identify the chemical) or ``"atc"`` (a level-5 code held by exactly one
        drug). Any other system raises ``ValueError``.
        """
        system = system.strip().lower().replace("+", "")
        if system not in self._codes:
            raise ValueError(f"unsupported drug code system: {system!r} (use one of {sorted(self._codes)})")
        value = str(code).strip().upper() if system in {"bnf", "atc"} else str(code).strip()
        if system == "bnf":
            value = value[:9]
        ingredients = self._codes[system].get(value)
        if not ingredients:
            return None
        return DrugMatch(
            input=f"{system}:{code}",
            ingredients=tuple(sorted(ingredients)),
            matched=True,
            primary=ingredients[0],
        )

    def match_text(self, text: str | None) -> DrugMatch:
        """Ingredients named by a drug name, brand or product description.

        Handles generic, US and UK names, brands, salts ("Metoprolol succinate"), tall-man lettering
        ("amLODIPine"), RxNorm descriptions with several ingredients separated by " / ", UK compound names
        ("Co-codamol 30mg/500mg tablets") and brand packs ("Levora 0.15/30 28 Day Pack").
        """
        raw = text or ""
        tokens = _tokens(raw)
        hits = self._alias_hits(tokens)
        components = _components(tokens, hits)
        found: list[str] = []
        unmatched: list[str] = []
        for start, end in components:
            keys = [key for hit in hits if start <= hit.start < end for key in hit.keys]
            if keys:
                found.extend(keys)
            elif _names_something(tokens[start:end]):
                unmatched.append(" ".join(token for token in tokens[start:end] if token not in _SEPARATORS))
        if not found and not unmatched and raw.strip():
            unmatched.append(raw.strip())
        ordered = tuple(dict.fromkeys(found))
        return DrugMatch(
            input=raw,
            ingredients=tuple(sorted(ordered)),
            matched=bool(ordered) and not unmatched,
            unmatched=tuple(unmatched),
            route=infer_route(raw),
            primary=ordered[0] if ordered else None,
        )

    def match(self, text_or_code: str, system: str | None = None) -> DrugMatch:
        """Code lookup when ``system`` is given and knows the code, otherwise text matching."""
        if system and system.lower() not in {"text", ""}:
            coded = self.match_code(system, text_or_code)
            if coded is not None:
                return coded
        return self.match_text(text_or_code)

    def _alias_hits(self, tokens: list[str]) -> list[_AliasHit]:
        """Greedy longest-first matches of known names over the token list."""
        hits: list[_AliasHit] = []
        position = 0
        while position < len(tokens):
            for width in range(min(self._max_alias_words, len(tokens) - position), 0, -1):
                keys = self._aliases.get(tuple(tokens[position : position + width]))
                if keys:
                    hits.append(_AliasHit(position, position + width, keys))
                    position += width
                    break
            else:
                position += 1
        return hits


def _components(tokens: list[str], hits: list[_AliasHit]) -> list[tuple[int, int]]:
    """Split a description into ingredient components at separators that start a new drug name.

    A separator ("/", "+", ";", ",", "with", "and") splits when the next token is a word that is not a unit and
    the separator is not inside a matched name: "MG / Clavulanate" splits, "MG/ML", "0.15/30", "30mg/500mg" and
    "sacubitril/valsartan" (a known name) do not.
    """
    inside = {index for hit in hits for index in range(hit.start, hit.end)}
    bounds: list[tuple[int, int]] = []
    start = 0
    for index, token in enumerate(tokens):
        if token not in _SEPARATORS or index in inside:
            continue
        following = tokens[index + 1] if index + 1 < len(tokens) else ""
        if (
            following
            and following[0].isalpha()
            and following not in NOISE_WORDS
            and following not in _SEPARATORS
        ):
            bounds.append((start, index))
            start = index + 1
    bounds.append((start, len(tokens)))
    return [(begin, end) for begin, end in bounds if end > begin]


def _names_something(tokens: Iterable[str]) -> bool:
    """Whether a component has a word that could be a drug name (not a number, unit, form or code)."""
    for token in tokens:
        if token in _SEPARATORS or token in NOISE_WORDS or len(token) < 3:
            continue
        if any(character.isdigit() for character in token):
            continue
        return True
    return False


def infer_route(text: str) -> str | None:
    """Route of administration suggested by the form words of a product description, or ``None``."""
    words = normalise(text)
    for route, pattern in ROUTE_PATTERNS:
        if pattern.search(words):
            return route
    return None


# ----------------------------------------------------------------------------------------------------------------
# Drug vocabulary construction


def _read_yaml(path: Path) -> dict[str, Any]:
    return (
        yaml.load(path.read_text(encoding="utf-8"), Loader=_YAML_LOADER) or {}
    )  # a safe loader: plain data only


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def _parse_classes(doc: Mapping[str, Any]) -> dict[str, DrugClass]:
    classes: dict[str, DrugClass] = {}
    for key, entry in doc.items():
        if not isinstance(entry, Mapping) or "members" not in entry:
            raise ValueError(f"drug_classes.yaml: class {key!r} needs description, source and members")
        classes[key] = DrugClass(
            key=key,
            description=str(entry.get("description", "")),
            source=str(entry.get("source", "")),
            members=frozenset(entry.get("members") or ()),
        )
    return classes


def _parse_drugs(rows: list[dict[str, str]], classes: Mapping[str, DrugClass]) -> dict[str, Drug]:
    membership: dict[str, set[str]] = {}
    for drug_class in classes.values():
        for member in drug_class.members:
            membership.setdefault(member, set()).add(drug_class.key)
    drugs: dict[str, Drug] = {}
    for row in rows:
        key = row["key"].strip()
        if key in drugs:
            raise ValueError(f"drugs.csv: duplicate key {key!r}")
        drugs[key] = Drug(
            key=key,
            name=row["name"].strip(),
            synonyms=_split_values(row.get("synonyms")),
            brands=_split_values(row.get("brands")),
            bnf_section=row["bnf_section"].strip(),
            atc=row["atc"].strip(),
            rxnorm=row.get("rxnorm", "").strip() or None,
            acb=int(row.get("acb") or 0),
            classes=frozenset(membership.get(key, ())),
        )
    return drugs


def _check_class_members(classes: Mapping[str, DrugClass], drugs: Mapping[str, Drug]) -> None:
    unknown = {
        f"{drug_class.key}: {member}"
        for drug_class in classes.values()
        for member in drug_class.members
        if member not in drugs
    }
    if unknown:
        raise ValueError("drug_classes.yaml names unknown drug keys: " + ", ".join(sorted(unknown)))


def _build_aliases(
    drugs: Iterable[Drug], combinations: Iterable[tuple[str, tuple[str, ...]]]
) -> dict[tuple[str, ...], tuple[str, ...]]:
    """Name (as a word tuple) -> drug keys. A name shared by two single drugs is a data error."""
    aliases: dict[tuple[str, ...], tuple[str, ...]] = {}
    owner: dict[tuple[str, ...], str] = {}
    for drug in drugs:
        for name in (drug.key, drug.name, *drug.synonyms, *drug.brands):
            words = tuple(_tokens(name))
            if not words:
                continue
            if words in aliases and aliases[words] != (drug.key,):
                raise ValueError(f"drug name {name!r} belongs to both {owner[words]!r} and {drug.key!r}")
            aliases[words] = (drug.key,)
            owner[words] = drug.key
    known = {key for keys in aliases.values() for key in keys}
    for name, ingredients in combinations:
        missing = [key for key in ingredients if key not in known]
        if missing:
            raise ValueError(f"combinations.csv: {name!r} names unknown drug keys {missing}")
        words = tuple(_tokens(name))
        if words in aliases and set(aliases[words]) != set(ingredients):
            raise ValueError(f"combinations.csv: {name!r} is already the name of {aliases[words]}")
        aliases[words] = ingredients
    return aliases


def _build_code_tables(data_dir: Path, drugs: Mapping[str, Drug]) -> dict[str, dict[str, tuple[str, ...]]]:
    rxnorm = {drug.rxnorm: (drug.key,) for drug in drugs.values() if drug.rxnorm}
    for row in _read_csv(data_dir / "rxnorm_products.csv"):
        rxnorm.setdefault(row["code"].strip(), _split_ingredients(row["ingredients"]))
    dmd = {
        row["code"].strip(): _split_ingredients(row["ingredients"])
        for row in _read_csv(data_dir / "dmd_products.csv")
    }
    bnf = {
        row["code"].strip().upper(): _split_ingredients(row["ingredients"])
        for row in _read_csv(data_dir / "bnf_chemicals.csv")
    }
    atc_owners: dict[str, list[str]] = {}
    for drug in drugs.values():
        atc_owners.setdefault(drug.atc.upper(), []).append(drug.key)
    atc = {code: (keys[0],) for code, keys in atc_owners.items() if len(code) == 7 and len(keys) == 1}
    tables = {"rxnorm": rxnorm, "dmd": dmd, "bnf": bnf, "atc": atc}
    for system, table in tables.items():
        for code, ingredients in table.items():
            missing = [key for key in ingredients if key not in drugs]
            if missing or not ingredients:
                raise ValueError(f"{system} code {code} maps to unknown drug keys {missing}")
    return tables


@lru_cache(maxsize=4)
def _load_drug_vocabulary(data_dir: Path) -> DrugVocabulary:
    return DrugVocabulary.from_files(data_dir)


# ================================================================================================================
# Conditions


@dataclass(frozen=True)
class Condition:
    """A condition key with its SNOMED CT ids, synonyms and group memberships."""

    key: str
    term: str
    snomed_codes: tuple[str, ...]
    synonyms: tuple[str, ...]
    groups: frozenset[str]

    @property
    def is_ltc(self) -> bool:
        """Counted as a long-term condition for multimorbidity (group ``ltc``)."""
        return "ltc" in self.groups

    @property
    def is_mental_health(self) -> bool:
        """A mental health condition (Barnett et al. 2012 classification)."""
        return "mental_health" in self.groups


@dataclass(frozen=True)
class CmsCondition:
    """A Cambridge Multimorbidity Score condition and its general-outcome weight (Payne et al. CMAJ 2020)."""

    name: str
    weight: float
    condition_keys: frozenset[str]


@dataclass(frozen=True)
class EfiDeficit:
    """An electronic Frailty Index deficit (Clegg et al. Age Ageing 2016) and the inputs that evidence it."""

    name: str
    condition_keys: frozenset[str]
    other_inputs: tuple[str, ...] = ()


@dataclass(frozen=True)
class ConditionVocabulary:
    """Condition keys, SNOMED CT ids, synonyms and groups; CMS weights and eFI deficits.

    Build it with ``ConditionVocabulary.load()`` (cached per data directory).
    """

    conditions: Mapping[str, Condition]
    cms_conditions: tuple[CmsCondition, ...]
    cms_source: str
    efi_deficits: tuple[EfiDeficit, ...]
    efi_categories: tuple[tuple[str, float], ...]
    efi_source: str
    _by_code: Mapping[str, str] = field(repr=False, default_factory=dict)
    _by_name: Mapping[str, str] = field(repr=False, default_factory=dict)
    _groups: Mapping[str, frozenset[str]] = field(repr=False, default_factory=dict)

    @classmethod
    def load(cls, data_dir: Path | str | None = None) -> ConditionVocabulary:
        """The vocabulary built from ``clinical/data/conditions.yaml``; cached per process."""
        return _load_condition_vocabulary(Path(data_dir) if data_dir else DATA_DIR)

    @classmethod
    def from_file(cls, path: Path) -> ConditionVocabulary:
        """Parse and validate a conditions YAML document (uncached)."""
        doc = _read_yaml(path)
        conditions = _parse_conditions(doc.get("conditions") or {})
        by_code: dict[str, str] = {}
        by_name: dict[str, str] = {}
        for condition in conditions.values():
            for code in condition.snomed_codes:
                if code in by_code:
                    raise ValueError(
                        f"SNOMED CT id {code} is listed for {by_code[code]!r} and {condition.key!r}"
                    )
                by_code[code] = condition.key
            for name in (condition.key.replace("_", " "), condition.term, *condition.synonyms):
                words = _condition_words(name)
                if words and by_name.setdefault(words, condition.key) != condition.key:
                    raise ValueError(
                        f"condition name {name!r} belongs to {by_name[words]!r} and {condition.key!r}"
                    )
        groups: dict[str, set[str]] = {}
        for condition in conditions.values():
            for group in condition.groups:
                groups.setdefault(group, set()).add(condition.key)
        for group in list(groups):
            if group in conditions:
                groups[group].add(group)
        cms_doc = doc.get("cambridge_multimorbidity_score") or {}
        efi_doc = doc.get("electronic_frailty_index") or {}
        vocabulary = cls(
            conditions=conditions,
            cms_conditions=tuple(
                CmsCondition(name, float(entry["weight"]), frozenset(entry["condition_keys"]))
                for name, entry in (cms_doc.get("conditions") or {}).items()
            ),
            cms_source=str(cms_doc.get("source", "")),
            efi_deficits=tuple(
                EfiDeficit(
                    name, frozenset(entry.get("condition_keys") or ()), tuple(entry.get("other_inputs") or ())
                )
                for name, entry in (efi_doc.get("deficits") or {}).items()
            ),
            efi_categories=tuple(
                sorted(
                    ((name, float(bound)) for name, bound in (efi_doc.get("categories") or {}).items()),
                    key=lambda item: item[1],
                )
            ),
            efi_source=str(efi_doc.get("source", "")),
            _by_code=by_code,
            _by_name=by_name,
            _groups={group: frozenset(keys) for group, keys in groups.items()},
        )
        vocabulary._check_references()
        return vocabulary

    def _check_references(self) -> None:
        referenced = [key for item in self.cms_conditions for key in item.condition_keys]
        referenced += [key for item in self.efi_deficits for key in item.condition_keys]
        unknown = sorted({key for key in referenced if key not in self.conditions})
        if unknown:
            raise ValueError(f"conditions.yaml: CMS/eFI sections name unknown condition keys {unknown}")

    @property
    def keys(self) -> frozenset[str]:
        """Every condition key."""
        return frozenset(self.conditions)

    @property
    def group_keys(self) -> frozenset[str]:
        """Every group named by at least one condition."""
        return frozenset(self._groups)

    def condition(self, key: str) -> Condition:
        """The condition with this key; ``KeyError`` if unknown."""
        try:
            return self.conditions[key]
        except KeyError:
            raise KeyError(f"unknown condition key: {key!r}") from None

    def get(self, key: str) -> Condition | None:
        """The condition with this key, or ``None``."""
        return self.conditions.get(key)

    def match(self, name_or_snomed: str | int | None) -> Condition | None:
        """The condition a SNOMED CT id, key, term or synonym denotes, or ``None``.

        Terms are compared after normalisation and after dropping a trailing SNOMED semantic tag such as
        "(disorder)" or "(finding)", so Synthea descriptions match directly.
        """
        if name_or_snomed is None:
            return None
        value = str(name_or_snomed).strip()
        if value.isdigit():
            key = self._by_code.get(value)
            return self.conditions[key] if key else None
        if value in self.conditions:
            return self.conditions[value]
        key = self._by_name.get(_condition_words(value))
        return self.conditions[key] if key else None

    def in_group(self, group: str) -> frozenset[str]:
        """Condition keys in a group; a group that is also a condition key includes that key.

        A plain condition key with no members names just itself; anything else raises ``KeyError``.
        """
        if group in self._groups:
            return self._groups[group]
        if group in self.conditions:
            return frozenset((group,))
        raise KeyError(f"unknown condition group: {group!r}")

    @property
    def long_term_conditions(self) -> frozenset[str]:
        """Condition keys counted as long-term conditions."""
        return self.in_group("ltc")


def _condition_words(name: str) -> str:
    return normalise(_SNOMED_TAG_RE.sub("", name.strip()))


def _parse_conditions(doc: Mapping[str, Any]) -> dict[str, Condition]:
    conditions: dict[str, Condition] = {}
    for key, entry in doc.items():
        codes = tuple(str(code) for code in entry.get("snomed") or ())
        if not all(code.isdigit() for code in codes):
            raise ValueError(f"conditions.yaml: {key!r} has a SNOMED CT id that is not all digits")
        conditions[key] = Condition(
            key=key,
            term=str(entry["term"]),
            snomed_codes=codes,
            synonyms=tuple(str(name) for name in entry.get("synonyms") or ()),
            groups=frozenset(entry.get("groups") or ()),
        )
    return conditions


@lru_cache(maxsize=4)
def _load_condition_vocabulary(data_dir: Path) -> ConditionVocabulary:
    return ConditionVocabulary.from_file(data_dir / "conditions.yaml")
