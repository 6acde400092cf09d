"""Staged rollout tests (a package, so module names never collide with other folders)."""
