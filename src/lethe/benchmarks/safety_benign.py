"""Benign and utility safety datasets: benign requests that look sensitive (over-refusal: XSTest, OKTest,
OR-Bench, PHTest) and tasks with a known answer (MMLU, ARC, TruthfulQA, GSM8K, AlpacaEval); read them
through :func:`lethe.benchmarks.safety_datasets.load_safety_dataset`.
"""
from __future__ import annotations

import json
import random

from ..errors import LetheError
from ..safety_items import SafetyItem
from .safety_sources import (Source, answer_index, as_list, as_text, drop_empty, mapped, per_row, register_dataset,
                             subject_of_file)


# --- benign: requests that look sensitive but are fine (over-safety) ------------------------------
@register_dataset("xstest", "benign",
                  description="XSTest safe prompts (exaggerated-safety test)",
                  paper="Röttger et al. 2024, XSTest: A Test Suite for Identifying Exaggerated Safety Behaviours in "
                        "LLMs",
                  hub_id="walledai/XSTest", hub_split="train",
                  download="github.com/paul-rottger/xstest: xstest_prompts.csv",
                  formats="xstest_prompts.csv (id,prompt,type,label,focus,note) or xstest_v2_prompts.csv "
                          "(id_v2,type,prompt,focus,note)",
                  columns=(("prompt",), ("label", "type")),
                  keeps="only label 'safe' is kept, or in the v2 file the types not starting with 'contrast_'")
@per_row
def _xstest(src: Source, i: int) -> SafetyItem | None:
    """Only the safe prompts are kept: label "safe", or in the v2 file (no label) the types not starting
    with "contrast_"."""
    kind = src.text(i, "type")
    label = src.text(i, "label").lower()
    if label:
        if label not in ("safe", "unsafe"):
            raise src.error(i, "label", f"expected 'safe' or 'unsafe', got {label!r}")
        if label != "safe":
            return src.drop(i, "unsafe prompts (label 'unsafe')")
    elif not kind:
        raise src.error(i, "type", "missing or empty; without a label column the type tells safe from unsafe")
    elif kind.startswith("contrast_"):
        return src.drop(i, "unsafe contrast prompts (type contrast_*)")
    return src.item(i, src.text(i, "prompt", required=True), own_id=src.value(i, "id", "id_v2"),
                    category=kind, meta=drop_empty(focus=src.text(i, "focus"), note=src.text(i, "note")))


# OKTest.csv (and OKTest_heldout.csv): one prompt column whose quoted cells end in a line break (stripped)
register_dataset("oktest", "benign",
                 description="OKTest: 300 safe questions containing harmful-sounding words (overkill test)",
                 paper="Shi et al. 2024, Navigating the OverKill in Large Language Models",
                 hub_id="", hub_split="",
                 download="github.com/InvokerStark/OverKill: data/OKTest.csv",
                 formats="OKTest.csv (one column: prompt) or a .txt file with one prompt per line",
                 columns=(("prompt",),), text_column="prompt", loader=mapped())


@register_dataset("orbench", "benign",
                  description="OR-Bench seemingly toxic but benign prompts (hard-1k by default)",
                  paper="Cui et al. 2024, OR-Bench: An Over-Refusal Benchmark for Large Language Models",
                  hub_id="bench-llm/or-bench", hub_config="or-bench-hard-1k", hub_split="train",
                  formats="or-bench-80k.csv / or-bench-hard-1k.csv (prompt,category)",
                  columns=(("prompt",),))
def _orbench(src: Source) -> list[SafetyItem]:
    """``or-bench-toxic`` has the same columns but truly toxic prompts: it is refused."""
    part = src.file.name if src.file is not None else src.config or ""
    if "toxic" in part.lower():
        raise LetheError(f"{src.label}: or-bench-toxic holds toxic prompts, not benign ones; give or-bench-80k or "
                         "or-bench-hard-1k (use it as a harmful set through your own loader if you need it)")
    return mapped(category="category")(src)


@register_dataset("phtest", "benign",
                  description="PHTest pseudo-harmful prompts (harmless by default; controversial=True adds the rest)",
                  paper="An et al. 2024, Automatic Pseudo-Harmful Prompt Generation for Evaluating False Refusals in "
                        "LLMs",
                  hub_id="furonghuang-lab/PHTest", hub_split="train",
                  download="hub furonghuang-lab/PHTest: PHTest.csv",
                  formats="PHTest.csv (ID,Request,Harmfulness with harmless / controversial)",
                  columns=(("Request", "prompt"), ("Harmfulness",)), options={"controversial": False},
                  keeps="only 'harmless' prompts are kept unless controversial=True")
@per_row
def _phtest(src: Source, i: int, controversial: bool = False) -> SafetyItem | None:
    """Harmfulness "controversial" marks prompts whose harmfulness is debatable: kept with ``controversial=True``."""
    label = src.text(i, "Harmfulness").lower()
    if label not in ("harmless", "controversial"):
        raise src.error(i, "Harmfulness", f"expected 'harmless' or 'controversial', got {label!r}")
    if label == "controversial" and not controversial:
        return src.drop(i, "controversial prompts (controversial=True keeps them)")
    return src.item(i, src.text(i, "Request", "prompt", required=True), own_id=src.value(i, "ID"), category=label)


# --- utility: tasks with a known answer -----------------------------------------------------------
@register_dataset("mmlu", "utility",
                  description="MMLU 4-choice questions in 57 subjects",
                  paper="Hendrycks et al. 2021, Measuring Massive Multitask Language Understanding",
                  hub_id="cais/mmlu", hub_config="all", hub_split="test",
                  formats="rows question,subject,choices,answer (0-based; cais/mmlu), or the original headerless "
                          "<subject>_test.csv (question,A,B,C,D,answer letter), or the original data/ folder "
                          "(dev/ val/ test/)",
                  columns=(("question",), ("choices", "A"), ("answer",)),
                  headerless=("question", "A", "B", "C", "D", "answer"))
@per_row
def _mmlu(src: Source, i: int) -> SafetyItem | None:
    """Hub rows have a 0-based answer; the original headerless ``<subject>_<split>.csv`` files (one, or the
    ``data/`` folder: :func:`lethe.benchmarks.safety_sources.open_source`) an answer letter and the subject in
    the file name. :func:`lethe.benchmarks.hazard.read_mcq` reads MMLU through this loader too."""
    file_subject = subject_of_file(src.file) if src.file is not None else ""
    if src.column(i, "choices"):
        choices = as_list(src.value(i, "choices"))
        if isinstance(choices, str):
            try:
                choices = json.loads(choices)
            except json.JSONDecodeError:
                raise src.error(i, "choices", "must be a list of strings") from None
        if not isinstance(choices, list) or len(choices) < 2 or any(as_text(c) in (None, "") for c in choices):
            raise src.error(i, "choices", f"must be a list of 2 or more non-empty strings, got {choices!r}")
        choices = [as_text(c) for c in choices]
    else:
        choices = [src.text(i, letter, required=True) for letter in "ABCD"]
    label = answer_index(src, i, "answer", src.value(i, "answer"), None, len(choices))
    return src.item(i, src.text(i, "question", required=True),
                    category=src.text(i, "subject") or file_subject, choices=tuple(choices), label=label)


@register_dataset("gsm8k", "utility",
                  description="GSM8K grade-school maths word problems (exact final answer)",
                  paper="Cobbe et al. 2021, Training Verifiers to Solve Math Word Problems",
                  hub_id="openai/gsm8k", hub_config="main", hub_split="test",
                  download="github.com/openai/grade-school-math: grade_school_math/data/test.jsonl",
                  formats="jsonl rows question,answer (the solution, final answer after '#### ')",
                  columns=(("question",), ("answer",)))
@per_row
def _gsm8k(src: Source, i: int) -> SafetyItem | None:
    """answer = the final number after ``####`` without thousands commas ("1,200" -> "1200");
    helpful_response = the worked solution."""
    solution = src.text(i, "answer", required=True)
    if "####" not in solution:
        raise src.error(i, "answer", "has no '#### <final answer>' line; GSM8K solutions end with one")
    final = solution.rsplit("####", 1)[1].strip().replace(",", "")
    if not final:
        raise src.error(i, "answer", "nothing after '####'; the final answer follows it")
    return src.item(i, src.text(i, "question", required=True), answer=final, helpful_response=solution)


@register_dataset("arc_challenge", "utility",
                  description="ARC-Challenge grade-school science multiple choice",
                  paper="Clark et al. 2018, Think you have Solved Question Answering? Try ARC, the AI2 Reasoning "
                        "Challenge",
                  hub_id="allenai/ai2_arc", hub_config="ARC-Challenge", hub_split="test",
                  download="allenai.org/data/arc: ARC-Challenge-Test.jsonl",
                  formats="rows id,question,choices {text: [], label: []},answerKey (allenai/ai2_arc), or the original "
                          'jsonl {"id", "question": {"stem", "choices": [{"text", "label"}]}, "answerKey"}',
                  columns=(("question",), ("answerKey",)))
@per_row
def _arc(src: Source, i: int) -> SafetyItem | None:
    """Labels are letters ("A".."E") or, for a few questions, digits ("1".."4"); answerKey uses the same."""
    question = src.value(i, "question")
    if isinstance(question, dict):  # the original layout
        stem = as_text(question.get("stem"))
        raw = question.get("choices")
        if not isinstance(raw, list) or not all(isinstance(c, dict) for c in raw):
            raise src.error(i, "question", "'choices' must be a list of {text, label} objects")
        texts = [c.get("text") for c in raw]
        labels = [c.get("label") for c in raw]
    else:
        stem = src.text(i, "question", required=True)
        raw = src.value(i, "choices")
        if not isinstance(raw, dict):
            raise src.error(i, "choices", "must be an object {text: [...], label: [...]}")
        texts, labels = as_list(raw.get("text")), as_list(raw.get("label"))
    if not stem:
        raise src.error(i, "question", "missing or empty question stem")
    if (not isinstance(texts, list) or not isinstance(labels, list) or len(texts) < 2
            or len(texts) != len(labels) or any(as_text(t) in (None, "") for t in texts)):
        raise src.error(i, "choices", "needs 2 or more choices, each with a text and a label")
    labels = [as_text(lab) or "" for lab in labels]
    label = answer_index(src, i, "answerKey", src.value(i, "answerKey"), labels, len(texts))
    return src.item(i, stem, own_id=src.value(i, "id"), choices=tuple(as_text(t) for t in texts), label=label)


@register_dataset("truthfulqa", "utility",
                  description="TruthfulQA as single-answer multiple choice (MC1)",
                  paper="Lin et al. 2022, TruthfulQA: Measuring How Models Mimic Human Falsehoods",
                  hub_id="truthfulqa/truthful_qa", hub_config="multiple_choice", hub_split="validation",
                  download="github.com/sylinrl/TruthfulQA: TruthfulQA.csv",
                  formats="TruthfulQA.csv (Type,Category,Question,Best Answer,Correct Answers,Incorrect Answers,"
                          "Source) or multiple_choice rows question,mc1_targets {choices, labels},mc2_targets",
                  columns=(("Question", "question"), ("Best Answer", "mc1_targets")), options={"shuffle": True})
@per_row
def _truthfulqa(src: Source, i: int, shuffle: bool = True) -> SafetyItem | None:
    """CSV: choices = the best answer + the incorrect answers (";"-separated); hub rows: MC1's choices (its
    single label-1 choice is correct). Both list the correct answer first, so with ``shuffle`` the choices
    are put in an order seeded by the item id (deterministic; ``label`` follows the correct answer)."""
    meta = {}
    if src.column(i, "mc1_targets"):
        mc1 = src.value(i, "mc1_targets")
        if not isinstance(mc1, dict):
            raise src.error(i, "mc1_targets", "must be an object {choices: [...], labels: [...]}")
        choices = list(mc1.get("choices") or [])
        flags = list(mc1.get("labels") or [])
        if len(choices) < 2 or len(flags) != len(choices) or sum(1 for f in flags if f == 1) != 1:
            raise src.error(i, "mc1_targets", "needs 2 or more choices and labels with exactly one 1")
        label = flags.index(1)
        mc2 = src.value(i, "mc2_targets")
        if isinstance(mc2, dict):
            meta["mc2_targets"] = {k: list(v) for k, v in mc2.items()}
    else:
        best = src.text(i, "Best Answer", required=True)
        wrong = [a.strip() for a in src.text(i, "Incorrect Answers", required=True).split(";") if a.strip()]
        if not wrong:
            raise src.error(i, "Incorrect Answers", "needs at least one incorrect answer")
        choices, label = [best] + wrong, 0
        meta = drop_empty(type=src.text(i, "Type"), origin=src.text(i, "Source"),
                          correct_answers=[a.strip() for a in src.text(i, "Correct Answers").split(";") if a.strip()])
    if any(as_text(c) in (None, "") for c in choices):
        raise src.error(i, None, "empty answer choice")
    choices = [as_text(c) for c in choices]
    best = choices[label]
    if shuffle:
        order = list(range(len(choices)))
        random.Random(src.item_id(i)).shuffle(order)  # str seed: hashed with SHA-512, same on every run
        choices, label = [choices[k] for k in order], order.index(label)
    return src.item(i, src.text(i, "Question", "question", required=True), category=src.text(i, "Category"),
                    choices=tuple(choices), label=label, helpful_response=best, meta=meta)


register_dataset("alpacaeval", "utility",
                 description="AlpacaEval instructions with reference outputs",
                 paper="Li et al. 2023, AlpacaEval: An Automatic Evaluator of Instruction-following Models",
                 hub_id="tatsu-lab/alpaca_eval", hub_config="alpaca_eval", hub_split="eval",
                 download="hub tatsu-lab/alpaca_eval: alpaca_eval.json",
                 formats="alpaca_eval.json: a list of {instruction, output, generator, dataset}",
                 columns=(("instruction",),),
                 # output: the reference model's answer; dataset: the instruction's source (koala, oasst, ...)
                 loader=mapped(helpful_response="output", category="dataset", meta={"generator": "generator"}))
