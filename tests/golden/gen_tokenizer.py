#!/usr/bin/env python3
"""Build the tokenizer goldens: tests/golden/tokenizer/llama2.{in,ids}.

lamp's encoder must give exactly the ids that the SentencePiece library
gives for the Llama 2 tokenizer (without BOS). This script writes a set of
input lines and, for each, the ids that `sentencepiece` produces, so that
tests/test_tokenizer.c can compare against them without Python.

The lines (all deterministic, seeded):
  * ~800 lines sampled from data/tinystories/valid.txt,
  * ~600 lines sampled from data/tinyshakespeare/input.txt,
  * ~700+ crafted lines: whitespace runs of 1-17 spaces (leading, trailing,
    inner), tabs, mixed tab/space, carriage returns, control characters,
    Latin scripts with accents, Greek, Cyrillic, Arabic, Hebrew, Hindi,
    Chinese, Japanese, Korean, emoji (ZWJ sequences, skin tones, flags),
    math, code, numbers, text that looks like special pieces ("<s>",
    "<0x41>", "▁"), U+FFFD, rare code points, malformed UTF-8 of every kind,
    a few very long lines and a few lines of random bytes.
No line contains "\\n" or "\\0".

Output:
  llama2.in   the raw lines, each followed by "\\n" (bytes, not necessarily UTF-8)
  llama2.ids  line i holds the space-separated ids of sp.encode(line i) (no
              BOS/EOS); an empty line when there are no ids.

Usage (from the repository root):
  ~/.cache/lamp/venv/bin/python -m tests.golden.gen_tokenizer
"""
import os
import random
import sys

import sentencepiece as spm

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
MODEL = os.path.join(ROOT, "tests", "data", "llama2", "tokenizer.model")
# LAMP_GOLDEN_DIR redirects the output (tests/golden/check_goldens.py uses it)
OUT_DIR = os.path.join(os.environ.get("LAMP_GOLDEN_DIR", os.path.join(ROOT, "tests", "golden")), "tokenizer")
SEED = 20240611

N_STORIES = 800
N_SHAKESPEARE = 600


def read_lines(path):
    with open(path, "rb") as f:
        data = f.read()
    lines = data.split(b"\n")
    if data.endswith(b"\n"):
        lines.pop()
    return lines


def sample_lines(rng, path, n):
    """n lines of the file in file order: n - 2 non-empty ones and 2 empty ones
    (about half the lines of both corpora are empty; a few are enough)."""
    lines = read_lines(os.path.join(ROOT, path))
    nonempty = [i for i, line in enumerate(lines) if line]
    empty = [i for i, line in enumerate(lines) if not line]
    idx = sorted(rng.sample(nonempty, n - 2) + rng.sample(empty, 2))
    return [lines[i] for i in idx]


def u(s):
    return s.encode("utf-8")


# --------------------------------------------------------------------------
# Crafted text pools (str); turned into bytes with u().

LATIN = [
    "Où est la bibliothèque ? Je ne sais pas, désolé.",
    "L'été dernier, nous sommes allés à Noël chez ma grand-mère à Besançon.",
    "Ça va très bien, merci ! Et toi, ça roule ?",
    "Françoise a reçu un cœur en œuvre d'art: « chef-d'œuvre ».",
    "Größe, Übung, Ärger und Öl: Das Straßenfest fällt aus.",
    "Die Bäckerei schließt um 18 Uhr. Grüß Gott!",
    "Fußgängerübergänge sind für Kinder gefährlich.",
    "Tiếng Việt có nhiều dấu: à á ả ã ạ ă ằ ắ ẳ ẵ ặ â ầ ấ ẩ ẫ ậ.",
    "Xin chào, tôi tên là Nguyễn Văn Đức. Rất vui được gặp bạn!",
    "Đường phố Hà Nội rất đông người vào buổi sáng.",
    "Zażółć gęślą jaźń. Łódź jest dużym miastem w Polsce.",
    "Chrząszcz brzmi w trzcinie w Szczebrzeszynie.",
    "Příliš žluťoučký kůň úpěl ďábelské ódy.",
    "¿Dónde está el niño? ¡Qué sorpresa! Mañana será otro día.",
    "Açaí, pão de queijo e coração: não há nada melhor.",
    "Ísland, Færeyjar og Danmörk eru norræn lönd; þetta er ð.",
    "Árvíztűrő tükörfúrógép – magyar ékezetek.",
    "Şişli'de çay içtik; ğ ı İ ş ç ö ü Türkçe harfler.",
    "naïve café résumé coöperate façade jalapeño São Paulo Zürich",
    "Åsa och Östen åt smörgåsar på ön.",
    "Ærø, Ålborg og Øresund er danske stednavne.",
    "Lietuvių kalba: ą č ę ė į š ų ū ž.",
    "Latviešu: ā č ē ģ ī ķ ļ ņ š ū ž.",
    "Română: ă â î ș ț — Bună ziua!",
    "Combining: e\u0301 a\u0300 o\u0308 n\u0303 (decomposed accents)",
    "ﬁ ﬂ ﬀ ligatures and ẞ capital sharp s",
]

SCRIPTS = [
    "Καλημέρα κόσμε! Η γλώσσα μου έδωσαν ελληνική.",
    "Ο Σωκράτης είπε: «Ἓν οἶδα ὅτι οὐδὲν οἶδα».",
    "αβγδεζηθικλμνξοπρστυφχψω ΑΒΓΔΕΖΗΘΙΚΛΜΝΞΟΠΡΣΤΥΦΧΨΩ",
    "Привет, мир! Как дела? Всё хорошо, спасибо.",
    "Съешь же ещё этих мягких французских булок, да выпей чаю.",
    "Україна, Київ, їжак, ґанок, є.",
    "Српски: Љубав, Његош, Џеп, Ђорђе.",
    "Болгарски: Ъгъл, щастие, юнак.",
    "مرحبا بالعالم! كيف حالك اليوم؟",
    "اللغة العربية جميلة جداً، وهي لغة القرآن.",
    "في عام ٢٠٢٤ كان الطقس حاراً.",
    "שלום עולם! מה שלומך היום?",
    "עברית נכתבת מימין לשמאל, כמו ערבית.",
    "नमस्ते दुनिया! आप कैसे हैं?",
    "हिन्दी भारत की राजभाषा है। क्षत्रिय, ज्ञान, श्रृंगार।",
    "বাংলা ভাষা সুন্দর।",
    "தமிழ் ஒரு பழமையான மொழி.",
    "ภาษาไทยไม่มีช่องว่างระหว่างคำ",
    "ქართული ენა ლამაზია.",
    "Հայերեն լեզու",
    "你好，世界！今天天气很好。",
    "我爱北京天安门，天安门上太阳升。",
    "中華人民共和國與中华人民共和国：繁體和简体。",
    "龘靐齉爩 — rare CJK characters; 𠀀𠀁𪚥 in plane 2.",
    "こんにちは世界！今日はいい天気ですね。",
    "カタカナとひらがなと漢字が混ざっています。ｶﾀｶﾅ半角",
    "吾輩は猫である。名前はまだ無い。",
    "안녕하세요, 세계! 오늘 날씨가 좋네요.",
    "한국어는 한글로 씁니다. ㄱㄴㄷㄹ ㅏㅑㅓㅕ",
    "Mixed: Hello 世界 Привет مرحبا שלום नमस्ते 안녕 こんにちは",
    "ᚠᚢᚦᚨᚱᚲ runes and 𐌰𐌱𐌲 Gothic",
    "ꦧꦱꦗꦮ Javanese script",
    "ᐃᓄᒃᑎᑐᑦ Inuktitut syllabics",
]

EMOJI = [
    "😀😃😄😁😆😅😂🤣",
    "I love pizza 🍕 and coffee ☕!",
    "👍 👍🏻 👍🏼 👍🏽 👍🏾 👍🏿",
    "👨‍👩‍👧‍👦 family, 👩‍💻 technologist, 🏳️‍🌈 rainbow flag, 🏴‍☠️ pirate",
    "🧑🏽‍🚀 astronaut with skin tone, 👨🏿‍🦰 red hair",
    "Flags: 🇺🇸 🇫🇷 🇩🇪 🇯🇵 🇧🇷 🇮🇳 🇺🇦 🇪🇺",
    "🏴󠁧󠁢󠁳󠁣󠁴󠁿 Scotland tag sequence",
    "❤️ ❤ ♥️ ✨ ⭐ 🌟 — variation selectors",
    "Keycaps: 1️⃣ 2️⃣ #️⃣ *️⃣",
    "🐶🐱🐭🐹🐰🦊🐻🐼🐨🐯🦁🐮",
    "The cat 🐈 sat on the mat 🧶.",
    "🤷‍♀️🤦‍♂️🙋🏾‍♀️",
    "emoji at end 🎉",
    "🎉 emoji at start",
]

MATH = [
    "∀x ∈ ℝ: x² ≥ 0",
    "∫₀^∞ e^{-x²} dx = √π / 2",
    "∑_{n=1}^{∞} 1/n² = π²/6 ≈ 1.6449",
    "a ≠ b, a ≤ b, a ≥ b, a ≪ b, ∂f/∂x, ∇·F, ∮",
    "ℕ ⊂ ℤ ⊂ ℚ ⊂ ℝ ⊂ ℂ; ∅, ∞, ℵ₀",
    "E = mc²  and  F = G·m₁·m₂/r²",
    "±×÷∓√∛∜∝∟∠∡∢∣∤∥∦∧∨∩∪",
    "𝔸𝔹ℂ 𝕏𝕐ℤ 𝒜ℬ𝒞 𝐀𝐁𝐂 — mathematical alphanumerics",
    "⟨ψ|φ⟩ → ⟦x⟧ ⇒ ⇔ ↦ ↑↓←→",
    "½ ⅓ ¼ ⅛ ¾ ‰ ° µ Ω Å",
]

CODE = [
    "int main(void) { return 0; }",
    "for (int i = 0; i < n; i++) {",
    "    x[i] = y[i] * 2.0f + 1;",
    "\tif (a == b && c != d) return -1;",
    "def f(x):\treturn x ** 2  # square",
    "        print(f\"{name!r}: {value:>10.3f}\")",
    "const std::vector<int> v = {1, 2, 3};",
    "SELECT * FROM users WHERE id = 42 AND name LIKE '%bob%';",
    "<html><body><p class=\"x\">Hello &amp; goodbye</p></body></html>",
    "{\"key\": [1, 2.5, true, null, \"\\u00e9\"]}",
    "$ echo $HOME && ls -la | grep '^d' > /dev/null 2>&1",
    "regex: ^[a-zA-Z0-9_.+-]+@[a-zA-Z0-9-]+\\.[a-zA-Z0-9-.]+$",
    "x = a?.b ?? c; y = (z) => z >>> 2;",
    "#include <stdio.h>",
    "   // comment with trailing spaces   ",
    "fn main() { println!(\"Hello, {}!\", \"world\"); }",
    "let s = 'it''s';  -- SQL escape",
    "path\\to\\file.txt and C:\\Windows\\System32",
    "~`!@#$%^&*()_+-=[]{}|;':\",./<>?",
    "a_b__c___d____e",
    "-----====*****#####",
    "...............",
    "!!!???!!!",
]

SPECIAL = [
    "<s>", "</s>", "<unk>", "<0x41>", "<0x0A>", "<0xFF>", "<pad>", "<mask>",
    "▁", "▁▁x", "▁x▁y", "a▁b", "▁▁▁▁▁", "x▁", " ▁ ", "▁ ▁",
    "<s> hello </s>", "<s><s></s></s>", "text<unk>text", "<|endoftext|>",
    "[INST] hello [/INST]", "<<SYS>>\nnope<</SYS>>".replace("\n", " "),
    " ⁇ ", "⁇",
]

RARE = [
    "\ufffd", "a\ufffdb", "\ufffd\ufffd\ufffd", " \ufffd ",
    "\ue000", "\uf8ff", "x\ue000y", "\U000f0000", "\U0010fffd", "\U0010ffff",
    "\U00100000 private plane 16", "\ufeffBOM at start", "mid\ufeffBOM",
    "\u200b zero\u200bwidth \u200c\u200d", "\u00a0non-breaking\u00a0space\u00a0",
    "ideographic\u3000space", "\u2028line separator\u2029paragraph",
    "\u0085next line", "\ufffe\uffff noncharacters", "\ufdd0\ufdef",
    "\u202eRTL override\u202c", "\u00ad soft hyphen", "\U0001f000\U0001fbff",
    "\U000e0001\U000e007f tags", "\u0301 leading combining mark",
    "\U0001d11e musical G clef", "\x7f DEL",
]

CONTROL = [
    "\x01\x02\x03\x04\x05\x06\x07\x08",
    "bell\x07 backspace\x08 vt\x0b ff\x0c",
    "\x1b[31mred\x1b[0m",
    "\x0e\x0f\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1c\x1d\x1e\x1f",
    "x\x7fy",
]

CR = [
    "\r", "\r\r", "a\rb", "line ending\r", "\rstart", " \r ", "\r \r", "a \r\t b",
    "windows line\r", "carriage\r\rreturns\r\r\r", "\t\r\t",
]

WORDS = ("the a of and to in is it that was he she they big small happy dog cat "
         "tree house sun moon run jump play friend Lily Tom Ben mom dad").split()

NUMBERS = [
    "0", "1", "42", "007", "123456789", "3.14159", "-2.5e-10", "1,000,000",
    "1 000 000", "2024-06-11", "12:34:56", "+1 (555) 123-4567", "0xDEADBEEF",
    "1e100", "99.99%", "$1,234.56", "€5", "¥100", "£3.50", "١٢٣٤٥", "१२३",
    "一二三", "①②③", "Ⅰ Ⅱ Ⅲ Ⅳ", "x1y2z3", "v1.2.3-rc4", "192.168.0.1",
]


def malformed_lines():
    """Byte strings with malformed UTF-8 at the start, middle and end."""
    bad = [
        b"\x80", b"\xbf", b"\x80\x80", b"\xbf\xbf\xbf",  # stray continuation bytes
        b"\xc3", b"\xe2\x82", b"\xe2", b"\xf0\x9f\x98", b"\xf0\x9f", b"\xf0",  # truncated
        b"\xc0\xaf", b"\xc1\xbf", b"\xe0\x80\xaf", b"\xf0\x80\x80\xaf",  # overlong
        b"\xed\xa0\x80", b"\xed\xbf\xbf", b"\xed\xa0\xbd\xed\xb8\x80",  # surrogates
        b"\xf4\x90\x80\x80", b"\xf7\xbf\xbf\xbf",  # above U+10FFFF
        b"\xf5", b"\xf8", b"\xfc", b"\xfe", b"\xff", b"\xf8\x88\x80\x80\x80",
        b"\xfc\x84\x80\x80\x80\x80", b"\xfe\xff", b"\xff\xfe",
        b"\xc3\x28", b"\xe2\x28\xa1", b"\xe2\x82\x28", b"\xf0\x28\x8c\xbc",
        b"\xf0\x90\x28\xbc", b"\xf0\x28\x8c\x28",
    ]
    out = []
    for b in bad:
        out.append(b)
        out.append(b + b"abc")
        out.append(b"abc" + b)
        out.append(b"hello " + b + b" world")
        out.append(b" " + b + b" ")
    # sequences mixed with valid multibyte characters
    out += [
        b"caf\xc3",                       # truncated at end of line
        b"\xa9t\xc3\xa9",                 # stray continuation at start
        b"\xe4\xbd\xa0\xe5\xa5",          # CJK then truncated CJK
        b"\xe4\xbd\xa0\xe5\xa5\xbd\x80",  # valid CJK then stray byte
        b"\xf0\x9f\x98\x80\xf0\x9f\x98",  # emoji then truncated emoji
        b"\xe2\x82\xac\xe2\x82",          # euro then truncated euro
        b"\xc3\xa9\xc3",                  # é then truncated
        b"\x80\xe2\x82\xac\x80",          # euro between strays
        b"a\x80b\x81c\x82d\xbfe",
        b"\xc2\xc2\xc2\xa0",
        b"\xe0\xa0\x80 \xe0\x9f\xbf",     # U+0800 valid, E0 9F BF overlong
        b"\xf0\x90\x80\x80 \xf0\x8f\xbf\xbf",  # U+10000 valid, F0 8F.. overlong
        b"\xf4\x8f\xbf\xbf \xf4\x90\x80\x80",  # U+10FFFF valid, U+110000 invalid
        b"\xef\xbf\xbd\x80",              # real U+FFFD then a bad byte (both FFFD)
        b"  \x80  ",
        b"\t\xff\t",
        b"\x80" * 17,
        b"\xff" * 5 + b" " * 5 + b"\xfe" * 5,
        b"<0x80>\x80",
        b"\xe2\x96\x81\x80",              # '▁' then stray byte
        b"\xe2\x96",                      # truncated '▁'
    ]
    return out


def spaces(rng, lo=1, hi=17):
    return " " * rng.randint(lo, hi)


def whitespace_lines(rng):
    out = []
    for n in range(1, 18):
        s = " " * n
        out += [s, s + "x", "x" + s, "a" + s + "b", s + "hello world" + s,
                "Once" + s + "upon a time", s + "\t" + s]
    for n in range(1, 9):
        t = "\t" * n
        out += [t, t + "indented", "a" + t + "b", "trailing" + t]
    mixed_units = [" ", "\t", "  ", " \t", "\t ", "    "]
    for _ in range(40):
        ws = "".join(rng.choice(mixed_units) for _ in range(rng.randint(1, 6)))
        w = rng.sample(WORDS, 3)
        pattern = rng.randrange(4)
        if pattern == 0:
            out.append(ws + " ".join(w))
        elif pattern == 1:
            out.append(" ".join(w) + ws)
        elif pattern == 2:
            out.append(w[0] + ws + w[1] + ws + w[2])
        else:
            out.append(ws + w[0] + ws + w[1] + ws)
    for _ in range(40):
        # words separated by random runs of 1..17 spaces, leading/trailing too
        parts = [spaces(rng, 0, 17)]
        for w in rng.sample(WORDS, rng.randint(1, 6)):
            parts.append(w)
            parts.append(spaces(rng))
        if rng.random() < 0.5:
            parts[-1] = ""
        out.append("".join(parts))
    out += ["\t", " \t ", "\t \t", "a\tb\tc", "col1\tcol2\tcol3", "   \t\t   x"]
    return out


def random_valid_unicode(rng, n):
    ranges = [(0x20, 0x7e), (0xa0, 0x24f), (0x370, 0x3ff), (0x400, 0x4ff),
              (0x590, 0x6ff), (0x900, 0x97f), (0x3040, 0x30ff), (0x4e00, 0x9fff),
              (0xac00, 0xd7a3), (0x1f300, 0x1f6ff), (0x2000, 0x2bff),
              (0xe000, 0xf8ff), (0x10000, 0x1ffff), (0x20000, 0x2a6df),
              (0xf0000, 0x10ffff)]
    chars = []
    for _ in range(n):
        lo, hi = rng.choice(ranges)
        chars.append(chr(rng.randint(lo, hi)))
        if rng.random() < 0.15:
            chars.append(" " * rng.randint(1, 4))
    return "".join(chars)


def random_bytes(rng, n):
    alphabet = [b for b in range(1, 256) if b != 0x0a]
    return bytes(rng.choice(alphabet) for _ in range(n))


def crafted_lines(rng, story_lines, shakespeare_lines):
    lines = []
    lines += [u(s) for s in whitespace_lines(rng)]
    lines += [u(s) for s in CR]
    for pool in (LATIN, SCRIPTS, EMOJI, MATH, CODE, SPECIAL, RARE, CONTROL, NUMBERS):
        lines += [u(s) for s in pool]
        # the same texts with whitespace runs around them
        for s in pool:
            lines.append(u(spaces(rng) + s + spaces(rng)))
    lines += malformed_lines()
    # numbers and digit runs
    for n in range(1, 25):
        lines.append(u("".join(rng.choice("0123456789") for _ in range(n))))
    for _ in range(20):
        lines.append(u(str(rng.randint(-10**12, 10**12)) + " " + "%.*f" % (rng.randint(0, 8), rng.uniform(-1e4, 1e4))))
    # random mixes of everything (valid UTF-8)
    pools = LATIN + SCRIPTS + EMOJI + MATH + CODE + SPECIAL + RARE + NUMBERS + WORDS
    for _ in range(150):
        k = rng.randint(2, 6)
        seps = ["", " ", "  ", "\t", spaces(rng), " \t "]
        lines.append(u("".join(rng.choice(pools) + rng.choice(seps) for _ in range(k))))
    # random mixes with malformed bytes sprinkled in
    bad = malformed_lines()
    for _ in range(60):
        parts = []
        for _ in range(rng.randint(2, 5)):
            parts.append(u(rng.choice(pools)) if rng.random() < 0.6 else rng.choice(bad))
            parts.append(rng.choice([b"", b" ", b"  ", b"\t"]))
        lines.append(b"".join(parts))
    # random valid code points
    for _ in range(50):
        lines.append(u(random_valid_unicode(rng, rng.randint(1, 60))))
    # random bytes (anything but \n and \0)
    for _ in range(25):
        lines.append(random_bytes(rng, rng.randint(1, 200)))
    # very long lines (several KB)
    long_story = b" ".join(s for s in story_lines if s)[:6000]
    lines.append(long_story)
    lines.append(b" ".join(s for s in shakespeare_lines if s)[:4000])
    lines.append(b" " * 3000)
    lines.append(b"x" + b" " * 2500 + b"y" + b"\t" * 500)
    lines.append(u(("你好世界，" * 400)))
    lines.append(u(("😀👍🏽🇫🇷" * 300)))
    lines.append(u(random_valid_unicode(rng, 2000)))
    lines.append(random_bytes(rng, 5000))
    lines.append(b"ab" * 3000)
    lines.append(b"a" * 4000)
    lines.append((b"\x80" + b"caf\xc3\xa9 ") * 600)
    # empty line
    lines.append(b"")
    return lines


def main():
    rng = random.Random(SEED)
    stories = sample_lines(rng, "data/tinystories/valid.txt", N_STORIES)
    shakespeare = sample_lines(rng, "data/tinyshakespeare/input.txt", N_SHAKESPEARE)
    crafted = crafted_lines(rng, stories, shakespeare)
    lines = stories + shakespeare + crafted
    for i, line in enumerate(lines):
        assert b"\n" not in line and b"\0" not in line, (i, line)

    sp = spm.SentencePieceProcessor(model_file=MODEL)
    assert sp.vocab_size() == 32000
    ids = sp.encode(lines)  # a list of bytes: encoded as raw bytes, no BOS/EOS

    os.makedirs(OUT_DIR, exist_ok=True)
    with open(os.path.join(OUT_DIR, "llama2.in"), "wb") as f:
        for line in lines:
            f.write(line + b"\n")
    with open(os.path.join(OUT_DIR, "llama2.ids"), "w", encoding="ascii", newline="\n") as f:
        for row in ids:
            f.write(" ".join(str(i) for i in row) + "\n")

    n_invalid = 0
    for line in lines:
        try:
            line.decode("utf-8")
        except UnicodeDecodeError:
            n_invalid += 1
    print("sentencepiece %s" % spm.__version__)
    print("wrote %d lines (%d stories, %d shakespeare, %d crafted; %d not valid UTF-8), %d ids"
          % (len(lines), len(stories), len(shakespeare), len(crafted), n_invalid,
             sum(len(r) for r in ids)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
