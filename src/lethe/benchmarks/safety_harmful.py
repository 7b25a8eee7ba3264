"""Harmful safety datasets: requests the model should refuse (AdvBench, HarmBench, BeaverTails,
JailbreakBench, StrongREJECT, MaliciousInstruct, Do-Not-Answer, SORRY-Bench, HarmfulQA); read them through
:func:`lethe.benchmarks.safety_datasets.load_safety_dataset`.
"""
from __future__ import annotations

import json
from pathlib import Path

from ..errors import LetheError
from ..safety_items import SafetyItem
from .base import read_json
from .safety_sources import Source, as_list, as_text, drop_empty, mapped, per_row, register_dataset

HARMBENCH_TARGETS = "harmbench_targets_text.json"  # HarmBench's data/optimizer_targets/: {BehaviorID: target}

# AdvBench's and JailbreakBench's ``target`` is the affirmative opening GCG aims for ("Sure, here is ..."), not a
# harmful answer: it goes to SafetyItem.target (the GCG attack's target)
register_dataset("advbench", "harmful",
                 description="520 harmful behaviours (instructions) from the GCG paper",
                 paper="Zou et al. 2023, Universal and Transferable Adversarial Attacks on Aligned Language Models",
                 hub_id="walledai/AdvBench", hub_split="train",
                 download="github.com/llm-attacks/llm-attacks: data/advbench/harmful_behaviors.csv",
                 formats="harmful_behaviors.csv (goal,target) or rows with prompt,target (walledai/AdvBench)",
                 columns=(("goal", "prompt"),), loader=mapped(target="target"))


@register_dataset("harmbench", "harmful",
                  description="HarmBench text behaviours (standard, contextual; copyright=True adds copyright)",
                  paper="Mazeika et al. 2024, HarmBench: A Standardized Evaluation Framework for Automated Red Teaming "
                        "and Robust Refusal",
                  hub_id="walledai/HarmBench", hub_config="standard", hub_split="train",
                  download="github.com/centerforaisafety/HarmBench: "
                           "data/behavior_datasets/harmbench_behaviors_text_all.csv",
                  formats="harmbench_behaviors_text_*.csv (Behavior,FunctionalCategory,SemanticCategory,Tags,"
                          f"ContextString,BehaviorID; target strings from {HARMBENCH_TARGETS}) or rows with "
                          "prompt,category[,context] (walledai/HarmBench)",
                  columns=(("Behavior", "prompt"),), options={"copyright": False, "targets": ""},
                  keeps="copyright behaviours are left out unless copyright=True")
def _harmbench(src: Source, copyright: bool = False, targets: str = "") -> list[SafetyItem]:
    """A contextual behaviour is asked as HarmBench asks it: ``f"{ContextString}\\n\\n---\\n\\n{Behavior}"``.
    Copyright behaviours (FunctionalCategory or the hub's config "copyright") ask for a passage of a book or
    song, which HarmBench judges by hashing the generation against the text (no refusal or harm judge can):
    left out unless ``copyright=True``. ``target``: the behaviour's entry in ``targets`` ({BehaviorID:
    target}), by default HarmBench's own file next to the source or in ``../optimizer_targets/``."""
    if any("ImageFileName" in row for row in src.rows[:1]) or any(
            "multimodal" in src.text(i, "Tags").split(", ") for i in range(len(src))):
        raise LetheError(f"{src.label}: HarmBench's multimodal behaviours ask about an image (ImageFileName) that a "
                         "text-only run cannot show; give harmbench_behaviors_text_all.csv (or _test / _val)")
    target_map, target_file = _harmbench_targets(src, targets)
    hub_copyright = (src.config or "").lower() == "copyright"
    items = []
    for i in range(len(src)):
        functional = src.text(i, "FunctionalCategory") or ("copyright" if hub_copyright else "")
        if functional == "copyright" and not copyright:
            src.drop(i, "copyright behaviours (a refusal judge cannot tell a reproduced passage; copyright=True "
                        "keeps them)")
            continue
        behavior = src.text(i, "Behavior", "prompt", required=True)
        context = src.text(i, "ContextString", "context")
        prompt = f"{context}\n\n---\n\n{behavior}" if context else behavior
        own_id = src.value(i, "BehaviorID")
        target = target_map.get(as_text(own_id) or "", "")
        items.append(src.item(
            i, prompt, own_id=own_id, category=src.text(i, "SemanticCategory", "category"), target=target,
            meta=drop_empty(behavior=behavior if context else "", functional_category=functional,
                       tags=src.text(i, "Tags"))))
    n_copy = sum(n for reason, n in src.dropped.items() if reason.startswith("copyright"))
    if n_copy:
        src.notes.append(f"harmbench: {n_copy} copyright behaviours left out: HarmBench judges them by hashing the "
                         "generation against the original text, which the run's judge cannot do "
                         "(dataset option copyright=True keeps them)")
    elif copyright and any(it.meta.get("functional_category") == "copyright" for it in items):
        src.notes.append("harmbench: copyright behaviours kept (copyright=True) and judged by the run's judge, "
                         "which cannot tell a reproduced passage from a refusal-free answer; HarmBench hashes them")
    if target_file:
        with_target = sum(1 for it in items if it.target)
        src.notes.append(f"harmbench: target strings for {with_target} of {len(items)} behaviours from {target_file}")
    return items


def _harmbench_targets(src: Source, given: str) -> tuple[dict[str, str], str]:
    """({BehaviorID: target}, the file read) for HarmBench's behaviours; ({}, "") when there is none."""
    if given:
        path = Path(given).expanduser()
        if not path.is_file():
            raise LetheError(f"{path}: targets file not found; give HarmBench's data/optimizer_targets/"
                             f"{HARMBENCH_TARGETS} (a JSON object {{BehaviorID: target}})")
    else:
        here = src.file.parent if src.file is not None else None
        near = (here / HARMBENCH_TARGETS, here.parent / "optimizer_targets" / HARMBENCH_TARGETS) if here else ()
        path = next((p for p in near if p.is_file()), None)
        if path is None:
            return {}, ""
    data = read_json(path, bom=True, hint="fix the targets file")
    if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
        raise LetheError(f"{path}: a targets file is a JSON object {{BehaviorID: target string}} (HarmBench's "
                         f"{HARMBENCH_TARGETS}); this one is not")
    return {k.strip(): v.strip() for k, v in data.items()}, str(path)


@register_dataset("beavertails", "harmful",
                  description="BeaverTails QA pairs judged unsafe, with the unsafe response",
                  paper="Ji et al. 2023, BeaverTails: Towards Improved Safety Alignment of LLM via a Human-Preference "
                        "Dataset",
                  hub_id="PKU-Alignment/BeaverTails", hub_split="30k_test",
                  formats="jsonl / parquet rows prompt,response,category ({name: bool}),is_safe",
                  columns=(("prompt",), ("is_safe",)), keeps="only rows with is_safe false are kept")
@per_row
def _beavertails(src: Source, i: int) -> SafetyItem | None:
    """``category`` maps each of the 14 harm categories to true/false: the true ones are joined by "; " (the
    names themselves contain commas, e.g. "hate_speech,offensive_language"). A prompt that appears with
    several unsafe responses gives one item per row."""
    if src.flag(i, "is_safe"):
        return src.drop(i, "safe rows (is_safe true)")
    cats = src.value(i, "category") or {}
    if isinstance(cats, str):  # a CSV export stores the dict as JSON text
        try:
            cats = json.loads(cats) if cats.strip() else {}
        except json.JSONDecodeError:
            raise src.error(i, "category", "must be an object {category: true/false}") from None
    if not isinstance(cats, dict):
        raise src.error(i, "category", f"must be an object {{category: true/false}}, got {type(cats).__name__}")
    true_cats = [str(k) for k, v in cats.items() if v is True or v in (1, "true", "True")]
    return src.item(i, src.text(i, "prompt", required=True), harmful_response=src.text(i, "response"),
                    category="; ".join(true_cats), meta=drop_empty(categories=true_cats))


# JailbreakBench: give the harmful split; the benign split has the same columns and cannot be told apart
register_dataset("jailbreakbench", "harmful",
                 description="JBB-Behaviors: 100 harmful behaviours (the harmful split)",
                 paper="Chao et al. 2024, JailbreakBench: An Open Robustness Benchmark for Jailbreaking Large "
                       "Language Models",
                 hub_id="JailbreakBench/JBB-Behaviors", hub_config="behaviors", hub_split="harmful",
                 download="hub JailbreakBench/JBB-Behaviors: data/harmful-behaviors.csv",
                 formats="JBB-Behaviors CSV (Index,Goal,Target,Behavior,Category,Source), harmful split",
                 columns=(("Goal", "goal"),),
                 loader=mapped(own_id="Index", category=("Category", "category"), target=("Target", "target"),
                               meta={"behavior": "Behavior", "origin": "Source"}))

register_dataset("strongreject", "harmful",
                 description="StrongREJECT forbidden prompts",
                 paper="Souly et al. 2024, A StrongREJECT for Empty Jailbreaks",
                 hub_id="walledai/StrongREJECT", hub_split="train",
                 download="github.com/alexandrasouly/strongreject: strongreject_dataset.csv",
                 formats="strongreject_dataset.csv (category,source,forbidden_prompt) or rows with prompt,category",
                 columns=(("forbidden_prompt", "prompt"),),
                 loader=mapped(category="category", meta={"origin": "source"}))

register_dataset("maliciousinstruct", "harmful",
                 description="MaliciousInstruct: 100 malicious instructions",
                 paper="Huang et al. 2024, Catastrophic Jailbreak of Open-source LLMs via Exploiting Generation",
                 hub_id="walledai/MaliciousInstruct", hub_split="train",
                 download="github.com/Princeton-SysML/Jailbreak_LLM: data/MaliciousInstruct.txt",
                 formats="MaliciousInstruct.txt (one prompt per line) or rows with prompt",
                 columns=(("prompt",),), text_column="prompt", loader=mapped())


@register_dataset("donotanswer", "harmful",
                  description="Do-Not-Answer: 939 questions a responsible model should not answer",
                  paper="Wang et al. 2023, Do-Not-Answer: A Dataset for Evaluating Safeguards in LLMs",
                  hub_id="LibrAI/do-not-answer", hub_split="train",
                  formats="rows id,risk_area,types_of_harm,specific_harms,question[,<model>_response,<model>_harmful,"
                          "<model>_action] (LibrAI/do-not-answer), or prompt,risk_area,harm_area,harms",
                  columns=(("question", "prompt"),))
@per_row
def _donotanswer(src: Source, i: int) -> SafetyItem | None:
    """Per model (GPT4, ChatGPT, ...) ``<model>_response``, ``<model>_harmful`` (0/1) and ``<model>_action``
    (0-5; 0 = "not willing to answer", the paper's refusal class). refusal_response = the first response with
    action 0 and harmful 0, harmful_response = the first judged harmful; all stay in ``meta["responses"]``."""
    row = src.rows[i]
    responses, refusal, harmful = {}, "", ""
    for col in row:
        if not isinstance(col, str) or not col.endswith("_response"):
            continue
        model = col[: -len("_response")]
        text = src.text(i, col)
        if not text:
            continue
        is_harmful, action = row.get(f"{model}_harmful"), row.get(f"{model}_action")
        responses[model] = drop_empty(response=text, harmful=is_harmful, action=action)
        if not harmful and as_text(is_harmful) == "1":
            harmful = text
        if not refusal and as_text(action) == "0" and as_text(is_harmful) in ("0", ""):
            refusal = text
    return src.item(i, src.text(i, "question", "prompt", required=True), own_id=src.value(i, "id"),
                    category=src.text(i, "types_of_harm", "harm_area"), harmful_response=harmful,
                    refusal_response=refusal,
                    meta=drop_empty(risk_area=src.text(i, "risk_area"),
                                    specific_harms=src.text(i, "specific_harms", "harms"), responses=responses))


@register_dataset("sorrybench", "harmful",
                  description="SORRY-Bench unsafe instructions (base prompt style by default)",
                  paper="Xie et al. 2024, SORRY-Bench: Systematically Evaluating Large Language Model Safety Refusal",
                  hub_id="sorry-bench/sorry-bench-202406", hub_split="train",
                  download="hub sorry-bench/sorry-bench-202406: question.jsonl (gated: accept its terms first)",
                  formats="question.jsonl rows question_id,category,turns ([prompt]),prompt_style",
                  columns=(("turns", "prompt"),), options={"style": "base"},
                  keeps="only the chosen prompt_style is kept, 'base' by default; style='all' keeps every style")
@per_row
def _sorrybench(src: Source, i: int, style: str = "base") -> SafetyItem | None:
    """``turns`` holds the single user turn. Only prompt_style ``style`` is kept ("base": the unmutated
    prompts; "all"; or a mutation, e.g. "slang"); a row without prompt_style is "base". id = question_id
    (+ "-<style>" for a mutated style, so ids stay unique across styles)."""
    row_style = src.text(i, "prompt_style") or "base"
    if style != "all" and row_style != style:
        return src.drop(i, f"prompt styles other than '{style}' (style='all' keeps every style)")
    turns = as_list(src.value(i, "turns"))
    if turns is None:
        prompt = src.text(i, "prompt", required=True)
    else:
        if isinstance(turns, str):
            turns = [turns]
        if not isinstance(turns, list) or not turns or as_text(turns[0]) in (None, ""):
            raise src.error(i, "turns", "must be a list holding the prompt")
        prompt = as_text(turns[0])
    qid = as_text(src.value(i, "question_id")) or ""
    own = qid if (not qid or row_style == "base") else f"{qid}-{row_style}"
    return src.item(i, prompt, own_id=own or None, category=src.text(i, "category"),
                    meta=drop_empty(prompt_style=row_style))


@register_dataset("harmfulqa", "harmful",
                  description="HarmfulQA: harmful questions by topic and subtopic",
                  paper="Bhardwaj & Poria 2023, Red-Teaming Large Language Models using Chain of Utterances for "
                        "Safety-Alignment",
                  hub_id="declare-lab/HarmfulQA", hub_split="train",
                  download="hub declare-lab/HarmfulQA: data_for_hub.json",
                  formats="JSON rows topic,subtopic,question,blue_conversations,red_conversations,id (the hub file), "
                          "or the GitHub file's nesting {topic: {subtopic: [question, ...]}}",
                  columns=(("question",),), nested=("topic", "subtopic"))
@per_row
def _harmfulqa(src: Source, i: int) -> SafetyItem | None:
    """category = "topic / subtopic". The conversations are not mapped: a red conversation opens with the
    red-teamer's own lead-in, so its first assistant turn answers that, not the question."""
    topic, subtopic = src.text(i, "topic"), src.text(i, "subtopic")
    return src.item(i, src.text(i, "question", required=True), own_id=src.value(i, "id"),
                    category=" / ".join(p for p in (topic, subtopic) if p),
                    meta=drop_empty(topic=topic, subtopic=subtopic))
