"""``lucidrec report``: records -> markdown tables, PNG plots and one self-contained HTML page.

Per dataset: a table of every row (mean ± std over seeds, the ratio to the baseline row, the paired
test against it, costs) and a table of the metric per user group (overall, tail, cold, head, new: the
groups the records have). Plots: the metric by group per row, validation curves, cost vs quality. The
same records give byte-identical files (fixed order, no dates, PNGs without a software stamp).
Measurement records (``lucidrec.experiments.measurements``: evaluation cost, LM speed, other libraries side by
side) in the same folders follow as one section each: their tables, the command and the machine.
"""

from __future__ import annotations

import base64
import html
import json
from dataclasses import dataclass, field
from pathlib import Path

from lucidrec.experiments.aggregate import (Row, baseline_label, build_rows, check_baseline, compare_to_baseline,
                                            groups_present, metric_key)
from lucidrec.experiments.measurements import MeasurementRecord, format_value, read_measurements, write_measurement
from lucidrec.experiments.records import GRID_FILE, read_records
from lucidrec.files import read_json, write_json_atomic

EXTRA_METRICS = ("ndcg@10", "recall@10", "mrr")


@dataclass
class Table:
    title: str
    header: list[str]
    rows: list[list[str]]
    note: str = ""


@dataclass
class MeasurementSection:
    title: str
    source: str  # the record's file, as found under the folders given
    command: str
    machine: str
    tables: list[Table]
    record: MeasurementRecord


@dataclass
class Report:
    title: str
    intro: list[str]
    sections: list[tuple[str, list[Table], list[str]]]  # (dataset, tables, plot file names)
    warnings: list[str]
    rows: list[Row]
    measurements: list[MeasurementSection] = field(default_factory=list)


def baseline_from_grids(results_dirs: list[Path]) -> str | None:
    """The baseline row named by the grid(s) that wrote the folders (the first that names one)."""
    for folder in results_dirs:
        path = Path(folder) / GRID_FILE
        if path.is_file():
            baseline = read_json(path).get("spec", {}).get("baseline")
            if baseline:
                return baseline
    return None


def _fmt(stat: dict | None, digits: int = 4) -> str:
    if not stat:
        return "—"
    if stat["n"] == 1:
        return f"{stat['mean']:.{digits}f}"
    return f"{stat['mean']:.{digits}f} ± {stat['std']:.{digits}f}"


def _seconds(stat: dict | None) -> str:
    return "—" if not stat else f"{stat['mean']:.1f}"


def _seeds(row: Row) -> str:
    return "—" if row.seeds == [None] else ", ".join(str(s) for s in row.seeds)


def dataset_tables(rows: list[Row], baseline: str | None, metric: str) -> list[Table]:
    metrics = [metric, *(m for m in EXTRA_METRICS if m != metric)]
    header = ["row", "seeds", *(m for m in metrics)]
    if baseline:
        header += [f"× {baseline}", f"Δ{metric} (paired t p, Wilcoxon p)"]
    header += ["best epoch", "s/epoch", "train s", "cell s"]
    body = []
    for row in rows:
        cells = [row.label, _seeds(row), *(_fmt(row.stats.get(metric_key("overall", m))) for m in metrics)]
        if baseline:
            ratio = row.ratio.get("overall")
            cells.append("—" if ratio is None else f"{ratio:.3f}")
            if row.test is not None:
                cells.append(f"{row.test['diff']:+.4f} ({row.test['t_pvalue']:.2g}, {row.test['wilcoxon_pvalue']:.2g})")
            else:
                cells.append("baseline" if row.label == baseline_label(baseline, row.model) else "—")
        timings = row.timings
        cells += [_fmt(timings.get("best_epoch"), 1) if timings.get("best_epoch") else "—",
                  _seconds(timings.get("seconds_per_epoch")), _seconds(timings.get("training_seconds")),
                  _seconds(timings.get("cell_seconds"))]
        body.append(cells)
    notes = sorted({f"{r.label}: {r.test_note}." for r in rows
                    if r.test_note and r.test is None and r.label != baseline_label(baseline or "", r.model)})
    tested = sorted({r.test_note for r in rows if r.test is not None})
    note = ("Test split, full ranking (history items masked); mean ± sample std over seeds. "
            + (f"Paired tests: {'; '.join(tested)}. " if tested else "") + " ".join(notes))
    tables = [Table("All rows", header, body, note.strip())]
    groups = groups_present(rows, metric)
    if len(groups) > 1:
        group_header = ["row"] + [f"{g} {metric}" + _users(rows, g) for g in groups]
        group_body = []
        for row in rows:
            cells = [row.label]
            for group in groups:
                text = _fmt(row.stats.get(metric_key(group, metric)))
                ratio = row.ratio.get(group)
                if baseline and ratio is not None and row.label != baseline_label(baseline, row.model):
                    text += f" ({ratio:.2f}×)"
                cells.append(text)
            group_body.append(cells)
        group_note = ("tail: targets among the 80% least popular training items, head: the other 20%"
                      + ("; cold / new: the evaluator's groups of those names" if {"cold", "new"} & set(groups) else "")
                      + (f"; (×) ratio to {baseline} in the same group" if baseline else "") + ".")
        tables.append(Table(f"{metric} by user group", group_header, group_body, group_note))
    return tables


def _users(rows: list[Row], group: str) -> str:
    key = metric_key(group, "n_users")
    counts = {int(r.stats[key]["mean"]) for r in rows if key in r.stats}
    return f" (n={counts.pop()})" if len(counts) == 1 else ""


def measurement_section(path: Path, record: MeasurementRecord) -> MeasurementSection:
    tables = [Table(t.title, [c.name for c in t.columns],
                    [[format_value(value, column) for value, column in zip(row, t.columns)] for row in t.rows], t.note)
              for t in record.tables]
    return MeasurementSection(record.title, Path(path).as_posix(), record.command, _machine(record.machine), tables, record)


def build_report(results_dirs: list[Path], baseline: str | None = None, metric: str = "ndcg@10") -> Report:
    records, warnings = read_records(results_dirs)
    measurements, measurement_warnings = read_measurements(results_dirs)
    warnings += measurement_warnings
    if not records and not measurements:
        raise FileNotFoundError(f"no result records in {', '.join(map(str, results_dirs))}")
    folders = ", ".join(Path(d).as_posix() for d in results_dirs)
    measured = [measurement_section(path, record) for path, record in measurements]
    if not records:
        intro = [f"{len(measured)} measurement record{'' if len(measured) == 1 else 's'} from {folders}."]
        return Report("Results", intro, [], warnings, [], measured)
    baseline = baseline or baseline_from_grids(results_dirs)
    rows = build_rows(records, warnings)
    labels = sorted({r.label for r in rows})
    if baseline is not None and not check_baseline(baseline, labels, sorted({r.model for r in rows})):
        from lucidrec.errors import UnknownNameError

        raise UnknownNameError("baseline row", baseline, labels)
    compare_to_baseline(rows, baseline, metric)
    sections = []
    for dataset in sorted({r.dataset for r in rows}):
        mine = [r for r in rows if r.dataset == dataset]
        sections.append((dataset, dataset_tables(mine, baseline, metric), []))
    machines = sorted({json.dumps(r.data.get("machine", {}), sort_keys=True) for r in records})
    intro = [f"{len(records)} records from {folders}"
             + (f"; baseline row: {baseline}" if baseline else "") + f"; metric: {metric}"
             + (f"; {len(measured)} measurement record{'' if len(measured) == 1 else 's'}" if measured else "") + ".",
             "Machine: " + "; ".join(_machine(json.loads(m)) for m in machines) + "."]
    return Report("Results", intro, sections, warnings, rows, measured)


def _machine(info: dict) -> str:
    parts = [f"{info['cpus']} CPUs" + (f" ({info['processor']})" if info.get("processor") else "")] if info.get("cpus") else []
    if info.get("torch"):
        parts.append(f"torch {info['torch']} with {info.get('torch_threads', '?')} thread(s)")
    if info.get("lucidrec"):
        parts.append(f"lucidrec {info['lucidrec']}")
    if info.get("load_average"):
        parts.append("load average " + " / ".join(f"{x:.2f}" for x in info["load_average"]))
    return ", ".join(parts) or "not recorded"


def _markdown_table(table: Table) -> list[str]:
    lines = [f"### {table.title}", "", "| " + " | ".join(table.header) + " |", "|" + "---|" * len(table.header)]
    lines += ["| " + " | ".join(cells) + " |" for cells in table.rows]
    return lines + (["", table.note, ""] if table.note else [""])


def _measurement_markdown(section: MeasurementSection) -> list[str]:
    lines = [f"## {section.title}", "", f"`{section.command}` ({section.source}); machine: {section.machine}.", ""]
    for table in section.tables:
        lines += _markdown_table(table)
    return lines


def measurement_markdown(record: dict, source: str | Path) -> str:
    """One measurement record as the report prints it (the bench scripts print their record this way)."""
    section = measurement_section(Path(source), MeasurementRecord.model_validate(record))
    return "\n".join(_measurement_markdown(section)).rstrip() + "\n"


def publish_measurement(record: dict, path: str | Path | None) -> Path:
    """What every bench script ends with: write its record (atomically) and print it as the report would."""
    written = write_measurement(path, record)
    print(measurement_markdown(record, written))
    return written


def markdown(report: Report) -> str:
    lines = [f"# {report.title}", "", *report.intro, ""]
    if report.warnings:
        lines += ["**Skipped records:**", "", *[f"- {w}" for w in report.warnings], ""]
    for dataset, tables, plots in report.sections:
        lines += [f"## {dataset}", ""]
        for table in tables:
            lines += _markdown_table(table)
        lines += [f"![{name}]({name})" for name in plots]
        lines += [""] if plots else []
    for section in report.measurements:
        lines += _measurement_markdown(section)
    return "\n".join(lines).rstrip() + "\n"


def html_page(report: Report, out: Path) -> str:
    """The same content as the markdown, one file: inline CSS, plots embedded as data URIs."""
    e = html.escape
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{e(report.title)}</title><style>"
             "body{font-family:sans-serif;max-width:1200px;margin:2em auto;padding:0 1em}"
             "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #bbb;padding:3px 8px;text-align:right}"
             "td:first-child,th:first-child{text-align:left}th{background:#eee}.warn{color:#a40}img{max-width:100%}"
             "</style></head><body>", f"<h1>{e(report.title)}</h1>", *[f"<p>{e(p)}</p>" for p in report.intro]]
    if report.warnings:
        parts.append("<p class='warn'><b>Skipped records:</b></p><ul class='warn'>"
                     + "".join(f"<li>{e(w)}</li>" for w in report.warnings) + "</ul>")
    def table_html(table: Table) -> list[str]:
        return [f"<h3>{e(table.title)}</h3><table><tr>" + "".join(f"<th>{e(h)}</th>" for h in table.header) + "</tr>",
                *["<tr>" + "".join(f"<td>{e(c)}</td>" for c in cells) + "</tr>" for cells in table.rows],
                "</table>" + (f"<p>{e(table.note)}</p>" if table.note else "")]

    for dataset, tables, plots in report.sections:
        parts.append(f"<h2>{e(dataset)}</h2>")
        for table in tables:
            parts += table_html(table)
        for name in plots:
            data = base64.b64encode((out / name).read_bytes()).decode("ascii")
            parts.append(f"<p><img alt='{e(name)}' src='data:image/png;base64,{data}'></p>")
    for section in report.measurements:
        parts.append(f"<h2>{e(section.title)}</h2><p><code>{e(section.command)}</code> ({e(section.source)}); "
                     f"machine: {e(section.machine)}.</p>")
        for table in section.tables:
            parts += table_html(table)
    parts.append("</body></html>\n")
    return "\n".join(parts)


def summary(report: Report) -> dict:
    """The aggregates as data (for scripts): per dataset and row, stats, ratios and the paired test; each
    measurement record as it is stored, under ``measurements/<its file>``."""
    rows = {f"{r.dataset}/{r.label}": {"seeds": r.seeds, "stats": {k: v for k, v in r.stats.items() if k.startswith("test/")}, "timings": r.timings, "ratio": r.ratio,
                                       "paired_test": r.test, "test_note": r.test_note} for r in report.rows}
    measured = {f"measurements/{s.source}": s.record.model_dump(mode="json") for s in report.measurements}
    return {**rows, **measured}


def write_report(results_dirs: list[Path], out: Path, baseline: str | None = None, metric: str = "ndcg@10",
                 plots: bool = True) -> Report:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    report = build_report(results_dirs, baseline, metric)
    if plots:
        from lucidrec.experiments import plots as plotting

        report.sections = [(dataset, tables, plotting.dataset_plots(out, dataset, [r for r in report.rows if r.dataset == dataset], metric))
                           for dataset, tables, _ in report.sections]
    (out / "report.md").write_text(markdown(report))
    (out / "report.html").write_text(html_page(report, out))
    write_json_atomic(out / "summary.json", json.loads(json.dumps(summary(report), sort_keys=True, default=str)))
    return report
