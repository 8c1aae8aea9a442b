"""report.md and passk.png: the pass@1 table first, and a plot whose 0% and 100% lines stay visible."""

from __future__ import annotations

import pytest

from r1h.harness.eval.report import markdown, passk_figure, plot_passk

RESULTS = {
    "model": "m",
    "config": {"backend": "vllm", "backend_args": {}, "benchmarks": {"aime24": {
        "version": "1", "reward": "math_accuracy", "source": "HuggingFaceH4/aime_2024",
        "generation": {"n": 8, "temperature": 0.6, "top_p": 0.95, "max_tokens": 32768, "seed": 0,
                       "policy": "neutral", "top_k": None, "min_p": 0.0, "repetition_penalty": 1.0}}}},
    "engine": {"backend": "vllm", "dtype": "bfloat16"},
    "stack": {"system": {"python": "3.11.7", "os": "Linux"}, "libraries": {"torch": {"version": "2.4.0+metax2.29"}},
              "torch": {"backend": "MACA", "accelerators": [{"name": "C500", "memory_gib": 64.0, "bf16": True}]}},
    "benchmarks": {
        "aime24": {"pass@1": 0.0, "pass@1_ci95": [0.0, 0.0], "pass@k": {"1": 0.0, "2": 0.0, "4": 0.0, "8": 0.0},
                   "n_samples": 8, "n_problems": 30},
        "math500": {"pass@1": 0.5, "pass@1_ci95": [0.45, 0.55], "pass@k": {"1": 0.5, "2": 0.6, "4": 0.7, "8": 0.8},
                    "n_samples": 8, "n_problems": 500},
        "countdown": {"pass@1": 1.0, "pass@1_ci95": [1.0, 1.0], "pass@k": {"1": 1.0, "2": 1.0, "4": 1.0, "8": 1.0},
                      "n_samples": 8, "n_problems": 500},
        "gpqa_diamond": {"pass@1": 1.0, "pass@1_ci95": [1.0, 1.0], "pass@k": {"1": 1.0, "2": 1.0, "4": 1.0, "8": 1.0},
                         "n_samples": 8, "n_problems": 198},
    },
}


def test_passk_plot_keeps_0_and_100_inside_the_axes_with_distinct_styles(tmp_path):
    pytest.importorskip("matplotlib")
    import matplotlib.pyplot as plt

    fig = passk_figure(RESULTS)
    try:
        ax = fig.axes[0]
        low, high = ax.get_ylim()
        assert low < 0 and high > 100  # margins: a 0% line is not on the x-axis, a 100% line not on the frame
        lines = [line for line in ax.get_lines() if line.get_label() in RESULTS["benchmarks"]]
        assert [line.get_label() for line in lines] == list(RESULTS["benchmarks"])
        ys = [y for line in lines for y in line.get_ydata()]
        assert min(ys) == 0 and max(ys) == 100 and all(low < y < high for y in ys)
        # the two benchmarks at 100% stay distinguishable: marker, dash pattern and marker size all differ
        styles = [(line.get_marker(), str(line.get_linestyle()), line.get_markersize()) for line in lines]
        for i in range(3):
            assert len({style[i] for style in styles}) == len(lines), styles
        assert all(line.get_markerfacecolor() == "none" for line in lines)  # hollow: nested markers show
        assert ax.get_legend() is not None
    finally:
        plt.close(fig)
    assert plot_passk(RESULTS, tmp_path / "passk.png")
    assert (tmp_path / "passk.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_opens_with_the_pass1_table_then_settings():
    text = markdown(RESULTS)
    lines = text.splitlines()
    assert lines[0] == "# r1h eval: m"
    assert lines[2] == "| benchmark | pass@1 (%) | 95% CI | n | problems |"
    assert lines[4] == "| aime24 | 0.00 | [0.00, 0.00] | 8 | 30 |"
    assert lines[5] == "| math500 | 50.00 | [45.00, 55.00] | 8 | 500 |"
    assert text.index("## Settings") < text.index("## Details")
    settings = text[text.index("## Settings"):text.index("## Details")]
    assert "engine: backend=vllm, dtype=bfloat16" in settings
    assert "policy=neutral" in settings and "repetition_penalty=1.0" in settings
    assert "torch 2.4.0+metax2.29" in settings and "torch backend MACA; accelerators: 1 x C500" in settings
    assert "maj@n" in text[text.index("## Details"):]
