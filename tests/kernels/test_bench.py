"""bench_kernels runs and reports (timings are never asserted)."""

from tinybnn.kernels import bench


def test_bench_kernels_reports_every_shape_and_formats_a_table(monkeypatch):
    monkeypatch.setattr(bench, "SHAPES", [("tiny", "4ch", 200, 36, 4),
                                          ("tiny", "70ch", 64, 630, 70)])
    monkeypatch.setattr(bench, "PAUSE_SECONDS", 0.0)
    monkeypatch.setattr(bench, "MIN_SECONDS", 0.0)
    results = bench.bench_kernels(repeats=1, quick=True)
    assert [r["layer"] for r in results] == ["4ch", "70ch"]
    for r in results:
        assert r["exact"] and r["ratio"] > 0 and r["M_timed"] <= r["M"]
        assert set(r) >= {"float_ms", "xnor_ms", "xnor_gops", "float_gflops", "K", "N"}
    table = bench.format_table(results)
    assert "median ratio" in table and "70ch" in table
