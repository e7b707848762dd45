"""Super Mario Bros reward and done rules as pure functions of the emulator's info.

gym-super-mario-bros 9.x pays a new reward; every published Mario result and seed
000 use the classic one, recomputed here from info (x_pos, time, is_dying/is_dead).
"""

import re

import numpy as np

WORLDS, STAGES = range(1, 9), range(1, 5)


def parse_stage(text):
    """'W-S' -> (world, stage); ValueError naming the value and what is allowed."""
    match = re.fullmatch(r"([1-8])-([1-4])", str(text).strip())
    if not match:
        raise ValueError(f"unknown stage {text!r}: choose W-S with world 1-8 and stage 1-4, e.g. 1-1 or 8-4")
    return int(match.group(1)), int(match.group(2))


def classic_frame_reward(info, prev):
    """One frame of gym-super-mario-bros <= 7's reward: x progress (0 for a jump of
    more than 5 pixels, i.e. a warp or a reset), minus one per clock tick, -25 while
    dying or dead, clipped to [-15, 15]."""
    dx = info["x_pos"] - prev["x_pos"]
    if abs(dx) > 5:
        dx = 0
    clock = min(info["time"] - prev["time"], 0)
    death = -25 if info.get("is_dying") or info.get("is_dead") else 0
    return float(np.clip(dx + clock + death, -15, 15))


class StageRules:
    """Seed 000's custom reward and done, applied once per agent step (after the
    frame skip): +50 on the flag, -50 on death but not on time-out, all / 10, and the
    wrong-path and anti-stall rules of stages 4-2, 4-4, 7-4 and 8-4."""

    def __init__(self, world, stage):
        self.world, self.stage = world, stage
        self.reset()

    def reset(self):
        self.max_x = 0
        self.sea_map = False

    def __call__(self, reward, done, info):
        """reward: the skip-summed classic reward; returns (reward / 10, done)."""
        x, y = info["x_pos"], info["y_pos"]
        if info["flag_get"]:
            reward += 50
            done = True
        if done and not info["flag_get"] and info["time"] != 0:
            reward -= 50   # death; a time-out (clock at 0) is not punished
            done = True
        where = (self.world, self.stage)
        if where == (7, 4):
            # The castle loops unless Mario takes the right floor at each fork.
            wrong = ((506 <= x <= 832 and y > 127) or (832 < x <= 1064 and y < 80)
                     or (1113 < x <= 1464 and y < 191) or (1579 < x <= 1943 and y < 191)
                     or (1946 < x <= 1964 and y >= 191) or (1984 < x <= 2060 and (y >= 191 or y < 127))
                     or (2114 < x < 2440 and y < 191))
            if wrong:
                reward -= 50
                done = True
            if not done and x < self.max_x - 100:
                done = True   # looped back on the right path too: end, no penalty
        if where == (4, 4):
            if (x <= 1500 and y < 127) or (1588 <= x < 2380 and y >= 127):
                reward = -50
                done = True
            if not done and x < self.max_x - 100:
                done = True
            if not done:
                reward -= 0.1   # keeps Mario moving where the way on is to the left
        if where == (4, 2) and not done and y >= 255:
            reward -= 50        # the warp zone above the map
        if where == (8, 4):
            if 2440 < x <= 2500:
                done = True
                reward -= 100   # the hidden-brick section
            if 3675 <= x <= 3700:
                done = True
                reward -= 50
            if x < self.max_x - 200:
                if 1250 <= self.max_x <= 1310:   # x_pos repeats here
                    if x >= 320:
                        done = True
                        reward = -50
                elif 307 <= x <= 317:
                    done = True
                    reward = -50
                elif 51 <= x <= 51 and self.max_x > 3650 and not self.sea_map:
                    reward += 50
                    self.sea_map = True
            if x > self.max_x + 100:
                reward += 50    # took the correct pipe
            if not done:
                reward -= 0.1
        self.max_x = max(self.max_x, x)
        return reward / 10.0, done
