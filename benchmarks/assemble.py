"""Rebuild BENCHMARKS.md from the predictor section and every ``benchmarks/results/*.md``.

python -m benchmarks.assemble
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent
ORDER = ["pixel_path", "archive", "serve", "video", "quality", "onnx"]


def main() -> None:
    parts = [(ROOT / "results" / "_predictor.md").read_text().rstrip()]
    results = sorted((ROOT / "results").glob("[!_]*.md"), key=lambda p: [*ORDER, p.stem].index(p.stem))
    for path in results:
        text = path.read_text().rstrip()
        # Demote headings one level so each result file is a section of BENCHMARKS.md.
        lines, fenced = [], False
        for line in text.splitlines():
            fenced ^= line.startswith("```")
            lines.append("#" + line if line.startswith("#") and not fenced else line)
        text = "\n".join(lines)
        parts.append(f"<!-- from benchmarks/results/{path.name} -->\n{text}")
    (ROOT.parent / "BENCHMARKS.md").write_text("\n\n".join(parts) + "\n")


if __name__ == "__main__":
    main()
