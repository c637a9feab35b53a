"""Issue 23, points 2 and 11: filters that select nothing are refused naming what exists; an adapter bug fails once, not per item."""

from __future__ import annotations

from cli_support import BUGGY_ADAPTER, error_line, ok, run, trained_digits

#: What ``trained_digits`` imports (60 digits): the subsets and their counts, as errors name them.
SUBSETS = "subsets: train 42, validation 9, test 9"


def test_a_missing_subset_or_path_is_refused_naming_the_subsets_that_exist(capsys, tmp_path):
    store = str(tmp_path / "store")
    s = ("--store", store)
    trained_digits(capsys, store)
    wanted = f"dataset digits has no item in subset 'tset' ({SUBSETS})"
    for argv in (
        ("predict", "mlp", "--dataset", "digits", "--subset", "tset"),
        ("evaluate", "mlp", "--dataset", "digits", "--subset", "tset"),
        ("predictions", "export", "mlp", "--dataset", "digits", "--subset", "tset", "--format", "jsonl", "-o", str(tmp_path / "p.jsonl")),
    ):
        code, out, err = run(capsys, *argv, *s)
        assert code == 1 and out == "", argv
        assert wanted in error_line(err), argv
    assert not (tmp_path / "p.jsonl").exists()

    code, _, err = run(capsys, "predict", "mlp", "--dataset", "digits", "--subset", "test", "--path-prefix", "train", *s)
    assert code == 1
    assert f"dataset digits has no item in subset 'test' under path 'train' ({SUBSETS}; top folders: test 9, train 42, validation 9)" in error_line(err)
    assert ok(capsys, "runs", "list", *s).strip() == "no prediction runs", "refused before any prediction run"


def test_the_pipeline_refuses_a_missing_subset_before_starting(capsys, tmp_path):
    store = str(tmp_path / "store")
    trained_digits(capsys, store)
    root = tmp_path / "kfp-root"
    code, out, err = run(
        capsys, "pipeline", "run", "predict", "--local", "--model", "mlp", "--dataset", "digits", "--subset", "tset", "--store", store,
        "--pipeline-root", str(root), "--adapter", "examples.digits.adapter:DigitsAdapter",
    )  # fmt: skip
    assert code == 1 and out == ""
    assert f"dataset digits has no item in subset 'tset' ({SUBSETS})" in error_line(err)
    assert not root.exists(), "kfp.local was started"


def test_an_adapter_bug_stops_the_run_after_a_few_batches_with_one_line(capsys, tmp_path):
    store = str(tmp_path / "store")
    s = ("--store", store)
    trained_digits(capsys, store)
    bug = "AttributeError: 'NoneType' object has no attribute 'forward'"
    ok(capsys, "model", "update", "mlp", "--config", "batch_size=4", *s)

    code, out, _ = run(capsys, "predict", "mlp", "--adapter", BUGGY_ADAPTER, "--dataset", "digits", *s)
    assert code == 1
    lines = out.splitlines()
    assert "12 failed of" in lines[0], lines[0]
    assert lines[1].startswith(f"  FAILED 12 items at predict: {bug} (first: "), out
    assert len(lines) == 3 and lines[2].startswith("  ABORTED: stopped early: the first 3 predict batches all failed with the same error"), out
    assert "--keep-going" in lines[2]

    code, _, err = run(capsys, "evaluate", "mlp", "--adapter", BUGGY_ADAPTER, "--dataset", "digits", "--subset", "train", *s)
    last = err.splitlines()[-1]
    assert code == 1 and last.startswith("error: AdapterError: the prediction run ") and "stopped before it finished (stopped early" in last
    assert "no metrics stored" in last

    code, out, _ = run(capsys, "predict", "mlp", "--adapter", BUGGY_ADAPTER, "--dataset", "digits", "--keep-going", *s)
    assert code == 1
    assert out.splitlines()[1:] == [f"  FAILED 60 items at predict: {bug} (first: {out.split('(first: ')[1].split(')')[0]})"]
    assert "0 predicted, 0 already done, 60 failed of 60" in out

    # the adapter fixed: --resume predicts what the stopped runs left
    out = ok(capsys, "predict", "mlp", "--dataset", "digits", "--resume", *s)
    assert "60 predicted, 0 already done, 0 failed of 60" in out
