"""The measured-claims ledger: README table generated from docs/claims.json, HTML Claims page."""

import json

import pytest

from course_lib import checks, claims

ROWS = [checks.Claim("05", "Deep Compression 35× on LeNet", "39×", "40.7×", True, "quick", "2-core CPU"),
        checks.Claim("02", "TTQ | ternary", "−0.64 pt", "−3.0 pt", False, "quick", "2-core CPU",
                     why="one epoch | 2k images"),
        checks.Claim("02", "TWN vs TTQ", "3 pt", "0.2 pt", False, "quick", "2-core CPU", noise=True),
        checks.Claim("02", "k-means 5 bit", "≤ 0.5 pt", "−0.3 pt", True, "quick", "2-core CPU"),
        checks.Claim("03", "rank 10 costs one fifth", "1/5", "0.20", True, "quick", "2-core CPU", "derivation"),
        checks.Claim("00", "the shipped LeNet-5 ≥ 90%", "≥ 90%", "92%", True, "quick", "2-core CPU", "course")]


def test_markdown_table_is_in_chapter_order_and_escapes_pipes():
    table = claims.markdown_table(ROWS).splitlines()
    assert table[0] == "| ch. | kind | claim | paper | ours | verdict |"
    assert [row.split(" | ")[0] for row in table[2:]] == ["| 00", "| 02", "| 02", "| 02", "| 03", "| 05"]
    assert "TTQ \\| ternary" in table[3] and table[3].endswith("| **does not hold**: one epoch \\| 2k images |")
    assert table[4].endswith("| within noise |")
    assert table[5].startswith("| 02 | empirical | k-means 5 bit")   # stable: notebook order kept
    assert table[6].startswith("| 03 | derivation | rank 10")


def test_counts_keep_empirical_claims_apart_from_derivations_and_course_checks():
    assert claims.counts(ROWS) == ("4 empirical claims (decided by a measurement): 2 hold at our scale, "
                                   "1 within noise, 1 do not hold (1 with a named mechanism); "
                                   "1 derivation checks (arithmetic and identities: shown and asserted, 1 hold, not "
                                   "counted as reproductions); 1 course checks (not a paper's claim)")


def test_claim_records_its_kind_and_refuses_an_unknown_one(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("COURSE_CLAIMS_FILE", str(tmp_path / "claims.json"))
    record = checks.claim("03", "rank 10 costs one fifth", paper="1/5", ours="0.20", holds=True, kind="derivation")
    assert record.kind == "derivation" and "(derivation) rank 10" in capsys.readouterr().out
    assert checks.read_claims()[0].kind == "derivation"
    with pytest.raises(ValueError, match="kind='identity' is unknown"):
        checks.claim("03", "x", paper="1", ours="1", holds=True, kind="identity")


def test_claim_records_within_noise_and_why(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("COURSE_CLAIMS_FILE", str(tmp_path / "claims.json"))
    checks.claim("07", "pre-act beats post-act", paper="6.37 vs 6.61%", ours="same", holds=False, within_noise=True)
    assert "〰️ [07] pre-act beats post-act" in capsys.readouterr().out
    checks.claim("09", "faster", paper="3×", ours="1.1×", holds=False, why="depthwise convs are memory-bound")
    assert capsys.readouterr().out.rstrip().endswith("→ does not hold — why: depthwise convs are memory-bound")
    assert [c.verdict for c in checks.read_claims()] == ["within noise", "does not hold"]
    with pytest.raises(ValueError, match="holds must be False"):
        checks.claim("07", "x", paper="1", ours="1", holds=True, within_noise=True)
    with pytest.raises(TypeError, match="why must be a string"):
        checks.claim("07", "x", paper="1", ours="1", holds=False, why=None)


def test_a_ledger_written_before_kinds_existed_reads_as_empirical(tmp_path):
    ledger = tmp_path / "old.json"
    ledger.write_text(json.dumps([{k: v for k, v in ROWS[0].__dict__.items() if k != "kind"}]))
    assert checks.read_claims(ledger)[0].kind == "empirical"


def test_update_and_check_the_readme(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"# Title\n\n{claims.BEGIN}\nold\n{claims.END}\n\nafter\n")
    assert not claims.readme_is_current(ROWS, readme)
    assert claims.update_readme(ROWS, readme) and claims.readme_is_current(ROWS, readme)
    text = readme.read_text()
    assert text.startswith("# Title\n\n") and text.endswith("\n\nafter\n")
    assert "4 empirical claims (decided by a measurement): 2 hold at our scale, 1 within noise" in text
    assert not claims.update_readme(ROWS, readme)                      # idempotent
    readme.write_text("no markers\n")
    with pytest.raises(ValueError, match="must contain the line"):
        claims.update_readme(ROWS, readme)


def test_snapshot_round_trip_and_cli(tmp_path, monkeypatch):
    ledger = tmp_path / "claims.json"
    ledger.write_text(json.dumps([c.__dict__ for c in ROWS]))
    monkeypatch.setattr(claims, "SNAPSHOT", tmp_path / "docs" / "claims.json")
    readme = tmp_path / "README.md"
    readme.write_text(f"{claims.BEGIN}\n{claims.END}\n")
    monkeypatch.setattr(claims, "README", readme)
    assert claims.main(["check"]) == 1
    assert claims.main(["update", str(ledger)]) == 0
    assert [c.chapter for c in checks.read_claims(claims.SNAPSHOT)] == ["00", "02", "02", "02", "03", "05"]
    assert claims.main(["check"]) == 0
    assert claims.main(["update", str(tmp_path / "none.json")]) == 1
    assert claims.main(["bogus"]) == 2


def test_the_readme_is_the_committed_ledger():
    """README.md's claims table is exactly what docs/claims.json generates (run
    `python -m course_lib.claims update` after executing the notebooks)."""
    assert claims.SNAPSHOT.exists(), "docs/claims.json is missing"
    recorded = checks.read_claims(claims.SNAPSHOT)
    assert recorded, "docs/claims.json holds no claims"
    assert claims.readme_is_current(recorded), "README's claims table differs from docs/claims.json"


def test_claims_page_lists_every_claim_with_its_verdict():
    page = claims.render_html(ROWS, nav="<nav>n</nav>")
    assert page.count("<tr>") == 7 and "<nav>n</nav>" in page and "<td>derivation</td>" in page
    assert "TTQ | ternary" in page and "does not hold</span><br><small>why: one epoch | 2k images" in page
    assert "within noise</span>" in page and "2-core CPU" in page
