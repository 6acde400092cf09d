"""What git says about a config directory: commit, branch, dirty flag, and where it lives.

Recorded as metadata on every apply, so the audit log and history answer "which commit put
this value here". A directory outside git (or a machine without git) simply has no git info.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

__all__ = ["GitInfo", "git_info"]


@dataclass(frozen=True)
class GitInfo:
    commit: str
    branch: str | None  # None on a detached HEAD
    dirty: bool  # uncommitted changes under the directory
    toplevel: Path
    remote: str | None  # the URL of "origin", if any

    def metadata(self) -> dict[str, object]:
        return {"git_commit": self.commit, "git_branch": self.branch, "git_dirty": self.dirty}


def _git(directory: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(directory), *args], capture_output=True,
                              text=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def git_info(directory: Path) -> GitInfo | None:
    """The directory's git state, or None when it is not inside a git work tree with a
    commit."""
    toplevel = _git(directory, "rev-parse", "--show-toplevel")
    commit = _git(directory, "rev-parse", "HEAD")
    if not toplevel or not commit:
        return None
    branch = _git(directory, "rev-parse", "--abbrev-ref", "HEAD")
    status = _git(directory, "status", "--porcelain", "--untracked-files=all", "--", ".")
    return GitInfo(commit=commit, branch=None if branch in (None, "HEAD") else branch,
                   dirty=bool(status), toplevel=Path(toplevel),
                   remote=_git(directory, "config", "--get", "remote.origin.url") or None)
