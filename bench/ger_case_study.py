"""GER case studies: one user per dataset, their attribute profile, the recommended items and each
attribute's exact contribution, with a PNG; written to docs/ger_case_studies.md. Run by hand.

    python bench/ger_case_study.py --grid-runs runs/experiments/ger [--variant llm] [--model sasrec] [--seed 1]
    python bench/ger_case_study.py --run ml-1m=DIR --run amazon-beauty=DIR    # any GER runs
    python bench/ger_case_study.py --run ml-100k=RUN --doc case.md            # a quick look at one run

``--grid-runs`` is the runs folder of ``lucidrec experiment run bench/grids/ger.toml``.

Without ``--user DATASET=ID`` the user is chosen reproducibly: among users with at least 20
interactions whose held-out test item is in the top-k, the one whose guided block carries the
largest share of the top item's score (else the first such user, else the first user). The
faithfulness check runs for every explained item; the document states whether it passed. Sections
of datasets not given in this call are kept from the existing document, so the case studies can be
generated one dataset at a time.
"""

from __future__ import annotations

import argparse
import html
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def pick_user(run: Path, loaded, k: int, candidates: int = 300) -> str:
    from lucidrec.explain.report import explain_run

    _, data, _, _ = loaded
    lengths = data.sequences.lengths()
    pool = np.flatnonzero(lengths >= 20)[:candidates]
    best, best_share, first_hit = None, -1.0, None
    for user in pool:
        result = explain_run(run, str(data.user_ids[user]), k=k, holdout=True, loaded=loaded)
        if not result.explanation.extra.get("holdout_in_top_k"):
            continue
        first_hit = first_hit or result.user_id
        share = float(result.explanation.guided_share[0])
        if share > best_share:
            best, best_share = result.user_id, share
    return best or first_hit or str(data.user_ids[pool[0] if len(pool) else 0])


def cell(text: str, limit: int = 90) -> str:
    """A catalog title as one markdown table cell: entities decoded, pipes escaped, long titles cut."""
    text = html.unescape(text).replace("\n", " ")
    if len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return text.replace("|", "\\|")


def portable(run) -> str:
    """A run folder as the document shows it: the benchmark layout's last four parts under RUNS (no machine path)."""
    if not run:
        return "—"
    return "RUNS/" + "/".join(Path(run).parts[-4:])


def section(dataset: str, run: Path, user: str, k: int, image_dir: Path, doc: Path) -> str:
    from lucidrec.explain.plot import plot_explanation
    from lucidrec.explain.report import explain_run, to_dict
    from lucidrec.train.run import load_run

    loaded = load_run(run)
    user = user or pick_user(run, loaded, k)
    result = explain_run(run, user, k=k, holdout=True, check=True, loaded=loaded)
    payload = to_dict(result)
    image = image_dir / f"ger_case_{dataset}.png"
    plot_explanation(result.explanation, image, result.titles, title=f"{dataset}: user {user}")
    meta = result.meta
    names = payload["attributes"]
    lines = [f"## {dataset}: user {user}", "",
             f"Run `{portable(run)}` (scorer: {meta.get('scoring', {}).get('scorer')}, mode {meta.get('mode')}, "
             f"base `{portable(meta.get('base', {}).get('run'))}`). History: {payload['history_length']} items, the last held out; "
             f"recent: {'; '.join(cell(t) for t in payload['recent_history'][-5:])}.", "",
             "User profile (the guided block of the user's state; attribute units are z-scores of the item scores, "
             "scaled):", "", "| " + " | ".join(names) + " |", "|---" * len(names) + "|",
             "| " + " | ".join(f"{payload['user_profile'][n]:+.2f}" for n in names) + " |", "",
             f"![{dataset} case study]({Path(image).resolve().relative_to(doc.parent.resolve()) if image.resolve().is_relative_to(doc.parent.resolve()) else image})",
             "", "| # | item | score | guided | rest | guided share | top contributions |", "|---|---|---|---|---|---|---|"]
    for item in payload["items"]:
        top = sorted(item["contributions"].items(), key=lambda kv: -abs(kv[1]))[:3]
        marker = " (held out)" if payload.get("holdout", {}).get("item_id") == item["item_id"] else ""
        lines.append(f"| {item['rank']} | {cell(item['title'])}{marker} | {item['score']:.3f} | {item['guided']:+.3f} | "
                     f"{item['rest']:+.3f} | {100 * item['guided_share']:.0f}% | "
                     + ", ".join(f"{n} {v:+.3f}" for n, v in top) + " |")
    check = payload["check"]
    lines += ["", f"Held-out item in the top {k}: {payload['holdout']['in_top_k']}. Faithfulness check "
              f"(zero each item's top attribute in the model's item table, re-score): "
              f"{'PASS' if check['ok'] else 'FAIL'}, max |score drop - contribution| = "
              f"{max(e['drop_error'] for e in check['items']):.1e}; re-ranks as predicted: "
              f"{all(e['rank_after'] == e['rank_predicted'] for e in check['items'])}.", "",
              attribute_independence(run), ""]
    return "\n".join(lines)


def attribute_independence(run: Path) -> str:
    """How many distinct things the scorer measured: correlations between the attributes' item scores.

    An explanation names every attribute; if the scorer's attributes move together, the names say more
    than the scores distinguish, and the reader should know it.
    """
    with np.load(run / "ger" / "state.npz") as state:
        scores = state["raw"][~state["missing"].astype(bool)]
    correlation = np.corrcoef(scores.T)
    pairs = correlation[~np.eye(len(correlation), dtype=bool)]
    eigenvalues = np.linalg.eigvalsh(correlation)[::-1]
    return (f"Attribute independence (item scores over the whole catalog, {scores.shape[1]} attributes): mean pairwise "
            f"correlation {pairs.mean():+.2f} (range {pairs.min():+.2f} to {pairs.max():+.2f}); the first principal "
            f"component holds {eigenvalues[0] / eigenvalues.sum():.0%} of the variance. The larger these are, the more "
            f"the attributes act as one shared direction and the less the individual names can be read apart.")


def kept_sections(text: str, exclude: set[str]) -> dict[str, str]:
    """The ``## <dataset>: ...`` sections of an existing case-study document, minus ``exclude``."""
    kept = {}
    for chunk in text.split("\n## ")[1:]:
        dataset = chunk.split(":", 1)[0]
        if dataset not in exclude:
            kept[dataset] = "## " + chunk.rstrip("\n") + "\n"
    return kept


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--grid-runs", type=Path, default=None,
                        help="the runs folder of bench/grids/ger.toml (default of the grid: runs/experiments/ger)")
    parser.add_argument("--variant", default="llm", help="which variant of the grid to read (llm or encoder)")
    parser.add_argument("--model", default="sasrec", help="which backbone of the grid to read")
    parser.add_argument("--seed", type=int, default=1, help="which seed of the grid to read")
    parser.add_argument("--run", action="append", default=[], help="DATASET=RUN_DIR (repeatable)")
    parser.add_argument("--user", action="append", default=[], help="DATASET=USER_ID (repeatable)")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--doc", type=Path, default=ROOT / "docs" / "ger_case_studies.md")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    runs = dict(item.split("=", 1) for item in args.run)
    if args.grid_runs:
        for dataset in ("ml-1m", "amazon-beauty"):
            runs.setdefault(dataset, str(args.grid_runs / dataset / args.model / "ger" / args.variant / f"seed{args.seed}"))
    if not runs:
        parser.error("give --grid-runs or --run DATASET=DIR")
    users = dict(item.split("=", 1) for item in args.user)
    image_dir = args.doc.parent / "img"
    sections = {d: section(d, Path(r), users.get(d), args.k, image_dir, args.doc) for d, r in runs.items()}
    if args.doc.is_file():
        sections = {**kept_sections(args.doc.read_text(), exclude=set(sections)), **sections}
    text = ("# GER case studies\n\nGenerated by `bench/ger_case_study.py`"
            ". Every score is `guided + rest` exactly; `guided` is the sum of the attribute contributions "
            "(user guided coordinate x item guided coordinate), `guided share` = |guided| / (|guided| + |rest|). "
            "See docs/fidelity.md (GER) for what the scorers can and cannot know.\n\n" + "\n".join(sections.values()))
    args.doc.parent.mkdir(parents=True, exist_ok=True)
    args.doc.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
