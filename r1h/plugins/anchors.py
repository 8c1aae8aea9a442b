"""Built-in published results for ``r1h check RUN --anchor NAME`` (registered through ``r1h_register_anchors``).

Scores are fractions. A setting a source does not state is None ("not recorded"). Sources:

- The DeepSeek-R1 paper (DeepSeek-AI, "DeepSeek-R1: Incentivizing Reasoning Capability in LLMs via Reinforcement
  Learning", arXiv:2501.12948, Table 5, distilled models; section 3 "Evaluation Setup": maximum generation length
  32,768 tokens, temperature 0.6, top-p 0.95, k = 4 to 64 samples per question depending on the test set size).
- open-r1's README, "Reproducing Deepseek's evaluation results" (github.com/huggingface/open-r1): lighteval with vLLM,
  ``max_model_length=32768``, ``max_new_tokens=32768``, temperature 0.6, top-p 0.95; pass@1 from 64 samples on AIME
  2024, 4 on MATH-500 and 8 on GPQA Diamond.
- The Chinese reproduction guide r1h follows (``r1-reproduction-guide.zh.md``; DESIGN.md "What r1h is"): open-r1's
  lighteval ``eval.sh`` at ``max_model_length=32768`` for the SFT workflow, mini-deepseek-r1's ``inference.py`` for
  Countdown (500 held-out rows, 1,024 tokens) and R1-V's ``test_qwen2vl_counting_superclevr.py`` for SuperCLEVR (200
  questions, greedy, 256 tokens). Every guide figure is a whole count over the test set (1/30 = 3.33, 51/198 = 25.76),
  so n = 1 there; its sampling temperature is not stated.
"""

from __future__ import annotations

from r1h.harness.core.anchor import SAME_AS_R1H, Anchor, Published
from r1h.harness.core.hookspecs import hookimpl

R1_PAPER = ("DeepSeek-R1 paper (arXiv:2501.12948), Table 5 (distilled models) and section 3 'Evaluation Setup': "
            "32,768 tokens, T=0.6, top-p 0.95, 4-64 samples per question")
OPEN_R1 = ("open-r1 README, 'Reproducing Deepseek's evaluation results' (github.com/huggingface/open-r1): lighteval "
           "+ vLLM, max_new_tokens 32768, T=0.6, top-p 0.95, n = 64 (AIME 2024) / 4 (MATH-500) / 8 (GPQA Diamond)")
GUIDE = ("the reproduction guide r1h follows (r1-reproduction-guide.zh.md), its results table; evaluated with "
         "open-r1's lighteval eval.sh (max_model_length 32768), one sample per problem")
GUIDE_COUNTDOWN = ("the reproduction guide, GRPO on Countdown (mini-deepseek-r1 inference.py): the last 500 of the "
                   "first 50,000 Countdown-Tasks-3to4 rows, one sample each, 1,024 tokens")
GUIDE_R1V = ("the reproduction guide, R1-V (src/eval/test_qwen2vl_counting_superclevr.py): 200 SuperCLEVR counting "
             "questions, greedy, 256 tokens")

# math: DeepSeek's recommended line, which r1h's aime24 and math500 use; GPQA: the paper names simple-evals
_R1_SETTINGS = {"temperature": 0.6, "top_p": 0.95, "max_tokens": 32768, "n": None,
                "prompt": "simple-evals' GPQA template", "grader": "DeepSeek's own (not published)"}
_OPEN_R1_SETTINGS = {"temperature": 0.6, "top_p": 0.95, "max_tokens": 32768,
                     "prompt": "lighteval's open-r1 task templates (chat template applied)",
                     "grader": "lighteval math / GPQA extraction (math-verify)"}
_GUIDE_SETTINGS = {"temperature": None, "top_p": None, "max_tokens": 32768, "n": 1,
                   "prompt": "lighteval's open-r1 task templates (chat template applied)",
                   "grader": "lighteval math / GPQA extraction (math-verify)"}
_COUNTDOWN_SETTINGS = {"temperature": None, "top_p": None, "max_tokens": 1024, "n": 1,
                       "prompt": SAME_AS_R1H,  # r1h's countdown is mini-deepseek-r1's prompt and prefill, byte for byte
                       "grader": "mini-deepseek-r1's equation reward"}
_R1V_SETTINGS = {"temperature": 0.0, "top_p": None, "max_tokens": 256, "n": 1,
                 "prompt": SAME_AS_R1H,  # r1h's superclevr_counting uses R1-V's evaluation template
                 "grader": "R1-V's integer extraction from <answer>"}


def _sft(name: str, model: str, description: str, aime: float, math: float, gpqa: float, source: str,
         settings: dict, ns: tuple[int | None, int | None, int | None] = (None, None, None),
         per_bench: dict | None = None) -> Anchor:
    """An anchor on AIME 2024 / MATH-500 / GPQA Diamond, scores in percent as published."""
    results = {bench: Published(value / 100.0, {**({"n": n} if n is not None else {}), **(per_bench or {}).get(bench, {})})
               for bench, value, n in zip(("aime24", "math500", "gpqa_diamond"), (aime, math, gpqa), ns, strict=True)}
    return Anchor(name=name, model=model, source=source, results=results, settings=settings, description=description)


ANCHORS = (
    _sft("r1-paper-distill-qwen-1.5b", "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B",
         "DeepSeek-R1-Distill-Qwen-1.5B as the R1 paper reports it", 28.9, 83.9, 33.8, R1_PAPER, _R1_SETTINGS,
         per_bench={"aime24": {"prompt": SAME_AS_R1H}, "math500": {"prompt": SAME_AS_R1H}}),
    _sft("open-r1-distill-qwen-1.5b", "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B",
         "DeepSeek-R1-Distill-Qwen-1.5B in open-r1's lighteval run", 30.7, 83.1, 35.8, OPEN_R1, _OPEN_R1_SETTINGS,
         ns=(64, 4, 8)),
    _sft("guide-qwen2.5-math-1.5b", "Qwen/Qwen2.5-Math-1.5B", "the guide's base model before SFT",
         3.33, 23.6, 25.75, GUIDE, _GUIDE_SETTINGS),
    _sft("guide-stratos-sft-1epoch", "Qwen/Qwen2.5-Math-1.5B + 1 epoch SFT on Bespoke-Stratos-17k",
         "the guide's 1-epoch distillation SFT", 6.67, 45.4, 28.79, GUIDE, _GUIDE_SETTINGS),
    _sft("guide-distill-qwen-1.5b", "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B",
         "the guide's own run of DeepSeek-R1-Distill-Qwen-1.5B", 30.0, 83.0, 32.83, GUIDE, _GUIDE_SETTINGS),
    Anchor("guide-countdown-before-grpo", "Qwen/Qwen2.5-1.5B-Instruct", GUIDE_COUNTDOWN,
           {"countdown": Published(8 / 500, note="8/500")}, _COUNTDOWN_SETTINGS, "Countdown before GRPO (8/500)"),
    Anchor("guide-countdown-grpo", "Qwen/Qwen2.5-1.5B-Instruct after 450 GRPO steps", GUIDE_COUNTDOWN,
           {"countdown": Published(59 / 500, note="59/500")}, _COUNTDOWN_SETTINGS, "Countdown after GRPO (59/500)"),
    Anchor("guide-r1v-before", "Qwen/Qwen2-VL-2B-Instruct", GUIDE_R1V,
           {"superclevr_counting": Published(0.455)}, _R1V_SETTINGS, "SuperCLEVR counting before R1-V (45.5)"),
    Anchor("guide-r1v-grpo", "Qwen/Qwen2-VL-2B-Instruct after 50 R1-V steps", GUIDE_R1V,
           {"superclevr_counting": Published(0.785)}, _R1V_SETTINGS, "SuperCLEVR counting after R1-V (78.5)"),
)


@hookimpl
def r1h_register_anchors(register):
    for anchor in ANCHORS:
        register(anchor.name, anchor, version=anchor.version, description=anchor.description)
