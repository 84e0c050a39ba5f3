"""Under-attack mode: on by itself when too much is shed or queued, off after a quiet period.

While it is on, anonymous requests must carry a proof-of-work pass. An administrator can force
it on or off (``townsquare shield on|off``) or hand it back to the automatic switch
(``townsquare shield auto``): the choice is a one-word file in ``data_dir/shield/``, read by
every worker at most once a second. Each worker writes its own state next to it when it
changes, so ``townsquare shield status`` can tell what the running workers are doing.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from townsquare.config import Settings

CHOICES = ("auto", "on", "off")
# Seconds between two reports of a busy worker's state to ``townsquare shield status``.
REPORT_INTERVAL = 2.0


def shield_dir(settings: Settings) -> Path:
    return settings.data_dir / "shield"


def _choice_file(settings: Settings) -> Path:
    return shield_dir(settings) / "mode"


def set_forced_mode(settings: Settings, choice: str) -> None:
    """``on`` or ``off`` force under-attack mode; ``auto`` lets the workers decide."""
    if choice not in CHOICES:
        raise ValueError(f"choose one of {', '.join(CHOICES)}")
    path = _choice_file(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    partial.write_text(choice + "\n")
    partial.replace(path)


def read_forced_mode(settings: Settings) -> str:
    try:
        choice = _choice_file(settings).read_text().strip()
    except OSError:
        choice = ""
    if choice in CHOICES:
        return choice
    return settings.shield_attack_mode if settings.shield_attack_mode in CHOICES else "auto"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def shield_status(settings: Settings) -> dict[str, Any]:
    """The administrator's choice and what each running worker reported last."""
    workers = []
    for path in sorted(shield_dir(settings).glob("worker-*.json")):
        try:
            report = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(report, dict) and _pid_alive(int(report.get("pid", 0))):
            workers.append(report)
        else:
            path.unlink(missing_ok=True)
    return {
        "choice": read_forced_mode(settings),
        "active": any(w.get("active") for w in workers),
        "limits": current_limits(settings),
        "workers": workers,
    }


def current_limits(settings: Settings) -> dict[str, str]:
    """The limits in force, as configured (``count/period``; seconds for deadlines)."""
    names = [name for name in type(settings).model_fields if name.startswith("rate_limit_")]
    limits = {name.removeprefix("rate_limit_"): str(getattr(settings, name)) for name in names}
    limits["pass"] = settings.shield_pass_rate_limit
    limits["queue_deadlines"] = (
        f"trusted {settings.shield_queue_deadline_trusted:g}s, "
        f"pass {settings.shield_queue_deadline_pass:g}s, "
        f"anonymous {settings.shield_queue_deadline_anonymous:g}s"
    )
    limits["pow_difficulty"] = (
        f"{settings.shield_pow_difficulty}+{settings.shield_pow_max_extra_difficulty} bits"
    )
    return limits


class AttackMode:
    def __init__(self, settings: Settings, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self.clock = clock
        self.window = settings.shield_attack_window
        self.shed_ratio = settings.shield_attack_shed_ratio
        self.min_requests = settings.shield_attack_min_requests
        self.queue_seconds = settings.shield_attack_queue_seconds
        self.quiet_period = settings.shield_attack_quiet_period
        self.max_intensity = settings.shield_pow_max_extra_difficulty
        self.automatic = False
        self.intensity = 0
        self.activations = 0
        self._choice = read_forced_mode(settings)
        self._choice_read_at = clock()
        self._last_attack_sign = -float("inf")
        self._window_started = clock()
        self._served = 0
        self._refused = 0  # shed, or challenged for lack of a pass
        self._queued_seconds = 0.0
        # What the worker adds to its report (counters, limits); set by the shield's state.
        self.snapshot: Callable[[], dict[str, Any]] | None = None
        self._reported_at = -float("inf")

    @property
    def choice(self) -> str:
        now = self.clock()
        if now - self._choice_read_at >= 1.0:
            self.refresh()
        return self._choice

    def refresh(self) -> None:
        """Read the administrator's choice now rather than within the second."""
        self._choice_read_at = self.clock()
        self._choice = read_forced_mode(self.settings)

    @property
    def active(self) -> bool:
        self._roll(self.clock())
        return self.active_now

    @property
    def active_now(self) -> bool:
        choice = self.choice
        if choice == "auto":
            return self.automatic
        return choice == "on"

    def served(self, queued_seconds: float) -> None:
        now = self.clock()
        self._roll(now)
        self._served += 1
        self._queued_seconds += queued_seconds
        if not self.automatic:
            self._judge_early(now)
        if now - self._reported_at >= REPORT_INTERVAL:
            self._report()

    def refused(self) -> None:
        now = self.clock()
        self._roll(now)
        self._refused += 1
        if not self.automatic:
            self._judge_early(now)
        if now - self._reported_at >= REPORT_INTERVAL:
            self._report()

    def _signs(self) -> tuple[bool, float]:
        """Whether the window's traffic so far shows an attack, and the share refused."""
        total = self._served + self._refused
        refused_share = self._refused / total if total else 0.0
        mean_wait = self._queued_seconds / self._served if self._served else 0.0
        attacked = (self._refused >= self.min_requests and refused_share >= self.shed_ratio) or (
            self._served >= self.min_requests and mean_wait >= self.queue_seconds
        )
        return attacked, refused_share

    def _judge_early(self, now: float) -> None:
        """Switch on within the window as soon as its traffic so far shows an attack. Until
        the mode is on, a flood's anonymous requests are admitted, and when the floods keep
        the loop busy each holds its slot for a second or more: judged only at the window's
        end, a few seconds of them held most of the slots people's requests needed. (Off
        is still judged over whole windows and a quiet period.)"""
        attacked, refused_share = self._signs()
        if attacked:
            self._attack_seen(now, refused_share)

    def _attack_seen(self, now: float, refused_share: float) -> None:
        self._last_attack_sign = now
        was = self.automatic
        self.automatic = True
        # Each step of intensity doubles the work a pass costs.
        steps = int(refused_share / max(self.shed_ratio, 1e-6)).bit_length() - 1
        self.intensity = min(self.max_intensity, max(0, steps))
        if not was:
            self.activations += 1
            self._report()

    def _roll(self, now: float) -> None:
        if now - self._window_started < self.window:
            return
        attacked, refused_share = self._signs()
        if attacked:
            self._attack_seen(now, refused_share)
        elif self.automatic and now - self._last_attack_sign >= self.quiet_period:
            self.automatic = False
            self.intensity = 0
            self._report()
        self._window_started = now
        self._served = self._refused = 0
        self._queued_seconds = 0.0

    def _report(self) -> None:
        self._reported_at = self.clock()
        path = shield_dir(self.settings) / f"worker-{os.getpid()}.json"
        report: dict[str, Any] = {
            "pid": os.getpid(),
            "active": self.active_now,
            "automatic": self.automatic,
            "intensity": self.intensity,
            "reported_at": time.time(),
        }
        if self.snapshot is not None:
            report.update(self.snapshot())
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(report))
        except OSError:
            pass  # the report is a courtesy to the CLI; the switch itself works without it
