"""envs/mario.py: the classic reward and seed 000's rules in the real emulator, the adapter's contract."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from envs.mario import MarioGame, MarioVecEnv, WorkerDied
from tests.conftest import ROOT

NOOP, RIGHT = 0, 1   # RIGHT_ONLY action set


def test_classic_reward_on_a_scripted_run_in_the_emulator():
    game = MarioGame("1-1", "right", seed=0, random_starts=False)
    _, info = game.reset()
    assert (info["x_pos"], info["time"]) == (40, 400)
    rewards, infos = [], [info]
    for i in range(400):
        _, reward, done, _, info = game.step(NOOP if i < 20 else RIGHT)
        rewards.append(reward)
        infos.append(info)
        if done:
            break
    game.close()
    # Standing still: only the clock pays, -1 per tick (400 -> 399 within 20 steps), / 10.
    assert sum(rewards[:20]) == pytest.approx((infos[20]["time"] - 400) / 10) and infos[20]["time"] < 400
    assert all(i["x_pos"] == 40 for i in infos[:21])
    # Walking: each step pays (x progress + clock) / 10, frame by frame (no jump over 5 px).
    for t in range(20, len(rewards) - 1):
        dx = infos[t + 1]["x_pos"] - infos[t]["x_pos"]
        dt = infos[t + 1]["time"] - infos[t]["time"]
        assert rewards[t] == pytest.approx((dx + dt) / 10), t
    # Walking right into the first goomba: death (-25 clipped to -15 on the dying frame),
    # -50 for dying with time left, / 10.
    last = infos[-1]
    assert last["is_dying"] and not last["flag_get"] and last["time"] > 0
    assert 250 < last["x_pos"] < 350
    dx, dt = last["x_pos"] - infos[-2]["x_pos"], last["time"] - infos[-2]["time"]
    # Per skipped frame clip(dx + dt + death, -15, 15): the dying frame gives -15 whatever it
    # moved, the other three their motion; then -50. Without the death term it would be
    # (dx + dt - 50) / 10, above this bound.
    assert -6.5 - 0.1 <= rewards[-1] <= -6.5 + max(dx + dt, 0) / 10


def test_frames_are_seed_000s_gray_84x84_of_the_screen():
    import cv2

    game = MarioGame("1-1", "right", seed=0, random_starts=False)
    try:
        game.reset()
        for _ in range(30):
            stack, *_ = game.step(RIGHT)
        expected = cv2.resize(cv2.cvtColor(game.env.unwrapped.screen, cv2.COLOR_RGB2GRAY), (84, 84),
                              interpolation=cv2.INTER_AREA)
        np.testing.assert_array_equal(stack[-1], expected)
        np.testing.assert_array_equal(game.screen, game.env.unwrapped.screen)
        assert stack[-1].std() > 10 and not np.array_equal(stack[-1], stack[-2])
    finally:
        game.close()


def test_a_stage_rule_fires_in_the_emulator():
    # 4-4: walking right off the start drops Mario to the lower, wrong floor.
    game = MarioGame("4-4", "right", seed=0, random_starts=False)
    _, info = game.reset()
    rewards, infos = [], [info]
    for _ in range(100):
        _, reward, done, _, info = game.step(RIGHT)
        rewards.append(reward)
        infos.append(info)
        if done:
            break
    game.close()
    assert done and not info["is_dying"] and info["x_pos"] <= 1500 and info["y_pos"] < 127
    assert rewards[-1] == pytest.approx(-5.0)          # the wrong-path rule replaces the reward
    for t in range(len(rewards) - 1):                  # each living step carries the -0.1 (/ 10)
        dx = infos[t + 1]["x_pos"] - infos[t]["x_pos"]
        dt = infos[t + 1]["time"] - infos[t]["time"]
        assert rewards[t] == pytest.approx((dx + dt) / 10 - 0.01), t


def test_adapter_contract():
    env = MarioVecEnv(3, seed=5, stage="1-1", action_set="complex", num_workers=2)
    try:
        assert env.single_observation_space.shape == (4, 84, 84) and env.single_action_space.n == 12
        obs, info = env.reset()
        assert obs.shape == (3, 4, 84, 84) and obs.dtype == np.uint8 and not info["reset_row"].any()
        rng = np.random.default_rng(0)
        prev_done = np.zeros(3, bool)
        returns, running = [], np.zeros(3)
        for _ in range(200):
            # Mostly "right": Mario walks into the first goomba, so episodes end.
            actions = np.where(rng.random(3) < 0.8, 1, rng.integers(12, size=3))
            obs, reward, terminated, truncated, info = env.step(actions)
            assert obs.shape == (3, 4, 84, 84) and reward.dtype == np.float32
            np.testing.assert_array_equal(info["reset_row"], prev_done)
            assert np.all(reward[info["reset_row"]] == 0)
            running += reward
            for i in np.flatnonzero(info["episode_end"]):
                assert info["episode_return"][i] == pytest.approx(running[i], abs=1e-4)
                returns.append(info["episode_return"][i])
                running[i] = 0
            prev_done = terminated | truncated
        assert len(returns) >= 2
    finally:
        env.close()


def test_envs_are_seeded_on_their_own():
    env = MarioVecEnv(2, seed=11, stage="1-1", num_workers=1)
    try:
        env.reset()
        for _ in range(5):
            obs, *_ = env.step(np.array([1, 1]))
        # Different random starts: the two envs are not in lock step.
        assert not np.array_equal(obs[0], obs[1])
    finally:
        env.close()


def _alive(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            return "zombie" not in f.read().lower()
    except FileNotFoundError:
        return False


def test_a_killed_worker_raises_quickly_and_nothing_is_left():
    env = MarioVecEnv(2, seed=0, num_workers=2)
    env.reset()
    pids = [p.pid for p in env._processes]
    os.kill(pids[0], signal.SIGKILL)
    start = time.time()
    with pytest.raises(WorkerDied, match="died"):
        for _ in range(3):
            env.step(np.array([0, 0]))
    assert time.time() - start < 10
    env.close()
    time.sleep(0.5)
    assert not any(_alive(p) for p in pids)


def test_a_hung_worker_raises_after_the_timeout():
    env = MarioVecEnv(2, seed=0, num_workers=2)
    env.reset()
    env.timeout = 2.0
    hung = env._processes[1].pid
    os.kill(hung, signal.SIGSTOP)           # alive, never answering
    start = time.time()
    try:
        with pytest.raises(WorkerDied, match="no answer within 2 s"):
            env.step(np.array([0, 0]))
        assert 2 <= time.time() - start < 5
        # Closed with its workers: a step after it must not read the late reply as its own.
        with pytest.raises(RuntimeError, match="closed"):
            env.step(np.array([0, 0]))
        time.sleep(0.5)
        assert not _alive(hung)
    finally:
        if _alive(hung):
            os.kill(hung, signal.SIGCONT)
        env.close()


def test_a_step_cut_short_by_ctrl_c_leaves_the_next_steps_in_step():
    """A Ctrl-C while the parent waits leaves a worker's reply owed; the next step takes it
    first, or it would read that old reply as its own while the worker still writes."""
    actions = [np.array([a, b]) for a, b in [(1, 3), (4, 1), (2, 2), (3, 0)]]
    reference = MarioVecEnv(2, seed=5, num_workers=2)
    env = MarioVecEnv(2, seed=5, num_workers=2)
    previous = signal.getsignal(signal.SIGALRM)
    try:
        reference.reset()
        env.reset()
        want = [reference.step(a) for a in actions]
        slow = env._processes[1].pid
        os.kill(slow, signal.SIGSTOP)      # the parent is left waiting for its reply

        def ctrl_c(*_):
            raise KeyboardInterrupt
        signal.signal(signal.SIGALRM, ctrl_c)
        signal.setitimer(signal.ITIMER_REAL, 0.5)
        with pytest.raises(KeyboardInterrupt):
            env.step(actions[0])
        os.kill(slow, signal.SIGCONT)      # it finishes the step it was sent
        for a, (obs, reward, terminated, _, info) in zip(actions[1:], want[1:]):
            got = env.step(a)
            np.testing.assert_array_equal(got[0], obs)
            np.testing.assert_array_equal(got[1], reward)
            np.testing.assert_array_equal(got[4]["x_pos"], info["x_pos"])
    finally:
        signal.signal(signal.SIGALRM, previous)
        reference.close()
        env.close()


def test_bad_actions_are_refused_before_any_worker_steps():
    env = MarioVecEnv(2, seed=0, num_workers=2)
    try:
        env.reset()
        for bad in (np.array([0, 12]), np.array([0, -1]), np.array([0]), np.array([0.0, 1.0])):
            with pytest.raises(ValueError, match=r"actions must be 2 integers in \[0, 12\)"):
                env.step(bad)
        obs, *_ = env.step(np.array([0, 0]))     # still in step: nothing was sent
        assert obs.shape == (2, 4, 84, 84)
    finally:
        env.close()


def test_no_worker_outlives_its_parent(tmp_path):
    code = ("import os, signal, sys, numpy as np\n"
            "from envs.mario import MarioVecEnv\n"
            "if __name__ == '__main__':\n"
            "    env = MarioVecEnv(2, seed=0, num_workers=2)\n"
            "    env.reset()\n"
            "    print(' '.join(str(p.pid) for p in env._processes), flush=True)\n"
            "    if sys.argv[1] == 'stuck':\n"
            "        os.kill(env._processes[0].pid, signal.SIGSTOP)\n"
            "    if sys.argv[1] != 'exit':\n"
            "        os.kill(os.getpid(), signal.SIGKILL)\n")
    script = tmp_path / "parent.py"
    script.write_text(code)
    # Interpreter exit without close(), SIGKILL of the parent, and SIGKILL of the parent while a
    # worker cannot read its pipe (stopped here; stuck inside the emulator alike).
    for how in ("exit", "kill", "stuck"):
        # Output to files: a surviving worker would hold a pipe open and hang the wait.
        out, err = tmp_path / "out", tmp_path / "err"
        with open(out, "w") as stdout, open(err, "w") as stderr:
            subprocess.run([sys.executable, str(script), how], cwd=ROOT, stdout=stdout, stderr=stderr,
                           env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=120)
        pids = [int(p) for p in out.read_text().split()]
        assert len(pids) == 2, err.read_text()[-2000:]
        deadline = time.time() + 10
        while any(_alive(p) for p in pids) and time.time() < deadline:
            time.sleep(0.1)
        survivors = [p for p in pids if _alive(p)]
        for pid in survivors:
            os.kill(pid, signal.SIGKILL)
        assert not survivors, how


def signalled_group(tmp_path, loop, signals):
    """A process group as a terminal makes it: a parent stepping a 2-env MarioVecEnv (`loop`:
    the lines after env.reset(), indented), sent `signals` ((signal, seconds after) pairs)
    once it prints 'stepping'. Returns (exit code, stdout, stderr)."""
    code = ("import signal, time, numpy as np\n"
            "from envs.mario import MarioVecEnv\n"
            # A test runner may start its children with SIGINT ignored; a terminal does not.
            "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
            "if __name__ == '__main__':\n"
            "    env = MarioVecEnv(2, seed=0, action_set='right', num_workers=2)\n"
            "    env.reset()\n"
            "    print('stepping', flush=True)\n" + loop)
    script = tmp_path / "parent.py"
    script.write_text(code)
    proc = subprocess.Popen([sys.executable, str(script)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)), start_new_session=True)
    try:
        assert proc.stdout.readline().strip() == "stepping", proc.stderr.read()[-2000:]
        for sig, after in signals:
            time.sleep(after)
            os.killpg(proc.pid, sig)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    return proc.returncode, out.strip(), err[-2000:]


def test_a_run_suspended_longer_than_the_worker_timeout_goes_on(tmp_path):
    # Ctrl-Z (or kill -STOP) stops the whole process group; after `fg` the workers answer
    # at once, and the time the parent was stopped is not their delay.
    loop = ("    env.timeout = 2.0\n"
            "    end = time.time() + 8\n"        # steps through the stop and 2 s past it
            "    while time.time() < end:\n"
            "        env.step(np.ones(2, np.int64))\n"
            "    env.close()\n"
            "    print('done', flush=True)\n")
    code, out, err = signalled_group(tmp_path, loop, [(signal.SIGSTOP, 1), (signal.SIGCONT, 5)])   # 2.5 x timeout
    assert code == 0 and out == "done", err


def test_ctrl_c_in_a_terminal_leaves_the_workers_to_the_parent(tmp_path):
    # Ctrl-C signals the whole process group; the training loop finishes its update and saves
    # (agent/loop.py), which needs the workers alive.
    loop = ("    try:\n"
            "        while True:\n"
            "            env.step(np.ones(2, np.int64))\n"
            "    except KeyboardInterrupt:\n"
            "        env.step(np.ones(2, np.int64))\n"
            "    env.close()\n"
            "    print('saved', flush=True)\n")
    code, out, err = signalled_group(tmp_path, loop, [(signal.SIGINT, 1)])
    assert code == 0 and out == "saved", err


def test_greedy_test_episode_is_cut_after_200_identical_actions():
    from agent.evaluation import greedy_episode
    import envs

    env = envs.make_test_env("mario", 0, stage="1-1", action_set="right")
    try:
        # Standing still: the clock would run for ~2,400 steps; the test stops it.
        result = greedy_episode(lambda obs: np.zeros(1, int), env, max_repeats=200, record=True)
    finally:
        env.close()
    assert result["length"] == 201 and not result["cleared"] and result["max_progress"] == 40
    assert len(result["frames"]) == 201 and result["frames"][0].shape == (120, 128, 3)


@pytest.mark.slow
def test_mario_end_to_end_with_test_episodes_video_export_and_play(tmp_path):
    from tests.conftest import run_cli
    from utilities.events import read_scalars
    import json

    # Two updates of 2 x 256 steps: a greedy test after each, the clear rate after the second only.
    run = run_cli("train", "--game", "mario", "--stage", "1-1", "--num-envs", "2", "--steps", "1024",
                  "--test-every", "1", "--clear-episodes", "2", "--clear-every", "2", "--run-dir", "logs/m",
                  "--no-progress",
                  cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    run_dir = tmp_path / "logs" / "m"
    assert (run_dir / "best_test_episode.mp4").stat().st_size > 10_000
    scalars = read_scalars(run_dir)
    for tag in ("test/return", "test/cleared", "test/max_progress", "test/length"):
        assert [s for s, _ in scalars[tag]] == [512, 1024], tag
    assert [s for s, _ in scalars["test/clear_rate"]] == [1024] and scalars["test/clear_episodes"] == [(1024, 2.0)]
    from tensorboard.backend.event_processing import event_accumulator
    from tensorboard.util import tensor_util
    acc = event_accumulator.EventAccumulator(str(run_dir), size_guidance={event_accumulator.TENSORS: 0})
    acc.Reload()
    assert acc.SummaryMetadata("test/best_episode").plugin_data.plugin_name == "images"
    width, height, gif = tensor_util.make_ndarray(acc.Tensors("test/best_episode")[0].tensor_proto)
    assert gif.startswith(b"GIF8") and int(width) == 128 and int(height) == 120
    card = json.loads((tmp_path / "saved_model" / "m" / "policy.json").read_text())
    assert card["stage"] == "1-1" and card["action_set"] == "complex" and card["num_actions"] == 12
    assert card["best_test_score"] == pytest.approx(max(v for _, v in scalars["test/return"]), abs=1e-3)

    assert scalars["test/clear_rate"][0][1] == 0.0   # 2 updates of training do not clear 1-1
    assert card["clear_rate"] == {"rate": 0.0, "episodes": 2, "at_step": 1024}
    # The one clear-rate test is the best so far: its policy is kept in the run folder too.
    best = json.loads((run_dir / "best_policy" / "policy.json").read_text())
    assert best["clear_rate"] == card["clear_rate"] and best["steps_trained"] == 1024
    assert f"best clear rate 0 (random-start test at step 1,024), its policy: logs/m/best_policy" in run.stdout

    played = run_cli("play", str(tmp_path / "saved_model" / "m"), "--json", cwd=tmp_path)
    assert played.returncode == 0, played.stderr[-2000:]
    line = json.loads(played.stdout.strip().splitlines()[0])
    assert set(line) == {"episode", "return", "length", "flag_get", "max_x_pos"}
    assert line["max_x_pos"] >= 40 and line["flag_get"] is False
    played = run_cli("play", str(tmp_path / "saved_model" / "m"), "--random-starts", "--episodes", "2",
                     cwd=tmp_path)
    assert played.returncode == 0, played.stderr[-2000:]
    lines = played.stdout.strip().splitlines()
    assert [line.split(",")[0] for line in lines[:2]] == ["episode 1", "episode 2"] and lines[2] == "cleared 0 of 2"
