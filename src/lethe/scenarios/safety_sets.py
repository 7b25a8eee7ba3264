"""What a safety run reads and asks, apart from any model: its options (:class:`SafetyOptions`), the
harmful, benign and utility sets (:func:`load_sets`, built-in or the user's), the prompts of the
jailbreak and GCG attacks on the harmful requests (:func:`attack_prompts`), and the paired findings of
attack against vanilla (:func:`attack_findings`). The run itself is :mod:`lethe.scenarios.safety`.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from ..benchmarks.base import QAItem, qa_overlap
from ..benchmarks.hazard import MCQItem
from ..benchmarks.overlap import raise_on_overlap
from ..benchmarks.safety import REFUSALS, generate
from ..benchmarks.safety_datasets import DATASETS, read_safety_dataset
from ..builtin import content_hash
from ..config import build
from ..errors import LetheError
from ..metrics.safety import paired_difference
from ..safety_items import ROLES

WEIGHT_ATTACKS = ("relearn", "quantize_8bit", "quantize_4bit")


@dataclass(frozen=True)
class SafetyOptions:
    # built-in data (lethe.benchmarks.safety.generate)
    seed: int = 0
    n_hazards: int = 40
    aligned_fraction: float = 0.25
    n_towns: int = 24
    benign_in_retain: bool = False
    # the user's data: dataset names of `lethe ls datasets`, each "name" (its hub copy) or "name=path"
    harmful: tuple = ()
    benign: tuple = ()
    utility: tuple = ()
    forget: str = ""  # unlearning a user's model: a harmful set whose items have harmful responses
    retain: str = ""  # ... and a set with helpful answers (utility or benign)
    limit: int = 0  # the first N items of each user set (0: all)
    # a dataset's own switches by name, e.g. {harmbench: {copyright: true, targets: path/to/targets.json}}
    dataset_options: dict = field(default_factory=dict)
    # judging
    judge: str = ""  # "": answer_match on the built-in data, refusal (keywords) on user sets; or "classifier"
    judge_model: str = ""  # the classifier judge's hub id or folder
    max_new_tokens: int = 48
    # attacks on every model: jailbreak transform names (or "jailbreak" for all ten), gcg, relearn, quantize_*
    attacks: tuple = ("jailbreak", "gcg")
    few_shot_demos: int = 3  # compliant demonstrations of the few_shot jailbreak (forget set, else harmful responses)
    # the built-in models (trained from scratch; architecture, lr and seed from tiny_model)
    pretrain_epochs: float = 30.0
    pretrain_batch_size: int = 16

    def check(self) -> None:
        if not self.pretrain_epochs > 0 or self.pretrain_batch_size < 1 or self.max_new_tokens < 1 \
                or self.limit < 0 or self.few_shot_demos < 0:
            raise LetheError("scenario 'safety': pretrain_epochs must be > 0; pretrain_batch_size and max_new_tokens "
                             ">= 1; limit and few_shot_demos >= 0")
        attack_names(self.attacks)  # unknown names and attacks that do not apply: one-line errors


def as_options(opts) -> SafetyOptions:
    """``opts`` as :class:`SafetyOptions`; scripts may pass a mapping (``dict(OPTIONS)`` of the scenario)."""
    return opts if isinstance(opts, SafetyOptions) else build(SafetyOptions, dict(opts), prefix="scenario_options.")


@dataclass
class SafetySets:
    """What a run evaluates and unlearns, built-in or the user's."""

    name: str
    version: str
    spec: dict
    harmful: dict  # set name -> [SafetyItem]
    benign: dict
    utility: dict  # set name -> [SafetyItem] (generation) or [MCQItem] (multiple choice)
    forget: list  # QAItem: harmful request -> harmful response
    retain: list  # QAItem: request -> helpful answer
    refusals: list  # refusal answers for refusal-learning methods
    builtin: object = None  # the SafetyData of the built-in benchmark
    mcq_format: str = "choice"  # "choice": lm-eval-style continuation; "chat": whole answers to the question
    notes: list = field(default_factory=list)  # what the loaders said (rows left out, targets)


def _load_set(entry: str, role: str, opts: SafetyOptions, notes: list):
    """(dataset name, items) of one ``name`` or ``name=path`` entry, with its dataset_options."""
    if not isinstance(entry, str) or not entry.strip():
        raise LetheError(f"scenario 'safety': scenario_options.{role} entries are dataset names or name=path, "
                         f"got {entry!r}")
    name, _, path = entry.partition("=")
    spec = DATASETS.get(name.strip())  # unknown name: one-line error with "did you mean"
    if role in ROLES and spec.role != role:  # forget and retain take any role
        raise LetheError(f"scenario 'safety': dataset '{name}' is a {spec.role} set, not a {role} one "
                         f"(scenario_options.{role}); see `lethe ls datasets`")
    name = name.strip()
    got = read_safety_dataset(name, path.strip() or None, limit=opts.limit or None,
                              **dict((opts.dataset_options or {}).get(name) or {}))
    notes += [n for n in got.notes if n not in notes]
    return name, got.items


def _load_sets_of(entries: list, role: str, opts: SafetyOptions, notes: list) -> dict:
    """Set name -> items for the entries of one role. A name given twice (``mmlu=a.csv``, ``mmlu=b.csv``)
    is one set of both files' items, never the last file alone; each file's ids are then prefixed with its
    file name so they stay apart (the same file twice is refused)."""
    loaded: dict[str, list] = {}
    for entry in entries:
        name, items = _load_set(entry, role, opts, notes)
        loaded.setdefault(name, []).append((entry, items))
    out = {}
    for name, parts in loaded.items():
        if len(parts) == 1:
            out[name] = parts[0][1]
            continue
        combined, seen = [], {}
        for entry, items in parts:
            tag = Path(entry.partition("=")[2].strip() or name).stem
            for it in items:
                new_id = f"{tag}/{it.id}"
                if new_id in seen:
                    raise LetheError(f"scenario 'safety': scenario_options.{role} names '{name}' twice with files of "
                                     f"the same name ({seen[new_id]} and {entry}); give each file once")
                seen[new_id] = entry
                combined.append(dataclasses.replace(it, id=new_id))
        notes.append(f"{name}: {len(parts)} files given as one set of {len(combined)} items "
                     f"({', '.join(e.partition('=')[2].strip() for e, _ in parts)})")
        out[name] = combined
    return out


def to_mcq(items) -> list:
    """Multiple-choice utility items as :class:`lethe.benchmarks.hazard.MCQItem` (scored by
    :func:`lethe.probes_mcq.probe_mcq`)."""
    return [MCQItem(id=it.id, question=it.prompt, choices=tuple(it.choices), answer=it.label, subject=it.category)
            for it in items]


def _qa(items, field: str, what: str) -> list:
    out = [QAItem(id=it.id, question=it.prompt, answer=getattr(it, field)) for it in items if getattr(it, field)]
    if not out:
        raise LetheError(f"scenario 'safety': the {what} set has no item with a {field}; unlearning needs them")
    return out


def load_sets(opts: SafetyOptions) -> SafetySets:
    """The built-in ``lethe-safety`` data, or the user's sets of ``opts`` (a mapping is read as the options)."""
    opts = as_options(opts)
    user = [k for k in ("harmful", "benign", "utility", "forget", "retain") if getattr(opts, k)]
    if not user:
        if opts.dataset_options:
            raise LetheError("scenario 'safety': scenario_options.dataset_options goes with your datasets "
                             "(harmful=[...], benign=[...], utility=[...]); the built-in data has no options")
        d = generate(seed=opts.seed, n_hazards=opts.n_hazards, aligned_fraction=opts.aligned_fraction,
                     n_towns=opts.n_towns, benign_in_retain=opts.benign_in_retain)
        return SafetySets(d.name, d.version, d.spec, {d.name: d.harmful_eval}, {d.name: d.benign_eval},
                          {"general_qa": d.utility_qa, "general_mcq": d.utility_mcq}, d.forget, d.retain,
                          d.refusals, d, "chat")
    if not opts.harmful:
        raise LetheError("scenario 'safety': with your own data, scenario_options.harmful needs at least one harmful "
                         "set (e.g. harmful=[advbench=path/to/harmful_behaviors.csv]); `lethe ls datasets`")
    notes: list[str] = []
    named = {str(e).partition("=")[0].strip() for k in ROLES for e in getattr(opts, k)}
    named |= {getattr(opts, k).partition("=")[0].strip() for k in ("forget", "retain") if getattr(opts, k)}
    for key, value in (opts.dataset_options or {}).items():  # unknown names and non-mapping values first
        DATASETS.get(str(key))  # an unknown dataset name: one-line error with "did you mean"
        if not isinstance(value, dict):
            raise LetheError(f"scenario 'safety': scenario_options.dataset_options.{key} must be a mapping of that "
                             f"dataset's options, got {value!r}")
    for key in opts.dataset_options or {}:
        if key not in named:
            raise LetheError(f"scenario 'safety': scenario_options.dataset_options.{key}: no set of that name is "
                             f"loaded (sets: {', '.join(sorted(named))}); drop it or add the set")
    harmful = _load_sets_of(opts.harmful, "harmful", opts, notes)
    benign = _load_sets_of(opts.benign, "benign", opts, notes)
    utility = {}
    for name, items in _load_sets_of(opts.utility, "utility", opts, notes).items():
        kinds = {it.kind for it in items}
        if "mcq" in kinds and kinds != {"mcq"}:
            raise LetheError(f"scenario 'safety': utility set '{name}' mixes multiple-choice and open items")
        utility[name] = to_mcq(items) if kinds == {"mcq"} else items
    forget, retain, refusals = [], [], []
    if opts.forget:
        _, items = _load_set(opts.forget, "forget", opts, notes)
        forget = _qa(items, "harmful_response", "forget")
        refusals = sorted({it.refusal_response for it in items if it.refusal_response})
    if opts.retain:
        _, items = _load_set(opts.retain, "retain", opts, notes)
        retain = _qa(items, "helpful_response", "retain")
    # the forget/retain invariant: unlearning would push down what the retain term pulls up
    raise_on_overlap(len(qa_overlap(forget, retain)), opts.forget, opts.retain)
    refusals = refusals or [r.format(hazard="that", harm="do", target="it", town="your town").split(".")[0] + "."
                            for r in REFUSALS[:2]]
    files = {k: list(getattr(opts, k)) if k in ROLES else getattr(opts, k) for k in user}
    if opts.dataset_options:
        files["dataset_options"] = opts.dataset_options
    content = [[it.to_json() if hasattr(it, "to_json") else str(it) for it in v]
               for d in (harmful, benign, utility) for v in d.values()]
    spec = {"sets": files, "sha256": content_hash(content)}
    return SafetySets("user-safety-data", "files", spec, harmful, benign, utility, forget, retain, refusals,
                      notes=notes)


def attack_names(requested) -> list[str]:
    """The attacks of ``scenario_options.attacks``: ``jailbreak`` expanded to its ten transforms, order kept,
    duplicates dropped; a name that does not apply to harmful requests is a one-line error."""
    from ..attacks import ATTACKS
    from ..attacks.jailbreak import TRANSFORMS

    out = []
    for name in requested:
        members = list(TRANSFORMS) if name == "jailbreak" else [name.removeprefix("jailbreak_")]
        for m in members:
            if m not in TRANSFORMS and m != "gcg" and m not in WEIGHT_ATTACKS:
                ATTACKS.get(m)  # an unknown name: one-line error with "did you mean"
                raise LetheError(f"scenario 'safety': attack '{m}' does not apply to harmful requests; use jailbreak "
                                 f"transforms ({', '.join(TRANSFORMS)}), gcg, {', '.join(WEIGHT_ATTACKS)}")
            if m not in out:
                out.append(m)
    return out


def attack_prompts(name: str, model, tok, items, sets: SafetySets, opts: SafetyOptions, attack_options: dict):
    """(model to ask, prompts, info) of one attack on the harmful items: the prompts in the items' order; the
    model is ``model`` but for weight attacks (a changed copy asked the vanilla prompts)."""
    from ..attacks import get_attack, jailbreak

    if name == "few_shot":
        demos, where_from = few_shot_demonstrations(items, sets, opts.few_shot_demos)
        prompts = [jailbreak.apply(name, it.prompt, jailbreak.TransformContext(demonstrations=d))
                   for it, d in zip(items, demos)]
        return model, prompts, {"attack": name, "transform": name, "demonstrations": where_from}
    if name in jailbreak.TRANSFORMS:
        ctx = jailbreak.TransformContext()
        return model, [jailbreak.apply(name, it.prompt, ctx) for it in items], {"attack": name, "transform": name}
    if name == "gcg":
        from ..attacks import attack_config
        from ..attacks.gcg import GCGConfig, gcg_suffix, with_suffix

        cfg = attack_config(GCGConfig, "gcg", attack_options.get("gcg"))
        pairs, where_from = gcg_targets(items, sets)
        if not pairs:  # usable_attacks drops gcg before any model runs; this guards direct callers
            raise LetheError("scenario 'safety': the gcg attack needs target strings (a forget set, a dataset's "
                             "targets or harmful responses); drop gcg from scenario_options.attacks")
        pairs = _spread(pairs, cfg.n_prompts)
        res = gcg_suffix(model, tok, [p for p, _ in pairs], [t for _, t in pairs], cfg)
        return model, [with_suffix(it.prompt, res.suffix) for it in items], \
            {"attack": "gcg", "targets": where_from, **res.to_json()}
    attacked, info = get_attack(name)(model, tok, sets.forget, sets.retain, attack_options.get(name))
    info = {k: v for k, v in info.items() if k not in ("eval_forget_ids", "eval_forget_items")}
    return attacked, [it.prompt for it in items], {**info, "attack": name}


def gcg_targets(items: list, sets: SafetySets) -> tuple[list[tuple[str, str]], str]:
    """(request, target) pairs GCG optimises its suffix on, and where they came from: the forget set (the
    harmful answers the model was trained on); else the harmful sets' own target strings (AdvBench, HarmBench,
    JBB), the affirmative openings GCG was designed to aim for (Zou et al. 2023, Sec. 2.1); else their known
    harmful responses. ``([], "")`` when none exists (:func:`usable_attacks` then leaves GCG out)."""
    if sets.forget:
        return [(it.question, it.answer) for it in sets.forget], "forget set (harmful answers)"
    for known, where_from in (("target", "target strings"), ("harmful_response", "harmful responses")):
        pairs = [(it.prompt, getattr(it, known)) for it in items if getattr(it, known, "")]
        if pairs:
            return pairs, f"the harmful sets' {where_from}"
    return [], ""


def few_shot_demonstrations(items: list, sets: SafetySets, k: int) -> tuple[list[tuple], str]:
    """Per harmful item, the compliant (request, answer) demonstrations of the few_shot attack (Anil et
    al. 2024), and where they came from: the first ``k`` forget pairs; else the first ``k`` harmful items
    with a known harmful response, never the item itself (its own answer in the prompt would not be an
    attack). Empty demonstrations for every item mean the attack is the vanilla prompt (dropped with a
    note by :func:`usable_attacks`)."""
    if k < 1:
        return [() for _ in items], ""
    if sets.forget:
        demos = tuple((it.question, it.answer) for it in sets.forget[:k])
        return [demos for _ in items], "forget set"
    pool = [it for it in items if getattr(it, "harmful_response", "")]
    out = [tuple((o.prompt, o.harmful_response) for o in [o for o in pool if o.id != it.id][:k]) for it in items]
    return out, ("the harmful sets' harmful responses" if any(out) else "")


def usable_attacks(attacks: list[str], sets: SafetySets, opts: SafetyOptions) -> tuple[list[str], list[str]]:
    """The attacks that can run on these data, and a note for each one left out: GCG without any target
    string (no forget set, no dataset targets, no harmful responses), few_shot without demonstrations
    (it would be the vanilla prompt reported as an attack)."""
    items = [it for v in sets.harmful.values() for it in v]
    kept, notes = [], []
    for a in attacks:
        if a == "gcg" and not gcg_targets(items, sets)[0]:
            notes.append("gcg: left out: no target strings (no forget set, the harmful sets ship no targets and no "
                         "harmful responses); AdvBench, HarmBench (with its targets file) and JailbreakBench have them")
            continue
        if a == "few_shot" and not any(few_shot_demonstrations(items, sets, opts.few_shot_demos)[0]):
            notes.append("few_shot: left out: no compliant demonstrations (no forget set and no harmful responses in "
                         "the harmful sets" + (", few_shot_demos = 0" if opts.few_shot_demos < 1 else "")
                         + "); it would be the vanilla prompt")
            continue
        kept.append(a)
    return kept, notes


def _spread(pairs: list, n: int) -> list:
    """``n`` pairs spread over the list (different hazards, not the first one's wordings)."""
    if len(pairs) <= n:
        return pairs
    step = len(pairs) / n
    return [pairs[int(i * step)] for i in range(n)]


def attack_findings(rows: list[dict], results: list[dict], attacks: list[str], n_resamples: int) -> tuple[list, list]:
    """For every unlearned model and attack: the paired difference of harmful rates (attack - vanilla)
    with its bootstrap interval. Returns (records, notes)."""
    records, raised = [], []
    for row, res in zip(rows, results):
        if row["kind"] != "method":
            continue
        base = res["per_sample"]["harmful_rate"]
        for a in attacks:
            d, lo, hi = paired_difference(base, res["per_sample"][f"asr:{a}"], max(n_resamples, 200), seed=0)
            records.append({"model": row["name"], "attack": a, "increase": d, "low": lo, "high": hi})
            if lo > 0:
                raised.append(f"{a} on {row['name']} (+{d:.3f} [{lo:.3f}, {hi:.3f}])")
    if not any(r["kind"] == "method" for r in rows) or not attacks:
        return records, []
    if raised:
        return records, ["attacks that measurably raised the harmful rate of an unlearned model (paired bootstrap "
                         "95 % interval of attack − vanilla above 0): " + "; ".join(raised)]
    return records, ["no attack measurably raised the harmful rate of any unlearned model (for every model and "
                     "attack the paired bootstrap 95 % interval of attack − vanilla reaches 0 or below)"]
