"""Every notebook's full-profile branch, executed on the CPU in the dry run (issue 19).

The full profile (CIFAR, paper-scale models, a GPU) is what no CI machine can afford; the dry run
(``COURSE_PROFILE=full COURSE_DRY_RUN=1``, see ``course_lib.config``) keeps every full-profile
choice and caps only the work, so this test catches what a learner with a GPU would otherwise meet
first: a 1-channel or 28×28 assumption, a cache that only exists for Fashion-MNIST, a cell that
only works on quick-profile results.

Each notebook (``notebooks/[0-9][0-9]_*.py``, so new chapters are picked up automatically) is
converted with jupytext and executed by nbclient in a fresh kernel, with the data directory (and so
every cache the full branch writes) and the claims ledger in a temporary folder: a dry run never
touches ``data/`` or ``build/claims.json``, and anything the full branch needs that only a real run
can produce (a trained CIFAR model) must be produced by the notebook itself. A cell error fails the
test with the cell's source and the error.

The work each notebook's real full run would do (from ``train.fit``'s dry-run record) is written to
``build/full-profile-plan.json``: images × epochs × MACs per chapter, the basis of the README's
estimate of full-profile time on one GPU.
"""

import json
import re
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted(ROOT.glob("notebooks/[0-9][0-9]_*.py"))
CELL_TIMEOUT = 300
PLAN_FILE = ROOT / "build" / "full-profile-plan.json"
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _record_plan(stem, plan_path, seconds, claims_path):
    rows = [json.loads(line) for line in plan_path.read_text().splitlines()] if plan_path.exists() else []
    claims = json.loads(claims_path.read_text()) if claims_path.exists() else []
    summary = json.loads(PLAN_FILE.read_text()) if PLAN_FILE.exists() else {}
    summary[stem] = {"dry_run_seconds": round(seconds, 1), "fits": rows,
                     "claims": len(claims), "claims_not_holding_in_dry_run": sum(not c["holds"] for c in claims)}
    PLAN_FILE.parent.mkdir(parents=True, exist_ok=True)
    PLAN_FILE.write_text(json.dumps(summary, indent=1, sort_keys=True))


@pytest.mark.parametrize("source", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_full_profile_dry_run(source, tmp_path, monkeypatch):
    jupytext = pytest.importorskip("jupytext")
    nbclient = pytest.importorskip("nbclient")

    plan = tmp_path / "plan.jsonl"
    claims = tmp_path / "claims.json"
    for name, value in {"COURSE_PROFILE": "full", "COURSE_DRY_RUN": "1", "COURSE_DEVICE": "cpu",
                        "COURSE_DATA_DIR": str(tmp_path / "data"), "COURSE_CLAIMS_FILE": str(claims),
                        "COURSE_DRY_RUN_PLAN": str(plan), "MPLBACKEND": "Agg"}.items():
        monkeypatch.setenv(name, value)          # the kernel inherits this process's environment
    nb = jupytext.read(source)
    client = nbclient.NotebookClient(nb, timeout=CELL_TIMEOUT, kernel_name="python3", allow_errors=True,
                                     resources={"metadata": {"path": str(tmp_path)}})
    start = time.perf_counter()
    try:
        client.execute()
    except Exception as err:      # the kernel died (memory?), a cell ran past CELL_TIMEOUT, ...
        pytest.fail(f"{source.name}, full profile, dry run: {type(err).__name__}: {ANSI.sub('', str(err))[-3000:]}",
                    pytrace=False)
    seconds = time.perf_counter() - start
    _record_plan(source.stem, plan, seconds, claims)
    errors = [(cell, out) for cell in nb.cells if cell.cell_type == "code"
              for out in cell.get("outputs", []) if out.get("output_type") == "error"]
    if errors:
        (first, out), *rest = errors
        trace = ANSI.sub("", "\n".join(out.get("traceback", [])))
        later = "".join(f"\n  - {o['ename']}: {ANSI.sub('', o['evalue'])[:200]} in: {c.source.splitlines()[0][:90]}"
                        for c, o in rest)
        pytest.fail(f"{source.name}, full profile, dry run: {len(errors)} cell(s) failed.\n"
                    f"First failing cell:\n{first.source}\n\n{trace[-4000:]}"
                    + (f"\nLater failing cells (may follow from the first):{later}" if rest else ""),
                    pytrace=False)
    print(f"{source.stem}: {seconds:.1f} s (full profile, dry run)")
    recorded = json.loads(claims.read_text()) if claims.exists() else []
    assert all(row["profile"] == "full (dry run)" for row in recorded), "claims of a dry run must say so"
