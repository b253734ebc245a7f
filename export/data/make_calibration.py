"""Write export/data/calibration.txt, the calibration text of `rounding=gptq` (export/gptq.py).

Run from the repository root with the project's Python (the text depends on its stdlib)::

    .venv/bin/python export/data/make_calibration.py

The texts come from CPython's own docstrings and source (varied English prose, short and long,
and code), plus the non-English lines below, written for this project. Nothing is downloaded and
nothing comes from the quality sentences (export/data/sentences.txt) or from a judged set, so
the gate measures the model on text the calibration never saw. Deterministic: modules, names
and paragraphs are walked in sorted order and picked by a fixed stride."""

from __future__ import annotations

import importlib
import inspect
import platform
import re
from pathlib import Path

OUT = Path(__file__).with_name("calibration.txt")
MODULES = (
    "argparse", "ast", "bisect", "calendar", "codecs", "collections", "colorsys", "contextlib", "csv",
    "dataclasses", "datetime", "decimal", "difflib", "doctest", "email.message", "enum", "fileinput",
    "fractions", "ftplib", "functools", "gettext", "hashlib", "heapq", "hmac", "html.parser",
    "http.client", "imaplib", "inspect", "ipaddress", "itertools", "json", "locale", "logging",
    "pathlib", "pprint", "queue", "random", "re", "secrets", "shutil", "smtplib", "socket", "sqlite3",
    "statistics", "string", "tarfile", "textwrap", "threading", "tokenize", "typing", "unittest",
    "urllib.parse", "uuid", "wave", "xml.dom.minidom", "zipfile",
)
# Written for this project: everyday sentences in other languages and scripts, so the
# calibration sees the non-English token statistics the gate also covers.
OTHER_LANGUAGES = (
    "Der Zug nach München fährt heute wegen Bauarbeiten zwanzig Minuten später ab.",
    "Bitte speichern Sie die Datei, bevor Sie das Programm schließen.",
    "La bibliothèque municipale ouvre ses portes à neuf heures le samedi matin.",
    "Pouvez-vous m'expliquer comment fonctionne cette fonction de recherche ?",
    "El mercado central vende frutas frescas, pescado y pan recién hecho todos los días.",
    "¿Cuál es la mejor manera de aprender un idioma nuevo en poco tiempo?",
    "Il museo resterà chiuso per restauro fino alla fine di marzo.",
    "O relatório anual mostra um crescimento de doze por cento nas vendas.",
    "De fietsenstalling bij het station is gratis voor de eerste vierentwintig uur.",
    "Programmet startar om datorn automatiskt efter uppdateringen.",
    "Kiedy zaczyna się semestr zimowy na uniwersytecie?",
    "Bu akşam yağmur yağacak, şemsiyeni almayı unutma.",
    "Сегодня вечером в театре покажут новую постановку известной пьесы.",
    "Как настроить резервное копирование базы данных каждую ночь?",
    "Η θάλασσα ήταν ήρεμη και το νερό πολύ καθαρό.",
    "今日は午後から雨が降るので、傘を持って出かけてください。",
    "このライブラリはブラウザの中で文章の意味検索を行います。",
    "我们明天上午十点在图书馆门口见面。",
    "这个函数返回列表中所有偶数的和。",
    "서울의 지하철은 깨끗하고 빠르며 요금도 저렴합니다.",
    "मुझे स्टेशन तक पहुँचने का सबसे छोटा रास्ता बताइए।",
    "القطار القادم سيصل إلى المحطة بعد خمس دقائق.",
    "הספרייה פתוחה עד שמונה בערב בימי חול.",
    "Hôm nay trời nắng đẹp, chúng ta đi dạo công viên nhé.",
    "Saya ingin memesan meja untuk empat orang malam ini.",
    "Kahvila avautuu arkisin kello seitsemän.",
    "Hvor lang tid tager det at gå til havnen herfra?",
    "Ez a program a szöveg jelentése alapján keres.",
)


def _clean(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def _docs() -> tuple[list[str], list[str]]:
    """(paragraphs of docstrings, source snippets), in a fixed order."""
    paragraphs, code = [], []
    for name in MODULES:
        mod = importlib.import_module(name)
        objs = [mod] + [getattr(mod, a) for a in sorted(vars(mod)) if not a.startswith("_")]
        for obj in objs:
            if not (inspect.ismodule(obj) or inspect.isclass(obj) or inspect.isfunction(obj)):
                continue
            if getattr(obj, "__module__", name) != name and obj is not mod:
                continue  # re-exported from another module
            doc = inspect.getdoc(obj) or ""
            for para in doc.split("\n\n"):
                para = _clean(para)
                if len(para) >= 20 and not para.startswith((">>>", "...")):
                    paragraphs.append(para)
            if inspect.isfunction(obj):
                try:
                    src = inspect.getsource(obj)
                except (OSError, TypeError):
                    continue
                if 200 <= len(src) <= 1500:
                    code.append(_clean(src))  # one line; the tokenizer ignores layout anyway
    return paragraphs, code


def build() -> list[str]:
    paragraphs, code = _docs()
    paragraphs = list(dict.fromkeys(paragraphs))
    short = [p for p in paragraphs if len(p) < 120]
    mid = [p for p in paragraphs if 120 <= len(p) < 500]
    long_ = [p for p in paragraphs if len(p) >= 500]
    out: list[str] = []
    for pool, count in ((short, 120), (mid, 160), (long_, 60), (code, 40)):
        stride = max(1, len(pool) // count)
        out += pool[::stride][:count]
    # a few long texts (several paragraphs joined) reach the model's 256-token limit
    out += [" ".join(mid[i:i + 6]) for i in range(0, min(len(mid), 6 * 20), 6)]
    out += list(OTHER_LANGUAGES)
    # calibration_texts() skips blank and "#" lines (comments), so they are not written at all
    return [line for line in out if line.strip() and not line.startswith("#")]


def main() -> None:
    lines = build()
    header = (
        f"# websem GPTQ calibration text: {len(lines)} lines generated by export/data/make_calibration.py "
        f"from CPython {platform.python_version()} stdlib docstrings and source, plus hand-written "
        "non-English lines. One text per line; # lines are comments. Regenerate, do not edit."
    )
    OUT.write_text(header + "\n" + "\n".join(lines) + "\n", encoding="utf-8")
    print(f"{OUT}: {len(lines)} lines")


if __name__ == "__main__":
    main()
