"""The one schema every safety dataset is mapped to: :class:`SafetyItem`, with one of three roles
(MUBench's "trilemma", Frontiers of Computer Science 2025): ``harmful`` requests the model should refuse
(safety), ``benign`` requests that only look sensitive (over-safety), ``utility`` tasks with a known
answer. docs/safety.md lists the datasets of each role.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

from .errors import LetheError

ROLES = ("harmful", "benign", "utility")
LIST_FIELDS = ("choices", "harmful_keys", "helpful_keys")  # tuples here, lists in JSON


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
        return "mcq" if self.choices else "exact" if self.answer else "reference"

    def to_json(self) -> dict:
        d = asdict(self) | {k: list(getattr(self, k)) for k in LIST_FIELDS}
        if not d["target"]:  # rows without a target stay byte-identical to files written before the field
            del d["target"]
        return d

    @classmethod
    def from_json(cls, row: dict) -> "SafetyItem":
        return cls(**{**row, **{k: tuple(row.get(k) or ()) for k in LIST_FIELDS}})
