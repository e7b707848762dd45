import os
import pathlib
import subprocess
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def cli_env():
    """The environment of a `python -m agent` process started from any folder."""
    return dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(ROOT))


def run_cli(*args, cwd=None, timeout=600):
    """`python -m agent ARGS` in a new process, as a user runs it; by default in a fresh
    temporary folder, so that the run's export (saved_model/) never lands in the repository."""
    if cwd is None:
        with tempfile.TemporaryDirectory(prefix="run-cli-", ignore_cleanup_errors=True) as tmp:
            return run_cli(*args, cwd=tmp, timeout=timeout)
    return subprocess.run([sys.executable, "-m", "agent", *args], cwd=cwd, env=cli_env(),
                          capture_output=True, text=True, timeout=timeout)


def held_elsewhere(folder):
    """A process holding `folder` (utilities.run_folder.Hold) as a running run or sweep
    driver does, until killed; returned once it holds it."""
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from utilities.run_folder import Hold; "
                               "h = Hold(sys.argv[1], 'x'); print('held', flush=True); time.sleep(600)", str(folder)],
                              stdout=subprocess.PIPE, text=True, env=cli_env())
    if holder.stdout.readline() != "held\n":
        holder.kill()
        raise AssertionError(f"{folder} could not be held: {holder.wait()}")
    return holder


def one_line_error(result, message):
    """The bad-input contract: exit 2 and one line on stderr that holds `message`."""
    lines = result.stderr.strip().splitlines()
    return result.returncode == 2 and len(lines) == 1 and message in lines[0]


def make_loop(run_dir, algo="ppo-rnd", steps=1280, seed=3, game="deepsea", checkpoint_every=1, precision="float32",
              **env_kwargs):
    """A real loop of `algo` on a small real env (Deep Sea 8 by default), in-process."""
    import envs
    from agent import presets
    from agent.config import RunConfig, learner_class
    from agent.loop import Loop
    from utilities.run_folder import RunFolder

    cfg = RunConfig.from_preset(presets.preset(algo, envs.resolve_game(game).kind, game), game=game, algo=algo,
                                seed=seed, total_steps=steps)
    cfg.precision = precision
    cfg.validate()
    env = envs.make(game, cfg.num_envs, seed, **{**cfg.env, **(env_kwargs or ({"size": 8} if game == "deepsea" else {}))})
    space = env.single_observation_space
    algorithm = learner_class(algo)(cfg, space.shape, space.dtype.name, env.single_action_space.n)
    return Loop(cfg, algorithm, env, RunFolder(run_dir), checkpoint_every=checkpoint_every)


def checkpoint_tensors(run_dir):
    """Every tensor of a run's latest checkpoint by name (save_counter aside: it counts
    writes, which a paused run does more of)."""
    import tensorflow as tf

    reader = tf.train.load_checkpoint(str(pathlib.Path(run_dir) / "checkpoints"))
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()
            if name not in ("_CHECKPOINTABLE_OBJECT_GRAPH", "save_counter/.ATTRIBUTES/VARIABLE_VALUE")}


def assert_same_checkpoints(expected, got):
    import numpy as np

    assert expected.keys() == got.keys()
    for name, value in expected.items():
        if getattr(value, "dtype", None) is not None and value.dtype.kind == "f":
            np.testing.assert_allclose(got[name], value, rtol=1e-4, atol=1e-6, err_msg=name)
        else:
            np.testing.assert_array_equal(got[name], value, err_msg=name)
