"""agent/export.py: an export loads without the package, plays, and refuses what it cannot read."""

import json
import os
import pathlib
import shutil
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import ROOT, one_line_error, run_cli

FORMAT_1 = ROOT / "tests" / "data" / "format1_cartpole"   # a run written by the package before the loop


@pytest.mark.slow
def test_exported_policy_loads_without_the_package_and_plays(tmp_path):
    result = run_cli("train", "--game", "freeway", "--steps", "1024", "--run-dir", "logs/fw",
                     "--no-progress", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    model = tmp_path / "saved_model" / "fw"
    card = json.loads((model / "policy.json").read_text())
    assert card["game"] == "freeway" and card["num_actions"] == 3 and card["steps_trained"] == 1024
    assert card["obs_shape"] == [4, 84, 84] and card["env"]["reward_clip"] is True
    assert (model / "policy.keras").stat().st_size > 100_000

    # Plain TensorFlow in a bare process: no package on the path, cwd elsewhere.
    obs = np.random.default_rng(0).integers(0, 255, size=(3, 4, 84, 84), dtype=np.uint8)
    np.save(tmp_path / "obs.npy", obs)
    code = ("import sys, numpy as np, tensorflow as tf; f = tf.saved_model.load(sys.argv[1]); "
            "out = f(np.load(sys.argv[2])); print(out['action'].numpy().tolist(), out['logits'].shape)")
    bare = subprocess.run([sys.executable, "-c", code, str(model), str(tmp_path / "obs.npy")],
                          capture_output=True, text=True, cwd="/", env={"PATH": os.environ["PATH"]})
    assert bare.returncode == 0, bare.stderr[-2000:]
    import keras
    expected = np.argmax(keras.saving.load_model(model / "policy.keras")(obs)[0], axis=-1).tolist()
    assert bare.stdout.strip() == f"{expected} (3, 3)"

    video = tmp_path / "episode.mp4"
    played = run_cli("play", str(model), "--episodes", "1", "--json", "--video", str(video), cwd=tmp_path)
    assert played.returncode == 0, played.stderr[-2000:]
    episode = json.loads(played.stdout.strip().splitlines()[0])
    # Freeway lasts 2 min 16 s of game time: ~2048 agent steps after the random no-op start.
    assert episode["episode"] == 1 and 2000 <= episode["length"] <= 2048
    import cv2
    capture = cv2.VideoCapture(str(video))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == episode["length"]
    assert int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)) == 336


@pytest.mark.slow
@pytest.mark.parametrize("algo, output", [("ppo", "logits"), ("ddqn", "q_values")])
def test_export_command_rewrites_a_runs_export_that_plays(tmp_path, algo, output):
    # 1,536 steps: ddqn's gradient steps start at 1,000 (min_replay).
    assert run_cli("train", "--game", "cartpole", "--algo", algo, "--steps", "1536", "--run-dir", "logs/cp",
                   "--no-progress", cwd=tmp_path).returncode == 0
    # An export needs the weights, not the replay: it never reads the side files.
    for side in (tmp_path / "logs" / "cp" / "checkpoints").glob("side-*/*"):
        side.write_bytes(b"junk")
    result = run_cli("export", "logs/cp", "--out", "elsewhere/cp", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    model = tmp_path / "elsewhere" / "cp"
    card = json.loads((model / "policy.json").read_text())
    assert card["algo"] == algo and card["steps_trained"] == 1536 and card["obs_shape"] == [4]
    import tensorflow as tf
    from agent.config import RunConfig, learner_class

    obs = np.random.default_rng(0).normal(size=(8, 4)).astype(np.float32)
    out = tf.saved_model.load(str(model))(obs)
    assert out[output].shape == (8, 2) and out["action"].numpy().tolist() == np.argmax(out[output], -1).tolist()
    # The trained weights: the export restored from the checkpoint in a new process answers as the
    # export `train` wrote from its live learner, and not as a freshly built learner.
    trained = tf.saved_model.load(str(tmp_path / "saved_model" / "cp"))(obs)[output].numpy()
    np.testing.assert_allclose(out[output].numpy(), trained, rtol=1e-5, atol=1e-6)
    cfg = RunConfig.from_json((tmp_path / "logs" / "cp" / "config.json").read_text())
    fresh, _ = learner_class(algo)(cfg, (4,), "float32", 2).serving()
    assert np.abs(fresh.__call__(obs)[output].numpy() - trained).max() > 1e-3
    played = run_cli("play", str(model), "--episodes", "2", "--json", cwd=tmp_path)
    episodes = [json.loads(line) for line in played.stdout.strip().splitlines()]
    assert played.returncode == 0 and [e["episode"] for e in episodes] == [1, 2], played.stderr[-2000:]
    assert all(1 <= e["length"] <= 500 for e in episodes)
    refused = run_cli("export", "logs/cp", "--out", "/etc/hostname/cp", cwd=tmp_path)
    assert one_line_error(refused, "is a file, not a folder"), refused.stderr


def test_an_export_never_replaces_a_folder_that_holds_the_run_or_other_files(tmp_path):
    run_dir = tmp_path / "old"
    shutil.copytree(FORMAT_1, run_dir)
    (tmp_path / "keep").mkdir()
    (tmp_path / "keep" / "notes.txt").write_text("mine")
    before = sorted((p, p.stat().st_mtime_ns) for p in tmp_path.rglob("*"))
    for out, message in [("old", "holds the run folder"), (".", "holds the run folder"),
                         ("keep", "holds something other than an export"),
                         ("old/best_policy", "is in the run's best_policy, which the run keeps itself"),
                         ("old/../old/best_policy", "is in the run's best_policy, which the run keeps itself")]:
        result = run_cli("export", "old", "--out", out, cwd=tmp_path)
        assert one_line_error(result, message), (out, result.stderr)
    assert sorted((p, p.stat().st_mtime_ns) for p in tmp_path.rglob("*")) == before


def test_a_run_of_an_older_version_is_refused(tmp_path):
    run_dir = tmp_path / "old"
    shutil.copytree(FORMAT_1, run_dir)
    result = run_cli("export", str(run_dir), cwd=tmp_path)
    assert one_line_error(result, "comes from an older version of the package"), result.stderr
    assert not (tmp_path / "saved_model").exists()


def test_an_export_killed_between_its_renames_does_not_block_the_next(tmp_path):
    # write_export swaps the new export in: out -> out.export-old, new -> out, then drops
    # out.export-old. A kill before the drop leaves it behind; the next export must still go through.
    import keras
    import tensorflow as tf

    from agent.export import write_export
    from utilities.run_folder import read_card

    out = tmp_path / "policy"
    for folder, text in ((out, "the previous export"), (tmp_path / "policy.export-old", "left by a killed export")):
        folder.mkdir()
        (folder / "note.txt").write_text(text)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    module = tf.Module()
    module.model = model
    module.__call__ = tf.function(lambda x: {"action": tf.argmax(model(x), -1)},
                                  input_signature=[tf.TensorSpec((None, 2), tf.float32)])
    write_export(module, model, out, {"game": "cartpole"})
    assert read_card(out) == {"game": "cartpole"} and not (out / "note.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["policy"]

    # An export that fails while it is built (a full disk, say) leaves the previous one and nothing else.
    def full_disk(path):
        pathlib.Path(path).write_bytes(b"half")
        raise OSError(28, "No space left on device")

    model.save = full_disk
    with pytest.raises(OSError, match="No space left"):
        write_export(module, model, out, {"game": "pong"})
    assert read_card(out) == {"game": "cartpole"} and sorted(p.name for p in tmp_path.iterdir()) == ["policy"]
    del model.save

    # Exports into one folder go one at a time: another process's export (holding the folder) goes first.
    import fcntl
    import threading
    import unittest.mock

    building = threading.Event()
    real_save = tf.saved_model.save

    def save(*args, **kwargs):
        building.set()
        return real_save(*args, **kwargs)

    fd = os.open(tmp_path, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        with unittest.mock.patch.object(tf.saved_model, "save", save):
            writer = threading.Thread(target=write_export, args=(module, model, out, {"game": "freeway"}), daemon=True)
            writer.start()
            assert not building.wait(1.0) and read_card(out) == {"game": "cartpole"}   # it waits its turn
            os.close(fd)
            fd = None
            writer.join(60)
    finally:
        if fd is not None:
            os.close(fd)
    assert building.is_set() and read_card(out) == {"game": "freeway"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["policy"]


@pytest.mark.slow
def test_a_new_run_starts_from_an_exported_policy_and_refuses_one_that_does_not_fit(tmp_path):
    import keras
    import tensorflow as tf
    from agent import presets
    from agent.config import RunConfig, learner_class
    from agent.export import start_from

    # 512 steps of ddqn: no gradient step yet (they start at min_replay 1,000), so a run that
    # starts from the base exports the base's very weights.
    assert run_cli("train", "--game", "cartpole", "--algo", "ddqn", "--steps", "1536", "--seed", "1",
                   "--run-dir", "logs/base", "--no-progress", cwd=tmp_path).returncode == 0
    base = tmp_path / "saved_model" / "base"
    result = run_cli("train", "--game", "cartpole", "--algo", "ddqn", "--steps", "512", "--seed", "7",
                     "--init-from", str(base), "--run-dir", "logs/next", "--no-progress", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"starting from {base} (ddqn, 1,536 agent steps behind it)" in result.stdout
    card = json.loads((tmp_path / "saved_model" / "next" / "policy.json").read_text())
    assert card["init_from"] == {"model": str(base.resolve()), "algo": "ddqn", "steps_trained": 1536}
    assert card["steps_trained"] == 512
    obs = np.random.default_rng(0).normal(size=(16, 4)).astype(np.float32)
    q = {name: tf.saved_model.load(str(tmp_path / "saved_model" / name))(obs)["q_values"].numpy()
         for name in ("base", "next")}
    np.testing.assert_array_equal(q["next"], q["base"])

    # In-process: every weight of a seed-7 learner (online and target net) becomes the base's.
    cfg = RunConfig.from_preset(presets.preset("ddqn", "classic", "cartpole"), game="cartpole", algo="ddqn", seed=7)
    cfg.init_from = {"model": str(base), "algo": "ddqn", "steps_trained": 1536}
    learner = learner_class("ddqn")(cfg, (4,), "float32", 2)
    expected = keras.saving.load_model(base / "policy.keras", compile=False).get_weights()
    assert any(np.abs(a - b).max() > 1e-3 for a, b in zip(learner.online.get_weights(), expected))
    start_from(learner, cfg)
    for net in (learner.online, learner.target):
        for got, want in zip(net.get_weights(), expected, strict=True):
            np.testing.assert_array_equal(got, want)

    # What does not fit is refused in one line, before anything is written.
    # A chain: a run from `next`'s export counts the steps behind it, its own base's included.
    chained = run_cli("train", "--game", "cartpole", "--algo", "ddqn", "--steps", "256", "--init-from",
                      str(tmp_path / "saved_model" / "next"), "--run-dir", "logs/third", "--no-progress", cwd=tmp_path)
    assert chained.returncode == 0, chained.stderr[-2000:]
    third = json.loads((tmp_path / "saved_model" / "third" / "policy.json").read_text())
    assert third["init_from"]["steps_trained"] == 1536 + 512
    # A card whose steps are not a count is refused, not a traceback.
    odd = tmp_path / "odd"
    shutil.copytree(base, odd)
    (odd / "policy.json").write_text(json.dumps({**card, "init_from": None, "steps_trained": "1536"}))
    damaged = tmp_path / "damaged"
    shutil.copytree(base, damaged)
    (damaged / "policy.keras").write_bytes(b"junk")
    new = ("--run-dir", "logs/refused", "--init-from")
    refusals = [
        (("--game", "mountaincar", *new, str(base)), "is a policy for game 'cartpole', not this run's 'mountaincar'"),
        (("--game", "cartpole", "--algo", "ppo", *new, str(base)), "its ddqn network does not fit a ppo network"),
        (("--game", "cartpole", *new, str(tmp_path / "nowhere")), "is not an exported policy"),
        (("--game", "cartpole", "--algo", "ddqn", *new, str(damaged)), f"cannot start from {str(damaged)!r}"),
        (("--resume", "logs/next", "--init-from", str(base)), "--resume takes no --init-from"),
        (("--game", "cartpole", "--algo", "ddqn", *new, str(odd)), "cannot be read as an exported policy"),
    ]
    config = (tmp_path / "logs" / "next" / "config.json").read_text()
    for flags, message in refusals:
        refused = run_cli("train", *flags, "--no-progress", cwd=tmp_path)
        assert one_line_error(refused, message), (flags, refused.stderr)
        assert not (tmp_path / "logs" / "refused").exists()
    assert (tmp_path / "logs" / "next" / "config.json").read_text() == config


def test_the_card_takes_the_last_clear_rate_logged_up_to_the_checkpoint(tmp_path):
    import tensorflow as tf
    from agent.export import clear_rate_at
    from utilities.run_folder import RunFolder

    writer = tf.summary.create_file_writer(str(tmp_path))
    with writer.as_default():
        for step, rate in ((100, 0.25), (200, 0.5), (300, 0.75)):
            tf.summary.scalar("test/clear_rate", rate, step=step)
            tf.summary.scalar("test/return", 10.0 * rate, step=step + 50)
        # From step 300 on, the episode count is logged beside the rate (a resume changed it).
        tf.summary.scalar("test/clear_episodes", 8.0, step=300)
    writer.close()
    folder = RunFolder(tmp_path)
    assert clear_rate_at(folder, 99) is None
    assert clear_rate_at(folder, 250) == (200, 0.5, None) and clear_rate_at(folder, 300) == (300, 0.75, 8)


def test_the_best_clear_rate_so_far_keeps_its_policy_across_a_resume(tmp_path):
    """best_keeper: the policy of the test with the highest clear rate (the first of equals,
    4 decimals as the card keeps them) goes to best_policy/ with that rate on its card; a
    resumed loop compares against the card, unless its tests have another episode count."""
    import keras
    from agent.export import best_keeper
    from tests.conftest import make_loop
    from utilities.run_folder import read_card

    def run(rates, steps, episodes=4):
        loop = make_loop(tmp_path / "run", algo="ppo", steps=steps, checkpoint_every=1)
        if loop.folder.has_checkpoint():
            loop.restore()
        space = loop.env.single_observation_space
        loop.after_clear_rate = best_keeper(loop.cfg, loop.algorithm, loop.folder, loop.env.single_action_space.n,
                                            space.shape)
        loop.test_every, rates, seen = 1, iter(rates), []

        def test(act, rate):
            seen.append((next(rates), int(loop.state.step.numpy()),
                         [w.copy() for w in loop.algorithm.serving()[1].get_weights()]))
            return {"return": 0.0, "frames": [], "clear_rate": seen[-1][0], "clear_episodes": episodes}
        loop.test = test
        loop.train(progress=False)
        loop.close()
        return seen

    def kept_weights():
        return keras.saving.load_model(best / "policy.keras", compile=False).get_weights()

    best = tmp_path / "run" / "best_policy"
    # One test per update (Deep Sea's PPO preset: 8 envs x 42 steps).
    per = 336
    seen = run([0.25, 1 / 3, 0.25, 1 / 3, 0.0], 5 * per)
    card = read_card(best)
    assert card["clear_rate"] == {"rate": 0.3333, "episodes": 4, "at_step": 2 * per} and card["checkpoint"] is None
    assert card["steps_trained"] == seen[1][1] == 2 * per
    for got, want in zip(kept_weights(), seen[1][2]):
        np.testing.assert_array_equal(got, want)
    assert any((w != l).any() for w, l in zip(seen[1][2], seen[-1][2]))    # it trained on after the best
    # Resumed after a kill between the export's two renames (the best is left as .export-old):
    # it is put back, and 0.3333 again does not replace it; 0.75 does.
    when = (best / "policy.json").stat().st_mtime_ns
    best.rename(tmp_path / "run" / "best_policy.export-old")
    run([1 / 3], 6 * per)
    assert (best / "policy.json").stat().st_mtime_ns == when and not (tmp_path / "run" / "best_policy.export-old").exists()
    seen = run([0.75], 7 * per)
    assert read_card(best)["clear_rate"] == {"rate": 0.75, "episodes": 4, "at_step": 7 * per}
    for got, want in zip(kept_weights(), seen[0][2]):
        np.testing.assert_array_equal(got, want)
    # Tests over another number of episodes start a new best (0.75 of 4 is not 0.75 of 20).
    run([0.5], 8 * per, episodes=20)
    assert read_card(best)["clear_rate"] == {"rate": 0.5, "episodes": 20, "at_step": 8 * per}


def test_a_policy_with_nan_weights_is_never_kept_as_the_best(tmp_path, capsys):
    """A step can leave NaN weights behind a finite loss; a clear-rate test before the loop's
    next update stops it must not keep that policy (the first test of a run is always a best)."""
    from agent.export import best_keeper
    from tests.conftest import make_loop

    loop = make_loop(tmp_path / "run", algo="ppo", steps=336)
    space = loop.env.single_observation_space
    keep = best_keeper(loop.cfg, loop.algorithm, loop.folder, loop.env.single_action_space.n, space.shape)
    weight = loop.algorithm.serving()[1].weights[0]
    weight.assign(np.where(np.arange(weight.shape[-1]) == 1, np.nan, weight.numpy()))
    assert keep(0.5, 4, loop.state) is None
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "the policy of clear rate 0.5 was not kept" in err[0] and "NaN or Inf weights" in err[0]
    assert not (tmp_path / "run" / "best_policy").exists()
    loop.close()
