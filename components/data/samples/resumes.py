"""The ner-resumes offline sample: GENERATED resumes with exact entity spans, not real ones.

Each resume is written piece by piece from templates, so every entity's character span is known exactly:
NAME (real first and last names of the 1990 US Census lists in the ``names`` package), EMAIL and PHONE
(generated from the name and random digits), SKILL, COMPANY, DEGREE, COLLEGE (word lists below; college cities
partly from components/data/word_lists.py's capitals) and DATE (five formats). The templates vary the header,
the section headings and their order, the entry layouts, the list separators, and add noise: blank lines,
extra spaces, upper-cased names, filler sentences and sections without entities.

The test split is built so that memorising the training resumes is not enough: its first and last names,
company words, college cities, a fifth of the skills and of the degree fields never occur in training
(every fifth item of each list is held out), and one header and one entry layout appear only in test.
The bytes are the same on every run (seeded generators, sorted source lists).
"""

from __future__ import annotations

import random
from pathlib import Path

from components.data.formats.resume_jsonl import Document, Span, write_jsonl
from components.data.word_lists import ANALOGY_PAIRS

# fmt: off
SKILLS = (
    "Python", "Java", "JavaScript", "TypeScript", "C++", "C#", "Go", "Rust", "Scala", "Kotlin", "Swift", "Ruby",
    "PHP", "SQL", "PostgreSQL", "MySQL", "MongoDB", "Redis", "Cassandra", "Elasticsearch", "Kafka", "Spark",
    "Hadoop", "Airflow", "Docker", "Kubernetes", "Terraform", "Ansible", "Jenkins", "Git", "Linux", "Bash",
    "AWS", "Azure", "Google Cloud", "React", "Angular", "Vue.js", "Node.js", "Django", "Flask", "FastAPI",
    "Spring Boot", "GraphQL", "REST APIs", "HTML", "CSS", "Tableau", "Power BI", "Excel", "pandas", "NumPy",
    "scikit-learn", "PyTorch", "TensorFlow", "Keras", "machine learning", "deep learning",
    "natural language processing", "computer vision", "data analysis", "statistics", "A/B testing",
    "project management", "Agile", "Scrum", "JIRA", "SAP", "Salesforce", "MATLAB", "R", "SAS", "Hive",
    "Snowflake", "dbt", "Figma", "Photoshop", "unit testing", "CI/CD", "microservices", "networking",
    "cybersecurity", "technical writing", "public speaking", "negotiation", "accounting", "budgeting",
)
COMPANY_WORDS = (
    "Apex", "Blue", "Bright", "Cedar", "Cobalt", "Crimson", "Delta", "Eagle", "Echo", "Emerald", "Falcon",
    "Frontier", "Global", "Granite", "Harbor", "Horizon", "Iron", "Jade", "Keystone", "Lumen", "Maple",
    "Meridian", "Nimbus", "North", "Nova", "Oak", "Omega", "Orbit", "Pacific", "Peak", "Pine", "Pioneer",
    "Prism", "Quantum", "Radiant", "Red", "River", "Sage", "Silver", "Solar", "Summit", "Terra", "Titan",
    "Union", "Vector", "Vertex", "Vista", "Willow", "Zenith", "Atlas", "Beacon", "Citadel", "Dynamo",
    "Evergreen", "Fusion", "Glacier", "Helix", "Ionic", "Juniper", "Kestrel",
)
COMPANY_SUFFIXES = (
    "Systems", "Labs", "Technologies", "Solutions", "Group", "Analytics", "Software", "Networks", "Consulting",
    "Partners", "Industries", "Health", "Capital", "Logistics", "Media", "Dynamics", "Inc", "Corp", "LLC", "Ltd",
)
US_CITIES = (
    "Austin", "Boston", "Chicago", "Dallas", "Denver", "Detroit", "Houston", "Phoenix", "Portland", "Seattle",
    "Atlanta", "Miami", "Orlando", "Memphis", "Nashville", "Columbus", "Cleveland", "Pittsburgh", "Baltimore",
    "Richmond", "Raleigh", "Charlotte", "Tampa", "Omaha", "Tulsa", "Albany", "Buffalo", "Rochester", "Dayton",
    "Toledo", "Madison", "Milwaukee", "Minneapolis", "Kansas City", "St. Louis", "Salt Lake City", "San Diego",
    "San Jose", "Sacramento", "Fresno",
)
FIELDS = (
    "Computer Science", "Electrical Engineering", "Mechanical Engineering", "Information Technology",
    "Mathematics", "Statistics", "Physics", "Economics", "Finance", "Business Administration", "Marketing",
    "Data Science", "Chemistry", "Biology", "Psychology", "Civil Engineering", "Accounting", "Software Engineering",
    "Information Systems", "Operations Research",
)
DEGREES = (
    "Bachelor of Science in {f}", "Bachelor of Arts in {f}", "Master of Science in {f}", "B.Sc. {f}",
    "M.Sc. {f}", "B.Tech in {f}", "M.Tech in {f}", "Ph.D. in {f}", "Associate Degree in {f}", "BS in {f}",
    "MS in {f}", "MBA", "Master of Business Administration", "B.E. {f}",
)
TITLES = (
    "Software Engineer", "Senior Software Engineer", "Data Analyst", "Data Scientist", "Product Manager",
    "Project Manager", "DevOps Engineer", "Business Analyst", "QA Engineer", "Machine Learning Engineer",
    "Frontend Developer", "Backend Developer", "Systems Administrator", "Consultant", "Intern", "Team Lead",
    "Financial Analyst", "Marketing Associate", "Research Assistant", "Technical Writer",
)
# fmt: on
MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)  # fmt: skip
DOMAINS = ("gmail.com", "yahoo.com", "outlook.com", "hotmail.com", "mail.com", "proton.me")
FILLER = (
    "References available upon request.",
    "Willing to relocate.",
    "Available to start immediately.",
    "Open to remote and hybrid roles.",
    "Hobbies: running, chess and photography.",
    "Languages: English (native), Spanish (fluent).",
    "Volunteer at the local food bank on weekends.",
)
HEADINGS = {
    "experience": ("EXPERIENCE", "Work Experience", "Professional Experience", "Employment History", "WORK HISTORY"),
    "education": ("EDUCATION", "Education", "Academic Background", "Qualifications", "EDUCATION & TRAINING"),
    "skills": ("SKILLS", "Technical Skills", "Key Skills", "Core Competencies", "Skills & Tools"),
    "summary": ("SUMMARY", "Profile", "Professional Summary", "About Me", "OBJECTIVE"),
}
HEADERS = 5  # header layouts 0-3 in both splits, 4 in test only
JOB_LAYOUTS = 4  # entry layouts 0-2 in both splits, 3 in test only


def _census(file: str, limit: int) -> list[str]:
    import names

    lines = (Path(names.__file__).parent / file).read_text().splitlines()
    return [line.split()[0].title() for line in lines[:limit] if line.strip()]


def _halves(items, test: bool) -> list:
    """Every fifth item (sorted) for the test split, the others for training."""
    ordered = sorted(dict.fromkeys(items))
    return [x for i, x in enumerate(ordered) if (i % 5 == 0) == test]


class Pools:
    def __init__(self, test: bool):
        self.test = test
        self.first = _halves(_census("dist.male.first", 400) + _census("dist.female.first", 600), test)
        self.last = _halves(_census("dist.all.last", 2000), test)
        capitals = [c.title() for c, _ in ANALOGY_PAIRS["capital-country"]]
        self.cities = _halves(list(US_CITIES) + capitals, test)
        self.company_words = _halves(COMPANY_WORDS, test)
        # test: the held-out fifth of the skills and fields mixed with known ones, as a new resume would have them
        self.skills = _halves(SKILLS, test) + (_halves(SKILLS, False)[:30] if test else [])
        self.fields = _halves(FIELDS, test) + (_halves(FIELDS, False)[:6] if test else [])


class Writer:
    """A resume's text, built piece by piece, with the span of every labelled piece."""

    def __init__(self):
        self.parts: list[str] = []
        self.length = 0
        self.spans: list[Span] = []

    def add(self, text: str, label: str | None = None) -> Writer:
        if label is not None:
            self.spans.append(Span(self.length, self.length + len(text), label))
        self.parts.append(text)
        self.length += len(text)
        return self

    def document(self) -> Document:
        return Document("".join(self.parts), self.spans)


class ResumeGenerator:
    def __init__(self, rng: random.Random, pools: Pools):
        self.rng, self.p = rng, pools

    def pick(self, items):
        return self.rng.choice(items)

    def date(self) -> str:
        year, month = self.rng.randint(1995, 2024), self.rng.randint(1, 12)
        form = self.rng.randrange(5)
        if form == 0:
            return f"{MONTHS[month - 1][:3]} {year}"
        if form == 1:
            return f"{MONTHS[month - 1]} {year}"
        if form == 2:
            return f"{month:02d}/{year}"
        if form == 3:
            return f"{year}-{month:02d}"
        return str(year)

    def company(self) -> str:
        form = self.rng.randrange(4)
        if form == 0:
            return f"{self.pick(self.p.company_words)} {self.pick(COMPANY_SUFFIXES)}"
        if form == 1:
            return f"{self.pick(self.p.last)} {self.pick(COMPANY_SUFFIXES)}"
        if form == 2:
            return f"{self.pick(self.p.last)} & {self.pick(self.p.last)}"
        return f"{self.pick(self.p.company_words)}{self.pick(self.p.company_words).lower()} {self.pick(('Inc', 'Ltd'))}"

    def college(self) -> str:
        city = self.pick(self.p.cities)
        form = self.rng.randrange(5)
        return (
            f"University of {city}",
            f"{city} State University",
            f"{self.pick(self.p.last)} College",
            f"{city} Institute of Technology",
            f"{self.pick(self.p.last)} University",
        )[form]

    def degree(self) -> str:
        return self.pick(DEGREES).format(f=self.pick(self.p.fields))

    def phone(self) -> str:
        d = [self.rng.randrange(10) for _ in range(10)]
        a, b, c = "".join(map(str, d[:3])), "".join(map(str, d[3:6])), "".join(map(str, d[6:]))
        return self.pick(
            (f"({a}) {b}-{c}", f"{a}-{b}-{c}", f"+1 {a} {b} {c}", f"{a}.{b}.{c}", f"+44 {a}{b[0]} {b[1:]}{c}")
        )

    def email(self, first: str, last: str) -> str:
        f, la = first.lower(), last.lower()
        user = self.pick((f"{f}.{la}", f"{f[0]}{la}", f"{f}{la}{self.rng.randint(1, 99)}", f"{f}_{la}", f"{la}.{f}"))
        return f"{user}@{self.pick(DOMAINS)}"

    # --- sections ----------------------------------------------------------------------------------------------

    def header(self, w: Writer, name: str, email: str, phone: str, layout: int) -> None:
        city = self.pick(self.p.cities)
        if layout == 0:
            w.add(name, "NAME").add("\n").add(email, "EMAIL").add(" | ").add(phone, "PHONE").add(f"\n{city}\n")
        elif layout == 1:
            w.add("Name: ").add(name, "NAME").add("\nEmail: ").add(email, "EMAIL").add("\nPhone: ")
            w.add(phone, "PHONE").add("\n")
        elif layout == 2:
            w.add(name, "NAME").add(f", {city}\nContact: ").add(phone, "PHONE").add(", ").add(email, "EMAIL").add("\n")
        elif layout == 3:
            w.add("Curriculum Vitae\n\n").add(name, "NAME").add("\n").add(phone, "PHONE").add("\n")
            w.add(email, "EMAIL").add("\n")
        else:  # test only
            w.add("RESUME OF ").add(name, "NAME").add("\nMobile ").add(phone, "PHONE").add(" · Mail ")
            w.add(email, "EMAIL").add(f" · {city}\n")

    def heading(self, w: Writer, section: str) -> None:
        text = self.pick(HEADINGS[section])
        w.add("\n" * self.rng.randint(1, 2) + (text + ":" if self.rng.random() < 0.3 else text) + "\n")

    def summary(self, w: Writer, title: str) -> None:
        self.heading(w, "summary")
        form = self.rng.randrange(3)
        if form == 0:
            w.add(f"{title} with {self.rng.randint(2, 15)} years of experience in ")
            w.add(self.pick(self.p.skills), "SKILL").add(" and ").add(self.pick(self.p.skills), "SKILL").add(".\n")
        elif form == 1:
            w.add(f"Motivated {title.lower()} based in {self.pick(self.p.cities)}, seeking a challenging role.\n")
        else:
            w.add(f"Results-driven {title.lower()} who enjoys working with ").add(self.pick(self.p.skills), "SKILL")
            w.add(" on large teams.\n")

    def job(self, w: Writer, layout: int) -> None:
        title, company, start = self.pick(TITLES), self.company(), self.date()
        current = self.rng.random() < 0.25
        end = None if current else self.date()

        def dates(sep: str):
            w.add(start, "DATE").add(sep)
            w.add("Present") if current else w.add(end, "DATE")

        if layout == 0:
            w.add(f"{title}, ").add(company, "COMPANY").add("\n")
            dates(self.pick((" - ", " – ", " to ")))
            w.add("\n")
        elif layout == 1:
            w.add(company, "COMPANY").add(f" | {title} | ")
            dates(" to ")
            w.add("\n")
        elif layout == 2:
            dates(" - ")
            w.add(f": {title} at ").add(company, "COMPANY").add(f", {self.pick(self.p.cities)}\n")
        else:  # test only
            w.add(f"Worked as {title} for ").add(company, "COMPANY").add(" from ")
            dates(" until ")
            w.add(".\n")
        for _ in range(self.rng.randint(1, 3)):
            bullet = self.pick(("- ", "* ", "• ", "  - "))
            form = self.rng.randrange(4)
            if form == 0:
                w.add(f"{bullet}Built {self.pick(('dashboards', 'pipelines', 'services', 'tools', 'models'))} using ")
                w.add(self.pick(self.p.skills), "SKILL").add(" and ").add(self.pick(self.p.skills), "SKILL").add(".\n")
            elif form == 1:
                w.add(
                    f"{bullet}Led a team of {self.rng.randint(2, 12)} people across {self.rng.randint(2, 5)} offices.\n"
                )
            elif form == 2:
                w.add(f"{bullet}Cut costs by {self.rng.randint(5, 60)}% by moving reports to ")
                w.add(self.pick(self.p.skills), "SKILL").add(".\n")
            else:
                w.add(f"{bullet}Worked closely with the {self.pick(('sales', 'design', 'finance', 'support'))} team.\n")

    def education(self, w: Writer) -> None:
        self.heading(w, "education")
        for _ in range(self.rng.randint(1, 2)):
            degree, college = self.degree(), self.college()
            form = self.rng.randrange(3)
            if form == 0:
                w.add(degree, "DEGREE").add(", ").add(college, "COLLEGE").add(", ").add(self.date(), "DATE").add("\n")
            elif form == 1:
                w.add(college, "COLLEGE").add("\n").add(degree, "DEGREE").add(" (").add(self.date(), "DATE")
                w.add(" - ").add(self.date(), "DATE").add(")\n")
            else:
                w.add(degree, "DEGREE").add(" from ").add(college, "COLLEGE").add(" in ")
                w.add(str(self.rng.randint(1995, 2024)), "DATE").add("\n")

    def skills(self, w: Writer) -> None:
        self.heading(w, "skills")
        chosen = self.rng.sample(self.p.skills, self.rng.randint(3, 8))
        sep = self.pick((", ", " | ", " • ", "\n- ", "; "))
        if sep == "\n- ":
            w.add("- ")
        for i, skill in enumerate(chosen):
            w.add(skill, "SKILL").add(sep if i < len(chosen) - 1 else "\n")

    def resume(self) -> Document:
        rng, w = self.rng, Writer()
        first, last = self.pick(self.p.first), self.pick(self.p.last)
        name = f"{first} {self.pick(self.p.first)[0]}. {last}" if rng.random() < 0.15 else f"{first} {last}"
        if rng.random() < 0.2:
            name = name.upper()
        headers = range(HEADERS) if self.p.test else range(HEADERS - 1)
        layouts = range(JOB_LAYOUTS) if self.p.test else range(JOB_LAYOUTS - 1)
        self.header(w, name, self.email(first, last), self.phone(), self.pick(headers))
        title = self.pick(TITLES)
        sections = ["summary", "experience", "education", "skills"]
        rng.shuffle(sections)
        for section in sections:
            if section == "summary":
                if rng.random() < 0.7:
                    self.summary(w, title)
            elif section == "experience":
                self.heading(w, "experience")
                for _ in range(rng.randint(1, 3)):
                    self.job(w, self.pick(layouts))
            elif section == "education":
                self.education(w)
            else:
                self.skills(w)
        if rng.random() < 0.5:
            w.add("\n" + self.pick(FILLER) + "\n")
        return w.document()


def generate(rng: random.Random, test: bool, count: int) -> list[Document]:
    generator = ResumeGenerator(rng, Pools(test))
    return [generator.resume() for _ in range(count)]


def write_sample(out_dir: str | Path, counts: dict[str, int]) -> dict[str, int]:
    """``train.jsonl`` and ``test.jsonl`` in the plain layout; returns the resumes and entities per split."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = {}
    for seed, split in enumerate(("train", "test")):
        documents = generate(random.Random(1000 + seed), split == "test", counts[split])
        write_jsonl(out_dir / f"{split}.jsonl", documents)
        written[f"{split}_resumes"] = len(documents)
        written[f"{split}_entities"] = sum(len(d.spans) for d in documents)
    return written
