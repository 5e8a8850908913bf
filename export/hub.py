"""The released VampNet checkpoints from the Hugging Face Hub (``vampnet-ort export --hf``).

Upstream keeps its weights in one model repository (default ``hugggof/vampnet``): ``codec.pth``, ``coarse.pth``
and ``c2f.pth`` at the root, and each fine-tune as ``loras/<name>/coarse.pth`` + ``loras/<name>/c2f.pth`` (full
checkpoints that replace the base transformers; the codec always comes from the root). A fine-tune is a folder
under ``loras/`` holding both files, as upstream's model list decides.

Downloads go through ``huggingface_hub`` and its cache, so ``HF_HOME`` / ``HF_HUB_CACHE``, ``HF_HUB_OFFLINE``,
``HF_TOKEN`` and its progress bars behave as everywhere else; every failure becomes one ``HubError`` line that
says what to do.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

DEFAULT_REPO = "hugggof/vampnet"
BASE_MODEL = "default"  # upstream's name for the base model in its model choice
CODEC_FILE = "codec.pth"
STAGE_FILES = ("coarse.pth", "c2f.pth")
LORAS_DIR = "loras"
_COMMIT = re.compile(r"[0-9a-f]{40}")


class HubError(ValueError):
    """The Hub download or listing failed (no such repository, revision, fine-tune or file; offline, ...)."""


@dataclass(frozen=True)
class HubModel:
    """Local paths of one model's three checkpoints, and where they came from."""

    repo: str
    revision: str  # as asked for (a branch, tag or commit; "main" by default)
    commit: str | None  # the commit the files belong to (None when the cache layout does not say)
    model: str  # BASE_MODEL or a fine-tune name
    files: dict[str, str]  # role (codec, coarse, c2f) -> path in the repository
    paths: dict[str, Path]  # role -> local file in the cache

    def manifest_entry(self, sha256: dict[str, str]) -> dict[str, Any]:
        """The ``hf`` block of vampnet.json; `sha256` maps each role to its file's sha256."""
        return {
            "repo": self.repo,
            "revision": self.revision,
            "commit": self.commit,
            "model": self.model,
            "files": {role: {"path": self.files[role], "sha256": sha256[role]} for role in self.files},
        }


def _hub() -> Any:
    try:
        import huggingface_hub
        import huggingface_hub.constants  # noqa: F401 - a submodule, not an attribute of the lazy package
    except ImportError:
        raise HubError(
            "--hf needs the huggingface_hub package: pip install 'vampnet-ort[export]'"
        ) from None
    return huggingface_hub


def _errors() -> Any:
    _hub()
    from huggingface_hub import errors

    return errors


def check_model_name(model: str) -> str:
    """`model` when it names a fine-tune folder (or the base); HubError otherwise (no paths, no '..')."""
    if not isinstance(model, str) or model in ("", ".", "..") or any(c in model for c in "/\\") \
            or not model.isprintable():
        raise HubError(f"--hf-model {model!r}: not a fine-tune name (a folder name under {LORAS_DIR}/, "
                       f"or '{BASE_MODEL}' for the base model)")
    return model


def model_files(model: str) -> dict[str, str]:
    """Role -> path in the repository for `model` (BASE_MODEL or a fine-tune name)."""
    check_model_name(model)
    if model == BASE_MODEL:
        return {"codec": CODEC_FILE, "coarse": "coarse.pth", "c2f": "c2f.pth"}
    return {"codec": CODEC_FILE, "coarse": f"{LORAS_DIR}/{model}/coarse.pth", "c2f": f"{LORAS_DIR}/{model}/c2f.pth"}


def cache_dir() -> Path:
    """The hub cache huggingface_hub uses now (HF_HUB_CACHE, else HF_HOME/hub, else ~/.cache/huggingface/hub)."""
    return Path(_hub().constants.HF_HUB_CACHE)


def offline() -> bool:
    constants = _hub().constants
    is_offline = getattr(constants, "is_offline_mode", None)
    return bool(is_offline() if callable(is_offline) else constants.HF_HUB_OFFLINE)


def _repo_cache(repo: str) -> Path:
    """The cache folder of a model repository (huggingface_hub's layout: models--OWNER--NAME)."""
    return cache_dir() / ("models--" + repo.replace("/", "--"))


def cached_snapshot(repo: str, revision: str) -> Path | None:
    """The cached snapshot folder of `repo` at `revision` (a commit, or a branch/tag recorded in refs/)."""
    root = _repo_cache(repo)
    commit = revision if _COMMIT.fullmatch(revision) else None
    if commit is None:
        ref = root / "refs" / revision
        try:
            commit = ref.read_text().strip() if ref.is_file() and ref.resolve().is_relative_to(root.resolve()) else None
        except OSError:
            commit = None
    if commit is None or not _COMMIT.fullmatch(commit):
        return None
    snapshot = root / "snapshots" / commit
    return snapshot if snapshot.is_dir() else None


def _commit_of(local: Path, repo_path: str) -> str | None:
    """The commit a file returned by hf_hub_download belongs to: its snapshots/<commit>/ folder."""
    snapshot = local
    for _ in repo_path.split("/"):
        snapshot = snapshot.parent
    if snapshot.parent.name == "snapshots" and _COMMIT.fullmatch(snapshot.name):
        return snapshot.name
    return None


def _fine_tunes_in(paths: list[str]) -> list[str]:
    """Fine-tune names among repository paths: folders loras/<name>/ holding both coarse.pth and c2f.pth."""
    held: dict[str, set[str]] = {}
    for path in paths:
        parts = path.split("/")
        if len(parts) == 3 and parts[0] == LORAS_DIR and parts[2] in STAGE_FILES:
            held.setdefault(parts[1], set()).add(parts[2])
    return sorted(name for name, files in held.items() if files == set(STAGE_FILES))


def _cached_fine_tunes(repo: str, revision: str) -> list[str] | None:
    snapshot = cached_snapshot(repo, revision)
    if snapshot is None:
        return None
    loras = snapshot / LORAS_DIR
    found = [f"{LORAS_DIR}/{d.name}/{f.name}" for d in loras.iterdir() if d.is_dir() for f in d.iterdir()] \
        if loras.is_dir() else []
    return _fine_tunes_in(found)


def _where(repo: str, revision: str) -> str:
    return repo if revision == "main" else f"{repo}@{revision}"


def _not_cached(repo: str, revision: str, what: str) -> HubError:
    reason = "HF_HUB_OFFLINE is set" if offline() else "the Hub cannot be reached"
    return HubError(
        f"{_where(repo, revision)}: {what} is not in the Hugging Face cache ({cache_dir()}) and {reason}: "
        "run the same command once with network access (without HF_HUB_OFFLINE) to download it, "
        "or export local files with --codec/--coarse/--c2f"
    )


def list_fine_tunes(repo: str = DEFAULT_REPO, revision: str | None = None,
                    log: Callable[[str], None] | None = None) -> list[str]:
    """Names of the fine-tunes in `repo` (folders under loras/ holding coarse.pth and c2f.pth), sorted.

    Online the repository's tree is listed; offline (HF_HUB_OFFLINE, or no network) the cached snapshot is
    searched instead, which holds only the fine-tunes downloaded before (`log` says so).
    """
    hub, errors = _hub(), _errors()
    revision = revision or "main"
    check_repo_id(repo)
    network_error: Exception | None = None
    if not offline():
        try:
            tree = hub.HfApi().list_repo_tree(repo, path_in_repo=LORAS_DIR, recursive=True, revision=revision)
            return _fine_tunes_in([entry.path for entry in tree])
        except errors.RepositoryNotFoundError:
            raise _no_repo(repo) from None
        except errors.RevisionNotFoundError:
            raise _no_revision(repo, revision) from None
        except errors.EntryNotFoundError:
            return []  # no loras/ folder: no fine-tunes
        except errors.HfHubHTTPError as exc:
            network_error = exc
        except Exception as exc:  # noqa: BLE001 - transport errors differ between huggingface_hub versions
            network_error = exc
    cached = _cached_fine_tunes(repo, revision)
    if cached is None:
        raise _not_cached(repo, revision, "the repository") from None
    if log is not None:
        why = "offline" if network_error is None else f"the Hub cannot be reached ({_first_line(network_error)})"
        log(f"{why}: listing the fine-tunes in the local cache only ({cache_dir()})")
    return cached


def check_repo_id(repo: str) -> str:
    if not isinstance(repo, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*", repo) \
            or ".." in repo:
        raise HubError(f"--hf {repo!r}: not a model repository id (OWNER/NAME, e.g. {DEFAULT_REPO})")
    return repo


def _no_repo(repo: str) -> HubError:
    return HubError(f"{repo}: no such model repository on the Hugging Face Hub (or it is private or gated: "
                    "log in with `hf auth login` or set HF_TOKEN)")


def _no_revision(repo: str, revision: str) -> HubError:
    return HubError(f"{repo}: no revision '{revision}' (give a branch, tag or commit of the repository with "
                    "--revision)")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def fetch_model(repo: str = DEFAULT_REPO, model: str = BASE_MODEL, revision: str | None = None,
                log: Callable[[str], None] | None = None) -> HubModel:
    """Download (or find in the cache) the codec, coarse and c2f checkpoints of `model` in `repo`.

    Progress bars are huggingface_hub's (off with HF_HUB_DISABLE_PROGRESS_BARS=1). Raises HubError with one line
    for a missing repository, revision, fine-tune or file, and for a file that is neither cached nor downloadable.
    """
    hub, errors = _hub(), _errors()
    check_repo_id(repo)
    files = model_files(model)
    revision = revision or "main"
    paths: dict[str, Path] = {}
    commits: set[str] = set()
    for role, repo_path in files.items():
        if log is not None:
            log(f"{_where(repo, revision)}: {repo_path}")
        try:
            local = Path(hub.hf_hub_download(repo, repo_path, revision=revision))
        except errors.RepositoryNotFoundError:
            raise _no_repo(repo) from None
        except errors.RevisionNotFoundError:
            raise _no_revision(repo, revision) from None
        except errors.LocalEntryNotFoundError:
            # not cached and not downloadable (offline or no network): a cached snapshot may still show why
            snapshot = cached_snapshot(repo, revision)
            if snapshot is not None and model != BASE_MODEL and role != "codec":
                known = _cached_fine_tunes(repo, revision) or []
                if model not in known:
                    raise HubError(
                        f"{_where(repo, revision)}: no fine-tune '{model}' in the local cache ({cache_dir()}; cached: "
                        f"{', '.join(known) or 'none'}); online, `vampnet-ort export --hf {repo} --list` lists them all"
                    ) from None
            raise _not_cached(repo, revision, repo_path) from None
        except errors.EntryNotFoundError:
            if model != BASE_MODEL and role != "codec":
                raise HubError(
                    f"{_where(repo, revision)}: no fine-tune '{model}' ({repo_path} is missing); "
                    f"`vampnet-ort export --hf {repo} --list` lists the fine-tunes"
                ) from None
            raise HubError(f"{_where(repo, revision)}: the repository has no file {repo_path}") from None
        except errors.HFValidationError as exc:
            raise HubError(f"--hf {repo!r} / --revision {revision!r}: {_first_line(exc)}") from None
        except errors.HfHubHTTPError as exc:
            raise HubError(f"{_where(repo, revision)}: downloading {repo_path} failed: {_first_line(exc)}") from None
        paths[role] = local
        commit = _commit_of(local, repo_path)
        if commit is not None:
            commits.add(commit)
    if len(commits) > 1:  # the branch moved between two downloads
        raise HubError(f"{_where(repo, revision)}: the files came from different commits ({', '.join(sorted(commits))}); "
                       "run again, or pin one with --revision COMMIT")
    return HubModel(repo=repo, revision=revision, commit=commits.pop() if commits else None, model=model,
                    files=files, paths=paths)
