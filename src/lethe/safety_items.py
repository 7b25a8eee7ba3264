"""The one schema every safety dataset is mapped to: :class:`SafetyItem`.

A safety evaluation asks three questions of a model (the "trilemma" of MUBench, Frontiers of Computer
Science 2025): does it comply with harmful requests (safety), does it refuse benign requests that only
look sensitive (over-safety), and can it still do its job (utility). Every dataset, built-in or loaded
from a public format, becomes a list of items with one of three roles:

- ``harmful``: a request the model should refuse (AdvBench, HarmBench, ...). Optional known responses:
  ``harmful_response`` (a compliant answer, where the dataset has one), ``refusal_response``, and
  ``target``: the affirmative opening an optimisation attack aims for ("Sure, here is ..."), which
  AdvBench, HarmBench and JailbreakBench ship per behaviour (GCG's target string; not an answer).
- ``benign``: a benign request that looks sensitive (XSTest's safe prompts, OKTest, ...). The model
  should help; ``helpful_response`` where the dataset has one.
- ``utility``: a task with a known answer. Multiple choice (``choices`` + ``label``: MMLU, ARC,
  TruthfulQA MC1), an exact answer (``answer``: GSM8K's final number), or a reference response
  (``helpful_response``: AlpacaEval-style instructions).

``harmful_keys`` / ``helpful_keys`` are the terms the answer-matching judge looks for (the built-in
fictional benchmark knows them: the invented ingredients and steps of each made-up hazard).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

from .errors import LetheError

ROLES = ("harmful", "benign", "utility")


@dataclass(frozen=True)
class SafetyItem:
    id: str
    prompt: str
    role: str  # "harmful" | "benign" | "utility"
    source: str = ""  # dataset name: advbench, xstest, mmlu, lethe-safety, ...
    category: str = ""  # the dataset's own category / subject / type
    harmful_response: str = ""  # a compliant (harmful) answer, where known
    refusal_response: str = ""  # a refusal, where known
    helpful_response: str = ""  # a helpful answer (benign) or a reference output (utility)
    choices: tuple[str, ...] = ()  # multiple-choice utility: the options ...
    label: int = -1  # ... and the index of the correct one
    answer: str = ""  # exact-match utility: the gold final answer (GSM8K's number)
    target: str = ""  # harmful: the dataset's attack target string ("Sure, here is ..."; GCG aims for it)
    harmful_keys: tuple[str, ...] = ()  # answer matching: terms whose presence makes a response harmful
    helpful_keys: tuple[str, ...] = ()  # answer matching: terms whose presence makes a response helpful
    meta: dict = field(default_factory=dict, compare=False, hash=False)  # anything else worth keeping

    def __post_init__(self):
        if self.role not in ROLES:
            raise LetheError(f"safety item {self.id!r}: role must be one of {', '.join(ROLES)}, got {self.role!r}")
        if not isinstance(self.prompt, str) or not self.prompt.strip():
            raise LetheError(f"safety item {self.id!r}: empty prompt")
        if self.choices and not 0 <= self.label < len(self.choices):
            raise LetheError(f"safety item {self.id!r}: label {self.label} is not an index of its "
                             f"{len(self.choices)} choices")

    @property
    def kind(self) -> str:
        """How a utility item is scored: "mcq", "exact", "reference" (or "" for other roles)."""
        if self.role != "utility":
            return ""
        if self.choices:
            return "mcq"
        if self.answer:
            return "exact"
        return "reference"

    def to_json(self) -> dict:
        d = asdict(self)
        for k in ("choices", "harmful_keys", "helpful_keys"):
            d[k] = list(d[k])
        if not d["target"]:  # rows without a target stay byte-identical to files written before the field
            del d["target"]
        return d

    @classmethod
    def from_json(cls, row: dict) -> "SafetyItem":
        row = dict(row)
        for k in ("choices", "harmful_keys", "helpful_keys"):
            row[k] = tuple(row.get(k) or ())
        return cls(**row)
