"""Offline dinosaur-names sample: real dinosaur genus names from WordNet (Debian ``wordnet-base``), one a line.

The course's ``dinos.txt`` (about 1500 genus names) does not install offline, and no package on PyPI ships a
list of real dinosaur names. WordNet does, in a small way: the synsets under "dinosaur" (hyponyms, walked
transitively: stegosaur, tyrannosaur, ...) each belong to a genus synset ("genus Tyrannosaurus", their member
holonym), and the orders Ornithischia and Saurischia list their genera as members. The sample is those genus
names, plus the single-word capitalised taxa among the hyponyms' own words (Edmontonia), lower-cased,
deduplicated and sorted: 36 real names, the same bytes on every run. Common names (stegosaur), groups
(theropod, ornithischian) and binomials (Tyrannosaurus rex) are left out.
"""

from __future__ import annotations

from pathlib import Path

from components.errors import DataFormatError

WORDNET_NOUNS = Path("/usr/share/wordnet/data.noun")
ORDERS = ("order_Ornithischia", "order_Saurischia")


def read_synsets(path: Path = WORDNET_NOUNS) -> dict[str, tuple[list[str], list[tuple[str, str]]]]:
    """WordNet's noun synsets by offset: (words, [(pointer symbol, target offset)]) (wndb(5) data file)."""
    if not path.is_file():
        raise DataFormatError(f"{path} does not exist: install the Debian package wordnet-base (make system-deps)")
    synsets = {}
    for line in path.read_text(encoding="latin-1").splitlines():
        if line.startswith("  "):  # the licence header
            continue
        fields = line.split(" | ")[0].split()
        n_words = int(fields[3], 16)
        words = fields[4 : 4 + 2 * n_words : 2]
        at = 4 + 2 * n_words
        pointers = [(fields[at + 1 + 4 * j], fields[at + 2 + 4 * j]) for j in range(int(fields[at]))]
        synsets[fields[0]] = (words, pointers)
    return synsets


def _closure(synsets, start: list[str], symbol: str) -> set[str]:
    seen, stack = set(), list(start)
    while stack:
        for sym, target in synsets[stack.pop()][1]:
            if sym == symbol and target not in seen:
                seen.add(target)
                stack.append(target)
    return seen


def dinosaur_genera(path: Path = WORDNET_NOUNS) -> list[str]:
    synsets = read_synsets(path)
    with_word = lambda word: [o for o, (words, _) in synsets.items() if word in words]  # noqa: E731
    kinds = _closure(synsets, with_word("dinosaur"), "~")  # "~": hyponym
    genus_synsets = {t for o in kinds for sym, t in synsets[o][1] if sym == "#m"}  # "#m": member holonym
    genus_synsets |= _closure(synsets, [o for order in ORDERS for o in with_word(order)], "%m")  # members
    names = {w[len("genus_") :] for o in genus_synsets for w in synsets[o][0] if w.startswith("genus_")}
    names |= {w for o in kinds for w in synsets[o][0] if w.isalpha() and w[0].isupper()}
    return sorted({n.lower() for n in names if n.isalpha()})


def generate(out_dir: str | Path, file: str = "dinos.txt") -> dict[str, int]:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    names = dinosaur_genera()
    (out_dir / file).write_text("".join(n + "\n" for n in names), encoding="utf-8")
    return {"names": len(names)}
