"""The training loop: collect a rollout, compute advantages, update, log, checkpoint.

It drives any env with the package's batched interface (see envs.envpool_env);
it never imports envs, the caller hands one in.
"""

import contextlib
import pathlib
import signal
import threading
import time

import keras
import numpy as np
import tensorflow as tf
from tqdm.auto import tqdm

from agent.ppo import PPOAgent, explained_variance
from utilities.checkpoints import CheckpointStore
from utilities.gae import discounted_filter
from utilities.info_writer import InfoWriter
from utilities.normalizer import Normalizer
from utilities.optimization_batch import OptimizationBatch
from utilities.video import gif_bytes, gif_size, write_mp4


class NonFiniteLoss(RuntimeError):
    """A NaN or Inf loss: the run stops and keeps its last good checkpoint."""


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


class Trainer:
    def __init__(self, cfg, env, run_dir, checkpoint_every=50, keep_checkpoints=3,
                 test=None, test_every=10, stop_at_clear=False):
        """test: an optional callable act -> greedy-episode dict (agent.evaluation),
        run every `test_every` updates; the best episode is kept as a video."""
        self.cfg = cfg.validate()
        self.env = env
        self.run_dir = pathlib.Path(run_dir)
        keras.utils.set_random_seed(cfg.seed)
        space = env.single_observation_space
        self.agent = PPOAgent(cfg, space.shape, env.single_action_space.n, space.dtype.name)
        self.batch = OptimizationBatch(cfg.rollout_steps, cfg.num_envs, space.shape, space.dtype)
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False)     # agent steps, all envs
        self.update = tf.Variable(0, dtype=tf.int64, trainable=False)   # updates done
        # Best mean return of the last 20 training episodes, seen at an update's end.
        self.best_return = tf.Variable(-np.inf, dtype=tf.float64, trainable=False)
        self.best_test = tf.Variable(-np.inf, dtype=tf.float64, trainable=False)
        state = dict(self.agent.trackables(), step=self.step, update=self.update,
                     best_return=self.best_return, best_test=self.best_test)
        if cfg.rnd:
            self.int_return_norm = Normalizer((), name="int_return_norm")
            self.int_filter = tf.Variable(np.zeros(cfg.num_envs), dtype=tf.float64, trainable=False)
            state.update(int_return_norm=self.int_return_norm, int_filter=self.int_filter)
        meta = {"game": cfg.game, "algo": cfg.algo, "obs_shape": list(space.shape),
                "num_actions": int(env.single_action_space.n), "network": self.agent.policy.name,
                "env": cfg.env}
        self.checkpoints = CheckpointStore(self.run_dir / "checkpoints", meta, keep_checkpoints, **state)
        self.checkpoint_every = checkpoint_every
        self._writer = None
        self.test, self.test_every, self.stop_at_clear = test, test_every, stop_at_clear
        self.cleared = False
        self.episodes = 0
        self.grad_seconds = 0.0
        self.obs = None

    @property
    def writer(self):
        # Opened on first use, after any restore: it drops points a killed run wrote
        # past its last checkpoint, and a refused resume writes nothing.
        if self._writer is None:
            self._writer = InfoWriter(self.run_dir, purge_after=int(self.step.numpy()))
        return self._writer

    # --- collecting ---------------------------------------------------------

    def warmup_obs_norm(self):
        """Initialise RND's observation statistics with random-action steps (Burda et al.);
        the rollouts then go on from where these steps left the envs."""
        rng = np.random.default_rng(self.cfg.seed)
        frames = []
        for _ in range(self.cfg.rnd_warmup_steps):
            actions = rng.integers(self.env.single_action_space.n, size=self.cfg.num_envs)
            self.obs, *_ = self.env.step(actions)
            frames.append(self.agent.rnd_frames(self.obs))
            if len(frames) == self.cfg.rollout_steps:
                self.agent.obs_norm.update(np.stack(frames))
                frames = []
        if frames:
            self.agent.obs_norm.update(np.stack(frames))

    def collect_rollout(self):
        cfg, batch, obs = self.cfg, self.batch, self.obs
        start = int(self.step.numpy())
        for t in range(cfg.rollout_steps):
            # Sampling is keyed by (seed, step counter): a resumed run draws the same.
            seed = np.array([cfg.seed, start + t * cfg.num_envs], np.int64)
            actions, logp, v_ext, v_int = self.agent.act(obs, seed)
            actions = actions.numpy()
            next_obs, reward, terminated, truncated, info = self.env.step(actions)
            batch.add(t, obs, actions, logp.numpy(), v_ext.numpy(), v_int.numpy(), reward,
                      terminated, terminated | truncated, ~info["reset_row"])
            ended = info["episode_end"]
            if ended.any():
                self.episodes += int(ended.sum())
                self.writer.add_episodes(info["episode_return"][ended], info["episode_length"][ended])
            obs = next_obs
        self.step.assign_add(cfg.rollout_steps * cfg.num_envs)
        self.obs = obs
        last_ext, last_int = self.agent.values(obs)
        if cfg.rnd:
            self._intrinsic_rewards(obs)
        batch.compute_advantages(last_ext.numpy(), last_int.numpy(), cfg.gamma, cfg.int_gamma,
                                 cfg.gae_lambda, cfg.ext_coef if cfg.rnd else 1.0,
                                 cfg.int_coef if cfg.rnd else 0.0)

    def _intrinsic_rewards(self, last_obs):
        """Predictor error on each NEXT observation, scaled by the running std of the
        discounted intrinsic return (Burda et al. 2018, section 2.4)."""
        batch, agent = self.batch, self.agent
        # Rows 1.. of the rollout, as a view (no copy of the rollout), then the last obs.
        later = batch.obs[1:].reshape((-1,) + batch.obs.shape[2:])
        chunks = [later[i:i + 1024] for i in range(0, len(later), 1024)] + [last_obs]
        raw = np.concatenate([agent.intrinsic_reward(c).numpy() for c in chunks]).reshape(batch.rewards_int.shape)
        agent.obs_norm.update(np.concatenate([agent.rnd_frames(c) for c in chunks]))
        filtered, state = discounted_filter(raw, self.int_filter.numpy(), self.cfg.int_gamma)
        self.int_filter.assign(state)
        self.int_return_norm.update(filtered)
        batch.rewards_int[:] = raw / np.sqrt(self.int_return_norm.var.numpy() + 1e-8)

    # --- learning -----------------------------------------------------------

    def learn(self):
        """PPO epochs over the rollout; returns the update's mean scalars."""
        cfg, update = self.cfg, int(self.update.numpy())
        self.agent.set_progress(update / cfg.num_updates)
        rng = np.random.default_rng([cfg.seed, update])
        sums, count, epochs_run = {}, 0, 0
        start = time.perf_counter()
        for epoch in range(cfg.epochs):
            epoch_kl = []
            for i, mb in enumerate(self.batch.minibatches(cfg.num_minibatches, rng)):
                seed = np.array([cfg.seed, (update * cfg.epochs + epoch) * cfg.num_minibatches + i], np.int64)
                out = self.agent.train_step(mb, seed)
                for k, v in out.items():
                    sums[k] = sums.get(k, 0.0) + v
                count += 1
                epoch_kl.append(out["approx_kl"])
            epochs_run += 1
            if cfg.target_kl is not None and float(tf.reduce_mean(epoch_kl)) > cfg.target_kl:
                break
        stats = {k: float(v) / count for k, v in sums.items()}
        self.grad_seconds += time.perf_counter() - start
        if not np.isfinite(stats["loss"]):
            raise NonFiniteLoss(f"non-finite loss ({stats['loss']}) at update {update + 1}; "
                                f"stopped, last good checkpoint kept in {self.run_dir / 'checkpoints'}")
        b = self.batch
        stats.update(
            epochs_run=epochs_run,
            learning_rate=float(self.agent.optimizer.learning_rate.numpy()),
            clip_range=float(self.agent.clip_range.numpy()),
            explained_variance=explained_variance(b.values_ext, b.returns_ext, b.valid),
            reward_ext=float(b.rewards_ext[b.valid].mean()),
        )
        if cfg.rnd:
            stats["reward_int"] = float(b.rewards_int.mean())
        self.update.assign_add(1)
        return stats

    def run_test(self):
        """A greedy test episode; the best one so far goes to best_test_episode.mp4
        and to TensorBoard as an animation. Returns the scalars to log."""
        result = self.test(lambda obs: self.agent.greedy(obs).numpy())
        improved = result["return"] > self.best_test.numpy()
        if improved:
            self.best_test.assign(result["return"])
        if result["frames"] and (improved or result["cleared"]):
            write_mp4(result["frames"], self.run_dir / "best_test_episode.mp4")
            gif = gif_bytes(result["frames"])
            self.writer.animation("test/best_episode", gif, *gif_size(gif), int(self.step.numpy()))
        self.cleared = self.cleared or result["cleared"]
        stats = {"test_return": result["return"], "test_length": result["length"],
                 "test_cleared": float(result["cleared"]), "test_max_x": result["max_x"]}
        if "clear_rate" in result:
            stats["test_clear_rate"] = result["clear_rate"]
        return stats

    # --- the run ------------------------------------------------------------

    def save(self):
        return self.checkpoints.save(int(self.update.numpy()))

    def restore(self):
        """Continue from the run's latest checkpoint (see CheckpointStore.restore)."""
        return self.checkpoints.restore()

    def train(self, progress=True, max_updates=None, give_up=None):
        """Train until cfg.total_steps, Ctrl-C, or `max_updates` more updates (a pause:
        the schedule still runs to total_steps); checkpoints at the end. Returns a summary.

        give_up=(S, T): seed 004's rule to move on when the mean recent return is
        still at most T after S updates."""
        cfg = self.cfg
        start_step = int(self.step.numpy())
        last_update = cfg.num_updates if max_updates is None else min(
            cfg.num_updates, int(self.update.numpy()) + max_updates)
        self.obs, _ = self.env.reset()
        if cfg.rnd and int(self.update.numpy()) == 0:
            self.warmup_obs_norm()
        start = time.perf_counter()
        bar = tqdm(total=cfg.total_steps, initial=start_step, unit="step", unit_scale=True,
                   disable=not progress, dynamic_ncols=True)
        gave_up = False
        with deferred_interrupt() as interrupted:
            try:
                while int(self.update.numpy()) < last_update and not interrupted["set"]:
                    t0, s0 = time.perf_counter(), int(self.step.numpy())
                    self.collect_rollout()
                    stats = self.learn()
                    now = time.perf_counter()
                    stats["steps_per_second"] = (int(self.step.numpy()) - s0) / (now - t0)
                    stats["grad_share"] = self.grad_seconds / (now - start)
                    if self.test and int(self.update.numpy()) % self.test_every == 0:
                        stats.update(self.run_test())
                    if self.writer.mean_recent_return > self.best_return.numpy():
                        self.best_return.assign(self.writer.mean_recent_return)
                    self.writer.write(stats, int(self.step.numpy()))
                    bar.update(int(self.step.numpy()) - s0)
                    bar.set_postfix(ret=f"{self.writer.mean_recent_return:.1f}", upd=int(self.update.numpy()))
                    if int(self.update.numpy()) % self.checkpoint_every == 0:
                        self.save()
                    if self.cleared and self.stop_at_clear:
                        break
                    if give_up and int(self.update.numpy()) == give_up[0] and not (
                            self.writer.mean_recent_return > give_up[1]):
                        gave_up = True
                        break
            finally:
                bar.close()
                self.writer.flush()
            self.save()
        wall = time.perf_counter() - start
        return {
            "run_dir": str(self.run_dir),
            "steps": int(self.step.numpy()),
            "updates": int(self.update.numpy()),
            "episodes": self.episodes,
            "mean_recent_return": self.writer.mean_recent_return,
            "wall_seconds": wall,
            "steps_per_second": (int(self.step.numpy()) - start_step) / wall,
            "grad_share": self.grad_seconds / wall,
            "interrupted": interrupted["set"],
            "gave_up": gave_up,
            "cleared": self.cleared,
            "best_test": float(self.best_test.numpy()),
        }

    def close(self):
        if self._writer is not None:
            self._writer.close()
        self.env.close()
