"""Writing config changes into Pulumi.<stack>.yaml the way `pulumi config set` would, comments kept."""

from __future__ import annotations

import yaml

from scripts.targets.local import update_stack_file

TEXT = """\
# the dev stack
config:
  bluegreen:cloud: local
  bluegreen:live_color: blue   # flipped by the pipeline
  bluegreen:green_version: 1.0.0
  bluegreen:monitor:
    window_s: 10
"""


def test_existing_keys_change_in_place_and_new_keys_join_the_config() -> None:
    out = update_stack_file(TEXT, {"live_color": "green", "green_version": "2.0", "warm_idle": True})
    assert out.startswith("# the dev stack\nconfig:\n")
    doc = yaml.safe_load(out)["config"]
    assert doc["bluegreen:live_color"] == "green"
    assert doc["bluegreen:green_version"] == "2.0"  # quoted, so it stays a string
    assert doc["bluegreen:warm_idle"] is True
    assert doc["bluegreen:monitor"] == {"window_s": 10}
    assert "  bluegreen:live_color: green\n" in out


def test_a_key_is_not_confused_with_a_longer_one() -> None:
    text = "config:\n  bluegreen:live_color_note: x\n  bluegreen:live_color: blue\n"
    doc = yaml.safe_load(update_stack_file(text, {"live_color": "green"}))["config"]
    assert doc == {"bluegreen:live_color_note": "x", "bluegreen:live_color": "green"}
