"""Double DQN (van Hasselt et al. 2016), optionally dueling (Wang et al. 2016), with
uniform or proportional prioritised replay (Schaul et al. 2016), and with RND's
intrinsic reward mixed in as seed 003 does (Burda et al. 2018).

One algorithm behind the loop's interface (agent/loop.py), registered as `ddqn` and
`ddqn-rnd`. Acting is batched epsilon-greedy over N envs. `observe` adds each batched
step to the replay (utilities/replay.py: single frames, stacks rebuilt at sample time,
n-step returns at sample time) and records the gradient steps and target syncs that
fall due: `gradient_steps` every `train_period` agent steps (or finished episodes)
once past the burn-in, a sync every `target_period`. `ready` fires every
`update_every` agent steps, and `update` runs what fell due since the last update in
order, each gradient step one sampled minibatch through ONE tf.function. So acting
uses weights up to `update_every` agent steps old (Dopamine trains inside every 4th
step); in exchange the loop's cadences (checkpoints, tests, logging) count chunks of
real size. An update with no gradient step due (burn-in, or no episode finished under
the per-episode cadence) reports the TD loss of a replay batch without learning from it.

Randomness is keyed, never stateful: exploration by (seed, agent step), minibatches by
(seed, gradient-step counter), so a resumed run draws what an uninterrupted one would.
The replay goes to the checkpoint's side files (save_side/load_side).

RND's bonus is computed once per transition when it is stored (seed 003, `int_reward_at`
"collect") or recomputed by the current predictor for every sampled batch ("sample", as
Acme's RND learner), so that a state's bonus fades once it is no longer new.
"""

import keras
import numpy as np
import tensorflow as tf

from agent import losses, networks
from agent.rnd import RND
from agent.serving import GreedyPolicy
from utilities import prioritized
from utilities.replay import PrioritizedReplay, ReplayBuffer

SYNC = "sync"    # a pending target sync; a pending int is that many gradient steps
REPLAY_FILE = "replay.npz"


def epsilon(schedule, step, episodes=0):
    """Exploration rate for the batched step taken after `step` agent steps and
    `episodes` finished episodes. Kinds (agent.config.EPSILON_KINDS):
      decay            max(floor, start * factor^step)         seed 001: 1.0, 0.99999975, 0.1
      linear           start -> end over `steps` agent steps, held at start for `begin`
                       steps first (Dopamine decays after its min replay; CleanRL/SB3 from 0)
      linear_episodes  start -> end over `episodes` finished episodes (seed 003)
    """
    kind = schedule["kind"]
    if kind == "decay":
        return max(schedule["floor"], schedule["start"] * schedule["factor"] ** step)
    if kind == "linear":
        done = min(max(step - schedule.get("begin", 0), 0) / schedule["steps"], 1.0)
    elif kind == "linear_episodes":
        done = min(episodes / schedule["episodes"], 1.0)
    else:
        raise ValueError(f"unknown epsilon kind {kind!r}")
    return schedule["start"] + (schedule["end"] - schedule["start"]) * done


def due(before, after, period):
    """The multiples of `period` in (before, after]: when a cadence falls due."""
    return range((before // period + 1) * period, after + 1, period)


def standardized_intrinsic(raw, stats, clip):
    """Seed 003's intrinsic reward: (raw - mean) / std with `stats` = (mean, std) of the
    window of recent raw values (the new ones included), clipped to [-clip, clip]; raw
    where the std is 0 (seed 003). Numpy or tensors (inside a tf.function) alike."""
    mean, std = stats[0], stats[1]
    scaled = keras.ops.clip(keras.ops.divide(keras.ops.subtract(raw, mean), keras.ops.maximum(std, 1e-12)),
                            -clip, clip)
    return keras.ops.where(std > 0, scaled, raw)


class DQN:
    def __init__(self, cfg, obs_shape, obs_dtype, num_actions):
        """cfg: agent.config.RunConfig with DQNConfig params."""
        self.cfg = cfg
        self.p = p = cfg.params
        keras.utils.set_random_seed(cfg.seed)   # the networks' initial weights
        self.obs_shape, self.num_actions, self.num_envs = tuple(obs_shape), int(num_actions), cfg.num_envs

        def build():
            return networks.q_network(self.obs_shape, self.num_actions, obs_dtype, p.network, p.dueling, p.hidden,
                                      cfg.precision)

        self.online, self.target = build(), build()
        self.target.set_weights(self.online.get_weights())
        self.target.trainable = False
        self.rnd = RND(p.rnd, self.obs_shape, obs_dtype, cfg.num_envs) if p.rnd else None
        self.trainable = list(self.online.trainable_variables)
        self.num_q_vars = len(self.trainable)   # the first ones: the gradient clip covers these alone
        if self.rnd:
            self.trainable += self.rnd.trainable
            self.rnd_batch = max(1, int(round(p.rnd.update_fraction * p.batch_size)))
        # One Adam for the Q network and RND's predictor, as seed 003.
        self.optimizer = keras.optimizers.Adam(p.learning_rate, epsilon=p.adam_epsilon)
        # Built now so a checkpoint restore fills (and checks) every slot.
        self.optimizer.build(self.trainable)
        # The CLI checked the replay against free memory with everything else the run holds.
        if p.prioritized:
            self.replay = PrioritizedReplay(p.buffer_size, cfg.num_envs, self.obs_shape, obs_dtype,
                                            n_step=p.n_step, gamma=p.gamma, alpha=p.alpha, eps=p.priority_eps,
                                            check_memory=False)
        else:
            self.replay = ReplayBuffer(p.buffer_size, cfg.num_envs, self.obs_shape, obs_dtype,
                                       n_step=p.n_step, gamma=p.gamma, check_memory=False)
        # Checkpointed counters (epsilon is derived from the step and episode counts).
        self.gradient_steps = tf.Variable(0, dtype=tf.int64, trainable=False)  # gradient steps done
        self.syncs = tf.Variable(0, dtype=tf.int64, trainable=False)           # target syncs done
        self.last_epsilon = 1.0                                                # the last one acted with, logged
        # State that changes at every agent step lives in numpy: a tf.Variable read or
        # assign costs ~0.1-1 ms eagerly, more than the rest of a 1-env step. Its
        # checkpoint copy (self.saved) is written just before each checkpoint (save_side)
        # and read back just after a restore (load_side).
        self.episodes = 0                            # finished episodes
        self.int_window = np.zeros(p.int_window)     # seed 003's recent raw intrinsic rewards (a ring)
        self.int_written = 0                         # how many were written into it
        self.saved = {"episodes": tf.Variable(0, dtype=tf.int64, trainable=False),
                      "int_window": tf.Variable(self.int_window, dtype=tf.float64, trainable=False),
                      "int_written": tf.Variable(0, dtype=tf.int64, trainable=False)}
        self.new_frames = []       # RND input frames since the last update, merged into its statistics there
        self.pending = []          # gradient steps and syncs due, in order; empty after each update
        self.last_next_obs = None  # None after construction and restore: the next observe starts episodes
        self._sums = {}            # reward statistics between updates

        spec = self.online.inputs[0]
        obs_spec = tf.TensorSpec((None,) + self.obs_shape, spec.dtype)
        self._act = tf.function(self._act_fn, input_signature=[
            obs_spec, tf.TensorSpec((2,), tf.int64), tf.TensorSpec((), tf.float32)])
        self._greedy = tf.function(self._greedy_fn, input_signature=[obs_spec])
        batch_spec = [obs_spec, tf.TensorSpec((None,), tf.int32), tf.TensorSpec((None,), tf.float32), obs_spec,
                      tf.TensorSpec((None,), tf.float32), tf.TensorSpec((None,), tf.float32),
                      tf.TensorSpec((2,), tf.float32)]
        self.train_step = tf.function(self._train_step, input_signature=[*batch_spec, tf.TensorSpec((2,), tf.int64)])
        self._td = tf.function(self._td_fn, input_signature=batch_spec)

    # --- the loop's interface -------------------------------------------------

    @property
    def warmup_steps(self):
        """Random-action batched steps before training: RND's input statistics."""
        return self.rnd.cfg.warmup_steps if self.rnd else 0

    def warm_up(self, obs):
        self.rnd.warm_up(obs, flush_every=128)

    def end_warm_up(self):
        self.rnd.end_warm_up()

    def act(self, obs, step):
        """Batched epsilon-greedy; exploration keyed by (seed, step). Extras: the step."""
        eps = self.last_epsilon = epsilon(self.p.epsilon, step, self.episodes)
        actions = self._act(obs, np.array([self.cfg.seed, step], np.int64), np.float32(eps))
        return actions.numpy(), step

    def observe(self, obs, actions, extras, reward, terminated, truncated, info, next_obs):
        p, step = self.p, int(extras)
        # The loop resets the env at the start of every train() (a resume too): then the
        # observation acted on is not the last next observation stored, and the replay
        # must start new episodes instead of joining them to the old ones.
        if self.last_next_obs is None or not np.array_equal(obs, self.last_next_obs):
            self.replay.reset_episodes()
        self.last_next_obs = np.array(next_obs, copy=True)   # a copy: an env may reuse its buffers
        reset_row = np.asarray(info["reset_row"], bool)
        reward = np.asarray(reward, np.float32)
        self._add_stat("reward_ext", reward[~reset_row])
        # Seed 003 scales the game score by ext_coef (1/500) with or without RND, so an
        # ablation without RND (--no-rnd) learns from the same extrinsic reward.
        stored = p.ext_coef * reward
        if self.rnd:
            intrinsic = self._intrinsic(next_obs, reset_row)
            if p.int_reward_at == "collect":
                stored = stored + p.int_coef * intrinsic
        self.replay.add(obs, actions, stored.astype(np.float32), terminated, truncated, reset_row)

        before = self.episodes
        after = self.episodes = before + int(np.sum(info["episode_end"]))
        # What falls due in this batched step: syncs first, then training, at each point
        # (seed 001 checks its sync before learning).
        if p.unit == "steps":
            old, new = step, step + self.num_envs
        else:
            old, new = before, after
        events = [(t, 0) for t in due(old, new, p.target_period)]
        # Burn-in (seed 001: no learning before step 1e4): steps unit per point in time,
        # episodes unit by the agent steps taken when the episode ended.
        if p.unit == "steps":
            events += [(t, 1) for t in due(old, new, p.train_period) if t >= p.min_replay]
        elif step + self.num_envs >= p.min_replay:
            events += [(t, 1) for t in due(old, new, p.train_period)]
        for _, kind in sorted(events):
            if kind == 0:
                self.pending.append(SYNC)
            elif self.pending and self.pending[-1] != SYNC:
                self.pending[-1] += p.gradient_steps
            else:
                self.pending.append(p.gradient_steps)

    def ready(self, step):
        """Every update_every agent steps (crossing a multiple, whatever num_envs)."""
        return step // self.p.update_every != (step - self.num_envs) // self.p.update_every

    def update(self, step):
        """Run the gradient steps and target syncs due since the last update, in order;
        returns their mean scalars."""
        p = self.p
        if self.new_frames:
            # RND's input statistics take the chunk's frames in one exact merge
            # (utilities/normalizer.py): the same statistics as merging per step, refreshed
            # at the update cadence as PPO+RND refreshes them per rollout (seed 003 has none).
            self.rnd.obs_norm.update(np.concatenate(self.new_frames))
            self.new_frames = []
        beta = float(prioritized.beta_schedule(step / self.cfg.total_steps, p.beta0))
        sums, count = {}, 0
        pending, self.pending = self.pending, []
        for item in pending:
            if item == SYNC:
                self.sync_target()
                continue
            for _ in range(item):
                out = self.gradient_step(beta)
                for k, v in out.items():
                    sums[k] = sums.get(k, 0.0) + v
                count += 1
        if count:
            stats = {k: float(v) / count for k, v in sums.items()}
        else:
            stats = self.evaluate(step)
        stats.update(gradient_steps=count, epsilon=self.last_epsilon,
                     replay_fill=len(self.replay) / self.replay.capacity, **self._take_stats())
        if p.prioritized:
            stats["beta"] = beta
        return stats

    def greedy(self, obs):
        return self._greedy(obs).numpy()

    def trackables(self):
        """Everything of the algorithm that a checkpoint must hold (the replay goes to
        the side files)."""
        out = {"q_online": self.online, "q_target": self.target, "optimizer": self.optimizer,
               "gradient_steps": self.gradient_steps, "syncs": self.syncs,
               **self.saved}
        if self.rnd:
            out.update(self.rnd.trackables())
        return out

    def save_side(self, folder):
        # Written at update boundaries, when nothing is pending.
        if self.pending or self.new_frames:
            raise RuntimeError("a checkpoint between updates would lose the pending gradient steps and RND frames")
        self.replay.save(folder / REPLAY_FILE)
        for name, var in self.saved.items():
            var.assign(getattr(self, name))

    def load_side(self, folder):
        """After a restore: the replay from its side file, the per-step state from the checkpoint."""
        self.replay.load(folder / REPLAY_FILE)
        self.episodes = int(self.saved["episodes"].numpy())
        self.int_window = self.saved["int_window"].numpy()
        self.int_written = int(self.saved["int_written"].numpy())
        self.pending, self.new_frames, self.last_next_obs, self._sums = [], [], None, {}

    def serving(self):
        """(tf.Module, keras.Model) that export writes: greedy action and Q values."""
        return GreedyPolicy(self.online, lambda out: {"q_values": out}), self.online

    def start_from(self, weights):
        """A new run's network from an exported one's weights (--init-from); the target net
        starts equal to it, as at construction."""
        self.online.set_weights(weights)
        self.target.set_weights(weights)

    # --- learning -------------------------------------------------------------

    def sample(self, rng, beta):
        """A minibatch as the train step takes it (importance weights 1 when uniform)."""
        if self.p.prioritized:
            batch = self.replay.sample(self.p.batch_size, rng, beta)
        else:
            batch = self.replay.sample(self.p.batch_size, rng)
            batch["weights"] = np.ones(self.p.batch_size, np.float32)
        return batch

    def gradient_step(self, beta):
        """One sampled minibatch through the train step; priorities from its |TD|."""
        g = int(self.gradient_steps.numpy())
        batch = self.sample(np.random.default_rng([self.cfg.seed, g]), beta)
        out = self.train_step(batch["obs"], batch["actions"], batch["rewards"], batch["next_obs"],
                              batch["discounts"], batch["weights"], self._int_stats().astype(np.float32),
                              np.array([self.cfg.seed, -1 - g], np.int64))   # RND's rows: another key
        td_error = out.pop("td_error").numpy()
        # A non-finite TD error comes with a non-finite loss, which stops the run cleanly at
        # this update's end (agent/loop.py); the sum tree would refuse it with a traceback.
        if self.p.prioritized and np.isfinite(td_error).all():
            self.replay.update_priorities(batch["indices"], td_error)
        self.gradient_steps.assign_add(1)
        return {k: v.numpy() for k, v in out.items()}

    def evaluate(self, step):
        """The TD loss of a uniform replay batch under the current weights, learning
        nothing: what an update with no gradient step due reports."""
        if not len(self.replay):
            return {"loss": 0.0, "td_loss": 0.0}
        g = int(self.gradient_steps.numpy())
        batch = ReplayBuffer.sample(self.replay, self.p.batch_size, np.random.default_rng([self.cfg.seed, g, step]))
        out = self._td(batch["obs"], batch["actions"], batch["rewards"], batch["next_obs"], batch["discounts"],
                       np.ones(self.p.batch_size, np.float32), self._int_stats().astype(np.float32))
        return {"loss": float(out["td_loss"]), "td_loss": float(out["td_loss"]), "q_mean": float(out["q_mean"])}

    def sync_target(self):
        for t, o in zip(self.target.weights, self.online.weights):
            t.assign(o)
        self.syncs.assign_add(1)

    # --- rewards --------------------------------------------------------------

    def _intrinsic(self, next_obs, reset_row):
        """Seed 003's standardised intrinsic reward: RND's predictor error on the next
        observations. Keeps those observations for RND's input statistics (merged at the
        next update) and puts the new raw values in the window (not those of auto-reset
        rows: they are no transitions)."""
        raw = self.rnd.raw_rewards(next_obs).numpy().astype(np.float64)
        self.new_frames.append(np.array(self.rnd.frames(next_obs), copy=True))
        live = raw[~reset_row]
        size = len(self.int_window)
        live = live[-size:]
        self.int_window[(self.int_written + np.arange(len(live))) % size] = live
        self.int_written += len(live)
        intrinsic = np.asarray(standardized_intrinsic(raw, self._int_stats(), self.p.int_clip), np.float64)
        intrinsic = np.where(reset_row, 0.0, intrinsic)
        self._add_stat("reward_int", intrinsic[~reset_row])
        return intrinsic

    def _int_stats(self):
        """(mean, std) of the intrinsic window's values so far; (0, 0) before any."""
        window = self.int_window[:min(self.int_written, len(self.int_window))]
        return np.array([window.mean(), window.std()] if len(window) else [0.0, 0.0])

    def _add_stat(self, key, values):
        total, n = self._sums.get(key, (0.0, 0))
        self._sums[key] = (total + float(np.sum(values)), n + len(values))

    def _take_stats(self):
        out = {k: total / n for k, (total, n) in self._sums.items() if n}
        self._sums = {}
        return out

    # --- maths --------------------------------------------------------------

    def _act_fn(self, obs, seed, eps):
        q = self.online(obs, training=False)
        greedy = tf.argmax(q, axis=-1, output_type=tf.int32)
        explore_seed, action_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
        n = tf.shape(q)[0]
        explore = tf.random.stateless_uniform([n], explore_seed) < eps
        random = tf.random.stateless_uniform([n], action_seed, 0, self.num_actions, dtype=tf.int32)
        return tf.where(explore, random, greedy)

    def _greedy_fn(self, obs):
        return tf.argmax(self.online(obs, training=False), axis=-1, output_type=tf.int32)

    def _targets(self, rewards, next_obs, discounts, int_stats=None):
        if self.rnd and self.p.int_reward_at == "sample":
            # Fresh bonuses (int_reward_at "sample"): the replay holds the extrinsic part only.
            raw = tf.stop_gradient(self.rnd.error(next_obs))
            rewards += self.p.int_coef * standardized_intrinsic(raw, int_stats, self.p.int_clip)
        return losses.double_q_targets(rewards, discounts, self.online(next_obs, training=False),
                                       self.target(next_obs, training=False))

    def _td_fn(self, obs, actions, rewards, next_obs, discounts, weights, int_stats):
        targets = self._targets(rewards, next_obs, discounts, int_stats)
        q = tf.gather(self.online(obs, training=False), actions, batch_dims=1)
        return {"td_loss": losses.td_loss(q, targets, self.p.loss, weights), "q_mean": tf.reduce_mean(q)}

    def _train_step(self, obs, actions, rewards, next_obs, discounts, weights, int_stats, seed):
        targets = self._targets(rewards, next_obs, discounts, int_stats)
        with tf.GradientTape() as tape:
            q = tf.gather(self.online(obs, training=True), actions, batch_dims=1)
            td = losses.td_loss(q, targets, self.p.loss, weights)
            loss = td
            if self.rnd:
                # The predictor learns the next observations of a share of the batch (seed 003).
                rnd_loss = self.rnd.loss(next_obs, seed, self.rnd_batch)
                loss += rnd_loss
        grads = tape.gradient(loss, self.trainable)
        if self.p.max_grad_norm is not None:
            # SB3's norm clip is the Q network's: RND's predictor learns unclipped (seed 003),
            # so its large early gradients cannot shrink the Q network's steps.
            n = self.num_q_vars
            grads = list(tf.clip_by_global_norm(grads[:n], self.p.max_grad_norm)[0]) + grads[n:]
        # No weight changes before every gradient, hence the targets, is done. The targets'
        # fresh bonus (int_reward_at "sample") reads RND's predictor outside every gradient's
        # ancestry, and without this barrier the predictor's update could run before that read:
        # two identical 2-thread ddqn-rnd runs differed after one update about half the time,
        # with TF_DETERMINISTIC_OPS too (a race, not a kernel); a barrier on the targets alone
        # removed it (2026-12-01). A joint clip had hidden it: every update waited on its norm.
        with tf.control_dependencies(grads):
            grads = [tf.identity(g) for g in grads]
        self.optimizer.apply_gradients(zip(grads, self.trainable))
        out = {"loss": loss, "td_loss": td, "q_mean": tf.reduce_mean(q), "td_error": targets - q}
        if self.rnd:
            out["rnd_loss"] = rnd_loss
        return out
