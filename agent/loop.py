"""The training loop, written once for every algorithm (CleanRL's order, Dopamine's
one runner): act -> env.step -> observe -> update when the algorithm is ready ->
test, log, checkpoint. Ctrl-C, a NaN stop, the give-up rule and the progress bar
live here too.

An algorithm (agent/ppo.py is the first) offers:
  act(obs, step) -> (actions, extras)     extras: what it needs later (log-probs, values...)
  observe(obs, actions, extras, reward, terminated, truncated, info, next_obs)
  ready(step) -> bool                     is an update due now?
  update(step) -> dict of scalars         one update; must hold "loss"
  greedy(obs) -> actions                  for test episodes
  trackables() -> dict                    everything a checkpoint must hold
  serving() -> (tf.Module, keras.Model)   what export writes
  start_from(weights)                     a new run's network from an export's (--init-from)
  warmup_steps, warm_up(obs), end_warm_up()   random-action steps before training (0: none)
and, where it keeps state too big for a checkpoint (a replay memory):
  save_side(folder), load_side(folder)   written before each checkpoint (utilities.checkpoints)
It never imports envs: the caller hands one in.
"""

import contextlib
import signal
import threading
import time

import numpy as np
import tensorflow as tf
from tqdm.auto import tqdm

from utilities.checkpoints import CheckpointStore, NonFiniteState, checkpoint_number
from utilities.info_writer import InfoWriter
from utilities.video import gif_bytes, gif_size, write_mp4

RECENT = 20   # episodes in the window behind the progress bar, best_return and give-up


class NonFiniteLoss(RuntimeError):
    """A NaN or Inf loss, or weights gone NaN or Inf (a finite loss can follow an infinite
    gradient): the run stops and keeps its last good checkpoint."""


@contextlib.contextmanager
def deferred_interrupt():
    """Ctrl-C sets a flag that the loop reads at the next update boundary, so the
    checkpoint it then writes is consistent; a second Ctrl-C interrupts at once."""
    flag = {"set": False}
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def handler(signum, frame):
        if flag["set"]:
            raise KeyboardInterrupt
        flag["set"] = True

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous)


class LoopState(tf.Module):
    """The loop's own checkpointed state: counters, bests and the recent-episode window."""

    def __init__(self):
        super().__init__(name="loop")
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False)      # agent steps, all envs
        self.updates = tf.Variable(0, dtype=tf.int64, trainable=False)   # algorithm updates done
        # Best mean return of the recent window, seen at an update's end; best test return.
        self.best_return = tf.Variable(-np.inf, dtype=tf.float64, trainable=False)
        self.best_test = tf.Variable(-np.inf, dtype=tf.float64, trainable=False)
        # Returns of the last RECENT episodes, NaN where none yet: live in numpy (episodes end
        # at many steps, and an eager tf.Variable assign costs more than the rest of a step),
        # copied into the checkpoint's Variable by sync_for_save and back by sync_after_restore.
        self.recent_returns = np.full(RECENT, np.nan)
        self.recent = tf.Variable(self.recent_returns, dtype=tf.float64, trainable=False)

    def trackables(self):
        return {"step": self.step, "update": self.updates, "best_return": self.best_return,
                "best_test": self.best_test, "recent_returns": self.recent}

    def add_episodes(self, returns):
        self.recent_returns = np.concatenate([self.recent_returns, returns])[-RECENT:]

    def sync_for_save(self):
        self.recent.assign(self.recent_returns)

    def sync_after_restore(self):
        self.recent_returns = self.recent.numpy()

    @property
    def mean_recent_return(self):
        recent = self.recent_returns[~np.isnan(self.recent_returns)]
        return float(recent.mean()) if len(recent) else float("nan")


def checkpoint_store(folder, cfg, algorithm, state, obs_shape, obs_dtype, num_actions, keep=3):
    """The run's CheckpointStore over the algorithm's and the loop's state; its meta
    record refuses a checkpoint of another game, algorithm, env or package format."""
    from agent.config import FORMAT

    meta = {"format": FORMAT, "game": cfg.game, "algo": cfg.algo, "obs_shape": list(obs_shape),
            "obs_dtype": str(obs_dtype), "num_actions": int(num_actions), "env": cfg.env}
    side = algorithm if hasattr(algorithm, "save_side") else None
    # The loop's own state holds NaN and -inf by design (no episode, no test yet); the algorithm's may not.
    trackables = algorithm.trackables()
    return CheckpointStore(folder.checkpoints, meta, keep, side, finite=list(trackables), **trackables,
                           **state.trackables())


class Loop:
    def __init__(self, cfg, algorithm, env, folder, checkpoint_every=50, keep_checkpoints=3,
                 test=None, test_every=10, clear_every=None, stop_at_clear=False, stop_at_clear_rate=None,
                 after_save=None, after_clear_rate=None):
        """folder: utilities.run_folder.RunFolder. test: an optional callable
        (greedy act, rate) -> result dict (agent.evaluation.make_test), run every
        `test_every` updates, with rate=True (the clear rate over its random-start episodes
        too) every `clear_every` updates (a multiple of test_every; None: at every test);
        the best episode is kept as a video. stop_at_clear_rate=R: stop once a test's clear
        rate reaches R. after_save: an optional callable (checkpoint path, LoopState) run
        after each checkpoint (a sweep reports the checkpoint to Ray Tune there).
        after_clear_rate: an optional callable (rate, episodes, LoopState) run after each
        clear-rate test (the CLI keeps the best policy there: agent.export.best_keeper)."""
        self.cfg, self.algorithm, self.env, self.folder = cfg, algorithm, env, folder
        self.state = LoopState()
        space = env.single_observation_space
        self.checkpoints = checkpoint_store(folder, cfg, algorithm, self.state, space.shape, space.dtype.name,
                                            env.single_action_space.n, keep_checkpoints)
        self.checkpoint_every = checkpoint_every
        self.test, self.test_every, self.stop_at_clear = test, test_every, stop_at_clear
        self.clear_every = clear_every
        self.stop_at_clear_rate = stop_at_clear_rate
        self.after_save, self.after_clear_rate = after_save, after_clear_rate
        self.writer = None

    def restore(self):
        """Continue from the run's latest checkpoint (see CheckpointStore.restore)."""
        path = self.checkpoints.restore()
        self.state.sync_after_restore()
        return path

    def save(self):
        number = int(self.state.updates.numpy())
        path = self.checkpoints.latest
        # The closing save right after a periodic one (or a resume with nothing left to do)
        # would rewrite checkpoint N in place, its side files included, while the state file
        # names it: nothing changed since, so it is skipped.
        if path is None or checkpoint_number(path) != number:
            if self.writer is not None:
                self.writer.flush()    # the summaries up to the checkpoint are on disk with it
            self.state.sync_for_save()
            try:
                path = self.checkpoints.save(number)
            except NonFiniteState as err:
                raise NonFiniteLoss(f"{err} at update {number}; stopped, last good checkpoint kept in "
                                    f"{self.folder.checkpoints}") from None
        if self.after_save is not None:
            self.after_save(path, self.state)
        return path

    def warm_up(self, obs):
        """Random-action steps the algorithm asked for (RND's input statistics); the
        run goes on from where they leave the envs. Returns the last observation."""
        rng = np.random.default_rng(self.cfg.seed)
        for _ in range(self.algorithm.warmup_steps):
            obs, *_ = self.env.step(rng.integers(self.env.single_action_space.n, size=self.cfg.num_envs))
            self.algorithm.warm_up(obs)
        self.algorithm.end_warm_up()
        return obs

    def run_test(self, step, rate):
        """A greedy test (with its clear rate if `rate`); the best episode so far goes to
        the run's video and to TensorBoard as an animation. Returns the scalars to log."""
        result = self.test(self.algorithm.greedy, rate)
        improved = result["return"] > self.state.best_test.numpy()
        if improved:
            self.state.best_test.assign(result["return"])
        cleared = result.get("cleared", False)
        if result["frames"] and (improved or cleared):
            write_mp4(result["frames"], self.folder.best_video)
            gif = gif_bytes(result["frames"])
            self.writer.animation("test/best_episode", gif, *gif_size(gif), step)
        if "clear_rate" in result and self.after_clear_rate is not None:
            self.after_clear_rate(result["clear_rate"], result.get("clear_episodes"), self.state)
        return {f"test_{k}": float(v) for k, v in result.items() if k != "frames"}

    def train(self, progress=True, max_updates=None, give_up=None):
        """Train until cfg.total_steps (rounded up to the algorithm's next update),
        Ctrl-C, or `max_updates` more updates (a pause: schedules still run to
        total_steps); checkpoints at the end. Returns a summary dict.

        give_up=(S, T): seed 004's rule to move on when the mean recent return is
        still at most T after S updates."""
        cfg, algorithm, env, state = self.cfg, self.algorithm, self.env, self.state
        step, updates = int(state.step.numpy()), int(state.updates.numpy())
        start_step = step
        last_update = None if max_updates is None else updates + max_updates
        # From here a Ctrl-C (during the reset or RND's warm-up too) ends the run at the
        # next update, with a checkpoint.
        with deferred_interrupt() as interrupted:
            # Opened after any restore: it drops what a killed run wrote past its last
            # checkpoint, and a refused resume has written nothing.
            self.writer = InfoWriter(self.folder.path, purge_after=step)
            obs, _ = env.reset()
            if step == 0 and algorithm.warmup_steps:
                obs = self.warm_up(obs)
            start = last = time.perf_counter()
            update_seconds, last_step = 0.0, step
            episodes, returns, lengths = 0, [], []
            cleared = gave_up = rate_reached = False
            bar = tqdm(total=cfg.total_steps, initial=step, unit="step", unit_scale=True,
                       disable=not progress, dynamic_ncols=True)
            running = step < cfg.total_steps and (last_update is None or updates < last_update)
            try:
                while running:
                    actions, extras = algorithm.act(obs, step)
                    next_obs, reward, terminated, truncated, info = env.step(actions)
                    algorithm.observe(obs, actions, extras, reward, terminated, truncated, info, next_obs)
                    obs = next_obs
                    step += cfg.num_envs
                    ended = info["episode_end"]
                    if ended.any():
                        episodes += int(ended.sum())
                        returns.extend(info["episode_return"][ended])
                        lengths.extend(info["episode_length"][ended])
                        state.add_episodes(info["episode_return"][ended])
                    if not algorithm.ready(step):
                        continue

                    t0 = time.perf_counter()
                    stats = algorithm.update(step)
                    now = time.perf_counter()
                    update_seconds += now - t0
                    # Every loss the update reports (PTR-PPO's replayed passes report off_loss).
                    bad = {k: v for k, v in stats.items() if k.endswith("loss") and not np.isfinite(v)}
                    if bad:
                        raise NonFiniteLoss(f"non-finite {', '.join(f'{k} ({v})' for k, v in bad.items())} at "
                                            f"update {updates + 1}; stopped, last good checkpoint kept in "
                                            f"{self.folder.checkpoints}")
                    updates += 1
                    state.step.assign(step)
                    state.updates.assign(updates)
                    stats["steps_per_second"] = (step - last_step) / (now - last)
                    stats["update_share"] = update_seconds / (now - start)
                    if self.test and updates % self.test_every == 0:
                        # The single greedy episode is cheap; the clear rate's episodes may be due less often.
                        stats.update(self.run_test(step, updates % (self.clear_every or self.test_every) == 0))
                        cleared = cleared or stats.get("test_cleared", 0.0) > 0
                        rate_reached = (self.stop_at_clear_rate is not None
                                        and stats.get("test_clear_rate", -1.0) >= self.stop_at_clear_rate)
                    if returns:
                        stats.update(episode_return=np.mean(returns), episode_length=np.mean(lengths))
                        returns, lengths = [], []
                    recent = state.mean_recent_return
                    if recent > state.best_return.numpy():
                        state.best_return.assign(recent)
                    self.writer.write(stats, step)
                    bar.update(step - last_step)
                    bar.set_postfix(ret=f"{recent:.1f}", upd=updates)
                    if updates % self.checkpoint_every == 0:
                        self.save()
                    gave_up = bool(give_up) and updates == give_up[0] and not recent > give_up[1]
                    last, last_step = time.perf_counter(), step
                    running = (step < cfg.total_steps and updates != last_update and not interrupted["set"]
                               and not (cleared and self.stop_at_clear) and not gave_up and not rate_reached)
            finally:
                bar.close()
                self.writer.flush()
            self.save()
        wall = time.perf_counter() - start
        return {
            "run_dir": str(self.folder.path),
            "steps": step,
            "updates": updates,
            "episodes": episodes,
            "mean_recent_return": state.mean_recent_return,
            "wall_seconds": wall,
            "steps_per_second": (step - start_step) / wall,
            "update_share": update_seconds / wall,
            "interrupted": interrupted["set"],
            "gave_up": gave_up,
            "cleared": cleared,
            "clear_rate_reached": rate_reached,
            "best_test": float(state.best_test.numpy()),
        }

    def close(self):
        if self.writer is not None:
            self.writer.close()
        self.env.close()
