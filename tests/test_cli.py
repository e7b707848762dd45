"""agent/cli.py: the command line as a user runs it -- real processes, real files."""

import json
import shutil

import numpy as np
import pytest
import tensorflow as tf

import envs
from agent.config import RunConfig, learner_class
from agent.loop import Loop
from tests.conftest import held_elsewhere, one_line_error, run_cli
from utilities.events import read_scalars
from utilities.run_folder import RunFolder


@pytest.mark.parametrize("args, bad", [
    (["--game", "pacmann"], "unknown game 'pacmann'"),
    (["--algo", "dqn"], "unknown algo 'dqn'"),
    (["--steps", "0"], "'0'"),
    (["--steps", "ten"], "'ten'"),
    (["--num-envs", "-4"], "'-4'"),
    # Empty or blank values are errors, not "use the default" (a 10M-step run).
    (["--game", ""], "--game: must not be empty"),
    (["--game", "  "], "--game: must not be empty"),
    (["--algo", ""], "--algo: must not be empty"),
    (["--stage", "", "--game", "mario"], "--stage: must not be empty"),
    (["--game", "mario", "--stage", "9-1"], "unknown stage '9-1'"),
    (["--steps", ""], "--steps: must be a positive integer"),
    (["--seeds", ""], "--seeds: must be distinct integers"),
    (["--seed", "-1"], "--seed: must be an integer from 0 to 2147463647, got '-1'"),
    # The test envs take seed + 20,000, which must stay a 32-bit seed.
    (["--seed", "2147463648"], "--seed: must be an integer from 0 to 2147463647"),
    (["--seeds", "1,-2"], "--seeds: must be distinct integers from 0 to 2147463647"),
    (["--game", "cartpole", "--cpus", "100000"], "--cpus 100000 is more than this machine's"),
    (["--game", "cartpole", "--give-up-after", "off", "--give-up-below", "3"],
     "--give-up-below 3 goes with a --give-up-after, not with --give-up-after off"),
    (["--give-up-after", "2", "--give-up-below", "nan"], "--give-up-below: must be a finite number, got 'nan'"),
    (["--game", "cartpole", "--stop-at-clear"], "--stop-at-clear is for games that report clears"),
    # Value-based algorithms: a replay that does not fit in free memory, non-positive or
    # too small capacities, their flags on PPO.
    (["--algo", "ddqn", "--game", "cartpole", "--buffer-size", "1_000_000_000_000"],
     "the learner, 8 envs, replay capacity 1000000000000: "),
    (["--algo", "ddqn-rnd", "--game", "gravitar", "--buffer-size", "100_000_000"], "available"),
    # Envs and rollouts are sized before anything is allocated, as replays are.
    (["--game", "freeway", "--num-envs", "100_000_000"],
     "the learner, 100000000 envs, a rollout of 100000000 x 128 steps: "),
    (["--game", "mario", "--num-envs", "1_000_000"],
     "the learner, 1000000 envs, the test envs, a rollout of 1000000 x 256 steps: "),
    (["--algo", "ddqn", "--buffer-size", "0"], "--buffer-size: must be a positive integer, got '0'"),
    (["--algo", "ddqn", "--buffer-size", "-5"], "--buffer-size: must be a positive integer"),
    (["--algo", "ddqn", "--game", "deepsea", "--buffer-size", "20"], "buffer_size 20 is too small for 8 envs"),
    (["--game", "cartpole", "--buffer-size", "1000"], "--buffer-size is for ddqn, ddqn-rnd, not 'ppo'"),
    (["--algo", "ppo-rnd", "--no-prioritized"], "--no-prioritized is for ddqn, ddqn-rnd, not 'ppo-rnd'"),
    (["--algo", "ddqn", "--game", "cartpole", "--no-rnd"], "--no-rnd is for the algorithms with RND"),
    (["--learning-rate", "0"], "--learning-rate: must be a finite number > 0, got '0'"),
    (["--learning-rate", "inf"], "--learning-rate: must be a finite number > 0, got 'inf'"),
    (["--algo", "ddqn", "--game", "cartpole", "--anneal"], "--anneal is for ppo, ppo-rnd, ptr-ppo, not 'ddqn'"),
])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, args, bad):
    result = run_cli("train", *args, "--run-dir", str(tmp_path / "run"), cwd=tmp_path)
    assert one_line_error(result, bad), result.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("run_dir, message", [
    ("/etc/hostname/run", "'/etc/hostname' is a file, not a folder"),
    ("/sys/run", "cannot be written"),        # read-only even for root
    ("", "--run-dir: must not be empty"),
])
def test_unusable_run_folder_is_refused_before_training(tmp_path, run_dir, message):
    result = run_cli("train", "--game", "cartpole", "--run-dir", run_dir, cwd=tmp_path)
    assert one_line_error(result, message), result.stderr
    assert list(tmp_path.iterdir()) == []


def snapshot(folder):
    return {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(folder.rglob("*"))}


def test_folders_that_hold_something_else_are_refused_and_left_as_they_were(tmp_path):
    keep = tmp_path / "keep"
    keep.mkdir()
    (keep / "notes.txt").write_text("mine")
    taken = tmp_path / "runs-seed2"
    taken.mkdir()
    (taken / "config.json").write_text("{}")
    (taken / "checkpoints").mkdir()
    (taken / "checkpoints" / "checkpoint").write_text("")
    copied = tmp_path / "copied"            # another run's checkpoints without its config.json
    shutil.copytree(taken / "checkpoints", copied / "checkpoints")
    before = snapshot(tmp_path)
    cartpole = ["train", "--game", "cartpole", "--no-progress"]
    for args, message in [
        ([*cartpole, "--run-dir", str(keep)], "holds other files"),
        ([*cartpole, "--run-dir", str(copied)], "holds a run's 'checkpoints' but no config.json"),
        # The run's own files and folders are no export folder (a new run has none yet).
        ([*cartpole, "--run-dir", str(tmp_path / "run"), "--export-dir", str(tmp_path / "run" / "checkpoints")],
         "is in the run's checkpoints, which the run keeps itself"),
        ([*cartpole, "--run-dir", str(tmp_path / "run"), "--export-dir", str(tmp_path / "run" / "config.json")],
         "is in the run's config.json, which the run keeps itself"),
        ([*cartpole, "--run-dir", str(taken / "checkpoints" / "inner")], "is inside the run folder"),
        ([*cartpole, "--run-dir", str(tmp_path / "run"), "--export-dir", str(keep)],
         "holds something other than an export"),
        # An export replaces its folder whole: never one that holds the run.
        ([*cartpole, "--run-dir", str(tmp_path / "run"), "--export-dir", str(tmp_path)], "holds the run folder"),
        # Every seed's folders are checked before the first seed trains.
        ([*cartpole, "--seeds", "1,2", "--run-dir", str(tmp_path / "runs")], "runs-seed2' already holds a run"),
    ]:
        result = run_cli(*args, cwd=tmp_path)
        assert one_line_error(result, message), (args, result.stderr[-2000:])
    assert snapshot(tmp_path) == before


def test_unreadable_files_are_one_line_errors(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.json").write_text("null")
    from agent import presets

    cfg = RunConfig.from_preset(presets.preset("ppo", "classic"), game="cartpole", algo="ppo")
    cfg.env["gravity"] = 3.0                 # no such setting of the env
    (tmp_path / "edited").mkdir()
    (tmp_path / "edited" / "config.json").write_text(cfg.to_json())
    (tmp_path / "edited" / "checkpoints").mkdir()
    (tmp_path / "edited" / "checkpoints" / "checkpoint").write_text("")
    fake = tmp_path / "fake"            # an export's files with junk in them
    fake.mkdir()
    (fake / "saved_model.pb").write_bytes(b"junk")
    (fake / "policy.json").write_text(json.dumps({"game": "cartpole", "obs_shape": [4]}))
    (tmp_path / "sweep").mkdir()
    (tmp_path / "sweep" / "sweep.json").write_text("[]")
    (tmp_path / "empty").mkdir()
    before = snapshot(tmp_path)
    for args, message in [
        (["train", "--resume", "run"], "cannot resume"),
        (["train", "--resume", "edited"], "cannot make the cartpole env of 'edited'"),
        (["play", "fake"], "cannot play 'fake'"),
        (["play", "fake", "--video", "v.mp4"], "--video needs a game seen as images; cartpole is seen as a vector"),
        (["play", "fake", "--video", "/sys/v.mp4"], "--video folder '/sys' cannot be written"),
        (["play", "fake", "--video", "v.gif"], "--video 'v.gif' is not an .mp4 file's path"),
        (["play", "fake", "--random-starts"], "--random-starts is for games that report clears (mario), not 'cartpole'"),
        (["sweep", "--status", "sweep"], "no sweep in"),
        (["plot", "empty"], "no 'episode/return' scalars in 'empty'"),
        (["plot", "empty", "--out", "empty"], "--out 'empty' is a folder"),
        (["plot", "empty", "--out", "/sys/c.png"], "cannot be written"),
        (["plot", "empty", "--out", "c.txt"], "--out 'c.txt': the file must end in one of .png, .svg, .pdf, .jpg"),
        (["plot", "empty", "--smooth", "0"], "--smooth: must be a positive integer, got '0'"),
    ]:
        result = run_cli(*args, cwd=tmp_path)
        assert one_line_error(result, message), (args, result.stderr[-2000:])
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("args, message", [
    (["play", "nowhere"], "not an exported policy"),
    (["export", "nowhere"], "no run with a checkpoint"),
    (["plot", "nowhere"], "no run folder"),
    (["play", ""], "model_dir: must not be empty"),
])
def test_missing_paths_are_one_line_errors(tmp_path, args, message):
    result = run_cli(*args, cwd=tmp_path)
    assert one_line_error(result, message), result.stderr[-2000:]


@pytest.mark.slow
def test_ppo_rnd_on_freeway_writes_events_config_and_checkpoint(tmp_path):
    run_dir = tmp_path / "run"
    result = run_cli("train", "--game", "freeway", "--algo", "ppo-rnd", "--steps", "2048",
                     "--seed", "7", "--run-dir", str(run_dir), "--no-progress", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "done: 2,048 steps, 2 updates" in result.stdout

    cfg = json.loads((run_dir / "config.json").read_text())
    assert cfg["game"] == "freeway" and cfg["algo"] == "ppo-rnd" and cfg["seed"] == 7 and cfg["format"] == 2
    assert cfg["num_envs"] == 8 and cfg["params"]["int_coef"] == 1.0 and cfg["env"]["reward_clip"] is True
    assert cfg["params"]["rnd"]["warmup_steps"] == 1024

    scalars = read_scalars(run_dir)
    for tag in ("loss/policy", "loss/value", "loss/rnd", "loss/entropy", "reward/intrinsic",
                "train/approx_kl", "train/explained_variance", "train/learning_rate",
                "time/steps_per_second"):
        assert [s for s, _ in scalars[tag]] == [1024, 2048], tag
    assert all(v > 0 for _, v in scalars["reward/intrinsic"])
    assert all(np.isfinite(v) for _, v in scalars["loss/rnd"])
    # Linear annealing: update 2 of 2 runs at half the preset's learning rate.
    np.testing.assert_allclose([v for _, v in scalars["train/learning_rate"]], [2.5e-4, 1.25e-4], rtol=1e-5)

    plot = run_cli("plot", str(run_dir), "--out", str(tmp_path / "curve.png"), "--tag", "loss/rnd", "--smooth", "2")
    assert plot.returncode == 0 and (tmp_path / "curve.png").stat().st_size > 5000

    # The checkpoint restores into a fresh loop in this (another) process.
    reader = tf.train.load_checkpoint(str(run_dir / "checkpoints"))
    saved = {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()}
    config = RunConfig.from_json((run_dir / "config.json").read_text())
    env = envs.make("freeway", 8, 7, **config.env)
    algorithm = learner_class("ppo-rnd")(config, (4, 84, 84), "uint8", 3)
    loop = Loop(config, algorithm, env, RunFolder(run_dir))
    fresh = [w.copy() for w in algorithm.rnd.predictor.get_weights()]
    loop.restore()
    assert int(loop.state.step.numpy()) == 2048 and int(loop.state.updates.numpy()) == 2
    assert not np.allclose(fresh[-2], algorithm.rnd.predictor.get_weights()[-2])
    rnd = algorithm.rnd
    # Warm-up (1024 steps x 8 envs) plus the two rollouts' next observations.
    assert rnd.obs_norm.count.numpy() == pytest.approx(1024 * 8 + 2 * 1024, abs=1)
    assert rnd.return_norm.count.numpy() == pytest.approx(2 * 1024, abs=1)
    for name, var in (("rnd_obs_norm", rnd.obs_norm), ("int_return_norm", rnd.return_norm)):
        for field in ("mean", "var", "count"):
            np.testing.assert_array_equal(getattr(var, field).numpy(),
                                          saved[f"{name}/{field}/.ATTRIBUTES/VARIABLE_VALUE"])
    np.testing.assert_array_equal(rnd.filter.numpy(), saved["int_filter/.ATTRIBUTES/VARIABLE_VALUE"])
    loop.close()


def test_a_run_config_with_a_bad_batch_size_is_refused_on_resume(tmp_path):
    from agent import presets

    cfg = RunConfig.from_preset(presets.preset("ddqn", "deepsea"), game="deepsea", algo="ddqn")
    cfg.params.batch_size = 0
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "config.json").write_text(cfg.to_json())
    before = sorted(p.stat().st_mtime_ns for p in tmp_path.rglob("*"))
    result = run_cli("train", "--resume", str(run_dir), cwd=tmp_path)
    assert one_line_error(result, "batch_size must be a positive integer, got 0"), result.stderr
    flag = run_cli("train", "--resume", str(run_dir), "--buffer-size", "100", cwd=tmp_path)
    assert one_line_error(flag, "--resume takes no --buffer-size 100:"), flag.stderr
    assert sorted(p.stat().st_mtime_ns for p in tmp_path.rglob("*")) == before


@pytest.mark.slow
def test_a_plain_resume_keeps_the_options_the_run_began_with(tmp_path):
    def kept(run_dir):   # the checkpoint numbers the state file names, and the saved options
        state = tf.train.get_checkpoint_state(str(run_dir / "checkpoints"))
        numbers = [int(path.rsplit("-", 1)[1]) for path in state.all_model_checkpoint_paths]
        return numbers, json.loads((run_dir / "config.json").read_text())["options"]

    run_dir = tmp_path / "run"
    # CartPole's PPO preset: 512 agent steps an update, so 8 updates; paused after 2.
    first = run_cli("train", "--game", "cartpole", "--steps", "4096", "--run-dir", str(run_dir), "--no-progress",
                    "--checkpoint-every", "3", "--give-up-after", "50", "--give-up-below", "-1", "--stop-after", "2",
                    cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-2000:]
    numbers, options = kept(run_dir)
    assert numbers == [2] and options["checkpoint_every"] == 3
    assert (options["give_up_after"], options["give_up_below"]) == (50, -1.0) and "stop_after" not in options
    # A plain --resume checkpoints every 3 updates as the run began (not every 50).
    again = run_cli("train", "--resume", str(run_dir), "--no-progress", cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-2000:]
    assert kept(run_dir) == ([3, 6, 8], options)
    # A flag given again replaces its value, from then on; "off" turns the give-up rule off.
    more = run_cli("train", "--resume", str(run_dir), "--steps", "4608", "--checkpoint-every", "1",
                   "--give-up-after", "off", "--no-progress", cwd=tmp_path)
    assert more.returncode == 0, more.stderr[-2000:]
    assert kept(run_dir) == ([6, 8, 9], dict(options, checkpoint_every=1, give_up_after=None, give_up_below=None))


@pytest.mark.parametrize("options, message", [
    (None, "its options must be a JSON object, got None"),
    ({"checkpoint_every": 0}, "option checkpoint_every must be a positive integer, got 0"),
    ({"checkpoint_every": "5"}, "option checkpoint_every must be a positive integer, got '5'"),
    ({"stop_at_clear_rate": 1.5}, "option stop_at_clear_rate must be a number in (0, 1] or null, got 1.5"),
    ({"stop_at_clear": 1}, "option stop_at_clear must be true or false, got 1"),
    ({"test_evry": 5}, "unknown option 'test_evry'"),
])
def test_a_hand_edited_option_is_refused_on_resume(tmp_path, options, message):
    from agent import presets

    cfg = RunConfig.from_preset(presets.preset("ppo", "classic"), game="cartpole", algo="ppo")
    cfg.options = options
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.json").write_text(cfg.to_json())
    before = snapshot(tmp_path)
    result = run_cli("train", "--resume", "run", cwd=tmp_path)
    assert one_line_error(result, f"cannot resume 'run': {message}"), result.stderr
    assert snapshot(tmp_path) == before


@pytest.mark.slow
def test_a_run_killed_before_its_first_checkpoint_resumes_from_the_start(tmp_path):
    from agent import presets

    cfg = RunConfig.from_preset(presets.preset("ppo", "classic"), game="cartpole", algo="ppo", seed=3,
                                total_steps=1024)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "config.json").write_text(cfg.to_json())    # what `train` writes before training
    result = run_cli("train", "--resume", str(run_dir), "--no-progress", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "has no checkpoint yet: training it from step 0" in result.stdout
    assert "done: 1,024 steps, 2 updates" in result.stdout and RunFolder(run_dir).has_checkpoint()


def test_a_run_being_trained_is_refused_to_a_second_process_and_free_once_it_dies(tmp_path, monkeypatch):
    # Two processes training one folder would interleave their checkpoints and replays.
    from agent import presets
    from agent.cli import train_argv
    from utilities.run_folder import Hold

    cfg = RunConfig.from_preset(presets.preset("ppo", "classic"), game="cartpole", algo="ppo", seed=3,
                                total_steps=1024)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "config.json").write_text(cfg.to_json())
    holder = held_elsewhere(run_dir)
    try:
        before = sorted((p, p.stat().st_mtime_ns) for p in tmp_path.rglob("*"))
        result = run_cli("train", "--resume", str(run_dir), "--no-progress", cwd=tmp_path)
        assert one_line_error(result, f"run folder {str(run_dir)!r} is in use by another process "
                                      f"(pid {holder.pid})"), result.stderr
        assert sorted((p, p.stat().st_mtime_ns) for p in tmp_path.rglob("*")) == before
    finally:
        holder.kill()   # SIGKILL: the OS drops its hold, no stale lock
        holder.wait()
    monkeypatch.chdir(tmp_path)   # the export goes to tmp_path/saved_model
    assert train_argv(["train", "--resume", str(run_dir), "--no-progress"]) == 0
    assert RunFolder(run_dir).has_checkpoint()
    Hold(run_dir, "run folder").close()   # the finished run let go of its folder


def test_a_run_folder_that_cannot_be_held_is_refused_after_its_envs_are_made_with_nothing_written(tmp_path):
    # A new run is first held just before its first write (its envs and learner made by then).
    run_dir = tmp_path / "run"
    (run_dir / ".lock").mkdir(parents=True)   # a .lock this process cannot open, as another user's would be
    before = sorted((p, p.stat().st_mtime_ns) for p in tmp_path.rglob("*"))
    result = run_cli("train", "--game", "cartpole", "--steps", "512", "--run-dir", str(run_dir), "--no-progress",
                     cwd=tmp_path)
    assert one_line_error(result, f"run folder {str(run_dir)!r} cannot be held: {str(run_dir / '.lock')!r}: "
                                  f"Is a directory"), result.stderr
    assert sorted((p, p.stat().st_mtime_ns) for p in tmp_path.rglob("*")) == before


def test_a_new_run_whose_folder_another_run_took_meanwhile_is_refused(tmp_path, monkeypatch, capsys):
    # Two `train --run-dir X` started together both find X free; the second to hold it must not
    # write its config and checkpoints over the first's.
    import utilities.run_folder
    from agent.cli import train_argv

    run_dir = tmp_path / "run"
    other = '{"another": "run"}'

    class Raced(utilities.run_folder.Hold):
        def __init__(self, folder, what):
            run_dir.mkdir()
            (run_dir / "config.json").write_text(other)   # the other run, begun and ended meanwhile
            super().__init__(folder, what)

    monkeypatch.setattr(utilities.run_folder, "Hold", Raced)
    monkeypatch.chdir(tmp_path)
    code = train_argv(["train", "--game", "cartpole", "--steps", "512", "--run-dir", str(run_dir), "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err == [f"python -m agent train: error: run folder {str(run_dir)!r} was taken by another "
                                 f"run while this one started: choose another --run-dir"], err
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["config.json", "run"]
    assert (run_dir / "config.json").read_text() == other


def test_no_rnd_runs_the_rnd_preset_without_rnd():
    from agent import presets
    from agent.cli import without_rnd

    cfg = without_rnd(RunConfig.from_preset(presets.preset("ddqn-rnd", "atari", "gravitar"), game="gravitar",
                                            algo="ddqn-rnd")).validate()
    # Seed 003's settings (per-episode cadence, dueling, prioritised, 1/500 score scale), no RND.
    p = cfg.params
    assert (cfg.algo, p.rnd, p.unit, p.dueling, p.prioritized, p.ext_coef) == ("ddqn", None, "episodes", True, True,
                                                                                1 / 500)
    ppo = without_rnd(RunConfig.from_preset(presets.preset("ppo-rnd", "atari", "freeway"), game="freeway",
                                            algo="ppo-rnd")).validate()
    assert (ppo.algo, ppo.params.rnd, ppo.params.learning_rate) == ("ppo", None, 2.5e-4)


def test_learning_rate_and_anneal_replace_the_presets_for_a_new_run_only(tmp_path):
    from agent import presets
    from agent.cli import build_parser, new_config

    def params(*flags):
        args = build_parser().parse_args(["train", *flags, "--run-dir", str(tmp_path / "run")])
        return new_config(args)[0].params

    mario = params("--game", "mario")
    assert (mario.learning_rate, mario.anneal, mario.clip_range) == (1e-4, False, 0.2)
    tuned = params("--game", "mario", "--learning-rate", "3e-5", "--anneal")
    assert (tuned.learning_rate, tuned.anneal, tuned.clip_range) == (3e-5, True, 0.2)
    assert params("--game", "freeway", "--no-anneal").anneal is False
    assert params("--algo", "ddqn", "--game", "cartpole", "--learning-rate", "5e-4").learning_rate == 5e-4
    cfg = RunConfig.from_preset(presets.preset("ppo", "classic"), game="cartpole", algo="ppo")
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "config.json").write_text(cfg.to_json())
    for flag in (["--learning-rate", "1e-5"], ["--no-anneal"]):
        result = run_cli("train", "--resume", str(tmp_path / "old"), *flag, cwd=tmp_path)
        assert one_line_error(result, f"--resume takes no {flag[0]}"), result.stderr


@pytest.mark.parametrize("args, message", [
    (["--game", "mario", "--stop-at-clear-rate", "1.5"], "--stop-at-clear-rate: must be a number in (0, 1], got '1.5'"),
    (["--game", "mario", "--stop-at-clear-rate", "0"], "--stop-at-clear-rate: must be a number in (0, 1]"),
    (["--game", "cartpole", "--stop-at-clear-rate", "0.5"], "--stop-at-clear-rate is for games that report clears"),
    (["--game", "mario", "--stop-at-clear-rate", "0.5", "--clear-episodes", "0"], "--clear-episodes must be > 0"),
    (["--game", "mario", "--clear-every", "0"], "--clear-every: must be a positive integer, got '0'"),
    (["--game", "mario", "--clear-every", "15"], "--clear-every must be a multiple of --test-every (10), got 15"),
    (["--game", "mario", "--clear-every", "20", "--clear-episodes", "0"],
     "--clear-every needs random-start test episodes: --clear-episodes must be > 0"),
    (["--game", "cartpole", "--clear-every", "20"], "--clear-every is for games that report clears (mario), not 'cartpole'"),
])
def test_bad_stop_at_clear_rate_is_one_line_exit_2_and_writes_nothing(tmp_path, args, message):
    result = run_cli("train", *args, "--run-dir", str(tmp_path / "run"), cwd=tmp_path)
    assert one_line_error(result, message), result.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("failing_close", [None, 0, 1])
def test_a_run_that_fails_to_start_closes_every_env_it_made(tmp_path, monkeypatch, capsys, failing_close):
    """A learner that cannot be built (here: raises) must not leave the envs already made
    open: in a sweep's trial process Mario's env workers would outlive the run. So too when
    one env's close fails (failing_close: the training env, 0, or the test env, 1), which
    is said in a line, never in place of the run's own error."""
    import agent.config
    from agent.cli import train_argv

    made = []

    def spy(make):
        def wrapped(*args, **kwargs):
            env = make(*args, **kwargs)
            made.append(env)
            close = env.close
            env.closed = False

            def closing():
                env.closed = True
                close()
                if failing_close == made.index(env):
                    raise OSError("close failed")
            env.close = closing
            return env
        return wrapped

    def broken_learner(algo):
        def build(*args):
            raise RuntimeError("no learner")
        return build

    monkeypatch.setattr(envs, "make", spy(envs.make))
    monkeypatch.setattr(envs, "make_test_env", spy(envs.make_test_env))
    monkeypatch.setattr(agent.config, "learner_class", broken_learner)
    with pytest.raises(RuntimeError, match="no learner"):
        train_argv(["train", "--game", "cartpole", "--steps", "1024", "--test-every", "1", "--run-dir", str(tmp_path / "r"),
                    "--no-progress"])
    assert len(made) == 2 and all(env.closed for env in made)
    warned = [line for line in capsys.readouterr().err.splitlines() if "did not close" in line]
    assert warned == ([] if failing_close is None else
                      ["python -m agent train: warning: an env did not close: close failed"]), warned
