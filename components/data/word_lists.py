"""The word lists word-debias works with, and a small analogy test set built from word pairs.

Definitional and equalize pairs follow Bolukbasi et al. 2016 (pairs written (male, female), so the bias
direction points from the first word to the second, like the course's g = e_woman - e_man). Occupations are
the gender-neutral words whose projection on g the project measures before and after debiasing.

The analogy set has the categories of the Google analogy test set (questions-words.txt, which ships with
gensim and word2vec): every ordered combination of two pairs of a category is a question a:b :: c:d.
"""

from __future__ import annotations

from itertools import permutations

DEFINITIONAL_PAIRS = (
    ("man", "woman"), ("boy", "girl"), ("he", "she"), ("father", "mother"), ("son", "daughter"),
    ("guy", "gal"), ("male", "female"), ("his", "her"), ("himself", "herself"), ("john", "mary"),
)

EQUALIZE_PAIRS = (
    ("actor", "actress"), ("boy", "girl"), ("boyfriend", "girlfriend"), ("brother", "sister"),
    ("businessman", "businesswoman"), ("chairman", "chairwoman"), ("congressman", "congresswoman"),
    ("dad", "mom"), ("father", "mother"), ("gentleman", "lady"), ("grandfather", "grandmother"),
    ("grandson", "granddaughter"), ("he", "she"), ("himself", "herself"), ("his", "her"), ("husband", "wife"),
    ("king", "queen"), ("male", "female"), ("man", "woman"), ("men", "women"), ("nephew", "niece"),
    ("prince", "princess"), ("son", "daughter"), ("spokesman", "spokeswoman"), ("uncle", "aunt"),
)

# Words that carry gender by definition; they are not neutralized (besides every word of the pairs above).
GENDER_SPECIFIC = (
    "boys", "girls", "brothers", "sisters", "sons", "daughters", "fathers", "mothers", "kings", "queens",
    "husbands", "wives", "mr", "mrs", "ms", "sir", "madam", "lady", "ladies", "gentlemen", "bride", "groom",
    "widow", "widower", "nun", "monk", "priest", "duke", "duchess", "lord", "heroine", "hero", "fiance",
    "fiancee", "maternity", "paternity", "pregnant", "pregnancy", "motherhood", "fatherhood", "feminine",
    "masculine", "females", "males", "womens", "mens", "grandma", "grandpa", "mama", "papa", "daddy", "mommy",
    "stepfather", "stepmother", "fraternity", "sorority", "boyhood", "girlhood", "lesbian", "gay", "sperm",
    "ovarian", "prostate", "testosterone", "estrogen", "uterus", "womb", "beard", "mustache", "bikini",
    "countess", "count", "emperor", "empress", "baron", "baroness", "princes", "princesses", "nephews", "nieces",
)

OCCUPATIONS = (
    "nurse", "receptionist", "homemaker", "secretary", "librarian", "hairdresser", "nanny", "housekeeper",
    "stylist", "dancer", "designer", "teacher", "doctor", "engineer", "programmer", "architect", "scientist",
    "pilot", "captain", "surgeon", "lawyer", "carpenter", "plumber", "mechanic", "farmer", "soldier",
    "warrior", "manager", "boss", "philosopher", "professor", "banker", "chef", "writer", "artist", "singer",
    "photographer", "journalist", "accountant", "physician", "pharmacist", "dentist", "detective",
    "firefighter", "janitor", "cashier", "clerk", "economist", "magician", "sailor",
)

ANALOGY_PAIRS = {
    "capital-country": (
        ("athens", "greece"), ("baghdad", "iraq"), ("bangkok", "thailand"), ("beijing", "china"),
        ("berlin", "germany"), ("cairo", "egypt"), ("canberra", "australia"), ("havana", "cuba"),
        ("helsinki", "finland"), ("islamabad", "pakistan"), ("kabul", "afghanistan"), ("london", "england"),
        ("madrid", "spain"), ("moscow", "russia"), ("nairobi", "kenya"), ("oslo", "norway"), ("ottawa", "canada"),
        ("paris", "france"), ("rome", "italy"), ("stockholm", "sweden"), ("tehran", "iran"), ("tokyo", "japan"),
        ("hanoi", "vietnam"), ("lisbon", "portugal"), ("dublin", "ireland"),
    ),
    "family": (
        ("boy", "girl"), ("brother", "sister"), ("dad", "mom"), ("father", "mother"), ("grandfather", "grandmother"),
        ("grandson", "granddaughter"), ("he", "she"), ("his", "her"), ("husband", "wife"), ("king", "queen"),
        ("man", "woman"), ("nephew", "niece"), ("prince", "princess"), ("son", "daughter"), ("uncle", "aunt"),
        ("sons", "daughters"), ("brothers", "sisters"), ("kings", "queens"), ("fathers", "mothers"),
        ("groom", "bride"),
    ),
    "comparative": (
        ("bad", "worse"), ("big", "bigger"), ("cheap", "cheaper"), ("cold", "colder"), ("easy", "easier"),
        ("fast", "faster"), ("good", "better"), ("great", "greater"), ("hard", "harder"), ("high", "higher"),
        ("large", "larger"), ("long", "longer"), ("low", "lower"), ("old", "older"), ("quick", "quicker"),
        ("safe", "safer"), ("short", "shorter"), ("small", "smaller"), ("strong", "stronger"), ("young", "younger"),
    ),
    "superlative": (
        ("bad", "worst"), ("big", "biggest"), ("cheap", "cheapest"), ("cold", "coldest"), ("easy", "easiest"),
        ("fast", "fastest"), ("good", "best"), ("great", "greatest"), ("high", "highest"), ("large", "largest"),
        ("long", "longest"), ("low", "lowest"), ("old", "oldest"), ("small", "smallest"), ("strong", "strongest"),
        ("young", "youngest"), ("hot", "hottest"), ("rich", "richest"), ("tall", "tallest"), ("wide", "widest"),
    ),
    "plural-nouns": (
        ("bird", "birds"), ("building", "buildings"), ("car", "cars"), ("child", "children"), ("city", "cities"),
        ("country", "countries"), ("dog", "dogs"), ("eye", "eyes"), ("family", "families"), ("hand", "hands"),
        ("horse", "horses"), ("house", "houses"), ("man", "men"), ("woman", "women"), ("night", "nights"),
        ("road", "roads"), ("school", "schools"), ("song", "songs"), ("tree", "trees"), ("week", "weeks"),
    ),
    "past-tense": (
        ("dancing", "danced"), ("decreasing", "decreased"), ("describing", "described"), ("enhancing", "enhanced"),
        ("falling", "fell"), ("feeding", "fed"), ("flying", "flew"), ("going", "went"), ("hiding", "hid"),
        ("hitting", "hit"), ("jumping", "jumped"), ("knowing", "knew"), ("listening", "listened"),
        ("looking", "looked"), ("moving", "moved"), ("playing", "played"), ("reading", "read"), ("running", "ran"),
        ("saying", "said"), ("selling", "sold"), ("singing", "sang"), ("sitting", "sat"), ("swimming", "swam"),
        ("taking", "took"), ("thinking", "thought"), ("walking", "walked"), ("writing", "wrote"),
    ),
    "nationality-adjective": (
        ("australia", "australian"), ("brazil", "brazilian"), ("china", "chinese"), ("egypt", "egyptian"),
        ("england", "english"), ("france", "french"), ("germany", "german"), ("greece", "greek"), ("india", "indian"),
        ("ireland", "irish"), ("italy", "italian"), ("japan", "japanese"), ("mexico", "mexican"),
        ("poland", "polish"), ("portugal", "portuguese"), ("russia", "russian"), ("spain", "spanish"),
        ("sweden", "swedish"), ("switzerland", "swiss"), ("thailand", "thai"),
    ),
}


def analogy_questions() -> list[tuple[str, str, str, str, str]]:
    """(category, a, b, c, d) for every ordered pair of distinct pairs within a category."""
    return [(category, a, b, c, d) for category, pairs in ANALOGY_PAIRS.items()
            for (a, b), (c, d) in permutations(pairs, 2)]


def all_words() -> list[str]:
    """Every word these lists use, in a stable order (the sample's GloVe file must contain them)."""
    words = [w for pair in DEFINITIONAL_PAIRS + EQUALIZE_PAIRS for w in pair]
    words += list(GENDER_SPECIFIC) + list(OCCUPATIONS)
    words += [w for pairs in ANALOGY_PAIRS.values() for pair in pairs for w in pair]
    return list(dict.fromkeys(words))
