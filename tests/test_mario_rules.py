"""envs/mario_rules.py: the classic reward and seed 000's stage rules by hand."""

import pytest

from envs.mario_rules import StageRules, classic_frame_reward, parse_stage


def test_classic_frame_reward_by_hand():
    prev = {"x_pos": 100, "time": 300}
    assert classic_frame_reward({"x_pos": 103, "time": 300}, prev) == 3
    assert classic_frame_reward({"x_pos": 103, "time": 299}, prev) == 2
    assert classic_frame_reward({"x_pos": 180, "time": 300}, prev) == 0        # warp: not progress
    assert classic_frame_reward({"x_pos": 98, "time": 300}, prev) == -2
    assert classic_frame_reward({"x_pos": 100, "time": 300, "is_dying": True}, prev) == -15  # -25 clipped


def info(x, y=79, time=300, flag=False):
    return {"x_pos": x, "y_pos": y, "time": time, "flag_get": flag}


def test_common_rules():
    rules = StageRules(1, 1)
    assert rules(3.0, False, info(50)) == (0.3, False)
    assert rules(3.0, True, info(60, flag=True)) == (5.3, True)                 # +50 flag
    assert rules(-15.0, True, info(60)) == pytest.approx((-6.5, True))          # -50 death
    assert rules(-1.0, True, info(60, time=0)) == pytest.approx((-0.1, True))   # time-out: no penalty


def test_stage_4_2_warp_zone_penalty():
    rules = StageRules(4, 2)
    assert rules(1.0, False, info(500, y=254))[0] == pytest.approx(0.1)
    assert rules(1.0, False, info(500, y=255))[0] == pytest.approx(-4.9)


def test_stage_4_4_rules():
    rules = StageRules(4, 4)
    assert rules(1.0, False, info(1000, y=130)) == pytest.approx((0.09, False))  # -0.1 a step
    assert rules(1.0, False, info(1000, y=100)) == pytest.approx((-5.0, True))   # wrong (lower) path
    rules.reset()
    assert rules(1.0, False, info(2000, y=130)) == pytest.approx((-5.0, True))   # past 1588 the upper path is wrong
    rules.reset()
    rules(1.0, False, info(2000, y=100))
    assert rules(1.0, False, info(1890, y=100)) == pytest.approx((0.1, True))    # looped: end, no penalty


def test_stage_7_4_rules():
    rules = StageRules(7, 4)
    assert rules(1.0, False, info(600, y=100)) == pytest.approx((0.1, False))
    assert rules(1.0, False, info(600, y=130)) == pytest.approx((-4.9, True))
    rules.reset()
    rules(0.0, False, info(1500, y=200))
    assert rules(0.0, False, info(1390, y=200))[1] is True


def test_stage_8_4_rules():
    rules = StageRules(8, 4)
    assert rules(0.0, False, info(100)) == pytest.approx((-0.01, False))
    assert rules(0.0, False, info(300)) == pytest.approx((5.0 - 0.01, False))    # correct pipe: +50
    assert rules(0.0, False, info(2450)) == pytest.approx((-10.0 + 5.0, True))   # hidden brick -100 (+50 jump)
    rules.reset()
    rules(0.0, False, info(3000))
    assert rules(0.0, False, info(3690)) == pytest.approx((5.0 - 5.0, True))     # -50, +50 jump
    rules.reset()
    rules(0.0, False, info(1000))
    assert rules(0.0, False, info(312)) == pytest.approx((-5.0, True))           # wrong way back


@pytest.mark.parametrize("text", ["9-1", "1-5", "abc", "0-1", ""])
def test_unknown_stages(text):
    with pytest.raises(ValueError, match="unknown stage"):
        parse_stage(text)
