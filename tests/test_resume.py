"""Resuming as a user does it (CLI processes), for every registered algorithm: exact
continuation in a new process, SIGKILL at any moment, Ctrl-C, refused resumes (another
game, algorithm, seed or budget)."""

import re
import signal
import subprocess
import sys
import time

import shutil

import numpy as np
import pytest

from agent.config import ALGORITHMS
from tests.conftest import ROOT, assert_same_checkpoints, checkpoint_tensors, cli_env, one_line_error, run_cli
from utilities.events import read_scalars

pytestmark = pytest.mark.slow
BATCH = 8 * 42          # the deepsea presets: 8 envs x 42 steps an update
ALGOS = sorted(ALGORITHMS)


def train_args(algo):
    return ["train", "--game", "deepsea", "--algo", algo, "--no-progress"]


@pytest.mark.parametrize("algo", ALGOS)
def test_resume_in_a_new_process_continues_exactly(tmp_path, algo):
    RUN = train_args(algo)
    whole, paused = tmp_path / "whole", tmp_path / "paused"
    assert run_cli(*RUN, "--steps", str(4 * BATCH), "--run-dir", str(whole)).returncode == 0
    first = run_cli(*RUN, "--steps", str(4 * BATCH), "--run-dir", str(paused), "--stop-after", "2")
    assert first.returncode == 0, first.stderr[-2000:]
    assert checkpoint_tensors(paused)["update/.ATTRIBUTES/VARIABLE_VALUE"] == 2
    second = run_cli("train", "--resume", str(paused), "--no-progress")
    assert second.returncode == 0, second.stderr[-2000:]
    assert f"at step {2 * BATCH:,}" in second.stdout

    assert_same_checkpoints(checkpoint_tensors(whole), checkpoint_tensors(paused))
    # The curves continue: same steps, none missing, none twice, and (but for timings) the same values.
    resumed = read_scalars(paused)
    for tag, points in read_scalars(whole).items():
        assert [s for s, _ in resumed[tag]] == [s for s, _ in points], tag
        if not tag.startswith("time/"):
            np.testing.assert_allclose([v for _, v in resumed[tag]], [v for _, v in points], rtol=1e-5, err_msg=tag)


def latest_update(run_dir):
    """The update number of the checkpoint the run's state file names (0: none yet)."""
    found = re.search(r'^model_checkpoint_path: "ckpt-(\d+)"', (run_dir / "checkpoints" / "checkpoint").read_text()
                      if (run_dir / "checkpoints" / "checkpoint").exists() else "", re.M)
    return int(found.group(1)) if found else 0


@pytest.mark.parametrize("algo", ALGOS)
def test_sigkill_at_any_moment_leaves_a_resumable_run(tmp_path, algo):
    RUN = train_args(algo)
    run_dir = tmp_path / "run"
    args = [sys.executable, "-m", "agent", *RUN, "--steps", str(1000 * BATCH),
            "--run-dir", str(run_dir), "--checkpoint-every", "1"]
    rng = np.random.default_rng(0)
    seen = 0
    for attempt in range(3):
        cmd = args if attempt == 0 else [sys.executable, "-m", "agent", "train", "--resume",
                                         str(run_dir), "--checkpoint-every", "1", "--no-progress"]
        proc = subprocess.Popen(cmd, cwd=tmp_path, env=cli_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # Kill once this process writes checkpoints of its own, at a random moment.
        deadline = time.time() + 120
        while latest_update(run_dir) <= seen and time.time() < deadline:
            time.sleep(0.05)
        assert latest_update(run_dir) > seen, f"attempt {attempt}: no new checkpoint"
        time.sleep(rng.uniform(0.0, 2.0))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        seen = latest_update(run_dir)
    resumed = run_cli("train", "--resume", str(run_dir), "--stop-after", "1", "--no-progress")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    # From the last complete checkpoint, its summaries all there and none twice.
    assert f"at step {seen * BATCH:,}" in resumed.stdout
    steps = [s for s, _ in read_scalars(run_dir)["loss/total"]]
    assert steps == list(range(BATCH, (seen + 2) * BATCH, BATCH)), (seen, steps)


def test_ctrl_c_saves_a_checkpoint_and_exits(tmp_path):
    RUN = train_args("ppo-rnd")
    run_dir = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "agent", *RUN, "--steps", str(1000 * BATCH),
                             "--run-dir", str(run_dir), "--checkpoint-every", "1000"],
                            cwd=tmp_path, env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not list(run_dir.glob("events.out.tfevents.*")) and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err[-2000:]
    assert "--resume" in out
    saved = checkpoint_tensors(run_dir)
    assert saved["update/.ATTRIBUTES/VARIABLE_VALUE"] >= 1
    assert saved["step/.ATTRIBUTES/VARIABLE_VALUE"] == saved["update/.ATTRIBUTES/VARIABLE_VALUE"] * BATCH


def snapshot(folder):
    return {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(folder.rglob("*"))}


@pytest.mark.parametrize("algo", ALGOS)
def test_refused_resumes_change_nothing_on_disk(tmp_path, algo):
    RUN = train_args(algo)
    run_dir = tmp_path / "run"
    assert run_cli(*RUN, "--steps", str(BATCH), "--run-dir", str(run_dir)).returncode == 0
    config = run_dir / "config.json"
    written = config.read_text()
    # The same folder, but its config now names a game with another observation and action set.
    config.write_text(written.replace('"game": "deepsea"', '"game": "cartpole"'))
    before = snapshot(tmp_path)
    cases = [
        (["--resume", str(run_dir)], "is for game 'deepsea'"),
        (["--resume", str(tmp_path / "nothing")], "no run to resume"),
        (["--resume", str(run_dir), "--steps", "5"], "may only be raised"),
        (["--resume", str(run_dir), "--seed", "3"], "--resume takes no --seed 3:"),
        (["--run-dir", str(run_dir)], "already holds a run"),
        (["--resume", str(run_dir), "--algo", "ppo"], "--resume takes no --algo 'ppo':"),
    ]
    for args, message in cases:
        result = run_cli("train", *args)
        assert one_line_error(result, message), (args, result.stderr[-2000:])
        assert result.stderr.startswith("python -m agent train: error:")
        assert snapshot(tmp_path) == before, args
    # Its config now names another algorithm: the checkpoint's variables do not fit it.
    other = next(a for a in ALGOS if a != algo)
    config.write_text(written.replace(f'"algo": "{algo}"', f'"algo": "{other}"'))
    before = snapshot(tmp_path)
    result = run_cli("train", "--resume", str(run_dir))
    assert one_line_error(result, "cannot resume"), result.stderr[-2000:]
    assert snapshot(tmp_path) == before


def test_damaged_checkpoints_and_misfit_exports_are_one_line_errors(tmp_path):
    import json

    run_dir, export = tmp_path / "run", tmp_path / "export"
    assert run_cli(*train_args("ppo"), "--steps", str(BATCH), "--run-dir", str(run_dir),
                   "--export-dir", str(export)).returncode == 0
    # A finished run resumed: nothing trains, the policy is exported again.
    again = run_cli("train", "--resume", str(run_dir), "--no-progress")
    assert again.returncode == 0 and "nothing to train" in again.stdout, again.stderr[-2000:]

    def cut(checkpoints):            # a data file cut short
        data = next(checkpoints.glob("*.data-*"))
        data.write_bytes(data.read_bytes()[:data.stat().st_size // 2])

    def junk(checkpoints):           # an index that is not one
        (checkpoints / "ckpt-1.index").write_bytes(bytes(range(256)))

    for name, damage in [("cut", cut), ("junk", junk),
                         ("gone", lambda checkpoints: (checkpoints / "ckpt-1.index").unlink())]:
        shutil.copytree(run_dir, tmp_path / name)
        damage(tmp_path / name / "checkpoints")
    # A replay's side file cut short (ddqn).
    assert run_cli(*train_args("ddqn"), "--steps", str(BATCH), "--run-dir", str(tmp_path / "side")).returncode == 0
    # The same run with its dueling head switched in config.json: the checkpoint's network does
    # not fit; the partly restored objects must not add TensorFlow warnings to the one line.
    shutil.copytree(tmp_path / "side", tmp_path / "flipped")
    config = json.loads((tmp_path / "flipped" / "config.json").read_text())
    config["params"]["dueling"] = not config["params"]["dueling"]
    (tmp_path / "flipped" / "config.json").write_text(json.dumps(config))
    replay = next((tmp_path / "side" / "checkpoints").glob("side-*/replay.npz"))
    replay.write_bytes(replay.read_bytes()[:replay.stat().st_size // 2])
    # Cards that do not fit the policy: one field edited, or a whole card of another game's export.
    for name, edit in [("misfit", {"game": "cartpole"}), ("unknown-setting", {"env": {"bogus": 1}}),
                       ("other-card", {"game": "cartpole", "obs_shape": [4], "num_actions": 2, "env": {}})]:
        shutil.copytree(export, tmp_path / name)
        card = json.loads((tmp_path / name / "policy.json").read_text())
        (tmp_path / name / "policy.json").write_text(json.dumps({**card, **edit}))
    shutil.copytree(export, tmp_path / "damaged")       # an export copied only in part
    cut(tmp_path / "damaged" / "variables")
    before = snapshot(tmp_path)
    cases = [(["train", "--resume", name], "ckpt-1 cannot be read") for name in ("cut", "junk", "gone")]
    cases += [(["export", name, "--out", f"out-{name}"], "ckpt-1 cannot be read") for name in ("cut", "junk", "gone")]
    cases += [(["train", "--resume", "flipped"], "cannot resume 'flipped'"),
              (["export", "flipped", "--out", "out-flipped"], "cannot export 'flipped'"),
              (["train", "--resume", "side"], "side-1 of checkpoint"),
              (["play", "misfit"], "the policy takes observations [400] and 2 actions, 'cartpole' gives [4] and 2"),
              (["play", "unknown-setting"], "cannot play 'unknown-setting'"),
              (["play", "other-card"], "the policy takes observations [400] and 2 actions, 'cartpole' gives [4] and 2"),
              (["play", "damaged"], "cannot play 'damaged'")]
    for args, message in cases:
        result = run_cli(*args, cwd=tmp_path)
        assert one_line_error(result, message), (args, result.stderr[-2000:])
        assert snapshot(tmp_path) == before, args


def test_a_resume_that_cannot_write_its_folder_is_refused_before_it_starts(tmp_path):
    run_dir = tmp_path / "run"
    assert run_cli(*train_args("ppo"), "--steps", str(BATCH), "--run-dir", str(run_dir)).returncode == 0
    for locked, what in [(run_dir, "run folder"), (run_dir / "checkpoints", "checkpoints folder")]:
        # Root passes every permission check: an immutable folder is one it cannot write.
        if subprocess.run(["chattr", "+i", str(locked)], capture_output=True).returncode != 0:
            pytest.skip("chattr +i is not available on this file system")
        try:
            before = snapshot(tmp_path)
            result = run_cli("train", "--resume", str(run_dir), "--steps", str(2 * BATCH))
        finally:
            subprocess.run(["chattr", "-i", str(locked)], check=True)
        assert one_line_error(result, f"{what} {str(locked)!r} cannot be written"), result.stderr[-2000:]
        assert snapshot(tmp_path) == before


def test_seeds_run_one_after_another_and_give_up_on_a_flat_curve(tmp_path):
    # Deep Sea PPO never finds the reward: its mean return stays <= 0, so every seed
    # moves on after 2 updates instead of running all 10.
    # PPO as the ablation of PPO+RND: the seeds' folders are named as a single run's, plus the seed.
    result = run_cli("train", "--game", "deepsea", "--algo", "ppo-rnd", "--no-rnd", "--seeds", "4,5",
                     "--steps", str(10 * BATCH), "--give-up-after", "2", "--give-up-below", "0",
                     "--no-progress", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.count("gave up") == 2
    run_dirs = sorted((tmp_path / "logs").iterdir())
    assert len(run_dirs) == 2 and len({d.name.rsplit("-", 1)[0] for d in run_dirs}) == 1
    for seed, run_dir in zip((4, 5), run_dirs):
        assert re.fullmatch(rf"deepsea-ppo-nornd-\d{{8}}-\d{{6}}-seed{seed}", run_dir.name), run_dir.name
        assert f'"seed": {seed}' in (run_dir / "config.json").read_text()
        assert checkpoint_tensors(run_dir)["update/.ATTRIBUTES/VARIABLE_VALUE"] == 2
        assert (tmp_path / "saved_model" / run_dir.name / "saved_model.pb").is_file()


def test_a_run_of_the_previous_format_is_refused_with_a_clear_message(tmp_path):
    # Written by the package before the one-loop restructure (format 1).
    run_dir = tmp_path / "old"
    shutil.copytree(ROOT / "tests" / "data" / "format1_cartpole", run_dir)
    before = snapshot(tmp_path)
    result = run_cli("train", "--resume", str(run_dir))
    assert one_line_error(result, "comes from an older version of the package (run format 1"), result.stderr
    assert snapshot(tmp_path) == before
