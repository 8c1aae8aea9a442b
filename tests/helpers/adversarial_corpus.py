"""A corpus of hostile completions, generated in code: LaTeX bombs, power towers, deep nesting, megabyte strings, NUL
bytes, code-injection attempts, unbalanced tags, lone surrogates, regex-backtracking bait and odd completion types.

``build_corpus(sentinel)`` returns ``(label, completion)`` pairs. ``sentinel`` is an absolute path that the injection
payloads try to create: a grader that evaluates model text would leave a file there.
"""

from __future__ import annotations

MB = 1_000_000


def _nest(open_: str, close: str, depth: int, core: str = "1") -> str:
    return open_ * depth + core + close * depth


def _bombs(sentinel: str) -> list[tuple[str, str]]:
    """Hostile answers (the part a grader would try to parse or evaluate)."""
    touch = f"__import__('os').system('touch {sentinel}')"
    return [
        # LaTeX bombs
        ("frac-500-deep", _nest("\\frac{1}{", "}", 500, "2")),
        ("sqrt-1000-deep", _nest("\\sqrt{", "}", 1000, "2")),
        ("left-right-3000", _nest("\\left(", "\\right)", 3000)),
        ("braces-5000", _nest("{", "}", 5000)),
        ("def-macro-bomb", "\\def\\a{\\a\\a}\\a"),
        ("newcommand-bomb", "\\newcommand{\\x}{\\x\\x}\\x"),
        ("pmatrix-huge", "\\begin{pmatrix}" + "1&" * 3000 + "1\\end{pmatrix}"),
        ("sum-10^10", "\\sum_{n=1}^{10^{10}} n"),
        ("prod-100000", "\\prod_{k=1}^{100000} k"),
        ("integral-tower", "\\int_0^\\infty e^{-x^{x^{x}}}\\,dx"),
        ("limit-tower", "\\lim_{n\\to\\infty}(1+1/n)^{n^{n^{n}}}"),
        # power towers and huge numbers
        ("tower-2^2^2^...", _nest("2^{", "}", 12, "2")),
        ("tower-9^9^9^9", "9^{9^{9^{9}}}"),
        ("pyexp-9**9**9**9", "9**9**9**9"),
        ("pyexp-95**78**6**88", "95**78**6**88"),
        ("10^10^100", "10^{10^{100}}"),
        ("factorial-tower", "(10^{10^{10}})!"),
        ("factorial-8-digits", "99999999!"),
        ("pow-1e9", "2^{1000000000}"),
        ("digits-100k", "9" * 100_000),
        ("sci-1e99999999", "1e99999999"),
        ("tiny-10^-99999999", "10^{-99999999}"),
        ("zero-over-zero", "0/0"),
        ("nan-inf", "nan + \\infty - \\infty"),
        ("x-tower-eq", "x^{x^{x^{x}}} = 25"),
        # nesting
        ("parens-3000", _nest("(", ")", 3000)),
        ("brackets-3000", _nest("[", "]", 3000)),
        ("unary-minus-10000", "-" * 10_000 + "1"),
        ("plus-chain-100000", "1+" * 100_000 + "1"),
        # code injection
        ("import-os-system", touch),
        ("open-write", f"open('{sentinel}', 'w').write('x')"),
        ("exec", f"exec(\"open('{sentinel}','w')\")"),
        ("eval", "eval('1+1')"),
        ("lambda-call", "(lambda: 1)()"),
        ("dunder-chain", "().__class__.__base__.__subclasses__()"),
        ("subprocess", f"__import__('subprocess').run(['touch', '{sentinel}'])"),
        ("latex-injection", f"\\input{{{sentinel}}}\\write18{{touch {sentinel}}}"),
        # odd characters
        ("nul-bytes", "2\x005" + "\x00" * 1000),
        ("lone-surrogate", "\ud800"),
        ("surrogate-pair-split", "\udc00 25 \ud800"),
        ("fullwidth-digits", "\uff12\uff15"),
        ("arabic-digits", "\u0662\u0665"),
        ("combining-100k", "2" + "\u0301" * 100_000),
        ("rtl-override", "\u202e52\u202c"),
        ("bidi-zero-width", "2\u200b5\u200d\ufeff"),
    ]


def build_corpus(sentinel: str) -> list[tuple[str, object]]:
    """At least 100 hostile completions (strings, message lists and odd types) as ``(label, completion)``."""
    corpus: list[tuple[str, object]] = []
    for label, bomb in _bombs(sentinel):
        corpus.append((f"{label}/boxed", f"The answer is \\boxed{{{bomb}}}."))
        corpus.append((f"{label}/answer-tag", f"<think>\nsure\n</think>\n<answer>\n{bomb}\n</answer>"))
        corpus.append((f"{label}/countdown", f"<think>ok</think><answer>{bomb} = 24</answer>"))
    corpus += [
        # megabyte strings
        ("1MB-a", "a" * MB),
        ("1MB-newlines", "\n" * MB),
        ("1MB-think", "<think>" + "x " * (MB // 2) + "</think><answer>25</answer>"),
        ("1MB-digits-boxed", "\\boxed{" + "1" * MB + "}"),
        ("1MB-open-braces", "\\boxed{" + "{" * MB),
        ("1MB-backslashes", "\\boxed{" + "\\" * MB + "}"),
        ("1MB-words-repeated", "the same words again " * (MB // 21)),
        ("1MB-steps", "Step 1: " * (MB // 8)),
        # many \boxed{}
        ("boxed-empty-50k", "\\boxed{}" * 50_000),
        ("boxed-numbers-20k", "".join(f"\\boxed{{{i}}}" for i in range(20_000))),
        ("boxed-unclosed-10k", "\\boxed{" * 10_000 + "25"),
        ("fbox-nested", _nest("\\fbox{\\boxed{", "}}", 2000, "25")),
        # unbalanced and repeated tags
        ("think-answer-open", "<think><answer>"),
        ("think-10k", "<think>" * 10_000),
        ("close-think-10k", "</think>" * 10_000 + "<answer>25</answer>"),
        ("answer-nested", "<answer><answer>25</answer>"),
        ("answer-10k", "<answer>25</answer>" * 10_000),
        ("answer-unclosed", "<think>x</think><answer>" + "1+" * 5_000),
        ("tags-crossed", "<think><answer>25</think></answer>"),
        ("answer-in-think-only", "<think><answer>25</answer></think>"),
        # regex-backtracking bait
        ("answer-colon-spaces", "Answer: " + " " * 100_000 + "!"),
        ("answer-is-parens", "the answer is (" * 50_000),
        ("letters-lines", "A\n" * 200_000),
        ("whitespace-mix", " \t\r\n" * 200_000 + "Answer: Z"),
        ("boxed-letter-spam", "\\boxed{A}\\boxed{B}" * 20_000),
        ("numbers-200k", " ".join(str(i) for i in range(200_000))),
        # empty and odd completion types
        ("empty", ""),
        ("whitespace-only", "   \n\t  "),
        ("none", None),
        ("int", 12345),
        ("empty-list", []),
        ("list-of-str", ["not a message", "\\boxed{25}"]),
        ("message-no-content", [{"role": "assistant"}]),
        ("message-none-content", [{"role": "assistant", "content": None}]),
        ("message-parts", [{"role": "assistant", "content": [{"type": "text", "text": "\\boxed{" + "(" * 3000}]}]),
        ("message-image-part", [{"role": "assistant", "content": [{"type": "image"}, {"type": "text", "text": "25"}]}]),
        ("message-bomb", [{"role": "assistant", "content": "<answer>9**9**9**9</answer> \\boxed{9^{9^{9^{9}}}}"}]),
        ("dict-not-list", {"role": "assistant", "content": "\\boxed{25}"}),
    ]
    return corpus


# Gold columns that make every built-in reward do its real work on the corpus.
GOLD = {
    "answer": "25",
    "solution": "\\boxed{25}",
    "target": 24,
    "nums": [1, 2, 3, 4],
}
GOLD_BY_REWARD = {
    "choice_accuracy": {"answer": "A"},
    "count_accuracy": {"answer": 3},
}

BUILTIN_REWARDS = (
    "math_accuracy",
    "think_format",
    "tag_count",
    "countdown_equation",
    "choice_accuracy",
    "count_accuracy",
    "reasoning_steps",
    "cosine_length",
    "repetition_penalty",
    "soft_overlong",
)


def gold_for(name: str, columns: tuple[str, ...]) -> dict[str, object]:
    """The gold row a reward gets: its own override, else the shared GOLD, for the columns it declares."""
    gold = {**GOLD, **GOLD_BY_REWARD.get(name, {})}
    return {k: gold[k] for k in columns if k in gold}
