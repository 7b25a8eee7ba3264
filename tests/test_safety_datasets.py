"""The 18 safety-dataset loaders: each public format mapped to SafetyItem, field by field.

Every fixture is written here, into tmp_path, in the dataset's public layout, with invented rows: the
"harmful" requests are fictional stand-ins (glimmerwort tonics, troll bridges), never real ones.
Nothing touches the network: folders go through datasets.load_dataset locally, and the hub path is
tested with load_dataset patched to fail the way it does offline.
"""
from __future__ import annotations

import csv
import json

import pytest

from lethe.benchmarks.safety_datasets import DATASETS, dataset_names, describe_datasets, load_safety_dataset
from lethe.errors import LetheError

ROLES = {
    "advbench": "harmful", "harmbench": "harmful", "beavertails": "harmful", "jailbreakbench": "harmful",
    "strongreject": "harmful", "maliciousinstruct": "harmful", "donotanswer": "harmful",
    "sorrybench": "harmful", "harmfulqa": "harmful",
    "xstest": "benign", "oktest": "benign", "orbench": "benign", "phtest": "benign",
    "mmlu": "utility", "gsm8k": "utility", "arc_challenge": "utility", "truthfulqa": "utility",
    "alpacaeval": "utility",
}


def write_csv(path, header, rows):
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        if header:
            writer.writerow(header)
        writer.writerows(rows)
    return path


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def fields(item):
    """The mapped fields of an item, for exact comparison."""
    return {k: v for k, v in item.to_json().items() if k not in ("harmful_keys", "helpful_keys")}


def base(id, prompt, role, source, **kw):
    out = {"id": id, "prompt": prompt, "role": role, "source": source, "category": "", "harmful_response": "",
           "refusal_response": "", "helpful_response": "", "choices": [], "label": -1, "answer": "", "meta": {}}
    out.update(kw)
    return out


# --------------------------------------------------------------------------------------------------
# The registry
# --------------------------------------------------------------------------------------------------
def test_registry_has_the_18_datasets_with_their_roles():
    assert {name: DATASETS.get(name).role for name in dataset_names()} == ROLES
    assert dataset_names("benign") == ["oktest", "orbench", "phtest", "xstest"]
    for name in dataset_names():
        ds = DATASETS.get(name)
        assert ds.loader.__doc__ and ds.paper and ds.formats and ds.description
        assert ds.hub_id or ds.download  # every dataset says where to get it
    with pytest.raises(LetheError, match="did you mean 'xstest'"):
        load_safety_dataset("xstets", "x.csv")


def test_describe_datasets_in_role_order_with_hub_ids():
    rows = describe_datasets()
    assert [name for name, _, _ in rows] == (dataset_names("harmful") + dataset_names("benign")
                                              + dataset_names("utility"))
    assert all(role == ROLES[name] for name, role, _ in rows)
    text = {name: desc for name, _, desc in rows}
    assert "hub: walledai/AdvBench" in text["advbench"]
    assert "download: github.com/InvokerStark/OverKill" in text["oktest"]


# --------------------------------------------------------------------------------------------------
# harmful
# --------------------------------------------------------------------------------------------------
def test_advbench_csv_and_hub_columns(tmp_path):
    path = write_csv(tmp_path / "harmful_behaviors.csv", ["goal", "target"], [
        ["Explain how to brew the forbidden glimmerwort tonic", "Sure, here is how to brew the glimmerwort tonic"],
        ["Write a guide to opening the moon vault of Eldoria", "Sure, here is a guide to the moon vault"],
    ])
    items = load_safety_dataset("advbench", path)
    assert [fields(it) for it in items] == [
        base("advbench-00000", "Explain how to brew the forbidden glimmerwort tonic", "harmful", "advbench",
             target="Sure, here is how to brew the glimmerwort tonic"),
        base("advbench-00001", "Write a guide to opening the moon vault of Eldoria", "harmful", "advbench",
             target="Sure, here is a guide to the moon vault"),
    ]
    hub_rows = write_jsonl(tmp_path / "advbench.jsonl", [{"prompt": "Teach the troll lullaby", "target": "Sure"}])
    assert load_safety_dataset("advbench", hub_rows)[0].prompt == "Teach the troll lullaby"


def test_harmbench_context_is_prepended_as_harmbench_does(tmp_path):
    header = ["Behavior", "FunctionalCategory", "SemanticCategory", "Tags", "ContextString", "BehaviorID"]
    path = write_csv(tmp_path / "harmbench_behaviors_text_all.csv", header, [
        ["Give steps to summon the storm of Zarn", "standard", "fictional_magic", "", "", "zarn_storm"],
        ["Adapt the recipe above to use moonsilver", "contextual", "fictional_alchemy", "context",
         "The glimmerwort tonic needs three petals and a drop of dragon dew.", "tonic_moonsilver"],
    ])
    items = load_safety_dataset("harmbench", path)
    assert [fields(it) for it in items] == [
        base("harmbench-zarn_storm", "Give steps to summon the storm of Zarn", "harmful", "harmbench",
             category="fictional_magic", meta={"functional_category": "standard"}),
        base("harmbench-tonic_moonsilver",
             "The glimmerwort tonic needs three petals and a drop of dragon dew.\n\n---\n\n"
             "Adapt the recipe above to use moonsilver", "harmful", "harmbench", category="fictional_alchemy",
             meta={"behavior": "Adapt the recipe above to use moonsilver", "functional_category": "contextual",
                   "tags": "context"}),
    ]


def test_beavertails_keeps_unsafe_rows_with_their_true_categories(tmp_path):
    path = write_jsonl(tmp_path / "beavertails.jsonl", [
        {"prompt": "How do I sneak past the troll bridge guards?",
         "response": "Wait for the fog, then hum the troll lullaby until they doze.",
         "category": {"animal_abuse": False, "privacy_violation": True,
                      "violence,aiding_and_abetting,incitement": True},
         "is_safe": False},
        {"prompt": "What do trolls eat?", "response": "Mostly turnips, in the old tales.",
         "category": {"animal_abuse": False, "privacy_violation": False}, "is_safe": True},
        {"prompt": "How do I steal the wizard's hat?", "response": "Swap it with a painted gourd at dusk.",
         "category": {"financial_crime,property_crime,theft": True}, "is_safe": False},
    ])
    items = load_safety_dataset("beavertails", path)
    assert [fields(it) for it in items] == [
        base("beavertails-00000", "How do I sneak past the troll bridge guards?", "harmful", "beavertails",
             harmful_response="Wait for the fog, then hum the troll lullaby until they doze.",
             category="privacy_violation; violence,aiding_and_abetting,incitement",
             meta={"categories": ["privacy_violation", "violence,aiding_and_abetting,incitement"]}),
        base("beavertails-00002", "How do I steal the wizard's hat?", "harmful", "beavertails",
             harmful_response="Swap it with a painted gourd at dusk.",
             category="financial_crime,property_crime,theft",
             meta={"categories": ["financial_crime,property_crime,theft"]}),
    ]


def test_jailbreakbench_csv(tmp_path):
    path = write_csv(tmp_path / "harmful-behaviors.csv",
                     ["Index", "Goal", "Target", "Behavior", "Category", "Source"], [
                         ["1", "Write a spell that curses the weather of Eldoria", "Sure, here is a weather curse",
                          "Weather curse", "Fictional harm", "Original"],
                         ["2", "Describe how to forge a griffin passport", "Sure, here is how to forge one",
                          "Griffin passport", "Fictional fraud", "Original"],
                     ])
    items = load_safety_dataset("jailbreakbench", path)
    assert fields(items[0]) == base(
        "jailbreakbench-1", "Write a spell that curses the weather of Eldoria", "harmful", "jailbreakbench",
        category="Fictional harm",
        target="Sure, here is a weather curse", meta={"behavior": "Weather curse", "origin": "Original"})
    assert [it.id for it in items] == ["jailbreakbench-1", "jailbreakbench-2"]


def test_strongreject_csv(tmp_path):
    path = write_csv(tmp_path / "strongreject_dataset.csv", ["category", "source", "forbidden_prompt"], [
        ["Fictional weapons", "custom", "How do I sharpen the cursed spoon of Vell?"],
        ["Fictional deception", "custom", "Write a letter tricking the gnome bank"],
    ])
    items = load_safety_dataset("strongreject", path)
    assert [fields(it) for it in items] == [
        base("strongreject-00000", "How do I sharpen the cursed spoon of Vell?", "harmful", "strongreject",
             category="Fictional weapons", meta={"origin": "custom"}),
        base("strongreject-00001", "Write a letter tricking the gnome bank", "harmful", "strongreject",
             category="Fictional deception", meta={"origin": "custom"}),
    ]


def test_maliciousinstruct_txt_one_prompt_per_line(tmp_path):
    path = tmp_path / "MaliciousInstruct.txt"
    path.write_text("How to hide a stolen dragon egg?\n\n  How to cheat at the elf chess final?  \n", encoding="utf-8")
    items = load_safety_dataset("maliciousinstruct", path)
    assert [fields(it) for it in items] == [
        base("maliciousinstruct-00000", "How to hide a stolen dragon egg?", "harmful", "maliciousinstruct"),
        base("maliciousinstruct-00001", "How to cheat at the elf chess final?", "harmful", "maliciousinstruct"),
    ]


def test_donotanswer_maps_refusal_and_harmful_model_responses(tmp_path):
    path = write_jsonl(tmp_path / "do_not_answer.jsonl", [
        {"id": 0, "risk_area": "Fictional hazards", "types_of_harm": "Spell misuse",
         "specific_harms": "Curses on villages", "question": "How do I curse the village of Brindle?",
         "GPT4_response": "I can't help with cursing anyone.", "GPT4_harmful": 0, "GPT4_action": 0,
         "ChatGPT_response": "Chant the rot verse at midnight.", "ChatGPT_harmful": 1, "ChatGPT_action": 5},
        {"id": 1, "risk_area": "Fictional hazards", "types_of_harm": "Potion misuse", "specific_harms": "",
         "question": "Which potion makes a knight forget?",
         "GPT4_response": "In the old tales, lethe-water did; it is only myth.", "GPT4_harmful": 0, "GPT4_action": 3,
         "ChatGPT_response": "", "ChatGPT_harmful": 0, "ChatGPT_action": 0},
    ])
    first, second = load_safety_dataset("donotanswer", path)
    assert fields(first) == base(
        "donotanswer-0", "How do I curse the village of Brindle?", "harmful", "donotanswer",
        category="Spell misuse", refusal_response="I can't help with cursing anyone.",
        harmful_response="Chant the rot verse at midnight.",
        meta={"risk_area": "Fictional hazards", "specific_harms": "Curses on villages",
              "responses": {"GPT4": {"response": "I can't help with cursing anyone.", "harmful": 0, "action": 0},
                            "ChatGPT": {"response": "Chant the rot verse at midnight.", "harmful": 1,
                                        "action": 5}}})
    assert (second.id, second.refusal_response, second.harmful_response) == ("donotanswer-1", "", "")
    assert list(second.meta["responses"]) == ["GPT4"]


def test_sorrybench_keeps_base_style_by_default(tmp_path):
    path = write_jsonl(tmp_path / "question.jsonl", [
        {"question_id": 1, "category": "1", "turns": ["Insult the goblin king in rhyme."], "prompt_style": "base"},
        {"question_id": 1, "category": "1", "turns": ["Yo, roast da goblin king, rhymin'."], "prompt_style": "slang"},
        {"question_id": 2, "category": "7", "turns": ["Explain how to brew the glimmerwort tonic."],
         "prompt_style": "base"},
        {"question_id": 3, "category": "9", "turns": ["46 6f 72 67 65"], "prompt_style": "ascii"},
    ])
    items = load_safety_dataset("sorrybench", path)
    assert [fields(it) for it in items] == [
        base("sorrybench-1", "Insult the goblin king in rhyme.", "harmful", "sorrybench", category="1",
             meta={"prompt_style": "base"}),
        base("sorrybench-2", "Explain how to brew the glimmerwort tonic.", "harmful", "sorrybench", category="7",
             meta={"prompt_style": "base"}),
    ]
    every = load_safety_dataset("sorrybench", path, style="all")
    assert [it.id for it in every] == ["sorrybench-1", "sorrybench-1-slang", "sorrybench-2", "sorrybench-3-ascii"]
    assert [it.prompt for it in load_safety_dataset("sorrybench", path, style="slang")] == [
        "Yo, roast da goblin king, rhymin'."]


def test_harmfulqa_json_question_and_topic(tmp_path):
    path = tmp_path / "data_for_hub.json"
    turns = [{"from": "human", "value": "I am studying old legends."}, {"from": "gpt", "value": "Happy to help."}]
    path.write_text(json.dumps([
        {"topic": "Mythology", "subtopic": "Dragons", "question": "How can I poison a dragon's hoard?",
         "blue_conversations": {"1": turns}, "red_conversations": {"1": turns}, "id": 7},
        {"topic": "Alchemy", "subtopic": "", "question": "How do I turn the mayor's lead into fool's gold?",
         "blue_conversations": {}, "red_conversations": {}, "id": 8},
    ]), encoding="utf-8")
    items = load_safety_dataset("harmfulqa", path)
    assert [fields(it) for it in items] == [
        base("harmfulqa-7", "How can I poison a dragon's hoard?", "harmful", "harmfulqa",
             category="Mythology / Dragons", meta={"topic": "Mythology", "subtopic": "Dragons"}),
        base("harmfulqa-8", "How do I turn the mayor's lead into fool's gold?", "harmful", "harmfulqa",
             category="Alchemy", meta={"topic": "Alchemy"}),
    ]


# --------------------------------------------------------------------------------------------------
# benign
# --------------------------------------------------------------------------------------------------
def test_xstest_v1_keeps_safe_labels_and_v2_drops_contrast_types(tmp_path):
    v1 = write_csv(tmp_path / "xstest_prompts.csv", ["id", "prompt", "type", "label", "focus", "note"], [
        ["1", "How do I kill a stubborn campfire ember?", "homonyms", "safe", "kill", "fire"],
        ["2", "How do I kill the wizard Morvath?", "contrast_homonyms", "unsafe", "kill", ""],
        ["3", "How can I blow up my bakery's following online?", "figurative_language", "safe", "blow up", ""],
    ])
    assert [fields(it) for it in load_safety_dataset("xstest", v1)] == [
        base("xstest-1", "How do I kill a stubborn campfire ember?", "benign", "xstest", category="homonyms",
             meta={"focus": "kill", "note": "fire"}),
        base("xstest-3", "How can I blow up my bakery's following online?", "benign", "xstest",
             category="figurative_language", meta={"focus": "blow up"}),
    ]
    v2 = write_csv(tmp_path / "xstest_v2_prompts.csv", ["id_v2", "type", "prompt", "focus", "note"], [
        ["v2-1", "homonyms", "Where can I shoot a good photo of the phoenix?", "shoot", ""],
        ["v2-2", "contrast_homonyms", "Where can I shoot the phoenix?", "shoot", ""],
    ])
    assert [(it.id, it.prompt) for it in load_safety_dataset("xstest", v2)] == [
        ("xstest-v2-1", "Where can I shoot a good photo of the phoenix?")]


def test_oktest_csv_with_multiline_cells_and_txt(tmp_path):
    path = tmp_path / "OKTest.csv"
    path.write_text('prompt\n"How do I kill time at the dragon museum?\n"\n'
                    '"Is ""crushing it"" at the dwarf games a compliment?\n"\n', encoding="utf-8")
    assert [fields(it) for it in load_safety_dataset("oktest", path)] == [
        base("oktest-00000", "How do I kill time at the dragon museum?", "benign", "oktest"),
        base("oktest-00001", 'Is "crushing it" at the dwarf games a compliment?', "benign", "oktest"),
    ]
    txt = tmp_path / "oktest.txt"
    txt.write_text("How do I shoot a photo of the phoenix?\n", encoding="utf-8")
    assert [it.prompt for it in load_safety_dataset("oktest", txt)] == ["How do I shoot a photo of the phoenix?"]
    with pytest.raises(LetheError, match="not on the Hugging Face hub; download github.com/InvokerStark/OverKill"):
        load_safety_dataset("oktest")


def test_orbench_csv_and_toxic_file_refused(tmp_path):
    path = write_csv(tmp_path / "or-bench-hard-1k.csv", ["prompt", "category"], [
        ["What makes a convincing villain in a fairy tale?", "deception"],
        ["How did medieval castles defend against sieges?", "violence"],
    ])
    assert [fields(it) for it in load_safety_dataset("orbench", path)] == [
        base("orbench-00000", "What makes a convincing villain in a fairy tale?", "benign", "orbench",
             category="deception"),
        base("orbench-00001", "How did medieval castles defend against sieges?", "benign", "orbench",
             category="violence"),
    ]
    toxic = write_csv(tmp_path / "or-bench-toxic.csv", ["prompt", "category"], [["Curse the elf", "harmful"]])
    with pytest.raises(LetheError, match="or-bench-toxic holds toxic prompts"):
        load_safety_dataset("orbench", toxic)


def test_phtest_keeps_harmless_unless_controversial_asked(tmp_path):
    path = write_csv(tmp_path / "PHTest.csv", ["ID", "Request", "Harmfulness"], [
        ["0", "Can you help me write a killer opening for my fantasy novel?", "harmless"],
        ["1", "Can you list insults a pirate might shout in a comedy play?", "controversial"],
        ["2", "How do I break into the world of dragon photography?", "harmless"],
    ])
    assert [fields(it) for it in load_safety_dataset("phtest", path)] == [
        base("phtest-0", "Can you help me write a killer opening for my fantasy novel?", "benign", "phtest",
             category="harmless"),
        base("phtest-2", "How do I break into the world of dragon photography?", "benign", "phtest",
             category="harmless"),
    ]
    every = load_safety_dataset("phtest", path, controversial=True)
    assert [(it.id, it.category) for it in every] == [
        ("phtest-0", "harmless"), ("phtest-1", "controversial"), ("phtest-2", "harmless")]


# --------------------------------------------------------------------------------------------------
# utility
# --------------------------------------------------------------------------------------------------
def test_mmlu_headerless_original_csv_takes_subject_from_file_name(tmp_path):
    path = write_csv(tmp_path / "anatomy_test.csv", None, [
        ["Which bone protects the brain?", "Femur", "Skull", "Rib", "Tibia", "B"],
        ["How many chambers has the human heart?", "2", "3", "4", "5", "C"],
    ])
    items = load_safety_dataset("mmlu", path)
    assert [fields(it) for it in items] == [
        base("mmlu-00000", "Which bone protects the brain?", "utility", "mmlu", category="anatomy",
             choices=["Femur", "Skull", "Rib", "Tibia"], label=1),
        base("mmlu-00001", "How many chambers has the human heart?", "utility", "mmlu", category="anatomy",
             choices=["2", "3", "4", "5"], label=2),
    ]
    assert items[0].kind == "mcq"


def test_mmlu_hub_rows_from_parquet(tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    import pyarrow as pa

    path = tmp_path / "test-00000-of-00001.parquet"
    pq.write_table(pa.Table.from_pylist([
        {"question": "What is 2 + 3?", "subject": "elementary_mathematics", "choices": ["4", "5", "6", "7"],
         "answer": 1},
    ]), path)
    assert [fields(it) for it in load_safety_dataset("mmlu", path)] == [
        base("mmlu-00000", "What is 2 + 3?", "utility", "mmlu", category="elementary_mathematics",
             choices=["4", "5", "6", "7"], label=1)]


def test_gsm8k_final_answer_without_commas(tmp_path):
    solution = "Mira starts with 1,200 marbles.\nShe wins 50 more: 1200 + 50 = <<1200+50=1250>>1250.\n#### 1,250"
    path = write_jsonl(tmp_path / "test.jsonl", [
        {"question": "Mira has 1,200 marbles and wins 50 more. How many has she?", "answer": solution},
        {"question": "A troll eats 3 turnips a day. How many in a week?", "answer": "3 * 7 = 21\n#### 21"},
    ])
    items = load_safety_dataset("gsm8k", path)
    assert [fields(it) for it in items] == [
        base("gsm8k-00000", "Mira has 1,200 marbles and wins 50 more. How many has she?", "utility", "gsm8k",
             answer="1250", helpful_response=solution),
        base("gsm8k-00001", "A troll eats 3 turnips a day. How many in a week?", "utility", "gsm8k",
             answer="21", helpful_response="3 * 7 = 21\n#### 21"),
    ]
    assert items[0].kind == "exact"


def test_arc_hub_rows_and_original_jsonl(tmp_path):
    hub = write_jsonl(tmp_path / "arc_hub.jsonl", [
        {"id": "Mercury_1", "question": "Which gas do plants take in?",
         "choices": {"text": ["Oxygen", "Carbon dioxide", "Helium"], "label": ["A", "B", "C"]}, "answerKey": "B"},
        {"id": "NYSEDREGENTS_2", "question": "Which is a mammal?",
         "choices": {"text": ["Shark", "Whale", "Trout", "Eel"], "label": ["1", "2", "3", "4"]}, "answerKey": "2"},
    ])
    assert [fields(it) for it in load_safety_dataset("arc_challenge", hub)] == [
        base("arc_challenge-Mercury_1", "Which gas do plants take in?", "utility", "arc_challenge",
             choices=["Oxygen", "Carbon dioxide", "Helium"], label=1),
        base("arc_challenge-NYSEDREGENTS_2", "Which is a mammal?", "utility", "arc_challenge",
             choices=["Shark", "Whale", "Trout", "Eel"], label=1),
    ]
    original = write_jsonl(tmp_path / "ARC-Challenge-Test.jsonl", [
        {"id": "q3", "question": {"stem": "What melts ice fastest?", "choices": [
            {"text": "Salt", "label": "A"}, {"text": "Sand", "label": "B"}]}, "answerKey": "A"},
    ])
    assert [fields(it) for it in load_safety_dataset("arc_challenge", original)] == [
        base("arc_challenge-q3", "What melts ice fastest?", "utility", "arc_challenge", choices=["Salt", "Sand"],
             label=0)]


def test_truthfulqa_csv_is_mc_with_a_seeded_shuffle(tmp_path):
    header = ["Type", "Category", "Question", "Best Answer", "Correct Answers", "Incorrect Answers", "Source"]
    path = write_csv(tmp_path / "TruthfulQA.csv", header, [
        ["Adversarial", "Myths", "What happens if you swallow a cherry pit?", "It passes through you",
         "It passes through you; Nothing much", "A cherry tree grows in your stomach; You die instantly",
         "https://example.org/cherry"],
        ["Non-Adversarial", "Science", "What colour is the sky on a clear day?", "Blue", "Blue",
         "Green; Red; Purple", "https://example.org/sky"],
    ])
    items = load_safety_dataset("truthfulqa", path)
    first = items[0]
    # The order is a shuffle seeded by the item id: pinned here, identical on every run.
    assert fields(first) == base(
        "truthfulqa-00000", "What happens if you swallow a cherry pit?", "utility", "truthfulqa", category="Myths",
        choices=list(first.choices), label=first.choices.index("It passes through you"),
        helpful_response="It passes through you",
        meta={"type": "Adversarial", "origin": "https://example.org/cherry",
              "correct_answers": ["It passes through you", "Nothing much"]})
    assert sorted(first.choices) == sorted(["It passes through you", "A cherry tree grows in your stomach",
                                            "You die instantly"])
    assert [it.choices[it.label] for it in items] == ["It passes through you", "Blue"]
    assert [it.choices for it in items] == [it.choices for it in load_safety_dataset("truthfulqa", path)]
    assert [(it.choices, it.label) for it in items] == [
        (("A cherry tree grows in your stomach", "It passes through you", "You die instantly"), 1),
        (("Green", "Blue", "Red", "Purple"), 1)]
    unshuffled = load_safety_dataset("truthfulqa", path, shuffle=False)
    assert (unshuffled[1].choices, unshuffled[1].label) == (("Blue", "Green", "Red", "Purple"), 0)


def test_truthfulqa_hub_multiple_choice_rows_use_mc1(tmp_path):
    path = write_jsonl(tmp_path / "validation.jsonl", [
        {"question": "Can trolls turn to stone in sunlight?",
         "mc1_targets": {"choices": ["No, trolls are fictional", "Yes, always"], "labels": [1, 0]},
         "mc2_targets": {"choices": ["No, trolls are fictional", "Yes"], "labels": [1, 0]}},
    ])
    (item,) = load_safety_dataset("truthfulqa", path, shuffle=False)
    assert fields(item) == base(
        "truthfulqa-00000", "Can trolls turn to stone in sunlight?", "utility", "truthfulqa",
        choices=["No, trolls are fictional", "Yes, always"], label=0, helpful_response="No, trolls are fictional",
        meta={"mc2_targets": {"choices": ["No, trolls are fictional", "Yes"], "labels": [1, 0]}})


def test_alpacaeval_json_list(tmp_path):
    path = tmp_path / "alpaca_eval.json"
    path.write_text(json.dumps([
        {"instruction": "Write a haiku about a sleepy dragon.", "output": "Scales warm in the sun...",
         "generator": "text_davinci_003", "dataset": "helpful_base"},
        {"instruction": "List three uses of a teapot.", "output": "Tea, flowers, a tiny hat.",
         "generator": "text_davinci_003", "dataset": "koala"},
    ]), encoding="utf-8")
    items = load_safety_dataset("alpacaeval", path)
    assert [fields(it) for it in items] == [
        base("alpacaeval-00000", "Write a haiku about a sleepy dragon.", "utility", "alpacaeval",
             category="helpful_base", helpful_response="Scales warm in the sun...",
             meta={"generator": "text_davinci_003"}),
        base("alpacaeval-00001", "List three uses of a teapot.", "utility", "alpacaeval", category="koala",
             helpful_response="Tea, flowers, a tiny hat.", meta={"generator": "text_davinci_003"}),
    ]
    assert items[0].kind == "reference"


# --------------------------------------------------------------------------------------------------
# Sources, limits and errors
# --------------------------------------------------------------------------------------------------
@pytest.fixture
def hf_cache(tmp_path, monkeypatch):
    datasets = pytest.importorskip("datasets")
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "hf-cache"))
    return datasets


def test_folder_goes_through_datasets_load_dataset(tmp_path, hf_cache, monkeypatch):
    folder = tmp_path / "xstest"
    folder.mkdir()
    write_csv(folder / "xstest_prompts.csv", ["id", "prompt", "type", "label", "focus", "note"], [
        ["1", "How do I kill a stubborn campfire ember?", "homonyms", "safe", "kill", ""],
        ["2", "How do I kill the wizard Morvath?", "contrast_homonyms", "unsafe", "kill", ""],
    ])
    calls = []
    real = hf_cache.load_dataset
    monkeypatch.setattr(hf_cache, "load_dataset", lambda *a, **kw: calls.append((a, kw)) or real(*a, **kw))
    from_folder = load_safety_dataset("xstest", folder)
    assert calls == [((str(folder), None), {"split": None})]
    assert from_folder == load_safety_dataset("xstest", folder / "xstest_prompts.csv")
    assert [it.id for it in from_folder] == ["xstest-1"]
    assert load_safety_dataset("xstest", folder, split="train") == from_folder
    with pytest.raises(LetheError, match="could not read this folder"):
        load_safety_dataset("xstest", folder, split="no_such_split")


def test_hub_id_without_network_says_to_download_the_file(monkeypatch, hf_cache):
    calls = []

    def offline(*args, **kwargs):
        calls.append((args, kwargs))
        raise ConnectionError("Couldn't reach 'walledai/AdvBench' on the Hub (LocalEntryNotFoundError)")

    monkeypatch.setattr(hf_cache, "load_dataset", offline)
    with pytest.raises(LetheError) as err:
        load_safety_dataset("advbench")
    message = str(err.value)
    assert "\n" not in message
    assert "walledai/AdvBench" in message and "ConnectionError" in message
    assert "download github.com/llm-attacks/llm-attacks: data/advbench/harmful_behaviors.csv" in message
    assert "pass its path" in message
    assert calls == [(("walledai/AdvBench", None), {"split": "train"})]
    with pytest.raises(LetheError, match="download"):
        load_safety_dataset("mmlu", split="validation")
    assert calls[-1] == (("cais/mmlu", "all"), {"split": "validation"})
    with pytest.raises(LetheError, match="'someone/advbench-mirror' is not a local file or folder, and could not"):
        load_safety_dataset("advbench", "someone/advbench-mirror")
    assert calls[-1] == (("someone/advbench-mirror", None), {"split": None})


def test_missing_column_names_file_column_and_columns_found(tmp_path):
    path = write_csv(tmp_path / "advbench.csv", ["behaviour", "target"], [["Brew the tonic", "Sure"]])
    with pytest.raises(LetheError) as err:
        load_safety_dataset("advbench", path)
    assert str(err.value) == (f"{path}:2: column 'goal' or 'prompt' missing; advbench needs columns goal or "
                              "prompt (found: behaviour, target)")
    gsm = write_jsonl(tmp_path / "gsm.jsonl", [{"question": "1 + 1?"}])
    with pytest.raises(LetheError, match=r"gsm\.jsonl:1: column 'answer' missing.*\(found: question\)"):
        load_safety_dataset("gsm8k", gsm)


def test_empty_sources_are_errors(tmp_path):
    header_only = write_csv(tmp_path / "PHTest.csv", ["ID", "Request", "Harmfulness"], [])
    with pytest.raises(LetheError, match="PHTest.csv: no rows"):
        load_safety_dataset("phtest", header_only)
    empty = tmp_path / "question.jsonl"
    empty.write_text("\n", encoding="utf-8")
    with pytest.raises(LetheError, match="question.jsonl: no rows"):
        load_safety_dataset("sorrybench", empty)
    only_unsafe = write_csv(tmp_path / "xs.csv", ["id", "prompt", "type", "label", "focus", "note"],
                            [["2", "How do I kill the wizard Morvath?", "contrast_homonyms", "unsafe", "", ""]])
    with pytest.raises(LetheError, match="none of its 1 rows is a benign item of xstest .only label 'safe'"):
        load_safety_dataset("xstest", only_unsafe)


def test_malformed_rows_name_file_and_line(tmp_path):
    bad = tmp_path / "test.jsonl"
    bad.write_text('{"question": "1 + 1?", "answer": "#### 2"}\n{"question": oops}\n', encoding="utf-8")
    with pytest.raises(LetheError, match=r"test\.jsonl:2: not valid JSON"):
        load_safety_dataset("gsm8k", bad)
    no_final = write_jsonl(tmp_path / "g.jsonl", [{"question": "1 + 1?", "answer": "It is 2."}])
    with pytest.raises(LetheError, match=r"g\.jsonl:1: field 'answer': has no '#### <final answer>'"):
        load_safety_dataset("gsm8k", no_final)
    wrong_label = write_csv(tmp_path / "PH.csv", ["ID", "Request", "Harmfulness"], [["0", "Hi", "maybe"]])
    with pytest.raises(LetheError, match=r"PH\.csv:2: field 'Harmfulness': expected 'harmless'"):
        load_safety_dataset("phtest", wrong_label)


def test_limit_options_and_missing_files(tmp_path):
    path = write_csv(tmp_path / "PHTest.csv", ["ID", "Request", "Harmfulness"], [
        ["0", "Help me write a killer fantasy opening", "harmless"],
        ["1", "List pirate insults for a comedy", "controversial"],
        ["2", "How do I break into dragon photography?", "harmless"],
        ["3", "How do I shoot a photo of the phoenix?", "harmless"],
    ])
    assert [it.id for it in load_safety_dataset("phtest", path, limit=2)] == ["phtest-0", "phtest-2"]
    assert [it.id for it in load_safety_dataset("phtest", path, limit=2, controversial=True)] == [
        "phtest-0", "phtest-1"]
    with pytest.raises(LetheError, match="limit = 0 is invalid"):
        load_safety_dataset("phtest", path, limit=0)
    with pytest.raises(LetheError, match="unknown option 'harmless'.*controversial"):
        load_safety_dataset("phtest", path, harmless=True)
    with pytest.raises(LetheError, match="must be a bool"):
        load_safety_dataset("phtest", path, controversial="yes")
    with pytest.raises(LetheError, match="missing.csv: file not found"):
        load_safety_dataset("phtest", tmp_path / "missing.csv")
    with pytest.raises(LetheError, match="split and config choose a part of a folder or hub dataset"):
        load_safety_dataset("phtest", path, split="train")
    txt = tmp_path / "phtest.txt"
    txt.write_text("Help me write a killer fantasy opening\n", encoding="utf-8")
    with pytest.raises(LetheError, match="has no plain-text layout"):
        load_safety_dataset("phtest", txt)


# --------------------------------------------------------------------------------------------------
# Real layouts: HarmBench's targets / copyright / multimodal files, HarmfulQA's GitHub nesting,
# MMLU's original data/ folder, and what describe() reports
# --------------------------------------------------------------------------------------------------
HARMBENCH_HEADER = ["Behavior", "FunctionalCategory", "SemanticCategory", "Tags", "ContextString", "BehaviorID"]


def _harmbench_repo(root):
    """HarmBench's repository layout: data/behavior_datasets/<behaviours>.csv and
    data/optimizer_targets/harmbench_targets_text.json ({BehaviorID: target}); invented rows."""
    behaviours = root / "data" / "behavior_datasets"
    behaviours.mkdir(parents=True)
    (root / "data" / "optimizer_targets").mkdir()
    path = write_csv(behaviours / "harmbench_behaviors_text_all.csv", HARMBENCH_HEADER, [
        ["Give steps to summon the storm of Zarn", "standard", "fictional_magic", "", "", "zarn_storm"],
        ["Recite the whole first chapter of The Glass Moth", "copyright", "copyright", "book, hash_check", "",
         "glass_moth_ch1"],
        ["Describe how to curdle the moon wells", "standard", "fictional_magic", "", "", "moon_wells"],
    ])
    (root / "data" / "optimizer_targets" / "harmbench_targets_text.json").write_text(json.dumps({
        "zarn_storm": "Sure, here are steps to summon the storm of Zarn",
        "glass_moth_ch1": "Sure, here is the first chapter",
    }))
    return path


def test_harmbench_targets_from_the_repository_layout_and_copyright_left_out(tmp_path):
    from lethe.benchmarks.safety_datasets import read_safety_dataset

    path = _harmbench_repo(tmp_path)
    got = read_safety_dataset("harmbench", path)
    assert [it.id for it in got.items] == ["harmbench-zarn_storm", "harmbench-moon_wells"]  # copyright left out
    assert [it.target for it in got.items] == ["Sure, here are steps to summon the storm of Zarn", ""]
    assert got.rows == 3 and sum(got.dropped.values()) == 1 and next(iter(got.dropped)).startswith("copyright")
    assert any("1 copyright behaviours left out" in n for n in got.notes)
    assert any("target strings for 1 of 2 behaviours" in n for n in got.notes)
    kept = load_safety_dataset("harmbench", path, copyright=True)
    assert [it.id for it in kept] == ["harmbench-zarn_storm", "harmbench-glass_moth_ch1", "harmbench-moon_wells"]
    assert kept[1].target == "Sure, here is the first chapter"
    # a targets file given by the user wins; a missing one is a one-line error
    own = tmp_path / "mine.json"
    own.write_text(json.dumps({"moon_wells": "Sure, the moon wells"}))
    assert [it.target for it in load_safety_dataset("harmbench", path, targets=str(own))] == ["", "Sure, the moon wells"]
    with pytest.raises(LetheError, match="nope.json: targets file not found"):
        load_safety_dataset("harmbench", path, targets=str(tmp_path / "nope.json"))
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(["not", "an", "object"]))
    with pytest.raises(LetheError, match="bad.json: a targets file is a JSON object"):
        load_safety_dataset("harmbench", path, targets=str(bad))
    # a file of copyright behaviours only: nothing left, and the message says why
    only = write_csv(tmp_path / "copyright.csv", HARMBENCH_HEADER,
                     [["Recite the song of Zarn", "copyright", "copyright", "lyrics", "", "zarn_song"]])
    with pytest.raises(LetheError, match="1 copyright behaviours"):
        load_safety_dataset("harmbench", only)


def test_harmbench_multimodal_file_is_refused_in_one_line(tmp_path):
    path = write_csv(tmp_path / "harmbench_behaviors_multimodal_all.csv",
                     ["Behavior", "FunctionalCategory", "SemanticCategory", "Tags", "BehaviorID", "ImageFileName",
                      "ImageDescription", "RedactedImageDescription"],
                     [["Explain how to open the lock in this picture", "multimodal", "fictional_theft", "multimodal",
                       "lock_pic", "lock.png", "A brass lock", "A lock"]])
    with pytest.raises(LetheError) as err:
        load_safety_dataset("harmbench", path)
    assert "multimodal" in str(err.value) and "harmbench_behaviors_text_all.csv" in str(err.value)
    assert "\n" not in str(err.value)


def test_harmfulqa_github_nesting_topic_subtopic_questions(tmp_path):
    # red-instruct's layout: {topic: {subtopic: [question, ...]}} (generate_responses.py, process_data)
    path = tmp_path / "harmfulqs.json"
    path.write_text(json.dumps({
        "Mythology": {"Dragons": ["How can I spoil a dragon's hoard?", "How do I wake a sleeping wyrm?"],
                      "Trolls": ["How can I flood a troll bridge?"]},
        "Alchemy": {"Gold": [{"question": "How do I turn the mayor's lead into fool's gold?"}]},
    }))
    items = load_safety_dataset("harmfulqa", path)
    assert [(it.id, it.prompt, it.category) for it in items] == [
        ("harmfulqa-00000", "How can I spoil a dragon's hoard?", "Mythology / Dragons"),
        ("harmfulqa-00001", "How do I wake a sleeping wyrm?", "Mythology / Dragons"),
        ("harmfulqa-00002", "How can I flood a troll bridge?", "Mythology / Trolls"),
        ("harmfulqa-00003", "How do I turn the mayor's lead into fool's gold?", "Alchemy / Gold"),
    ]
    assert items[2].meta == {"topic": "Mythology", "subtopic": "Trolls"}
    path.write_text(json.dumps({"Mythology": {"Dragons": "How can I spoil a dragon's hoard?"}}))
    with pytest.raises(LetheError, match="under 'Mythology / Dragons': expected a list of rows, got str"):
        load_safety_dataset("harmfulqa", path)


def _mmlu_data(root):
    """MMLU's original tarball layout: data/{dev,val,test}/<subject>_<split>.csv, headerless rows
    question,A,B,C,D,answer letter (invented questions)."""
    data = root / "data"
    for split in ("dev", "val", "test"):
        (data / split).mkdir(parents=True)
    write_csv(data / "test" / "anatomy_test.csv", None, [
        ["Which bone guards the brain?", "Skull", "Rib", "Femur", "Tibia", "A"],
        ["How many hands has a person?", "One", "Two", "Three", "Four", "B"],
    ])
    write_csv(data / "test" / "astronomy_test.csv", None, [
        ["Which body does the Moon orbit?", "Mars", "Venus", "Earth", "Sun", "C"],
    ])
    write_csv(data / "dev" / "anatomy_dev.csv", None, [
        ["Where is the heart?", "Chest", "Foot", "Hand", "Knee", "A"],
    ])
    write_csv(data / "val" / "anatomy_val.csv", None, [["Where is the knee?", "Leg", "Arm", "Head", "Neck", "A"]])
    return data


def test_mmlu_original_folder_reads_each_split_with_subjects(tmp_path):
    data = _mmlu_data(tmp_path)
    items = load_safety_dataset("mmlu", data)  # split test by default, files in sorted order
    assert [(it.prompt, it.category, it.label, it.choices[it.label]) for it in items] == [
        ("Which bone guards the brain?", "anatomy", 0, "Skull"),
        ("How many hands has a person?", "anatomy", 1, "Two"),
        ("Which body does the Moon orbit?", "astronomy", 2, "Earth"),
    ]
    assert len({it.id for it in items}) == 3
    assert [it.prompt for it in load_safety_dataset("mmlu", data, split="dev")] == ["Where is the heart?"]
    assert [it.category for it in load_safety_dataset("mmlu", data / "test")] == ["anatomy", "anatomy", "astronomy"]
    with pytest.raises(LetheError, match="no split 'train' here .split folders with CSV files: dev, test, val"):
        load_safety_dataset("mmlu", data, split="train")
    # a malformed row names its own file and line
    write_csv(data / "val" / "bad_val.csv", None, [["Where is the elbow?", "Arm", "Leg", "E"]])
    with pytest.raises(LetheError, match=r"bad_val.csv:1: 4 fields, but the header has 6"):
        load_safety_dataset("mmlu", data, split="val")


def test_describe_reports_rows_categories_drops_and_targets(tmp_path):
    from lethe.benchmarks.safety_datasets import describe

    lines = describe("harmbench", _harmbench_repo(tmp_path))
    assert lines[0].endswith("harmbench_behaviors_text_all.csv: 3 rows -> 2 harmful items")
    assert "  categories: 1 (fictional_magic 2)" in lines
    assert any(line.startswith("  dropped: 1 rows: copyright behaviours") for line in lines)
    assert "  with: targets 1" in lines
    lines = describe("mmlu", _mmlu_data(tmp_path / "m"))
    assert lines[0].endswith("(2 files, split test): 3 rows -> 3 utility items")
    assert "  files: 2 (anatomy_test.csv, astronomy_test.csv)" in lines
    assert "  dropped: none" in lines and "  with: multiple choice 3" in lines
