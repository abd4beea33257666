"""Melodies in their real format: a folder of MIDI files (``*.mid`` / ``*.midi``), e.g. jazz solos such as
the course's ``original_metheny.mid``.

Each file is read with music21's low-level MIDI reader (no score conversion, so any format 0/1 file works):
its first track with notes (drums on channel 10 ignored) is the melody, made one voice at a time by keeping
the highest note of each onset (the "skyline"), and turned into tokens ``"<pitch>/<quarters>"`` or
``"R/<quarters>"`` on a grid (a sixteenth by default), e.g. ``"67/0.5 R/0.25 65/1"``. A melody may be moved
to a common key (C major / A minor, by the Krumhansl-Schmuckler key profiles) so that one model sees every
piece in the same key.

The offline sample is Bach, not jazz: no jazz corpus installs offline, and the chorales bundled with the
``music21`` package are real melodies. Their soprano lines (read from the corpus's MusicXML) are written as
one-track MIDI files by ``write_midi`` below, byte for byte the same on every run.

Validation describes the folder as a table, one row per file, and runs a GX suite over it, so a bad file
is reported by its name (with the reader's error where it did not parse).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from components.data.formats.images import MissingDataError
from components.errors import DataFormatError
from components.validation.expectations import DataValidationError, ValidationReport, run_suite

SUFFIXES = (".mid", ".midi")
REST = "R"
TICKS_PER_QUARTER = 480
DRUM_CHANNEL = 10
# Krumhansl-Kessler key profiles (C major, C minor): how well each pitch class fits a key.
MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])


@dataclass(frozen=True)
class Note:
    pitch: int  # MIDI number, 60 = middle C
    onset: float  # in quarter notes
    duration: float


class MidiReadError(DataFormatError):
    pass


def midi_files(root: str | Path) -> list[Path]:
    root = Path(root)
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in SUFFIXES and p.is_file()) if root.is_dir() else []
    if not files:
        raise MissingDataError(
            f"no MIDI files (*.mid, *.midi) under {root}: run `dlfolio data jazz-lstm` for the "
            "offline sample, or put your MIDI solos there"
        )
    return files


def read_melody(path: str | Path) -> list[Note]:
    """The melody of a MIDI file: its first track with notes, highest note per onset, each note cut at the next
    onset. Raises MidiReadError naming the file when it is not MIDI."""
    from music21 import midi

    path = Path(path)
    mf = midi.MidiFile()
    try:
        mf.readstr(path.read_bytes())
    except Exception as exc:  # music21 raises MidiException, IndexError, ... on broken bytes
        raise MidiReadError(f"{path.name}: not a readable MIDI file ({type(exc).__name__}: {exc})") from None
    if mf.ticksPerSecond:
        raise MidiReadError(f"{path.name}: SMPTE time division (ticks per second) is not supported")
    for track in mf.tracks:
        notes = _track_notes(track, mf.ticksPerQuarterNote)
        if notes:
            return _skyline(notes)
    return []


def _track_notes(track, ticks_per_quarter: int) -> list[Note]:
    now, sounding, notes = 0, {}, []
    for event in track.events:
        if event.isDeltaTime():
            now += event.time
        elif event.channel == DRUM_CHANNEL:
            continue
        elif event.isNoteOn():
            sounding.setdefault((event.channel, event.pitch), now)
        elif event.isNoteOff() and (event.channel, event.pitch) in sounding:
            start = sounding.pop((event.channel, event.pitch))
            notes.append(Note(event.pitch, start / ticks_per_quarter, (now - start) / ticks_per_quarter))
    return notes


def _skyline(notes: list[Note]) -> list[Note]:
    by_onset = {}
    for n in sorted(notes, key=lambda n: (n.onset, -n.pitch)):
        by_onset.setdefault(n.onset, n)
    top = list(by_onset.values())
    cut = [Note(n.pitch, n.onset, min(n.duration, nxt.onset - n.onset)) for n, nxt in zip(top, top[1:])]
    return cut + top[-1:]


def transpose_to_c(notes: list[Note]) -> list[Note]:
    """Move the melody so its estimated key is C major or A minor, by at most a tritone."""
    hist = np.zeros(12)
    for n in notes:
        hist[n.pitch % 12] += n.duration
    scores = [
        (np.corrcoef(hist, np.roll(profile, tonic))[0, 1], tonic, target)
        for profile, target in ((MAJOR, 0), (MINOR, 9))
        for tonic in range(12)
    ]
    _, tonic, target = max(scores, key=lambda s: (np.nan_to_num(s[0], nan=-1.0), -s[1], s[2]))
    shift = (target - tonic + 6) % 12 - 6
    return [Note(min(127, max(0, n.pitch + shift)), n.onset, n.duration) for n in notes]


def _fmt(quarters: float) -> str:
    return f"{quarters:g}"


def melody_tokens(notes: list[Note], grid: float = 0.25, max_steps: int = 16) -> list[str]:
    """Notes and the rests between them on a grid of ``grid`` quarters; a duration is at least one step and at
    most ``max_steps`` (a long rest or held note is cut there)."""
    tokens, end = [], None
    for n in notes:
        start = round(n.onset / grid)
        if end is not None and start - end >= 1:
            tokens.append(f"{REST}/{_fmt(min(start - end, max_steps) * grid)}")
        steps = min(max(1, round((n.onset + n.duration) / grid) - start), max_steps)
        tokens.append(f"{n.pitch}/{_fmt(steps * grid)}")
        end = start + steps
    return tokens


def parse_token(token: str) -> tuple[int | None, float]:
    """``"67/0.5"`` -> (67, 0.5); ``"R/1"`` -> (None, 1.0). Raises ValueError on anything else."""
    pitch, sep, quarters = token.partition("/")
    if not sep:
        raise ValueError(f"token {token!r} is not <pitch>/<quarters> or R/<quarters>")
    duration = float(quarters)
    if duration <= 0 or (pitch != REST and not 0 <= int(pitch) <= 127):
        raise ValueError(f"token {token!r}: pitch must be 0-127 or R, duration positive")
    return (None if pitch == REST else int(pitch)), duration


def token_notes(tokens: list[str]) -> list[Note]:
    """The notes the tokens play, rests as gaps; tokens that are not notes or rests (e.g. ``<unk>``) are skipped."""
    now, notes = 0.0, []
    for token in tokens:
        try:
            pitch, quarters = parse_token(token)
        except ValueError:
            continue
        if pitch is not None:
            notes.append(Note(pitch, now, quarters))
        now += quarters
    return notes


def write_midi(tokens: list[str], path: str | Path | None = None, bpm: float = 100.0) -> bytes:
    """A one-track format-1 MIDI file of ``token_notes(tokens)``; returns its bytes and writes them to ``path``
    if given."""
    from music21 import midi

    track, now = midi.MidiTrack(1), 0  # now: ticks of the last event written

    def add(event_type, at: int, **fields) -> None:
        nonlocal now
        event = midi.MidiEvent(track, type=event_type)
        for key, value in fields.items():
            setattr(event, key, value)
        track.events += [midi.DeltaTime(track, time=at - now), event]
        now = at

    ticks = lambda quarters: round(quarters * TICKS_PER_QUARTER)  # noqa: E731
    add(midi.MetaEvents.SET_TEMPO, 0, data=midi.putNumber(round(60_000_000 / bpm), 3))
    for n in token_notes(tokens):
        add(midi.ChannelVoiceMessages.NOTE_ON, ticks(n.onset), pitch=n.pitch, velocity=90)
        add(midi.ChannelVoiceMessages.NOTE_OFF, ticks(n.onset + n.duration), pitch=n.pitch, velocity=0)
    add(midi.MetaEvents.END_OF_TRACK, now, data=b"")
    mf = midi.MidiFile()
    mf.ticksPerQuarterNote = TICKS_PER_QUARTER
    mf.tracks = [track]
    data = mf.writestr()
    if path is not None:
        Path(path).write_bytes(data)
    return data


# --- the offline sample -----------------------------------------------------------------------------------


STEPS = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}


def musicxml_part(path: Path, part_name: str = "soprano") -> list[Note]:
    """The notes of the first part whose name starts with ``part_name`` in a MusicXML file (``.mxl``
    compressed or plain), ties merged, grace notes dropped; [] without such a part. A direct read of the
    XML: music21's full score parser gives the same notes for the chorales, ten times slower."""
    import xml.etree.ElementTree as ET
    import zipfile
    from fractions import Fraction

    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            root = ET.fromstring(
                z.read(
                    next(n for n in z.namelist() if n.endswith((".xml", ".musicxml")) and not n.startswith("META-INF"))
                )
            )
    else:
        root = ET.parse(path).getroot()
    ids = [
        p.get("id")
        for p in root.iter("score-part")
        if (p.findtext("part-name") or "").strip().lower().startswith(part_name)
    ]
    part = next((p for p in root.iter("part") if ids and p.get("id") == ids[0]), None)
    if part is None:
        return []
    notes, now, onset, divisions = [], Fraction(0), Fraction(0), 1
    for element in part.iter():
        if element.tag == "divisions":
            divisions = int(element.text)
        elif element.tag in ("backup", "forward"):
            now += Fraction(int(element.findtext("duration")), divisions) * (-1 if element.tag == "backup" else 1)
        elif element.tag == "note" and element.find("grace") is None:
            duration = Fraction(int(element.findtext("duration")), divisions)
            if element.find("chord") is None:
                onset, now = now, now + duration
            pitch = element.find("pitch")
            if pitch is None:
                continue
            alter = int(float(pitch.findtext("alter") or 0))
            midi = 12 * (int(pitch.findtext("octave")) + 1) + STEPS[pitch.findtext("step")] + alter
            tied = [i for i, n in enumerate(notes) if n.pitch == midi and n.onset + n.duration == onset]
            if any(t.get("type") == "stop" for t in element.findall("tie")) and tied:
                notes[tied[-1]] = Note(midi, notes[tied[-1]].onset, notes[tied[-1]].duration + duration)
            else:
                notes.append(Note(midi, onset, duration))
    return _skyline([Note(n.pitch, float(n.onset), float(n.duration)) for n in notes])


def generate(out_dir: str | Path, count: int = 300) -> dict[str, int]:
    """The soprano lines of the first ``count`` Bach chorales of music21's corpus (by file name), one MIDI file
    each, on the sixteenth grid ``melody_tokens`` uses, so reading a file back gives the same tokens."""
    from music21 import corpus

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written, notes = 0, 0
    for path in sorted(corpus.getComposer("bach", fileExtensions=("mxl",)), key=lambda p: p.name):
        if written == count:
            break
        tokens = melody_tokens(musicxml_part(path))
        if len(tokens) < 16:
            continue
        write_midi(tokens, out_dir / f"{path.stem}.mid")
        written += 1
        notes += sum(not t.startswith(REST) for t in tokens)
    (out_dir / "SOURCE.txt").write_text(
        "Soprano lines of Bach chorales from the music21 corpus (BSD-licensed package), written as MIDI by\n"
        "components/data/formats/midi_melodies.py. Bach, not jazz: no jazz corpus installs offline.\n"
    )
    return {"files": written, "notes": notes}


# --- validation -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MelodyRules:
    min_notes: int = 8
    min_pitch: int = 0
    max_pitch: int = 127
    min_files: int = 1


def melody_table(root: str | Path) -> tuple[pd.DataFrame, dict[str, list[Note]]]:
    """One row per MIDI file: whether it parsed (and why not), its melody's note count, pitch range and
    shortest note; and the melodies themselves by file."""
    root = Path(root)
    rows, melodies = [], {}
    for path in midi_files(root):
        name = path.relative_to(root).as_posix()
        try:
            notes = read_melody(path)
        except MidiReadError as exc:
            rows.append({"file": name, "parsed": False, "error": str(exc), "notes": 0})
            continue
        melodies[name] = notes
        rows.append(
            {
                "file": name,
                "parsed": True,
                "error": "",
                "notes": len(notes),
                "min_pitch": min((n.pitch for n in notes), default=None),
                "max_pitch": max((n.pitch for n in notes), default=None),
                "min_duration": min((n.duration for n in notes), default=None),
            }
        )
    columns = ["file", "parsed", "error", "notes", "min_pitch", "max_pitch", "min_duration"]
    return pd.DataFrame(rows, columns=columns), melodies


def melody_expectations(rules: MelodyRules) -> list:
    import great_expectations as gx

    E = gx.expectations
    return [
        E.ExpectTableRowCountToBeBetween(
            min_value=rules.min_files, meta={"explain": f"at least {rules.min_files} MIDI files"}
        ),
        E.ExpectColumnValuesToBeInSet(column="parsed", value_set=[True], meta={"explain": "file must parse as MIDI"}),
        E.ExpectColumnValuesToBeBetween(
            column="notes", min_value=rules.min_notes, meta={"explain": f"a melody of at least {rules.min_notes} notes"}
        ),
        E.ExpectColumnValuesToBeBetween(
            column="min_pitch",
            min_value=rules.min_pitch,
            meta={"explain": f"pitches in [{rules.min_pitch}, {rules.max_pitch}]"},
        ),
        E.ExpectColumnValuesToBeBetween(
            column="max_pitch",
            max_value=rules.max_pitch,
            meta={"explain": f"pitches in [{rules.min_pitch}, {rules.max_pitch}]"},
        ),
        E.ExpectColumnValuesToBeBetween(
            column="min_duration", min_value=0, strict_min=True, meta={"explain": "every note lasts longer than zero"}
        ),
    ]


def validate_melodies(root: str | Path, rules: MelodyRules) -> tuple[ValidationReport, dict[str, list[Note]]]:
    """Read and validate every MIDI file under ``root``; returns the report and the melodies by file. Raises
    DataValidationError naming the failing files."""
    table, melodies = melody_table(root)
    outcomes = run_suite(table, melody_expectations(rules), name="midi-melodies", id_column="file")
    errors = dict(zip(table["file"], table["error"]))
    for o in outcomes:  # a file that did not parse says why next to its name
        o.failing = [f"{f} ({errors[f]})" if errors.get(f) else f for f in o.failing]
    report = ValidationReport(str(root), outcomes, len(table))
    if not report.success:
        raise DataValidationError(report)
    return report, melodies
