"""Usage errors of the sub-commands: exit 2, a message naming the value and the constraint,
and the usage line of the sub-command (not of ``lmech``), found before any work starts."""
from __future__ import annotations

import os

import pytest

from lmech.cli import build_parser, main

MLP = ["transfer", "--model", "mlp", "--scheme", "mup", "--lrs", "2^-8", "2^-6", "--steps", "1",
       "--backend", "inprocess", "--no-progress", "--no-plot"]


def usage_error(argv, capsys) -> str:
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


def test_examples_of_the_old_failure_needs_depth(tmp_path, capsys):
    err = usage_error(MLP + ["--widths", "64", "128", "--out", str(tmp_path / "o")], capsys)
    assert "usage: lmech transfer" in err and "`--depth`" in err


def test_metric_of_default_trial_checked_before_training(tmp_path, capsys):
    err = usage_error(MLP + ["--widths", "64", "128", "--depth", "3", "--out", str(tmp_path / "o"),
                             "--metric", "nosuchkey"], capsys)
    assert "usage: lmech transfer" in err
    assert "--metric nosuchkey" in err and "final_train_loss" in err and "val_loss" in err
    assert not (tmp_path / "o" / "sweep.sqlite").exists()  # nothing ran


def test_metric_of_custom_trial_checked_after_the_trials(tmp_path, capsys):
    argv = ["transfer", "--model", "toy", "--scheme", "mup", "--widths", "64", "128", "--lrs", "2^-8", "2^-6",
            "--trial", "_toy_trials:quadratic", "--backend", "inprocess", "--no-progress", "--no-plot",
            "--out", str(tmp_path / "o")]
    err = usage_error(argv + ["--metric", "nosuchkey"], capsys)
    assert "--metric nosuchkey" in err and "final_train_loss, val_loss" in err and "usage: lmech transfer" in err
    # the trials are kept: the right metric analyses them without running again
    assert main(argv + ["--metric", "val_loss"]) == 0
    assert "4 trials: 4 done" in capsys.readouterr().out
    from lmech.sweep import load_sweep

    assert [t.attempts for t in load_sweep(tmp_path / "o").trials] == [1] * 4


@pytest.mark.parametrize("command", [
    MLP + ["--widths", "64", "128", "--depth", "3"],
    ["coord-check", "--widths", "64,128", "--steps", "1", "--seeds", "1", "--no-progress"],
    ["schedule", "--alpha", "1.5", "--beta", "0.5", "--steps", "100"],
    ["reproduce", "--only", "kernel.ood.shift", "--backend", "inprocess"],
])
@pytest.mark.parametrize("where", ["file", "under_file"])
def test_out_that_is_not_a_folder(command, where, tmp_path, capsys):
    f = tmp_path / "afile"
    f.write_text("x")
    out = f if where == "file" else f / "sub"
    err = usage_error(command + ["--out", str(out)], capsys)
    sub = command[0]
    assert f"usage: lmech {sub}" in err
    assert f"--out {out}" in err and "must be a folder" in err
    assert f.read_text() == "x"


def test_scaling_fit_out_and_nested_usage(tmp_path, capsys):
    f = tmp_path / "afile"
    f.write_text("x")
    runs = tmp_path / "runs.csv"
    runs.write_text("N,D,loss\n1e6,1e8,3.0\n")
    err = usage_error(["scaling", "fit", str(runs), "--out", str(f)], capsys)
    assert "usage: lmech scaling fit" in err and "must be a folder" in err
    err = usage_error(["scaling", "fit", str(tmp_path / "missing.csv"), "--out", str(tmp_path / "o")], capsys)
    assert "usage: lmech scaling fit" in err


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_out_unwritable(tmp_path, capsys):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        err = usage_error(["schedule", "--alpha", "1.5", "--beta", "0.5", "--out", str(ro / "x")], capsys)
    finally:
        ro.chmod(0o700)
    assert "cannot create the folder" in err


def test_report_out_is_a_file(tmp_path, capsys):
    f = tmp_path / "afile"
    f.write_text("x")
    err = usage_error(["report", "--out", str(f)], capsys)
    assert "usage: lmech report" in err and "it is a file" in err


@pytest.mark.parametrize("trial, says", [("no_such_module_xyz:run", "No module named"),
                                         ("_toy_trials:no_such_function", "no attribute"),
                                         ("not a path", "import path")])
def test_bad_trial_found_before_workers(trial, says, tmp_path, capsys):
    err = usage_error(["transfer", "--model", "toy", "--scheme", "mup", "--widths", "64", "128", "--lrs", "0.1",
                       "--trial", trial, "--out", str(tmp_path / "o")], capsys)
    assert f"--trial {trial}" in err and says in err and "usage: lmech transfer" in err
    assert not (tmp_path / "o").exists()  # nothing created, no worker started


def test_width_below_base_width_suggests_flag(tmp_path, capsys):
    err = usage_error(MLP + ["--widths", "32", "64", "--depth", "3", "--out", str(tmp_path / "o")], capsys)
    assert "--widths 32" in err and "base width 64" in err and "--base-width 32" in err
    err = usage_error(MLP + ["--widths", "16", "64", "--depth", "3", "--base-width", "32",
                             "--out", str(tmp_path / "o")], capsys)
    assert "--base-width 16" in err and "(the default)" not in err
    err = usage_error(["transfer", "--model", "resmlp", "--scheme", "completep", "--depths", "1", "4", "--width", "64",
                       "--lrs", "0.01", "--out", str(tmp_path / "o")], capsys)
    assert "--depths 1" in err and "--base-depth 1" in err
    # the suggestion works
    assert main(MLP + ["--widths", "32", "64", "--depth", "3", "--base-width", "32",
                       "--out", str(tmp_path / "ok")]) == 0


def test_optimizer_vocabulary(capsys):
    parser = build_parser()
    base_t = ["transfer", "--model", "mlp", "--scheme", "mup", "--widths", "64", "128", "--lrs", "0.1", "--out", "o"]
    for argv in (base_t, ["coord-check"]):
        assert parser.parse_args(argv + ["--optimizer", "adamw"]).optimizer == "adamw"
        assert parser.parse_args(argv + ["--optimizer", "sgd"]).optimizer == "sgd"
        capsys.readouterr()
        assert parser.parse_args(argv + ["--optimizer", "adam"]).optimizer == "adamw"  # old spelling
        assert "deprecated" in capsys.readouterr().err
        with pytest.raises(SystemExit) as e:
            parser.parse_args(argv + ["--optimizer", "lion"])
        assert e.value.code == 2
        err = capsys.readouterr().err
        assert "adamw, sgd" in err and "'lion'" in err and f"usage: lmech {argv[0]}" in err
    assert parser.parse_args(["coord-check"]).optimizer == "adamw"  # the default, same name as transfer's


def test_coord_check_adamw_is_the_adam_update(tmp_path):
    """coord-check --optimizer adamw runs the solver's Adam update (no weight decay) and
    gives the same slopes as the deprecated spelling."""
    import json

    outs = []
    for i, name in enumerate(("adamw", "adam")):
        out = tmp_path / str(i)
        main(["coord-check", "--widths", "32,64", "--steps", "1", "--seeds", "1", "--no-controls", "--no-plot",
              "--no-progress", "--optimizer", name, "--out", str(out)])
        d = json.loads((out / "coord_check.json").read_text())
        d.pop("seconds")
        outs.append(d)
    assert outs[0]["rows"] and outs[0] == outs[1]


def test_handler_errors_use_the_subcommand_usage(capsys):
    err = usage_error(["reproduce", "--only", "no.such.claim.*"], capsys)
    assert "usage: lmech reproduce" in err
    err = usage_error(["claims", "list", "--only", "no.such.claim.*"], capsys)
    assert "usage: lmech claims list" in err
