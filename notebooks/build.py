"""Builds the four game notebooks from one template, so a fix lands in all of them.

    python notebooks/build.py          # rewrite notebooks/*.ipynb
The test suite checks that the committed notebooks equal what this writes.
"""

import pathlib

import nbformat

HERE = pathlib.Path(__file__).resolve().parent

INTRO = ("The friendly face of the package: every cell calls the package (`python -m agent ...` in-process), "
         "so the notebook and the command line train the same way. Parameters first; the comments give the "
         "values that reproduce published results.")

# Per game: title, then the parameter cell's game-specific lines.
GAMES = {
    "freeway": ("Freeway: PPO+RND (and PPO) on EnvPool Atari", '''game = "freeway"
algo = "ppo-rnd"      # seed 004's Freeway setting: return ~20 by ~50k steps; plain "ppo" starts by luck (see README)
steps = 200_000       # minutes on 2 CPU cores. Published PPO: ~33 after 10M (the preset default: 10_240_000)
num_envs = None       # None: the algorithm's preset (8 here)
seed = 1
extra = ["--test-every", "50"]  # a greedy test episode every 50 updates: its video is shown at the end'''),
    "venture": ("Venture: PPO+RND, the exploration game", '''game = "venture"
algo = "ppo-rnd"      # PPO alone scores ~0 here (RND paper: PPO 0, RND 1,859 after ~490M steps)
steps = 200_000       # minutes on a CPU; the preset (seed 004 RND: 32 envs) runs 32_768_000
num_envs = None       # None: the algorithm's preset (32 for ppo-rnd)
seed = 1
extra = ["--test-every", "20"]  # ppo-rnd: 4,096 steps an update (ddqn: 1,000): a greedy test every 20 updates'''),
    "gravitar": ("Gravitar: PPO+RND", '''game = "gravitar"
algo = "ppo-rnd"      # RND paper: 3,906 after ~490M steps; PPO ~700-1,100 after 10M; or "ddqn-rnd" (seed 003:
                      # dueling Double DQN + prioritised replay + RND, 1 env) and "ddqn" (Dopamine's DQN)
steps = 200_000       # minutes on a CPU; the preset runs 32_768_000
num_envs = None       # None: the algorithm's preset (32 for ppo-rnd)
seed = 1
extra = ["--test-every", "20"]  # ppo-rnd: 4,096 steps an update (ddqn: 1,000): a greedy test every 20 updates'''),
    "mario": ("Super Mario Bros: PPO per stage, as seed 000 and CVHvn/Mario_PPO", '''game = "mario"
algo = "ppo"          # or "ppo-rnd" (seed 000's 8-4 setting), "ptr-ppo" (seed 002: PPO + trajectory replay)
                      # or "ddqn" (seed 001: Double DQN, actions right / right+A: set actions = None)
stage = "1-1"         # any W-S, world 1-8, stage 1-4
actions = "complex"   # right (5), simple (7) or complex (12); None: the algorithm's preset
steps = 100_000       # a taste on a CPU; published PPO cleared 1-1 after ~450_000 env steps
num_envs = None       # None: the algorithm's preset (8 for ppo on 1-1)
seed = 1
extra = ["--stage", stage, *(["--actions", actions] if actions else []), "--stop-at-clear",
         *(["--test-every", "1"] if algo == "ppo-rnd" else [])]   # ppo-rnd's update is 24,192 steps'''),
}

COMMON_PARAMETERS = '''workdir = None        # where logs/ and saved_model/ go; None: the repository
show_tensorboard = True   # starts a TensorBoard server inside the notebook
'''

SETUP = '''import datetime, os, pathlib, sys

# The package is the repository this notebook lives in; runs go to <workdir>/logs, exports to <workdir>/saved_model.
package = pathlib.Path.cwd().parent if pathlib.Path.cwd().name == "notebooks" else pathlib.Path.cwd()
sys.path.insert(0, str(package))
os.chdir(workdir or package)
# %tensorboard starts `tensorboard` from PATH, which lacks the venv's bin/ when Jupyter was not activated.
tensorboard = pathlib.Path(sys.executable).with_name("tensorboard")
if tensorboard.exists():
    os.environ.setdefault("TENSORBOARD_BINARY", str(tensorboard))

from IPython.display import Image, display
from agent.cli import main
from utilities.video import gif_bytes, read_mp4


def run(*argv):
    """`python -m agent ARGV`; stops "Run all" on an error or a Ctrl-C (exit 130: the
    checkpoint is saved, and the Resume cell continues the run)."""
    code = main(list(argv))
    if code == 130:
        raise KeyboardInterrupt("interrupted: checkpoint saved; the Resume cell continues the run")
    assert code == 0, f"python -m agent {argv[0]} exited with {code}"


def show_video(path):
    """An episode video as an animated GIF (browsers do not play OpenCV's mp4v)."""
    frames, fps = read_mp4(path)
    display(Image(data=gif_bytes(frames, fps, width=256), format="gif"))

run_name = f"notebook-{game}-{algo}-{datetime.datetime.now():%Y%m%d-%H%M%S}"
run_dir = f"logs/{run_name}"
run_dir'''

CELLS = [
    ("markdown", "## Train\n\nA progress bar shows steps/s and the mean return of the last 20 episodes; Ctrl-C "
                 "(interrupt the kernel) saves a checkpoint and stops: the next cell resumes."),
    ("code", '''run("train", "--game", game, "--algo", algo, "--steps", str(steps), "--seed", str(seed),
    *(["--num-envs", str(num_envs)] if num_envs else []), "--run-dir", run_dir, *extra)'''),
    ("markdown", "## Resume\n\nContinue the same run from its last checkpoint, with the options it began with "
                 "(`extra`); only the step budget grows. The TensorBoard curves continue without a gap."),
    ("code", '''run("train", "--resume", run_dir, "--steps", str(2 * steps))'''),
    ("markdown", "## TensorBoard"),
    ("code", '''if show_tensorboard:
    get_ipython().run_line_magic("load_ext", "tensorboard")
    get_ipython().run_line_magic("tensorboard", "--logdir logs")'''),
    ("markdown", "## Learning curve\n\nRead back from the run's TensorBoard event files."),
    ("code", '''from utilities.plots import plot_learning_curve

display(Image(plot_learning_curve([run_dir], f"{run_dir}/learning_curve.png")))'''),
    ("markdown", "## Watch\n\nThe best greedy test episode of the run, then the exported policy playing one more."),
    ("code", '''best = pathlib.Path(run_dir) / "best_test_episode.mp4"
if best.exists():
    show_video(best)
run("play", f"saved_model/{run_name}", "--video", f"{run_dir}/play.mp4")
show_video(f"{run_dir}/play.mp4")'''),
]

EXTRA = {
    "mario": [
        ("markdown", "## The shipped 1-1 policy\n\n`saved_model/mario-1-1-ppo` is the PPO policy trained on this "
                     "package's 2-core CPU machines until its greedy test cleared 1-1, then trained on from there "
                     "(`--init-from`, the last stretch with a lower, annealed learning rate) until 18 of 20 "
                     "random-start test episodes cleared (see the README's results; its card, `policy.json`, "
                     "records the rate). Here it plays 1-1 greedily."),
        ("code", '''shipped = str(package / "saved_model" / "mario-1-1-ppo")
run("play", shipped, "--video", f"{run_dir}/shipped.mp4")
show_video(f"{run_dir}/shipped.mp4")'''),
    ],
}


def cell(kind, source, **metadata):
    make = nbformat.v4.new_markdown_cell if kind == "markdown" else nbformat.v4.new_code_cell
    return make(source, metadata=metadata)


def notebook(name):
    title, parameters = GAMES[name]
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                           "language": "python"}})
    nb.cells = [cell("markdown", f"# {title}\n\n{INTRO}"),
                cell("code", parameters + "\n" + COMMON_PARAMETERS, tags=["parameters"]),
                cell("code", SETUP)]
    nb.cells += [cell(kind, source) for kind, source in CELLS + EXTRA.get(name, [])]
    for i, c in enumerate(nb.cells):   # stable ids: rebuilding changes nothing
        c["id"] = f"{name}-{i}"
    return nb


def text(name):
    return nbformat.writes(notebook(name)) + "\n"


if __name__ == "__main__":
    for name in GAMES:
        (HERE / f"{name}.ipynb").write_text(text(name))
        print(HERE / f"{name}.ipynb")
